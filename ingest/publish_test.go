package ingest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/herald-push/herald"
)

func TestPublishJSON(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	before := time.Now().UTC().Truncate(time.Millisecond)
	p := f.publish("alice", map[string]any{
		"title": "Build failed", "body": "main is red", "priority": 8,
		"tags": []string{"ci", "main"}, "data": map[string]any{"run": 42},
		"unknown": "ignored", "seq": 99, "time": "2000-01-01T00:00:00Z",
	}, http.StatusCreated)
	if p.Seq != 1 || p.User != "alice" || len(p.ID) != 26 || p.Duplicate || p.Time == nil {
		t.Fatalf("response = %+v", p)
	}
	if p.Time.Before(before) || p.Time.After(time.Now()) || p.Time.Nanosecond()%int(time.Millisecond) != 0 {
		t.Errorf("time %v is not now with ms precision", p.Time)
	}
	e := f.storedEnvelope(1, "alice")
	if e.ID != p.ID || e.User != "alice" || !e.Time.Equal(*p.Time) || e.Title != "Build failed" ||
		e.Body != "main is red" || e.PriorityOrDefault() != 8 || strings.Join(e.Tags, ",") != "ci,main" ||
		string(e.Data) != `{"run":42}` || e.Seq != 0 {
		t.Errorf("stored envelope = %+v", e)
	}
	if m := f.stored(1); m.Header.Get("Nats-Expected-Stream") != "HERALD" {
		t.Errorf("stored headers = %v, want Nats-Expected-Stream HERALD", m.Header)
	}

	// Defaults: priority 5, no content type means JSON, user in the body
	// may repeat the path's.
	p2 := f.publish("alice", map[string]any{"user": "alice", "data": map[string]any{"k": "v"}}, http.StatusCreated, "Content-Type", "")
	if p2.Seq != 2 || p2.ID <= p.ID {
		t.Errorf("second publish = %+v, want seq 2 and an id after %s", p2, p.ID)
	}
	if e := f.storedEnvelope(2, "alice"); e.PriorityOrDefault() != 5 || e.Body != "" || string(e.Data) != `{"k":"v"}` {
		t.Errorf("stored = %+v", e)
	}
	p3 := f.publish("alice", `{"title":"charset"}`, http.StatusCreated, "Content-Type", "application/json; charset=utf-8")
	if e := f.storedEnvelope(p3.Seq, "alice"); p3.Seq != 3 || e.Title != "charset" {
		t.Errorf("JSON with a charset: %+v stored %+v", p3, e)
	}
	if msgs, last := f.state(); msgs != 3 || last != 3 {
		t.Errorf("stream holds %d messages, last %d; want 3, 3", msgs, last)
	}
	if got := f.counter("herald_ingest_requests_total", "code", "ok"); got != 3 {
		t.Errorf("requests_total{ok} = %v, want 3", got)
	}
	if got := f.counter("herald_ingest_messages_total"); got != 3 {
		t.Errorf("messages_total = %v, want 3", got)
	}
	if got := f.counter("herald_ingest_publish_seconds"); got != 3 {
		t.Errorf("publish_seconds count = %v, want 3", got)
	}
}

func TestPublishText(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	for i, ct := range []string{"text/plain", "text/plain; charset=utf-8", "TEXT/PLAIN; charset=US-ASCII"} {
		body := "line one\n{\"not\":\"json\"} é"
		if strings.Contains(ct, "ASCII") {
			body = "plain ascii"
		}
		res := f.do(http.MethodPost, userPath("bob"), strings.NewReader(body), "Content-Type", ct)
		if res.status != http.StatusCreated {
			t.Fatalf("%s: %v", ct, res)
		}
		var p publishedResp
		decode(t, res.body, &p)
		if p.Seq != uint64(i+1) || p.User != "bob" {
			t.Errorf("%s: %+v", ct, p)
		}
		if e := f.storedEnvelope(p.Seq, "bob"); e.Body != body || e.Title != "" || e.Data != nil {
			t.Errorf("%s: stored %+v", ct, e)
		}
	}
}

