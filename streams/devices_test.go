package streams_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald/streams"
	"github.com/herald-push/herald/streams/streamstest"
)

// kvKey is nats.go's rule for a KV key (jetstream/kv.go keyValid).
var kvKey = regexp.MustCompile(`^[-/_=\.a-zA-Z0-9]+$`)

func validKVKey(k string) bool {
	return kvKey.MatchString(k) && k[0] != '.' && k[len(k)-1] != '.' && !strings.Contains(k, "..")
}

// unescape inverts the escaping of one key part.
func unescape(t *testing.T, s string) string {
	t.Helper()
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			t.Fatalf("truncated escape in %q", s)
		}
		c, err := hex.DecodeString(s[i+1 : i+3])
		if err != nil {
			t.Fatalf("bad escape in %q: %v", s, err)
		}
		b.Write(c)
		i += 2
	}
	return b.String()
}

func TestDeviceKey(t *testing.T) {
	t.Parallel()
	cases := []struct{ user, device, key string }{
		{"alice", "phone", "alice.phone"},
		{"alice", "phone-1_b", "alice.phone-1_b"},
		{"alice", "mac:aa:bb", "alice.mac=3Aaa=3Abb"},
		{"alice", ".a..b.", "alice.=2Ea=2E=2Eb=2E"},
		{"a.b*c>d", "x", "=7EYS5iKmM-ZA.x"},
	}
	for _, tc := range cases {
		if got := streams.DeviceKey(tc.user, tc.device); got != tc.key {
			t.Errorf("DeviceKey(%q, %q) = %q, want %q", tc.user, tc.device, got, tc.key)
		}
	}
}

func FuzzDeviceKey(f *testing.F) {
	f.Add("alice", "phone")
	f.Add("émile@example.com", "a:b.c")
	f.Add("a.b*c>d", "..")
	f.Fuzz(func(t *testing.T, user, device string) {
		if streams.ValidateUser(user) != nil || streams.ValidateDevice(device) != nil {
			return
		}
		key := streams.DeviceKey(user, device)
		if !validKVKey(key) {
			t.Fatalf("DeviceKey(%q, %q) = %q: not a valid KV key", user, device, key)
		}
		tok, dev, ok := strings.Cut(key, ".")
		if !ok || strings.Contains(dev, ".") {
			t.Fatalf("key %q has not exactly one separator", key)
		}
		if filter := streams.DeviceKeyFilter(user); !strings.HasSuffix(filter, ".*") || filter[:len(filter)-1] != tok+"." {
			t.Fatalf("DeviceKeyFilter(%q) = %q does not match key %q", user, filter, key)
		}
		u, err := streams.UserFromToken(unescape(t, tok))
		if err != nil || u != user || unescape(t, dev) != device {
			t.Fatalf("key %q decodes to %q/%q (%v), want %q/%q", key, u, unescape(t, dev), err, user, device)
		}
		if u, d, err := streams.ParseDeviceKey(key); err != nil || u != user || d != device {
			t.Fatalf("ParseDeviceKey(%q) = %q, %q, %v; want %q, %q", key, u, d, err, user, device)
		}
		if rk := streams.ReadKey(user); rk != tok || !validKVKey(rk) {
			t.Fatalf("ReadKey(%q) = %q, want %q, the user part of its device keys", user, rk, tok)
		}
	})
}

// FuzzParseDeviceKey: a key ParseDeviceKey accepts is the DeviceKey of what
// it returns.
func FuzzParseDeviceKey(f *testing.F) {
	for _, k := range []string{"alice.phone", "alice.mac=3Aaa", "=7EYS5iKmM-ZA.x", "alice", "alice.", "a.b.c", "alice.=3a", "alice.=3", "=7E.x"} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		u, d, err := streams.ParseDeviceKey(key)
		if err != nil {
			if !errors.Is(err, streams.ErrInvalidKey) {
				t.Fatalf("ParseDeviceKey(%q) error %v does not wrap ErrInvalidKey", key, err)
			}
			return
		}
		if streams.DeviceKey(u, d) != key {
			t.Fatalf("ParseDeviceKey(%q) = %q, %q, whose key is %q", key, u, d, streams.DeviceKey(u, d))
		}
	})
}

func TestApplyDevicesIsIdempotent(t *testing.T) {
	t.Parallel()
	srv := streamstest.RunServer(t)
	nc := streamstest.Connect(t, srv.ClientURL())
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := streamstest.StreamConfig()
	for i, ttl := range []time.Duration{time.Hour, time.Hour, 2 * time.Hour} {
		kv, err := streams.ApplyDevices(ctx, js, streams.DevicesBucket(c, ttl))
		if err != nil {
			t.Fatalf("apply %d: %v", i, err)
		}
		st, err := kv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Bucket() != streams.DevicesBucketName || st.TTL() != ttl || st.History() != 1 {
			t.Fatalf("bucket %s ttl %v history %d", st.Bucket(), st.TTL(), st.History())
		}
	}
	kv, _ := js.KeyValue(ctx, streams.DevicesBucketName)
	if _, err := kv.Put(ctx, streams.DeviceKey("émile", "a:b"), []byte("42")); err != nil {
		t.Fatalf("put with an escaped key: %v", err)
	}
}

func ExampleDeviceKey() {
	fmt.Println(streams.DeviceKey("alice", "phone"))
	fmt.Println(streams.DeviceKey("alice", "mac:01"))
	// Output:
	// alice.phone
	// alice.mac=3A01
}
