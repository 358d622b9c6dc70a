package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald/edge/token"
	"github.com/herald-push/herald/streams"
	"github.com/herald-push/herald/streams/streamstest"
)

// TestLifecycleCLI: herald publish --ttl, --delay, --update and --delete,
// over HTTP and --nats; herald listen prints updates, deletes and read
// events; herald devices shows the listening device connected.
func TestLifecycleCLI(t *testing.T) {
	checkNoLeaks(t)
	srv := streamstest.RunServer(t)
	url := srv.ClientURL()
	const (
		key    = "lifecycle-cli-producer-key-0123"
		secret = "lifecycle-cli-secret-0123456789abcdef"
	)
	env := []string{"HERALD_JWT_SECRET=" + secret, "HERALD_PRODUCER_KEYS=" + key}
	if _, _, err := runCmd(t, nil, "streams", "apply", "--nats-url", url, "--wait", "10s"); err != nil {
		t.Fatal(err)
	}
	edgeP := startCmd(t, env, "edge", "--nats-url", url, "--listen", "127.0.0.1:0")
	ingestP := startCmd(t, env, "ingest", "--nats-url", url, "--listen", "127.0.0.1:0")

	out := &syncBuffer{}
	l := &listener{
		baseURL:   "ws://" + edgeP.addr,
		user:      "alice",
		device:    "laptop",
		token:     func() (string, error) { return token.Mint(secret, "alice", "laptop", time.Hour) },
		statePath: filepath.Join(t.TempDir(), "state.json"),
		out:       out,
		log:       slog.New(slog.DiscardHandler),
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- l.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("listen: %v", err)
		}
	}()
	printedLine := func(want string) {
		t.Helper()
		waitFor(t, 10*time.Second, func() error {
			for _, line := range strings.Split(out.String(), "\n") {
				if strings.HasSuffix(line, want) {
					return nil
				}
			}
			return fmt.Errorf("no line ends with %q in:\n%s", want, out.String())
		})
	}
	// The listener is connected once device status says so.
	waitFor(t, 10*time.Second, func() error {
		stdout, _, err := runCmd(t, env, "devices", "--user", "alice", "--url", edgeP.url(""))
		if err != nil {
			return err
		}
		if !strings.Contains(stdout, "laptop") || !strings.Contains(stdout, "true") {
			return fmt.Errorf("devices printed:\n%s", stdout)
		}
		return nil
	})

	publish := func(args ...string) map[string]any {
		t.Helper()
		stdout, _, err := runCmd(t, env, append([]string{"publish", "--user", "alice", "--url", ingestP.url(""), "--key", key}, args...)...)
		if err != nil {
			t.Fatalf("publish %v: %v", args, err)
		}
		var a map[string]any
		if err := json.Unmarshal([]byte(stdout), &a); err != nil {
			t.Fatalf("publish %v printed %q: %v", args, stdout, err)
		}
		return a
	}
	publish("--id", "m-1", "first")
	printedLine("\tfirst")
	publish("--update", "m-1", "second")
	printedLine("\tsecond\tupdate m-1")
	publish("--delete", "m-1")
	printedLine("\t\tdelete m-1")
	s := publish("--delay", "1s", "--ttl", "1h", "later")
	if s["deliver_at"] == nil || s["seq"] != nil {
		t.Errorf("a delayed publish answered %v", s)
	}
	printedLine("\tlater")

	// --nats writes the ttl as Nats-TTL.
	stdout, _, err := runCmd(t, env, "publish", "--nats", "--nats-url", url, "--user", "alice", "--ttl", "90s", "short")
	if err != nil {
		t.Fatal(err)
	}
	var a struct {
		Seq uint64 `json:"seq"`
	}
	if err := json.Unmarshal([]byte(stdout), &a); err != nil || a.Seq == 0 {
		t.Fatalf("publish --nats printed %q: %v", stdout, err)
	}
	printedLine("\tshort")
	js, err := jetstream.New(streamstest.Connect(t, url))
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	st, err := js.Stream(sctx, "HERALD")
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetMsg(sctx, a.Seq)
	if err != nil || m.Header.Get(streams.HeaderTTL) != "90" {
		t.Errorf("--nats --ttl 90s stored with headers %v (%v)", m, err)
	}

	// A read by another device is printed.
	tok, err := token.Mint(secret, "alice", "phone", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	code, body := httpDo(t, http.MethodPost, edgeP.url("/v1/read"), map[string]string{"Authorization": "Bearer " + tok}, `{"seq":`+strconv.FormatUint(a.Seq, 10)+`}`)
	if code != http.StatusOK {
		t.Fatalf("POST /v1/read: %d %s", code, body)
	}
	printedLine("read\t" + strconv.FormatUint(a.Seq, 10) + "\tphone")

	if _, _, err := runCmd(t, env, "publish", "--user", "alice", "--url", ingestP.url(""), "--at", "2020-01-01T00:00:00Z", "x"); err == nil || !strings.Contains(err.Error(), "not in the future") {
		t.Errorf("publish --at in the past: %v", err)
	}
	stdout, _, err = runCmd(t, env, "devices", "--user", "alice", "--url", edgeP.url(""), "--json")
	if err != nil || !strings.Contains(stdout, `"read":`+strconv.FormatUint(a.Seq, 10)) {
		t.Errorf("devices --json printed %q: %v", stdout, err)
	}
}
