package ingest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/config"
)

func TestBatch(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	res := f.postJSON("/v1/messages", `{"messages":[
		{"user":"alice","body":"one"},
		{"user":"bob","title":"two","priority":9},
		{"user":"carol","body":"three","priority":99},
		{"user":"alice","body":"four","id":"k-4","tags":["t"]},
		{"user":"dave","data":{"n":5}}
	]}`)
	if res.status != http.StatusOK {
		t.Fatalf("batch: %v", res)
	}
	var b batchResp
	decode(t, res.body, &b)
	if len(b.Results) != 5 {
		t.Fatalf("%d results, want 5: %s", len(b.Results), res.body)
	}
	if e := b.Results[2].Error; e == nil || e.Code != herald.InvalidMessage || b.Results[2].Seq != 0 || b.Results[2].ID != "" {
		t.Errorf("result 2 = %+v, want only an invalid_message error", b.Results[2])
	}
	want := []struct {
		user, body, title string
	}{{"alice", "one", ""}, {"bob", "", "two"}, {}, {"alice", "four", ""}, {"dave", "", ""}}
	var last uint64
	for i, r := range b.Results {
		if i == 2 {
			continue
		}
		if r.Error != nil || r.Seq <= last || r.ID == "" || r.Duplicate {
			t.Errorf("result %d = %+v (previous seq %d)", i, r, last)
			continue
		}
		last = r.Seq
		e := f.storedEnvelope(r.Seq, want[i].user)
		if e.ID != r.ID || e.User != want[i].user || e.Body != want[i].body || e.Title != want[i].title {
			t.Errorf("result %d stored %+v, want %+v", i, e, want[i])
		}
	}
	if b.Results[3].ID != "k-4" {
		t.Errorf("result 3 id = %q, want k-4", b.Results[3].ID)
	}
	if e := f.storedEnvelope(b.Results[1].Seq, "bob"); e.PriorityOrDefault() != 9 {
		t.Errorf("priority = %d", e.PriorityOrDefault())
	}
	if msgs, lastSeq := f.state(); msgs != 4 || lastSeq != 4 {
		t.Errorf("stream holds %d messages, last %d; want 4, 4", msgs, lastSeq)
	}
	if got := f.counter("herald_ingest_messages_total"); got != 4 {
		t.Errorf("messages_total = %v, want 4", got)
	}
}

func TestBatchItems(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	res := f.postJSON("/v1/messages", `{"messages":[
		{"user":"alice","body":"a","id":"same"},
		{"body":"no user"},
		{"user":"a\u0000b","body":"control"},
		"not an object",
		{"user":"alice","body":"again","id":"same"},
		{"user":"bob","body":"other user, same id","id":"same"},
		{"user":"alice","body":"`+repeat("x", 64<<10)+`"},
		{"user":"alice","priority":"high","body":"x"},
		{"user":"alice","body":"last"}
	]}`)
	if res.status != http.StatusOK {
		t.Fatalf("batch: %v", res)
	}
	var b batchResp
	decode(t, res.body, &b)
	wantCodes := []herald.Code{"", herald.InvalidUser, herald.InvalidUser, herald.InvalidMessage, "",
		"", herald.TooLarge, herald.InvalidMessage, ""}
	if len(b.Results) != len(wantCodes) {
		t.Fatalf("%d results: %s", len(b.Results), res.body)
	}
	for i, code := range wantCodes {
		r := b.Results[i]
		switch {
		case code == "" && r.Error != nil:
			t.Errorf("result %d: unexpected error %+v", i, r.Error)
		case code != "" && (r.Error == nil || r.Error.Code != code || r.Error.Message == ""):
			t.Errorf("result %d = %+v, want error %s", i, r, code)
		}
	}
	if r := b.Results[4]; !r.Duplicate || r.Seq != b.Results[0].Seq || r.ID != "same" {
		t.Errorf("in-batch duplicate = %+v, want seq %d", r, b.Results[0].Seq)
	}
	// Ids are per user: bob's "same" is a message of its own.
	if r := b.Results[5]; r.Duplicate || r.Seq != 2 || r.ID != "same" {
		t.Errorf("other user's item with the same id = %+v, want seq 2", r)
	}
	if b.Results[8].Seq != 3 {
		t.Errorf("last item seq = %d, want 3", b.Results[8].Seq)
	}
	if msgs, _ := f.state(); msgs != 3 {
		t.Errorf("stream holds %d messages, want 3", msgs)
	}
}

