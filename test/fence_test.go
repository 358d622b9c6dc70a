package test

import (
	"fmt"
	"sync/atomic"
	"testing"
)

// Fences replace "nothing arrives within d" windows. A connection delivers
// its user's messages in seq order, so once a sentinel published after the
// test's messages arrives, anything that was still on its way (a message of
// another user, a duplicate of an earlier seq) would have come first. A
// resend is driven by a timer instead: fenceResend waits for the sentinel
// to be resent, which happens only after every earlier resend deadline.

var fences atomic.Uint64

// fenceWS publishes a sentinel for user and checks that it is the next
// message d receives. It returns the sentinel's seq.
func (c *cluster) fenceWS(t *testing.T, d *wsClient, user string) uint64 {
	t.Helper()
	body := fmt.Sprintf("fence-%d", fences.Add(1))
	seq := c.publish(t, user, body)
	if got := d.messages(t, 1)[0]; got.Seq != seq || got.Body != body {
		t.Fatalf("before the fence %d: got %+v", seq, got)
	}
	return seq
}

// fenceSSE is fenceWS for an SSE stream.
func (c *cluster) fenceSSE(t *testing.T, d *sseClient, user string) uint64 {
	t.Helper()
	body := fmt.Sprintf("fence-%d", fences.Add(1))
	seq := c.publish(t, user, body)
	if got := d.messages(t, 1)[0]; got.Seq != seq || got.Body != body {
		t.Fatalf("before the fence %d: got %+v", seq, got)
	}
	return seq
}

// fenceResendWS publishes a sentinel for user, leaves it unacked and checks
// that the next two messages d receives are the sentinel and its resend:
// a message delivered before it and not acked would be resent first.
func (c *cluster) fenceResendWS(t *testing.T, d *wsClient, user string) {
	t.Helper()
	seq := c.fenceWS(t, d, user)
	if got := d.messages(t, 1)[0]; got.Seq != seq {
		t.Fatalf("before the resend of the fence %d: got %+v", seq, got)
	}
}

// fenceResendSSE is fenceResendWS for an SSE stream.
func (c *cluster) fenceResendSSE(t *testing.T, d *sseClient, user string) {
	t.Helper()
	seq := c.fenceSSE(t, d, user)
	if got := d.messages(t, 1)[0]; got.Seq != seq {
		t.Fatalf("before the resend of the fence %d: got %+v", seq, got)
	}
}
