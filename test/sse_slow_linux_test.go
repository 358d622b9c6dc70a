//go:build linux

package test

import (
	"net/http"
	"testing"
	"time"

	"github.com/herald-push/herald/config"
)

// TestSSEStuckClientClosedAlone: an SSE client that stops reading is
// closed as a slow consumer once a write misses the write timeout; a
// reading device of another user keeps getting its messages.
func TestSSEStuckClientClosedAlone(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		c := newCluster(t, engine, func(cfg *config.Config) { cfg.Edge.WriteTimeout = 300 * time.Millisecond })
		e := newEdge(t, c)
		bob := openSSESynced(t, e.url, "bob", "phone", "", nil)

		stuckClient(t, e.url, "/v1/sse", mint(t, "alice", ""), "stuck", stuckSSEHeaders, http.StatusOK)
		wait := flood(t, c, "alice", 300)
		waitUntil(t, 15*time.Second, func() bool {
			return counterValue(t, e.reg, "herald_edge_closes_total", "slow_consumer") >= 1
		})
		if n, _ := wait(); n != 300 {
			t.Fatalf("flood published %d of 300", n)
		}
		waitUntil(t, 5*time.Second, func() bool { return e.srv.Connections() == 1 })
		seq := c.publish(t, "bob", "still here")
		if got := bob.messages(t, 1); got[0].Seq != seq {
			t.Fatalf("bob got %v, want %d", seqs(got), seq)
		}
	})
}
