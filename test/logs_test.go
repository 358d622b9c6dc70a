package test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/edge"
	"github.com/herald-push/herald/edge/token"
	"github.com/herald-push/herald/streams"
)

// logBuffer is an io.Writer for a slog handler that tests read while the
// edge writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestWarningsDoNotNameTheUser: a warning the edge logs about a user's
// device (the live engine failing to open a feed because its position
// cannot be read or written) names the user by streams.LogUser only: neither
// the id, nor its subject token, nor the device's KV key appears.
func TestWarningsDoNotNameTheUser(t *testing.T) {
	t.Parallel()
	const user, device = "alice@example.com", "phone"
	// The cap's count is another path; this one reads and writes the
	// device's own key.
	c := newCluster(t, config.DeliveryLive, func(cfg *config.Config) { cfg.Edge.MaxDevicesPerUser = 0 })
	var logs logBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	eng, err := edge.NewLiveEngine(c.js, c.cfg.Stream, c.cfg.Edge, 2*time.Second, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("live engine: %v", err)
		}
	}()
	v, err := token.New(c.cfg.Auth)
	if err != nil {
		t.Fatal(err)
	}
	es, err := edge.New(edge.Options{Edge: c.cfg.Edge, Engine: eng, Tokens: v, Logger: log, JetStream: c.js, Stream: c.cfg.Stream})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	es.Register(mux)
	hs := httptest.NewServer(mux)
	defer hs.Close()
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = es.Shutdown(sctx)
	}()

	// The device connects once, so the engine holds the bucket's handle;
	// then the bucket goes away under it.
	dialSynced(t, hs.URL, user, device, "").Close()
	dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer dcancel()
	if err := c.js.DeleteKeyValue(dctx, streams.DevicesBucketName); err != nil {
		t.Fatal(err)
	}
	if _, err := c.js.KeyValue(dctx, streams.DevicesBucketName); err != jetstream.ErrBucketNotFound {
		t.Fatalf("bucket still there: %v", err)
	}
	_, resp, err := tryDial(hs.URL, mint(t, user, device), device, "")
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial without the bucket: %v %v, want 503", resp, err)
	}

	out := logs.String()
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "open feed") || !strings.Contains(out, streams.LogUser(user)) {
		t.Fatalf("no warning naming %s about the failed open:\n%s", streams.LogUser(user), out)
	}
	tok := streams.Token(user)
	for _, leak := range []string{user, tok, strings.TrimPrefix(tok, "~"), streams.DeviceKey(user, device), streams.Subjects{Prefix: c.cfg.Stream.Prefix}.User(user)} {
		if strings.Contains(out, leak) {
			t.Errorf("the log holds %q:\n%s", leak, out)
		}
	}
}
