package ingest_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/streams"
)

// TestUserIDsEndToEnd publishes to and reads back users whose ids are not
// subject-safe, on a stream with a custom name and prefix, and checks that
// each message is stored on the streams mapping of its user.
func TestUserIDsEndToEnd(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{cfg: func(c *config.Config) {
		c.Stream.Name = "ACME_PUSH"
		c.Stream.Prefix = "acme.push"
	}})
	users := []string{"émile@example.com", "a.b*c>d", "a/b c?d#e%f", "日本 語", "~alice", "alice", ">", "*"}
	for i, u := range users {
		p := f.publish(u, map[string]any{"body": "hello " + u}, http.StatusCreated)
		if p.User != u || p.Seq != uint64(i+1) {
			t.Errorf("publish for %q = %+v", u, p)
		}
		want := streams.Subjects{Prefix: "acme.push"}.User(u)
		if m := f.stored(p.Seq); m.Subject != want {
			t.Errorf("%q stored on %q, want %q", u, m.Subject, want)
		}
	}
	// One batch item each, too.
	items := make([]string, len(users))
	for i, u := range users {
		items[i] = fmt.Sprintf(`{"user":%q,"body":"batch %d"}`, u, i)
	}
	res := f.postJSON("/v1/messages", `{"messages":[`+strings.Join(items, ",")+`]}`)
	var b batchResp
	decode(t, res.body, &b)
	if res.status != http.StatusOK || len(b.Results) != len(users) {
		t.Fatalf("batch: %v", res)
	}
	for i, u := range users {
		if b.Results[i].Error != nil {
			t.Fatalf("batch item %q: %+v", u, b.Results[i].Error)
		}
		e := f.storedEnvelope(b.Results[i].Seq, u)
		if e.User != u {
			t.Errorf("batch item stored for %q, want %q", e.User, u)
		}
	}
	for i, u := range users {
		h := f.history(u, "")
		if len(h.Messages) != 2 {
			t.Errorf("history of %q: %d messages", u, len(h.Messages))
			continue
		}
		if h.Messages[0].Body != "hello "+u || h.Messages[0].User != u || h.Messages[0].Seq != uint64(i+1) ||
			h.Messages[1].Body != fmt.Sprintf("batch %d", i) {
			t.Errorf("history of %q = %+v", u, h.Messages)
		}
		// A token for the user reads it too.
		if h := f.history(u, "", "Authorization", "Bearer "+mint(t, u)); len(h.Messages) != 2 {
			t.Errorf("history of %q with its token: %d messages", u, len(h.Messages))
		}
	}
}