func TestBatchRejected(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{cfg: func(c *config.Config) { c.Ingest.MaxBatch = 10 }})
	items := func(n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = fmt.Sprintf(`{"user":"u%d","body":"b"}`, i)
		}
		return `{"messages":[` + strings.Join(parts, ",") + `]}`
	}
	cases := []struct {
		name   string
		body   string
		hdr    []string
		status int
		code   herald.Code
	}{
		{"no auth", items(1), []string{"Authorization", ""}, 401, herald.Unauthorized},
		{"wrong key", items(1), []string{"Authorization", "Bearer wrong-key-0123456789"}, 401, herald.Unauthorized},
		{"too many", items(11), nil, 413, herald.TooLarge},
		{"bad json", `{"messages":[{"user":"a","body":"b"}`, nil, 400, herald.InvalidJSON},
		{"empty body", ``, nil, 400, herald.InvalidJSON},
		{"no messages", `{}`, nil, 400, herald.InvalidRequest},
		{"null messages", `{"messages":null}`, nil, 400, herald.InvalidRequest},
		{"messages not array", `{"messages":{"user":"a"}}`, nil, 400, herald.InvalidMessage},
		{"not an object", `[{"user":"a","body":"b"}]`, nil, 400, herald.InvalidMessage},
		{"messages twice", `{"messages":[],"messages":[{"user":"a","body":"b"}]}`, nil, 400, herald.InvalidRequest},
		{"cut off item", `{"messages":[{"user":"a","body":"b"},{"user"`, nil, 400, herald.InvalidJSON},
		{"bad item syntax", `{"messages":[{"user":"a","body":"b"},,]}`, nil, 400, herald.InvalidJSON},
		{"data after the object", `{"messages":[{"user":"a","body":"b"}]} {}`, nil, 400, herald.InvalidJSON},
		{"idempotency key", items(1), []string{"Idempotency-Key", "k"}, 400, herald.InvalidRequest},
		{"text", items(1), []string{"Content-Type", "text/plain"}, 415, herald.UnsupportedMediaType},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := f.postJSON("/v1/messages", tc.body, tc.hdr...)
			wantError(t, res, tc.status, tc.code)
		})
	}
	if msgs, last := f.state(); msgs != 0 || last != 0 {
		t.Errorf("rejected batches stored %d messages, last seq %d", msgs, last)
	}

	// Exactly the limit, and an empty batch, are fine.
	var b batchResp
	res := f.postJSON("/v1/messages", items(10))
	decode(t, res.body, &b)
	if res.status != http.StatusOK || len(b.Results) != 10 || b.Results[9].Seq != 10 {
		t.Errorf("batch of 10: %v", res)
	}
	res = f.postJSON("/v1/messages", `{"messages":[]}`)
	if res.status != http.StatusOK || string(res.body) != "{\"results\":[]}\n" {
		t.Errorf("empty batch: %v", res)
	}
	// Other top-level fields are skipped, before and after the messages.
	res = f.postJSON("/v1/messages", `{"meta":{"a":[1,{"b":"]}"}]},"messages":[{"user":"u","body":"b"}],"n":1}`)
	decode(t, res.body, &b)
	if res.status != http.StatusOK || len(b.Results) != 1 || b.Results[0].Seq != 11 {
		t.Errorf("batch with other fields: %v", res)
	}

	// A body without Content-Length is cut off at http.max_body_bytes
	// while it is decoded.
	over := io.MultiReader(strings.NewReader(`{"messages":[`), bytes.NewReader(bytes.Repeat([]byte(" "), int(f.cfg.HTTP.MaxBodyBytes))), strings.NewReader(`]}`))
	req := httptest.NewRequest(http.MethodPost, "/v1/messages", over)
	req.Header.Set("Authorization", "Bearer "+producerKey)
	rec := httptest.NewRecorder()
	f.mux().ServeHTTP(rec, req)
	wantError(t, response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}, http.StatusRequestEntityTooLarge, herald.TooLarge)
}

// TestBatch1000 publishes a full default batch through the async window.
func TestBatch1000(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	const n = 1000
	var sb strings.Builder
	sb.WriteString(`{"messages":[`)
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		if i%2 == 0 {
			fmt.Fprintf(&sb, `{"user":"user-%d","body":"message %d","id":"m-%d"}`, i%7, i, i)
		} else {
			fmt.Fprintf(&sb, `{"user":"user-%d","body":"message %d"}`, i%7, i)
		}
	}
	sb.WriteString(`]}`)
	res := f.postJSON("/v1/messages", sb.String())
	if res.status != http.StatusOK {
		t.Fatalf("batch: %v", res)
	}
	var b batchResp
	decode(t, res.body, &b)
	if len(b.Results) != n {
		t.Fatalf("%d results", len(b.Results))
	}
	ids := make(map[string]bool, n)
	for i, r := range b.Results {
		if r.Error != nil || r.Seq != uint64(i+1) || ids[r.ID] {
			t.Fatalf("result %d = %+v", i, r)
		}
		ids[r.ID] = true
	}
	if msgs, last := f.state(); msgs != n || last != n {
		t.Errorf("stream holds %d messages, last %d", msgs, last)
	}
	for _, i := range []int{0, 499, 999} {
		e := f.storedEnvelope(uint64(i+1), fmt.Sprintf("user-%d", i%7))
		if e.Body != fmt.Sprintf("message %d", i) {
			t.Errorf("seq %d body %q", i+1, e.Body)
		}
	}
	if got := f.counter("herald_ingest_messages_total"); got != n {
		t.Errorf("messages_total = %v", got)
	}

	// Sent again: the items with an id are duplicates with their first seq,
	// the others are stored anew, in order after the first batch.
	res = f.postJSON("/v1/messages", sb.String())
	var again batchResp
	decode(t, res.body, &again)
	if res.status != http.StatusOK || len(again.Results) != n {
		t.Fatalf("second batch: %d, %d results", res.status, len(again.Results))
	}
	next := uint64(n)
	for i, r := range again.Results {
		if r.Error != nil {
			t.Fatalf("second batch result %d: %+v", i, r)
		}
		if i%2 == 0 {
			if !r.Duplicate || r.Seq != uint64(i+1) || r.ID != fmt.Sprintf("m-%d", i) {
				t.Fatalf("second batch result %d = %+v, want duplicate of seq %d", i, r, i+1)
			}
			continue
		}
		if r.Duplicate || r.Seq != next+1 {
			t.Fatalf("second batch result %d = %+v, want seq %d", i, r, next+1)
		}
		next = r.Seq
	}
	if msgs, _ := f.state(); msgs != n+n/2 {
		t.Errorf("stream holds %d messages, want %d", msgs, n+n/2)
	}
}

