package ingest_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/streams"
)

// TestLifecycleBadInput: every lifecycle field out of its bounds is a clean
// 400 invalid_message, on the single and the batch endpoint, and nothing is
// stored.
func TestLifecycleBadInput(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{cfg: func(c *config.Config) { c.Stream.MaxAge = time.Hour }})
	past := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	later := time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339)
	for _, tc := range []struct {
		name string
		msg  string
		hdr  []string
	}{
		{"ttl under 1s", `{"body":"b","ttl":0.5}`, nil},
		{"ttl zero", `{"body":"b","ttl":"0s"}`, nil},
		{"ttl over max age", `{"body":"b","ttl":"2h"}`, nil},
		{"ttl not a duration", `{"body":"b","ttl":"soon"}`, nil},
		{"ttl of the wrong type", `{"body":"b","ttl":true}`, nil},
		{"ttl header", `{"body":"b"}`, []string{herald.HeaderTTL, "2h"}},
		{"deliver_at in the past", `{"body":"b","deliver_at":"` + past + `"}`, nil},
		{"deliver_at beyond max age", `{"body":"b","deliver_at":"` + later + `"}`, nil},
		{"deliver_at not RFC 3339", `{"body":"b","deliver_at":"tomorrow"}`, nil},
		{"delay beyond max age", `{"body":"b","delay":"2h"}`, nil},
		{"delay negative", `{"body":"b","delay":-5}`, nil},
		{"delay and deliver_at", `{"body":"b","delay":"1m","deliver_at":"` + later + `"}`, nil},
		{"deliver-at header in the past", `{"body":"b"}`, []string{herald.HeaderDeliverAt, past}},
		{"op without ref", `{"body":"b","op":"update"}`, nil},
		{"ref without op", `{"body":"b","ref":"m-1"}`, nil},
		{"unknown op", `{"body":"b","ref":"m-1","op":"patch"}`, nil},
	} {
		res := f.postJSON(userPath("alice"), tc.msg, tc.hdr...)
		if res.status != http.StatusBadRequest {
			t.Errorf("%s: %v, want 400", tc.name, res)
			continue
		}
		wantError(t, res, http.StatusBadRequest, herald.InvalidMessage)

		item := strings.Replace(tc.msg, "{", `{"user":"alice",`, 1)
		// The headers apply to each item of a batch.
		res = f.postJSON("/v1/messages", `{"messages":[`+item+`]}`, tc.hdr...)
		var b batchResp
		decode(t, res.body, &b)
		if res.status != http.StatusOK || len(b.Results) != 1 || b.Results[0].Error == nil || b.Results[0].Error.Code != herald.InvalidMessage {
			t.Errorf("%s in a batch: %v", tc.name, res)
		}
	}
	if msgs, _ := f.state(); msgs != 0 {
		t.Errorf("%d messages stored", msgs)
	}
	// A header that does not parse fails the whole batch.
	res := f.postJSON("/v1/messages", `{"messages":[{"user":"alice","body":"b"}]}`, herald.HeaderTTL, "soon")
	wantError(t, res, http.StatusBadRequest, herald.InvalidMessage)
}

// TestLifecycleTTL: a ttl (field or header) is the stored message's
// Nats-TTL in whole seconds, and its expires.
func TestLifecycleTTL(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	p := f.publish("alice", `{"body":"b","ttl":"90s"}`, http.StatusCreated)
	e := f.storedEnvelope(p.Seq, "alice")
	if got := f.stored(p.Seq).Header.Get(streams.HeaderTTL); got != "90" {
		t.Errorf("Nats-TTL %q, want 90", got)
	}
	if e.Expires == nil || !e.Expires.Equal(e.Time.Add(90*time.Second)) {
		t.Errorf("expires %v, time %v", e.Expires, e.Time)
	}
	p = f.publish("alice", `{"body":"b","ttl":1.2}`, http.StatusCreated, herald.HeaderTTL, "1h")
	if got := f.stored(p.Seq).Header.Get(streams.HeaderTTL); got != "2" {
		t.Errorf("Nats-TTL of ttl 1.2 (the field wins over the header) = %q, want 2", got)
	}
	p = f.publish("alice", `{"body":"b"}`, http.StatusCreated, herald.HeaderTTL, "7d")
	if got := f.stored(p.Seq).Header.Get(streams.HeaderTTL); got != strconv.Itoa(7*24*3600) {
		t.Errorf("Nats-TTL of the header 7d = %q", got)
	}
}

type scheduledResp struct {
	ID        string    `json:"id"`
	DeliverAt time.Time `json:"deliver_at"`
	Duplicate bool      `json:"duplicate"`
	Seq       *uint64   `json:"seq"`
}