func TestPublishDuplicate(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	msg := map[string]any{"body": "once"}

	first := f.publish("alice", msg, http.StatusCreated, "Idempotency-Key", "order-1")
	if first.ID != "order-1" {
		t.Fatalf("id = %q, want the Idempotency-Key", first.ID)
	}
	f.publish("alice", map[string]any{"body": "between"}, http.StatusCreated)
	again := f.publish("alice", map[string]any{"body": "changed"}, http.StatusOK, "Idempotency-Key", "order-1")
	if !again.Duplicate || again.Seq != first.Seq || again.ID != "order-1" || again.User != "alice" ||
		again.Time == nil || !again.Time.Equal(*first.Time) {
		t.Errorf("duplicate = %+v, want seq %d, time %v, duplicate", again, first.Seq, first.Time)
	}
	// The id field is the same key.
	byField := f.publish("alice", map[string]any{"id": "order-1", "body": "x"}, http.StatusOK)
	if !byField.Duplicate || byField.Seq != first.Seq {
		t.Errorf("duplicate by id field = %+v", byField)
	}
	// Header and field agreeing is fine.
	both := f.publish("alice", map[string]any{"id": "order-1", "body": "x"}, http.StatusOK, "Idempotency-Key", "order-1")
	if !both.Duplicate || both.Seq != first.Seq {
		t.Errorf("duplicate by both = %+v", both)
	}

	f2 := f.publish("alice", map[string]any{"id": "evt-7", "body": "by field"}, http.StatusCreated)
	d2 := f.publish("alice", map[string]any{"body": "by header"}, http.StatusOK, "Idempotency-Key", "evt-7")
	if f2.ID != "evt-7" || !d2.Duplicate || d2.Seq != f2.Seq {
		t.Errorf("field then header: %+v then %+v", f2, d2)
	}

	if msgs, last := f.state(); msgs != 3 || last != 3 {
		t.Errorf("stream holds %d messages, last %d; want 3, 3", msgs, last)
	}
	if e := f.storedEnvelope(first.Seq, "alice"); e.Body != "once" {
		t.Errorf("first message was overwritten: %+v", e)
	}
	if got := f.counter("herald_ingest_requests_total", "code", "duplicate"); got != 4 {
		t.Errorf("requests_total{duplicate} = %v, want 4", got)
	}
	if got := f.counter("herald_ingest_messages_total"); got != 3 {
		t.Errorf("messages_total = %v, want 3", got)
	}
}

func TestPublishRejected(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	bigBody := func(n int) string {
		b, _ := json.Marshal(map[string]string{"body": repeat("x", n)})
		return string(b)
	}
	cases := []struct {
		name   string
		path   string
		body   string
		hdr    []string
		status int
		code   herald.Code
	}{
		{"no auth", userPath("alice"), `{"body":"x"}`, []string{"Authorization", ""}, 401, herald.Unauthorized},
		{"wrong key", userPath("alice"), `{"body":"x"}`, []string{"Authorization", "Bearer not-a-key-0123456789"}, 401, herald.Unauthorized},
		{"key prefix", userPath("alice"), `{"body":"x"}`, []string{"Authorization", "Bearer " + producerKey[:10]}, 401, herald.Unauthorized},
		{"basic scheme", userPath("alice"), `{"body":"x"}`, []string{"Authorization", "Basic " + producerKey}, 401, herald.Unauthorized},
		{"empty bearer", userPath("alice"), `{"body":"x"}`, []string{"Authorization", "Bearer "}, 401, herald.Unauthorized},
		{"client token", userPath("alice"), `{"body":"x"}`, []string{"Authorization", "Bearer " + mint(t, "alice")}, 401, herald.Unauthorized},
		{"bad json", userPath("alice"), `{"body":`, nil, 400, herald.InvalidJSON},
		{"trailing data", userPath("alice"), `{"body":"x"} {}`, nil, 400, herald.InvalidJSON},
		{"empty body", userPath("alice"), ``, nil, 400, herald.InvalidJSON},
		{"not json", userPath("alice"), `body=x`, nil, 400, herald.InvalidJSON},
		{"control char user", "/v1/users/a%00b/messages", `{"body":"x"}`, nil, 400, herald.InvalidUser},
		{"tab user", "/v1/users/a%09b/messages", `{"body":"x"}`, nil, 400, herald.InvalidUser},
		{"invalid utf-8 user", "/v1/users/%FF%FE/messages", `{"body":"x"}`, nil, 400, herald.InvalidUser},
		{"long user", userPath(repeat("u", 257)), `{"body":"x"}`, nil, 400, herald.InvalidUser},
		{"no content", userPath("alice"), `{"priority":3,"tags":["a"]}`, nil, 400, herald.InvalidMessage},
		{"priority high", userPath("alice"), `{"body":"x","priority":11}`, nil, 400, herald.InvalidMessage},
		{"priority negative", userPath("alice"), `{"body":"x","priority":-1}`, nil, 400, herald.InvalidMessage},
		{"priority type", userPath("alice"), `{"body":"x","priority":"high"}`, nil, 400, herald.InvalidMessage},
		{"priority float", userPath("alice"), `{"body":"x","priority":2.5}`, nil, 400, herald.InvalidMessage},
		{"array message", userPath("alice"), `["x"]`, nil, 400, herald.InvalidMessage},
		{"data array", userPath("alice"), `{"data":[1,2]}`, nil, 400, herald.InvalidMessage},
		{"data string", userPath("alice"), `{"data":"x"}`, nil, 400, herald.InvalidMessage},
		{"empty tag", userPath("alice"), `{"body":"x","tags":[""]}`, nil, 400, herald.InvalidMessage},
		{"too many tags", userPath("alice"), `{"body":"x","tags":[` + strings.TrimSuffix(repeat(`"t",`, 33), ",") + `]}`, nil, 400, herald.InvalidMessage},
		{"id with space", userPath("alice"), `{"body":"x","id":"a b"}`, nil, 400, herald.InvalidMessage},
		{"id too long", userPath("alice"), `{"body":"x","id":"` + repeat("i", 129) + `"}`, nil, 400, herald.InvalidMessage},
		{"key with space", userPath("alice"), `{"body":"x"}`, []string{"Idempotency-Key", "a b"}, 400, herald.InvalidMessage},
		{"key differs from id", userPath("alice"), `{"body":"x","id":"one"}`, []string{"Idempotency-Key", "two"}, 400, herald.InvalidMessage},
		{"user mismatch", userPath("alice"), `{"body":"x","user":"bob"}`, nil, 400, herald.InvalidMessage},
		{"text invalid utf-8", userPath("alice"), "bad \xff text", []string{"Content-Type", "text/plain"}, 400, herald.InvalidMessage},
		{"text empty", userPath("alice"), "", []string{"Content-Type", "text/plain"}, 400, herald.InvalidMessage},
		{"stored too large", userPath("alice"), bigBody(64 << 10), nil, 413, herald.TooLarge},
		{"body too large", userPath("alice"), bigBody(200 << 10), nil, 413, herald.TooLarge},
		{"xml", userPath("alice"), `<m/>`, []string{"Content-Type", "application/xml"}, 415, herald.UnsupportedMediaType},
		{"html", userPath("alice"), `<p>`, []string{"Content-Type", "text/html"}, 415, herald.UnsupportedMediaType},
		{"latin-1 text", userPath("alice"), "x", []string{"Content-Type", "text/plain; charset=iso-8859-1"}, 415, herald.UnsupportedMediaType},
		{"bad media type", userPath("alice"), "x", []string{"Content-Type", "/;;"}, 415, herald.UnsupportedMediaType},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hdr := append([]string{"Content-Type", "application/json"}, tc.hdr...)
			res := f.do(http.MethodPost, tc.path, strings.NewReader(tc.body), hdr...)
			wantError(t, res, tc.status, tc.code)
		})
	}
	if msgs, last := f.state(); msgs != 0 || last != 0 {
		t.Errorf("rejected requests stored something: %d messages, last seq %d", msgs, last)
	}
	if got := f.counter("herald_ingest_requests_total", "code", "invalid_message"); got < 10 {
		t.Errorf("requests_total{invalid_message} = %v", got)
	}
	// The largest message that fits is accepted.
	p := f.publish("alice", bigBody(63<<10), http.StatusCreated)
	if p.Seq != 1 {
		t.Errorf("a 63 KiB body: %+v", p)
	}
}

