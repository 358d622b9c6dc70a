package ingest_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/streams"
)

// TestHistoryForgedHeaders: messages published straight to NATS with their
// own Nats-Sequence, Nats-Time-Stamp, Nats-Subject, Nats-Num-Pending and
// Status headers (and an empty payload) are read under their real seq, and
// do not end a page early or hide the messages after them.
func TestHistoryForgedHeaders(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	subj := streams.Subjects{}.User("alice")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	first := f.publish("alice", map[string]any{"body": "before"}, http.StatusCreated)
	forged := []nats.Header{
		{"Nats-Sequence": {"999"}, "Nats-Time-Stamp": {"not a time"}, "Nats-Subject": {"herald.user.bob"}},
		{"Nats-Num-Pending": {"0"}},
		{"Status": {"404"}, "Description": {"no message found"}},
	}
	var seqs []uint64
	for i, h := range forged {
		data := []byte(fmt.Sprintf("forged %d", i))
		if i == len(forged)-1 {
			data = nil // an empty payload with a Status header looks like a status reply
		}
		ack, err := f.js.PublishMsg(ctx, &nats.Msg{Subject: subj, Header: h, Data: data})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, ack.Sequence)
	}
	last := f.publish("alice", map[string]any{"body": "after"}, http.StatusCreated)

	h := f.history("alice", "?since=0&limit=100")
	want := append([]uint64{first.Seq}, seqs...)
	want = append(want, last.Seq)
	if len(h.Messages) != len(want) {
		t.Fatalf("history has %d messages, want %d: %+v", len(h.Messages), len(want), h.Messages)
	}
	for i, m := range h.Messages {
		if m.Seq != want[i] {
			t.Errorf("message %d has seq %d, want %d", i, m.Seq, want[i])
		}
	}
	if h.Messages[1].Body != "forged 0" || h.Messages[1].Time.IsZero() {
		t.Errorf("forged message = %+v", h.Messages[1])
	}
	if *h.Next != last.Seq {
		t.Errorf("next = %d, want %d", *h.Next, last.Seq)
	}
	// A page starting at the forged message reads it under its own seq.
	h = f.history("alice", "?since="+strconv.FormatUint(first.Seq, 10)+"&limit=1")
	if len(h.Messages) != 1 || h.Messages[0].Seq != seqs[0] {
		t.Errorf("page after %d = %+v, want seq %d", first.Seq, h.Messages, seqs[0])
	}
}

// TestProducerRateLimit: each producer key has its own token bucket; over
// it a request gets 429 rate_limited with Retry-After, nothing is stored,
// and the other key is unaffected.
func TestProducerRateLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{cfg: func(c *config.Config) {
		c.Ingest.RateLimit = 1
		c.Ingest.RateBurst = 3
	}})
	for i := range 3 {
		f.publish("alice", map[string]any{"body": fmt.Sprint(i)}, http.StatusCreated)
	}
	before, _ := f.state()
	res := f.postJSON(userPath("alice"), map[string]any{"body": "over"})
	wantError(t, res, http.StatusTooManyRequests, herald.RateLimited)
	if ra, err := strconv.Atoi(res.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After = %q", res.header.Get("Retry-After"))
	}
	// A batch costs one token per message: a batch of 3 on a fresh key
	// empties its bucket.
	res = f.postJSON("/v1/messages", map[string]any{"messages": []map[string]any{
		{"user": "bob", "body": "1"}, {"user": "bob", "body": "2"}, {"user": "bob", "body": "3"},
	}}, "Authorization", "Bearer "+otherKey)
	if res.status != http.StatusOK {
		t.Fatalf("batch on the other key: %v", res)
	}
	res = f.postJSON("/v1/messages", map[string]any{"messages": []map[string]any{{"user": "bob", "body": "4"}}}, "Authorization", "Bearer "+otherKey)
	wantError(t, res, http.StatusTooManyRequests, herald.RateLimited)
	after, _ := f.state()
	if after != before+3 {
		t.Errorf("stream holds %d messages, want %d (nothing stored for a 429)", after, before+3)
	}
	if n := f.counter("herald_ingest_requests_total", "code", "rate_limited"); n != 2 {
		t.Errorf("rate_limited requests counted %v, want 2", n)
	}
}
