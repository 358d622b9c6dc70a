package streams_test

import (
	"testing"

	"github.com/herald-push/herald/streams"
)

func TestLogSubjects(t *testing.T) {
	t.Parallel()
	s := streams.Subjects{Prefix: "herald"}
	email := "alice@example.com"
	for _, tc := range []struct{ in, want string }{
		{"no subject", "no subject"},
		{`slow consumer on "herald.live.alice"`, `slow consumer on "herald.live.` + streams.LogUser("alice") + `"`},
		{"herald.user." + streams.Token(email) + " and herald.ctl.bob", "herald.user." + streams.LogUser(email) + " and herald.ctl." + streams.LogUser("bob")},
		{"herald.user.* herald.live.>", "herald.user.* herald.live.>"},
		{"herald.user.~!!", "herald.user." + streams.LogUser("~") + "!!"},
		{"other.user.alice herald.sched.x1.m-1", "other.user.alice herald.sched." + streams.LogUser("x1") + ".m-1"},
	} {
		if got := s.LogSubjects(tc.in); got != tc.want {
			t.Errorf("LogSubjects(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzLogSubjects: the subjects of any valid user id are replaced by its
// LogUser, whatever the id, and no text makes LogSubjects panic.
func FuzzLogSubjects(f *testing.F) {
	f.Add("alice", "x")
	f.Add("alice@example.com", "herald.user.")
	f.Add("a.b*c>d", "herald.live.~~ herald.ctl.")
	f.Fuzz(func(t *testing.T, user, text string) {
		s := streams.Subjects{}
		_ = s.LogSubjects(text)
		if streams.ValidateUser(user) != nil {
			return
		}
		in := `subscription to "` + s.Live(user) + `" and ` + s.User(user) + "."
		want := `subscription to "herald.live.` + streams.LogUser(user) + `" and herald.user.` + streams.LogUser(user) + "."
		if got := s.LogSubjects(in); got != want {
			t.Fatalf("LogSubjects(%q) = %q, want %q", in, got, want)
		}
	})
}