// TestLifecycleSchedule: a delayed message is 202 with its id and
// deliver_at and is stored on the user's subject when due; a cancelled one
// never is, and a second cancel is 404.
func TestLifecycleSchedule(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	res := f.postJSON(userPath("alice"), `{"id":"later","body":"b","delay":"1s","ttl":60}`)
	if res.status != http.StatusAccepted {
		t.Fatalf("scheduled publish: %v", res)
	}
	var s scheduledResp
	decode(t, res.body, &s)
	if s.ID != "later" || s.Seq != nil || s.DeliverAt.Before(time.Now()) || s.DeliverAt.After(time.Now().Add(2*time.Second)) {
		t.Errorf("answer %s", res.body)
	}
	at := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	res = f.postJSON(userPath("alice"), `{"id":"never","body":"b"}`, herald.HeaderDeliverAt, at)
	if res.status != http.StatusAccepted {
		t.Fatalf("scheduled publish by header: %v", res)
	}
	res = f.postJSON(userPath("alice"), `{"id":"never","body":"b"}`, herald.HeaderDeliverAt, at)
	var retry scheduledResp
	decode(t, res.body, &retry)
	if res.status != http.StatusAccepted || !retry.Duplicate {
		t.Errorf("a retry of the schedule: %v", res)
	}
	if res := f.do(http.MethodDelete, "/v1/users/alice/scheduled/never", nil); res.status != http.StatusNoContent {
		t.Errorf("cancel: %v", res)
	}
	wantError(t, f.do(http.MethodDelete, "/v1/users/alice/scheduled/never", nil), http.StatusNotFound, herald.NotFound)
	wantError(t, f.do(http.MethodDelete, "/v1/users/bob/scheduled/later", nil), http.StatusNotFound, herald.NotFound)
	wantError(t, f.do(http.MethodDelete, "/v1/users/alice/scheduled/later", nil, "Authorization", ""), http.StatusUnauthorized, herald.Unauthorized)

	var e streams.Envelope
	waitFor(t, "the scheduled message is stored", func() bool {
		h := f.history("alice", "")
		if len(h.Messages) == 0 {
			return false
		}
		e = h.Messages[0]
		return true
	})
	if e.ID != "later" || !e.Time.Equal(s.DeliverAt) || e.Expires == nil || !e.Expires.Equal(s.DeliverAt.Add(time.Minute)) {
		t.Errorf("stored %+v", e)
	}
	if got := f.stored(e.Seq).Header.Get(streams.HeaderTTL); got != "60" {
		t.Errorf("the stored copy has Nats-TTL %q, want 60", got)
	}
	// Once it fired, there is nothing left to cancel.
	wantError(t, f.do(http.MethodDelete, "/v1/users/alice/scheduled/later", nil), http.StatusNotFound, herald.NotFound)

	// A batch answers deliver_at for a scheduled item, a seq for the others.
	res = f.postJSON("/v1/messages", `{"messages":[{"user":"bob","body":"now"},{"user":"bob","body":"later","delay":"1h"}]}`)
	var b struct {
		Results []struct {
			ID        string     `json:"id"`
			Seq       uint64     `json:"seq"`
			DeliverAt *time.Time `json:"deliver_at"`
		} `json:"results"`
	}
	decode(t, res.body, &b)
	if len(b.Results) != 2 || b.Results[0].Seq == 0 || b.Results[0].DeliverAt != nil || b.Results[1].Seq != 0 || b.Results[1].DeliverAt == nil {
		t.Errorf("batch: %v", res)
	}
	if res := f.do(http.MethodDelete, "/v1/users/bob/scheduled/"+b.Results[1].ID, nil); res.status != http.StatusNoContent {
		t.Errorf("cancel of a batch item: %v", res)
	}
}

// TestLifecycleUpdateDelete: PUT and DELETE on a message id publish new
// messages with ref and op, in order.
func TestLifecycleUpdateDelete(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	first := f.publish("alice", `{"id":"m-1","body":"v1"}`, http.StatusCreated)
	res := f.do(http.MethodPut, userPath("alice")+"/m-1", strings.NewReader(`{"body":"v2"}`), "Content-Type", "application/json")
	if res.status != http.StatusCreated {
		t.Fatalf("PUT: %v", res)
	}
	var up publishedResp
	decode(t, res.body, &up)
	res = f.do(http.MethodDelete, userPath("alice")+"/m-1", nil)
	if res.status != http.StatusCreated {
		t.Fatalf("DELETE: %v", res)
	}
	var del publishedResp
	decode(t, res.body, &del)
	if !(first.Seq < up.Seq && up.Seq < del.Seq) {
		t.Errorf("seqs %d %d %d", first.Seq, up.Seq, del.Seq)
	}
	if e := f.storedEnvelope(up.Seq, "alice"); e.Ref != "m-1" || e.Op != herald.OpUpdate || e.Body != "v2" || e.ID == "m-1" {
		t.Errorf("update stored as %+v", e)
	}
	if e := f.storedEnvelope(del.Seq, "alice"); e.Ref != "m-1" || e.Op != herald.OpDelete {
		t.Errorf("delete stored as %+v", e)
	}
	// The same through POST.
	p := f.publish("alice", `{"ref":"m-1","op":"delete"}`, http.StatusCreated)
	if e := f.storedEnvelope(p.Seq, "alice"); e.Op != herald.OpDelete {
		t.Errorf("POST delete stored as %+v", e)
	}
	wantError(t, f.do(http.MethodPut, userPath("alice")+"/m-1", strings.NewReader(`{"body":"v3","ref":"m-2"}`)), http.StatusBadRequest, herald.InvalidMessage)
	wantError(t, f.do(http.MethodPut, userPath("alice")+"/m-1", strings.NewReader(`{"body":"v3","op":"delete"}`)), http.StatusBadRequest, herald.InvalidMessage)
	wantError(t, f.do(http.MethodPut, userPath("alice")+"/m-1", strings.NewReader(`{}`)), http.StatusBadRequest, herald.InvalidMessage)
	wantError(t, f.do(http.MethodDelete, userPath("alice")+"/"+strings.Repeat("x", 200), nil), http.StatusBadRequest, herald.InvalidMessage)
}

// TestLifecycleCancelUnavailable: a cancel that JetStream does not answer
// is 503, never 404.
func TestLifecycleCancelUnavailable(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{noStream: true})
	res := f.do(http.MethodDelete, "/v1/users/alice/scheduled/x", nil)
	wantError(t, res, http.StatusServiceUnavailable, herald.Unavailable)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := f.js.Stream(ctx, "HERALD"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("stream lookup: %v", err)
	}
}