// TestBatchSmallAsyncWindow: a batch larger than the async publish window
// waits for free slots instead of failing.
func TestBatchSmallAsyncWindow(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{jsOpts: []jetstream.JetStreamOpt{
		jetstream.WithPublishAsyncMaxPending(16),
		jetstream.WithPublishAsyncTimeout(5 * time.Second),
	}})
	const n = 300
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`{"user":"u","body":"%d"}`, i)
	}
	res := f.postJSON("/v1/messages", `{"messages":[`+strings.Join(parts, ",")+`]}`)
	var b batchResp
	decode(t, res.body, &b)
	if res.status != http.StatusOK || len(b.Results) != n {
		t.Fatalf("batch: %d, %d results", res.status, len(b.Results))
	}
	for i, r := range b.Results {
		if r.Error != nil || r.Seq != uint64(i+1) {
			t.Fatalf("result %d = %+v", i, r)
		}
	}
	if msgs, _ := f.state(); msgs != n {
		t.Errorf("stream holds %d messages", msgs)
	}
}

// TestConcurrentProducers: single publishes and batches from many
// goroutines at once; every message is stored once, in per-producer order.
func TestConcurrentProducers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	const (
		singles    = 6
		perSingle  = 40
		batches    = 3
		batchItems = 400
	)
	var wg sync.WaitGroup
	errs := make(chan error, singles+batches)
	for w := range singles {
		wg.Go(func() {
			user := fmt.Sprintf("single-%d", w)
			for i := range perSingle {
				b, _ := json.Marshal(map[string]string{"body": strconv.Itoa(i)})
				req, _ := http.NewRequest(http.MethodPost, f.url+userPath(user), bytes.NewReader(b))
				req.Header.Set("Authorization", "Bearer "+producerKey)
				res, err := f.client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusCreated {
					errs <- fmt.Errorf("%s message %d: status %d", user, i, res.StatusCode)
					return
				}
			}
		})
	}
	for w := range batches {
		wg.Go(func() {
			user := fmt.Sprintf("batch-%d", w)
			parts := make([]string, batchItems)
			for i := range parts {
				parts[i] = fmt.Sprintf(`{"user":%q,"body":"%d"}`, user, i)
			}
			req, _ := http.NewRequest(http.MethodPost, f.url+"/v1/messages", strings.NewReader(`{"messages":[`+strings.Join(parts, ",")+`]}`))
			req.Header.Set("Authorization", "Bearer "+producerKey)
			res, err := f.client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer res.Body.Close()
			var b batchResp
			if err := json.NewDecoder(res.Body).Decode(&b); err != nil || len(b.Results) != batchItems {
				errs <- fmt.Errorf("%s: %v, %d results", user, err, len(b.Results))
				return
			}
			for i, r := range b.Results {
				if r.Error != nil || (i > 0 && r.Seq <= b.Results[i-1].Seq) {
					errs <- fmt.Errorf("%s result %d: %+v", user, i, r)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if msgs, _ := f.state(); msgs != singles*perSingle+batches*batchItems {
		t.Errorf("stream holds %d messages, want %d", msgs, singles*perSingle+batches*batchItems)
	}
	check := func(user string, n int) {
		h := f.history(user, "?limit=1000")
		if len(h.Messages) != n {
			t.Errorf("%s: %d messages, want %d", user, len(h.Messages), n)
			return
		}
		for i, e := range h.Messages {
			if e.Body != strconv.Itoa(i) {
				t.Errorf("%s message %d has body %q", user, i, e.Body)
				return
			}
		}
	}
	for w := range singles {
		check(fmt.Sprintf("single-%d", w), perSingle)
	}
	for w := range batches {
		check(fmt.Sprintf("batch-%d", w), batchItems)
	}
}
