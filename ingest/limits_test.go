package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/config"
)

// batchRequest is an in-process batch request with the producer key.
func batchRequest(body io.Reader) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/v1/messages", body)
	req.Header.Set("Authorization", "Bearer "+producerKey)
	return req
}

// recorded turns a recorder into a response.
func recorded(rec *httptest.ResponseRecorder) response {
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

// TestBatchItemLimitMemory: an 8 MiB batch of tiny items is refused with
// 413 naming ingest.max_batch as soon as item max_batch+1 is read, without
// materialising the rest. Reading it whole cost about 430 MB per request.
// Not parallel: it measures the process's allocations.
func TestBatchItemLimitMemory(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	mux := f.mux()
	body := tinyItemsBody(8 << 20)
	req := batchRequest(bytes.NewReader(body))
	rec := httptest.NewRecorder()

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	mux.ServeHTTP(rec, req)
	runtime.ReadMemStats(&after)

	res := recorded(rec)
	wantError(t, res, http.StatusRequestEntityTooLarge, herald.TooLarge)
	if !bytes.Contains(res.body, []byte("ingest.max_batch")) || !bytes.Contains(res.body, []byte("1000")) {
		t.Errorf("error %s does not name ingest.max_batch and its value", res.body)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("an 8 MiB batch of tiny items allocated %d bytes", alloc)
	if alloc > 2<<20 {
		t.Errorf("an 8 MiB batch of tiny items allocated %d bytes, want under 2 MiB", alloc)
	}
	if msgs, _ := f.state(); msgs != 0 {
		t.Errorf("stream holds %d messages", msgs)
	}
}

// TestBatchConcurrencyLimit: with every batch slot taken, another batch
// waits at most the publish timeout and then gets 503 unavailable with
// Retry-After, naming ingest.max_concurrent_batches (at once when its
// request ends first); single publishes are not affected, and the next
// batch after the slot is freed is stored.
func TestBatchConcurrencyLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{cfg: func(c *config.Config) {
		c.Ingest.MaxConcurrentBatches = 1
		c.Ingest.PublishTimeout = time.Second
	}})
	mux := f.mux()

	// The first batch takes the slot and then waits for its body: the
	// first write returns once the handler reads, so after it the slot
	// is held.
	pr, pw := io.Pipe()
	held := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		mux.ServeHTTP(held, batchRequest(pr))
	}()
	if _, err := pw.Write([]byte(`{"messages":[`)); err != nil {
		t.Fatal(err)
	}

	res := f.postJSON("/v1/messages", `{"messages":[{"user":"bob","body":"second"}]}`)
	wantError(t, res, http.StatusServiceUnavailable, herald.Unavailable)
	if ra, err := strconv.Atoi(res.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After = %q", res.header.Get("Retry-After"))
	}
	if !bytes.Contains(res.body, []byte("ingest.max_concurrent_batches")) {
		t.Errorf("error %s does not name ingest.max_concurrent_batches", res.body)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	gone := httptest.NewRecorder()
	mux.ServeHTTP(gone, batchRequest(strings.NewReader(`{"messages":[]}`)).WithContext(ctx))
	wantError(t, recorded(gone), http.StatusServiceUnavailable, herald.Unavailable)
	single := f.publish("carol", map[string]any{"body": "single"}, http.StatusCreated)

	if _, err := pw.Write([]byte(`{"user":"alice","body":"held"}]}`)); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	<-done
	var b batchResp
	decode(t, held.Body.Bytes(), &b)
	if held.Code != http.StatusOK || len(b.Results) != 1 || b.Results[0].Seq != single.Seq+1 {
		t.Fatalf("held batch: %d %s", held.Code, held.Body.Bytes())
	}
	res = f.postJSON("/v1/messages", `{"messages":[{"user":"bob","body":"third"}]}`)
	decode(t, res.body, &b)
	if res.status != http.StatusOK || len(b.Results) != 1 || b.Results[0].Error != nil {
		t.Fatalf("batch after the slot was freed: %v", res)
	}
	if msgs, _ := f.state(); msgs != 3 {
		t.Errorf("stream holds %d messages, want 3", msgs)
	}
	if n := f.counter("herald_ingest_requests_total", "code", "unavailable"); n != 2 {
		t.Errorf("unavailable requests counted %v, want 2", n)
	}
}

