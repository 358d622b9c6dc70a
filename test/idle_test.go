package test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/streams/streamstest"
)

// edgeGoroutine matches the goroutines that serve devices on the edge side:
// the edge package's own, and the NATS client's per-subscription
// dispatchers (one per async subscription).
func edgeGoroutine(stack string) bool {
	return strings.Contains(stack, "herald/edge.") || strings.Contains(stack, "nats%2ego.(*Conn).waitForMsgs")
}

// idleEdgeGoroutines counts the edge's goroutines once no pump runs (the
// pumps that sent the welcome and synced frames exit on their own).
func idleEdgeGoroutines(t *testing.T) int {
	t.Helper()
	streamstest.WaitFor(t, 10*time.Second, func() error {
		if n := len(streamstest.Goroutines(func(s string) bool { return strings.Contains(s, "edge.(*pumper).run") })); n > 0 {
			return fmt.Errorf("%d pumps still run", n)
		}
		return nil
	})
	return len(streamstest.Goroutines(edgeGoroutine))
}

// TestLiveIdleConnectionCostsOneGoroutine connects devices of distinct
// users and checks that, once they are idle, each costs the edge one
// goroutine (its reader): the live engine's subscriptions share one
// dispatcher, and a pump runs only while there is something to write.
// Then a message for every user still reaches every device, and an unacked
// one is resent, so that idle connections are woken by both.
func TestLiveIdleConnectionCostsOneGoroutine(t *testing.T) {
	c := newCluster(t, config.DeliveryLive, func(cfg *config.Config) { cfg.Edge.AckWait = 300 * time.Millisecond })
	e := newEdge(t, c)
	// A first device starts what the edge starts once: the engine's
	// dispatcher and the NATS client's response subscription.
	dialSynced(t, e.url, "warm-up", "phone", "")
	before := idleEdgeGoroutines(t)

	const n = 40
	clients := make([]*wsClient, n)
	for i := range clients {
		d := dialSynced(t, e.url, fmt.Sprintf("user-%d", i), "phone", "")
		clients[i] = d
	}
	if idle := idleEdgeGoroutines(t) - before; idle > n {
		t.Fatalf("%d idle connections hold %d more edge goroutines, want at most %d:\n%s",
			n, idle, n, strings.Join(streamstest.Goroutines(edgeGoroutine), "\n\n"))
	}

	seqs := make([]uint64, n)
	for i := range clients {
		seqs[i] = c.publish(t, fmt.Sprintf("user-%d", i), fmt.Sprintf("hello-%d", i))
	}
	// Each device gets its message, and (not acked) again after the ack
	// wait.
	for round := range 2 {
		for i, d := range clients {
			f := d.messages(t, 1)[0]
			if want := fmt.Sprintf("hello-%d", i); f.Seq != seqs[i] || f.Body != want {
				t.Fatalf("round %d: device %d got seq %d %q, want seq %d %q", round, i, f.Seq, f.Body, seqs[i], want)
			}
		}
	}
	for i, d := range clients {
		d.ack(t, seqs[i])
	}
}
