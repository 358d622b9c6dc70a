package ingest_test

import (
	"net/http"
	"testing"
)

// TestIdempotencyScopedByUser: an id is an idempotency key per user. The
// same id sent for two users stores two messages (201 each, different
// seqs), so one producer can neither block nor probe another user's id;
// a retry for the same user is still 200 with the first seq and
// "duplicate":true, through the single and the batch endpoint alike.
func TestIdempotencyScopedByUser(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})

	alice := f.publish("alice", map[string]any{"body": "for alice"}, http.StatusCreated, "Idempotency-Key", "order-1")
	bob := f.publish("bob", map[string]any{"body": "for bob"}, http.StatusCreated, "Idempotency-Key", "order-1")
	if bob.Seq == alice.Seq || bob.ID != "order-1" || bob.Duplicate {
		t.Fatalf("bob with alice's id = %+v, alice = %+v; want a new message with id order-1", bob, alice)
	}
	for _, tc := range []struct {
		user string
		want publishedResp
	}{{"alice", alice}, {"bob", bob}} {
		again := f.publish(tc.user, map[string]any{"id": "order-1", "body": "retry"}, http.StatusOK)
		if !again.Duplicate || again.Seq != tc.want.Seq || again.ID != "order-1" || again.User != tc.user {
			t.Errorf("%s's retry = %+v, want duplicate of seq %d", tc.user, again, tc.want.Seq)
		}
	}
	// The envelopes keep the id as given; storedEnvelope checks that the
	// Nats-Msg-Id is streams.MsgID of each user.
	for _, p := range []publishedResp{alice, bob} {
		if e := f.storedEnvelope(p.Seq, p.User); e.ID != "order-1" {
			t.Errorf("seq %d stored id %q, want order-1", p.Seq, e.ID)
		}
	}

	// In a batch: carol's new id is stored, alice's retry is a duplicate.
	res := f.postJSON("/v1/messages", `{"messages":[
		{"user":"carol","body":"c","id":"order-1"},
		{"user":"alice","body":"a","id":"order-1"}
	]}`)
	if res.status != http.StatusOK {
		t.Fatalf("batch: %v", res)
	}
	var b batchResp
	decode(t, res.body, &b)
	if len(b.Results) != 2 {
		t.Fatalf("batch results: %s", res.body)
	}
	if r := b.Results[0]; r.Error != nil || r.Duplicate || r.Seq <= bob.Seq || r.ID != "order-1" {
		t.Errorf("carol's item = %+v, want a new seq", r)
	}
	if r := b.Results[1]; r.Error != nil || !r.Duplicate || r.Seq != alice.Seq {
		t.Errorf("alice's item = %+v, want duplicate of seq %d", r, alice.Seq)
	}
	if msgs, _ := f.state(); msgs != 3 {
		t.Errorf("stream holds %d messages, want 3", msgs)
	}
}
