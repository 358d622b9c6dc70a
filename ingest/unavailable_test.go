package ingest_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/streams"
	"github.com/herald-push/herald/streams/streamstest"
)

// TestNATSDown stops the NATS server mid-test: every endpoint answers 503
// with Retry-After, and works again once the server is back.
func TestNATSDown(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{cfg: func(c *config.Config) {
		c.Ingest.PublishTimeout = time.Second
		c.Ingest.RetryAfter = 3 * time.Second
	}})
	f.publish("alice", map[string]any{"body": "before"}, http.StatusCreated)

	f.srv.Shutdown()
	f.srv.WaitForShutdown()
	waitFor(t, "client notices the server is gone", func() bool { return !f.nc.IsConnected() })

	check := func(name string, res response) {
		t.Helper()
		wantError(t, res, http.StatusServiceUnavailable, herald.Unavailable)
		if ra := res.header.Get("Retry-After"); ra != "3" {
			t.Errorf("%s: Retry-After = %q, want 3", name, ra)
		}
	}
	check("publish", f.postJSON(userPath("alice"), map[string]any{"body": "during"}))
	check("text publish", f.do(http.MethodPost, userPath("alice"), strings.NewReader("during"), "Content-Type", "text/plain"))
	check("batch", f.postJSON("/v1/messages", `{"messages":[{"user":"alice","body":"during"}]}`))
	check("history", f.do(http.MethodGet, userPath("alice"), nil))
	// Bad input is still 4xx while NATS is down.
	wantError(t, f.postJSON(userPath("alice"), `{"priority":1}`), http.StatusBadRequest, herald.InvalidMessage)
	if got := f.counter("herald_ingest_requests_total", "code", "unavailable"); got != 4 {
		t.Errorf("requests_total{unavailable} = %v, want 4", got)
	}

	f.srv = streamstest.Restart(t, f.srv, f.sopts)
	waitFor(t, "client reconnects", f.nc.IsConnected)
	p := f.publish("alice", map[string]any{"body": "after"}, http.StatusCreated)
	if p.Seq != 2 {
		t.Errorf("after restart seq = %d, want 2 (nothing stored while down)", p.Seq)
	}
	if h := f.history("alice", ""); len(h.Messages) != 2 || h.Messages[0].Body != "before" || h.Messages[1].Body != "after" {
		t.Errorf("history after restart = %+v", h.Messages)
	}
}

// TestStreamMissing: NATS is up but the stream was never applied.
func TestStreamMissing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{noStream: true, cfg: func(c *config.Config) {
		c.Ingest.PublishTimeout = 2 * time.Second
	}})
	for name, res := range map[string]response{
		"publish": f.postJSON(userPath("alice"), map[string]any{"body": "x"}),
		"history": f.do(http.MethodGet, userPath("alice"), nil),
	} {
		wantError(t, res, http.StatusServiceUnavailable, herald.Unavailable)
		if res.header.Get("Retry-After") != "1" {
			t.Errorf("%s: Retry-After = %q", name, res.header.Get("Retry-After"))
		}
	}
	res := f.postJSON("/v1/messages", `{"messages":[{"user":"alice","body":"x"},{"user":"","body":"y"}]}`)
	var b batchResp
	decode(t, res.body, &b)
	if res.status != http.StatusOK || len(b.Results) != 2 ||
		b.Results[0].Error == nil || b.Results[0].Error.Code != herald.Unavailable ||
		b.Results[1].Error == nil || b.Results[1].Error.Code != herald.InvalidUser {
		t.Errorf("batch without a stream: %v", res)
	}
}

// TestWrongStream: another stream owns the subjects; Nats-Expected-Stream
// keeps every write out of it.
func TestWrongStream(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{noStream: true})
	other := f.cfg.Stream
	other.Name = "OTHER"
	s := streamstest.Apply(t, f.nc, other)

	wantError(t, f.postJSON(userPath("alice"), map[string]any{"body": "x"}), http.StatusServiceUnavailable, herald.Unavailable)
	res := f.postJSON("/v1/messages", `{"messages":[{"user":"alice","body":"x"}]}`)
	var b batchResp
	decode(t, res.body, &b)
	if len(b.Results) != 1 || b.Results[0].Error == nil || b.Results[0].Error.Code != herald.Unavailable {
		t.Errorf("batch into the wrong stream: %v", res)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 0 {
		t.Errorf("OTHER holds %d messages", info.State.Msgs)
	}
	// A direct publish without the header would land there: the header is
	// what protects it.
	if _, err := f.js.Publish(ctx, streams.Subjects{}.User("alice"), []byte("x"), jetstream.WithExpectStream("OTHER")); err != nil {
		t.Errorf("control publish: %v", err)
	}
}
