package streams_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/herald-push/herald/streams"
)

// TestDataDepth: data nested up to MaxDataDepth levels is accepted, one
// more is refused with ErrInvalidMessage, however the levels are spelled;
// brackets inside strings do not count.
func TestDataDepth(t *testing.T) {
	t.Parallel()
	nest := func(n int, open, close string) string {
		return `{"x":` + strings.Repeat(open, n-1) + `1` + strings.Repeat(close, n-1) + `}`
	}
	cases := []struct {
		name string
		data string
		ok   bool
	}{
		{"objects at the limit", nest(streams.MaxDataDepth, `{"a":`, `}`), true},
		{"objects over the limit", nest(streams.MaxDataDepth+1, `{"a":`, `}`), false},
		{"arrays at the limit", nest(streams.MaxDataDepth, `[`, `]`), true},
		{"arrays over the limit", nest(streams.MaxDataDepth+1, `[`, `]`), false},
		{"9000 levels", nest(9000, `[`, `]`), false},
		{"brackets in strings", `{"a":"` + strings.Repeat(`[{`, 100) + `\"[{"}`, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := streams.Envelope{Data: []byte(tc.data)}
			err := e.Validate()
			if tc.ok && err != nil {
				t.Errorf("Validate: %v, want nil", err)
			}
			if !tc.ok && (!errors.Is(err, streams.ErrInvalidMessage) || !strings.Contains(err.Error(), "deeper than 32")) {
				t.Errorf("Validate: %v, want ErrInvalidMessage naming the depth limit", err)
			}
		})
	}
}

// TestMsgID: the Nats-Msg-Id is scoped by user; the same id of two users
// gives two headers, and no two (user, id) pairs share one.
func TestMsgID(t *testing.T) {
	t.Parallel()
	if a, b := streams.MsgID("alice", "k-1"), streams.MsgID("bob", "k-1"); a == b {
		t.Errorf("alice and bob share Nats-Msg-Id %q", a)
	}
	if got := streams.MsgID("alice", "k-1"); got != "alice:k-1" {
		t.Errorf("MsgID(alice, k-1) = %q", got)
	}
	// "a:b" as a user is encoded, so it cannot meet user "a" with id "b:c".
	if a, b := streams.MsgID("a:b", "c"), streams.MsgID("a", "b:c"); a == b {
		t.Errorf("MsgID collides: %q", a)
	}
}
