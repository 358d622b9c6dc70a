package ingest_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/edge/token"
	"github.com/herald-push/herald/streams"
)

func mint(t testing.TB, user string) string {
	t.Helper()
	tok, err := token.Mint(jwtSecret, user, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestHistoryPaging(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	// 25 messages for alice, interleaved with bob's.
	var aliceSeqs []uint64
	for i := range 25 {
		p := f.publish("alice", map[string]any{"body": fmt.Sprintf("a%02d", i), "priority": i % 11}, http.StatusCreated)
		aliceSeqs = append(aliceSeqs, p.Seq)
		if i%3 == 0 {
			f.publish("bob", map[string]any{"body": fmt.Sprintf("b%02d", i)}, http.StatusCreated)
		}
	}

	var got []streams.Envelope
	since := uint64(0)
	pages := 0
	for {
		h := f.history("alice", fmt.Sprintf("?since=%d&limit=10", since))
		if len(h.Messages) == 0 {
			if *h.Next != since {
				t.Errorf("empty page next = %d, want since %d", *h.Next, since)
			}
			break
		}
		pages++
		if len(h.Messages) > 10 {
			t.Fatalf("page of %d messages with limit 10", len(h.Messages))
		}
		if *h.Next != h.Messages[len(h.Messages)-1].Seq {
			t.Errorf("next = %d, want the last seq %d", *h.Next, h.Messages[len(h.Messages)-1].Seq)
		}
		got = append(got, h.Messages...)
		since = *h.Next
		if pages > 10 {
			t.Fatal("paging does not end")
		}
	}
	if pages != 3 || len(got) != 25 {
		t.Fatalf("%d pages, %d messages; want 3 pages of 25", pages, len(got))
	}
	for i, e := range got {
		if e.Seq != aliceSeqs[i] || e.Body != fmt.Sprintf("a%02d", i) || e.User != "alice" ||
			e.ID == "" || e.Time.IsZero() || e.PriorityOrDefault() != i%11 {
			t.Errorf("message %d = %+v, want seq %d", i, e, aliceSeqs[i])
		}
	}

	// Default limit returns everything here; since in the middle.
	if h := f.history("alice", ""); len(h.Messages) != 25 || *h.Next != aliceSeqs[24] {
		t.Errorf("default page: %d messages, next %d", len(h.Messages), *h.Next)
	}
	h := f.history("alice", fmt.Sprintf("?since=%d", aliceSeqs[19]))
	if len(h.Messages) != 5 || h.Messages[0].Seq != aliceSeqs[20] || h.Messages[0].Body != "a20" {
		t.Errorf("since %d: %+v", aliceSeqs[19], h.Messages)
	}
	// A since between two of alice's seqs starts at the next of hers.
	h = f.history("alice", fmt.Sprintf("?since=%d&limit=1", aliceSeqs[3]-1))
	if len(h.Messages) != 1 || h.Messages[0].Seq != aliceSeqs[3] {
		t.Errorf("since %d limit 1: %+v", aliceSeqs[3]-1, h.Messages)
	}
	bob := f.history("bob", "?limit=1000")
	if len(bob.Messages) != 9 || bob.Messages[0].Body != "b00" || bob.Messages[8].Body != "b24" {
		t.Errorf("bob: %+v", bob.Messages)
	}
	// Beyond the end, and at the largest since.
	for _, since := range []uint64{1000, 1<<64 - 1} {
		h := f.history("alice", fmt.Sprintf("?since=%d", since))
		if len(h.Messages) != 0 || *h.Next != since {
			t.Errorf("since %d: %d messages, next %d", since, len(h.Messages), *h.Next)
		}
	}
	// A user with no messages.
	if h := f.history("nobody", ""); len(h.Messages) != 0 || *h.Next != 0 {
		t.Errorf("nobody: %+v", h)
	}
	if !strings.Contains(string(f.do(http.MethodGet, userPath("nobody"), nil).body), `"messages":[]`) {
		t.Error("an empty page must have messages: []")
	}
}

func TestHistoryRejected(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	f.publish("alice", map[string]any{"body": "x"}, http.StatusCreated)
	expired, err := token.Mint(jwtSecret, "alice", "", -time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		path   string
		hdr    []string
		status int
		code   herald.Code
	}{
		{"no auth", userPath("alice"), []string{"Authorization", ""}, 401, herald.Unauthorized},
		{"wrong key", userPath("alice"), []string{"Authorization", "Bearer wrong-key-0123456789"}, 401, herald.Unauthorized},
		{"bad token", userPath("alice"), []string{"Authorization", "Bearer a.b.c"}, 401, herald.Unauthorized},
		{"expired token", userPath("alice"), []string{"Authorization", "Bearer " + expired}, 401, herald.Unauthorized},
		{"other user's token", userPath("alice"), []string{"Authorization", "Bearer " + mint(t, "bob")}, 403, herald.Forbidden},
		{"other user's query token", userPath("alice") + "?token=" + mint(t, "bob"), []string{"Authorization", ""}, 403, herald.Forbidden},
		{"invalid user", "/v1/users/a%01/messages", nil, 400, herald.InvalidUser},
		{"limit 0", userPath("alice") + "?limit=0", nil, 400, herald.InvalidRequest},
		{"limit 1001", userPath("alice") + "?limit=1001", nil, 400, herald.InvalidRequest},
		{"limit text", userPath("alice") + "?limit=ten", nil, 400, herald.InvalidRequest},
		{"limit empty", userPath("alice") + "?limit=", nil, 400, herald.InvalidRequest},
		{"since negative", userPath("alice") + "?since=-1", nil, 400, herald.InvalidRequest},
		{"since text", userPath("alice") + "?since=abc", nil, 400, herald.InvalidRequest},
		{"since overflow", userPath("alice") + "?since=18446744073709551616", nil, 400, herald.InvalidRequest},
		{"since float", userPath("alice") + "?since=1.5", nil, 400, herald.InvalidRequest},
		{"bad query", userPath("alice") + "?since=%zz", nil, 400, herald.InvalidRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, f.do(http.MethodGet, tc.path, nil, tc.hdr...), tc.status, tc.code)
		})
	}
}

func TestHistoryClientToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	f.publish("alice", map[string]any{"body": "for alice"}, http.StatusCreated)
	f.publish("bob", map[string]any{"body": "for bob"}, http.StatusCreated)

	tok := mint(t, "alice")
	h := f.history("alice", "", "Authorization", "Bearer "+tok)
	if len(h.Messages) != 1 || h.Messages[0].Body != "for alice" || h.Messages[0].Seq != 1 {
		t.Errorf("with a header token: %+v", h.Messages)
	}
	h = f.history("alice", "?token="+tok, "Authorization", "")
	if len(h.Messages) != 1 || h.Messages[0].Body != "for alice" {
		t.Errorf("with a query token: %+v", h.Messages)
	}
	// The other producer key reads everyone.
	h = f.history("bob", "", "Authorization", "Bearer "+otherKey)
	if len(h.Messages) != 1 || h.Messages[0].Body != "for bob" || h.Messages[0].Seq != 2 {
		t.Errorf("with the second producer key: %+v", h.Messages)
	}

	// Without a verifier, tokens are unknown credentials.
	g := newFixture(t, fixtureOpts{noTokens: true})
	wantError(t, g.do(http.MethodGet, userPath("alice"), nil, "Authorization", "Bearer "+tok), 401, herald.Unauthorized)
}

// TestHistoryRawPayload: a payload published straight to NATS that is not an
// envelope is shown as body text with its stored time.
func TestHistoryRawPayload(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	subj := streams.Subjects{}.User("alice")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := f.js.Publish(ctx, subj, []byte("raw \xff payload"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.js.Publish(ctx, subj, []byte(`{"user":"alice","body":"hand-made envelope","priority":2}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.js.Publish(ctx, subj, nil); err != nil {
		t.Fatal(err)
	}
	f.publish("alice", map[string]any{"body": "via http"}, http.StatusCreated)

	res := f.do(http.MethodGet, userPath("alice"), nil)
	h := f.history("alice", "")
	if len(h.Messages) != 4 {
		t.Fatalf("%d messages: %s", len(h.Messages), res.body)
	}
	raw := h.Messages[0]
	stored := f.stored(ack.Sequence)
	if raw.Seq != 1 || raw.Body != "raw \uFFFD payload" || raw.ID != "" || raw.User != "" || !raw.Time.Equal(stored.Time) {
		t.Errorf("raw payload = %+v, stored time %v", raw, stored.Time)
	}
	if e := h.Messages[1]; e.Body != "hand-made envelope" || e.PriorityOrDefault() != 2 || e.Time.IsZero() {
		t.Errorf("hand-made envelope = %+v", e)
	}
	if e := h.Messages[2]; e.Seq != 3 || e.Body != "" || e.Time.IsZero() {
		t.Errorf("empty payload = %+v", e)
	}
	if e := h.Messages[3]; e.Seq != 4 || e.Body != "via http" {
		t.Errorf("http message = %+v", e)
	}
	if !strings.Contains(string(res.body), "{\"time\":") || !strings.Contains(string(res.body), "\"body\":\"raw \uFFFD payload\"") {
		t.Errorf("raw JSON: %s", res.body)
	}
}

// TestHistoryLargePage: a page of large messages stops at the byte budget,
// and paging still reaches every message.
func TestHistoryLargePage(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	const n = 80 // 80 × ~60 KiB ≈ 4.7 MiB, over one page's budget
	body := repeat("y", 60<<10)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`{"user":"big","body":"%d %s"}`, i, body)
	}
	res := f.postJSON("/v1/messages", `{"messages":[`+strings.Join(parts, ",")+`]}`)
	if res.status != http.StatusOK {
		t.Fatalf("batch: %d", res.status)
	}
	since, seen, pages := uint64(0), 0, 0
	for {
		h := f.history("big", fmt.Sprintf("?since=%d&limit=1000", since))
		if len(h.Messages) == 0 {
			break
		}
		pages++
		for _, e := range h.Messages {
			if !strings.HasPrefix(e.Body, fmt.Sprintf("%d ", seen)) {
				t.Fatalf("message %d has body %.10q…", seen, e.Body)
			}
			seen++
		}
		since = *h.Next
	}
	if seen != n || pages < 2 {
		t.Errorf("read %d messages in %d pages, want %d in at least 2", seen, pages, n)
	}
}