// countingReader yields n bytes of a JSON string body and counts how many
// bytes were read.
type countingReader struct {
	n, read int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.read >= c.n {
		return 0, io.EOF
	}
	k := min(int64(len(p)), c.n-c.read)
	for i := range p[:k] {
		switch {
		case c.read+int64(i) == 0:
			p[i] = '"'
		default:
			p[i] = 'x'
		}
	}
	c.read += k
	return int(k), nil
}

// TestHugeBody sends 8 MiB bodies: rejected with 413, and the handler reads
// no more than its limit.
func TestHugeBody(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	const huge = 8<<20 + 1

	for _, path := range []string{userPath("alice"), "/v1/messages"} {
		// Over HTTP, with and without a Content-Length.
		res := f.do(http.MethodPost, path, bytes.NewReader(make([]byte, huge)), "Content-Type", "application/json")
		wantError(t, res, http.StatusRequestEntityTooLarge, herald.TooLarge)
		res = f.do(http.MethodPost, path, io.MultiReader(&countingReader{n: huge}), "Content-Type", "application/json")
		wantError(t, res, http.StatusRequestEntityTooLarge, herald.TooLarge)

		// In process: count what the handler pulls from the body.
		body := &countingReader{n: huge}
		req := httptest.NewRequest(http.MethodPost, path, io.NopCloser(body))
		req.ContentLength = -1
		req.Header.Set("Authorization", "Bearer "+producerKey)
		rec := httptest.NewRecorder()
		f.mux().ServeHTTP(rec, req)
		if rec.Code != http.StatusRequestEntityTooLarge {
			t.Errorf("%s: status %d %s", path, rec.Code, rec.Body)
		}
		limit := int64(f.cfg.HTTP.MaxBodyBytes)
		if path != "/v1/messages" {
			limit = 2*int64(f.cfg.Ingest.MaxMessageBytes) + 4<<10
		}
		if body.read > limit+64<<10 {
			t.Errorf("%s: the handler read %d bytes of the body, limit %d", path, body.read, limit)
		}
		if path != "/v1/messages" && body.read > 1<<20 {
			t.Errorf("%s: a single publish read %d bytes", path, body.read)
		}
	}
	if msgs, _ := f.state(); msgs != 0 {
		t.Errorf("stored %d messages", msgs)
	}
}