// TestBatchRateBurst: a batch takes one token per item. A batch up to
// ingest.rate_burst passes on a full bucket; a larger one can never pass
// and is 413 too_large naming ingest.rate_burst, without Retry-After; a
// batch the bucket cannot pay yet is 429 with the Retry-After at which it
// can, and takes nothing.
func TestBatchRateBurst(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{cfg: func(c *config.Config) {
		c.Ingest.RateLimit = 1
		c.Ingest.RateBurst = 5
	}})
	batch := func(n int, key string) response {
		t.Helper()
		items := make([]map[string]any, n)
		for i := range items {
			items[i] = map[string]any{"user": "alice", "body": strconv.Itoa(i)}
		}
		return f.postJSON("/v1/messages", map[string]any{"messages": items}, "Authorization", "Bearer "+key)
	}

	// Over the burst, on a full bucket: never admitted.
	res := batch(6, otherKey)
	wantError(t, res, http.StatusRequestEntityTooLarge, herald.TooLarge)
	if !bytes.Contains(res.body, []byte("ingest.rate_burst")) || res.header.Get("Retry-After") != "" {
		t.Errorf("batch over the burst: %v, Retry-After %q; want a message naming ingest.rate_burst and no Retry-After",
			res, res.header.Get("Retry-After"))
	}
	// Exactly the burst, on a full bucket: admitted.
	if res := batch(5, otherKey); res.status != http.StatusOK {
		t.Fatalf("batch of the burst on a full bucket: %v", res)
	}
	// The bucket is empty now: 4 messages need 4 s at 1/s.
	res = batch(4, otherKey)
	wantError(t, res, http.StatusTooManyRequests, herald.RateLimited)
	if ra, err := strconv.Atoi(res.header.Get("Retry-After")); err != nil || ra < 3 || ra > 4 {
		t.Errorf("Retry-After = %q for 4 messages at 1/s from an empty bucket, want 3 or 4", res.header.Get("Retry-After"))
	}
	// The refused batch took nothing: one message needs at most 1 s.
	res = f.postJSON(userPath("alice"), map[string]any{"body": "one"}, "Authorization", "Bearer "+otherKey)
	wantError(t, res, http.StatusTooManyRequests, herald.RateLimited)
	if ra := res.header.Get("Retry-After"); ra != "1" {
		t.Errorf("Retry-After = %q for one message, want 1", ra)
	}
	if msgs, _ := f.state(); msgs != 5 {
		t.Errorf("stream holds %d messages, want 5", msgs)
	}
}

// TestDataDepthLimit: data nested deeper than 32 levels is 400
// invalid_message, for a single publish and a batch item alike, and
// nothing of it is stored; at 32 levels it is stored and history parses.
func TestDataDepthLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	nested := func(levels int) string { // data itself is the first level
		return strings.Repeat(`{"a":`, levels) + `1` + strings.Repeat(`}`, levels)
	}
	res := f.postJSON(userPath("alice"), `{"body":"deep","data":{"a":`+strings.Repeat(`[`, 8999)+strings.Repeat(`]`, 8999)+`}}`)
	wantError(t, res, http.StatusBadRequest, herald.InvalidMessage)
	res = f.postJSON(userPath("alice"), `{"body":"deep","data":`+nested(33)+`}`)
	wantError(t, res, http.StatusBadRequest, herald.InvalidMessage)
	if !bytes.Contains(res.body, []byte("32")) {
		t.Errorf("error %s does not name the limit", res.body)
	}
	ok := f.publish("alice", `{"body":"at the limit","data":`+nested(32)+`}`, http.StatusCreated)

	res = f.postJSON("/v1/messages", `{"messages":[{"user":"alice","data":`+nested(33)+`},{"user":"alice","body":"flat"}]}`)
	var b batchResp
	decode(t, res.body, &b)
	if res.status != http.StatusOK || len(b.Results) != 2 {
		t.Fatalf("batch: %v", res)
	}
	if e := b.Results[0].Error; e == nil || e.Code != herald.InvalidMessage {
		t.Errorf("deep item = %+v, want invalid_message", b.Results[0])
	}
	if b.Results[1].Error != nil || b.Results[1].Seq != ok.Seq+1 {
		t.Errorf("flat item = %+v", b.Results[1])
	}
	h := f.history("alice", "")
	if len(h.Messages) != 2 || !json.Valid(h.Messages[0].Data) {
		t.Errorf("history = %+v", h.Messages)
	}
}
