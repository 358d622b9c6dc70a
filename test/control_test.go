package test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/herald-push/herald/config"
)

// TestAckAcrossEdges: a device streams from edge A and acks through edge B
// (POST /v1/ack, as an SSE client's ack may land, or an ack frame on a
// second connection); edge A stops resending what the ack covers (SPEC §9:
// the ack reaches every open stream of the device on every edge).
func TestAckAcrossEdges(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		const ackWait = 300 * time.Millisecond
		c := newCluster(t, engine, func(cfg *config.Config) { cfg.Edge.AckWait = ackWait })
		a, b := newEdge(t, c), newEdge(t, c)
		for _, via := range []string{"post", "frame"} {
			device := "phone-" + via
			ws := dialSynced(t, a.url, "alice", device, "")
			seq := c.publish(t, "alice", via)
			// Unacked, edge A sends it and resends it each ack wait.
			for range 2 {
				if f := ws.messages(t, 1)[0]; f.Seq != seq {
					t.Fatalf("%s: got seq %d, want %d", via, f.Seq, seq)
				}
			}
			switch via {
			case "post":
				body := fmt.Sprintf(`{"device":%q,"seq":%d}`, device, seq)
				if status, code := postAck(t, b.url, mint(t, "alice", device), body); status != http.StatusNoContent {
					t.Fatalf("POST /v1/ack on edge B = %d %s", status, code)
				}
			case "frame":
				other := dial(t, b.url, "alice", device, "since="+fmt.Sprint(seq))
				other.expect(t, "welcome")
				other.ack(t, seq)
			}
			// Resends under way when the ack crossed may still arrive;
			// then edge A stays quiet. Without the ack crossing, a
			// resend comes every ack wait and no quiet window opens.
			deadline := time.After(5 * time.Second)
		drain:
			for {
				select {
				case f, ok := <-ws.frames:
					if !ok {
						t.Fatalf("%s: edge A closed the stream", via)
					}
					if f.Type == "message" && f.Seq != seq {
						t.Fatalf("%s: unexpected %+v", via, f)
					}
				case <-time.After(3 * ackWait):
					break drain
				case <-deadline:
					t.Fatalf("%s: edge A still resends seq %d after the ack on edge B", via, seq)
				}
			}
			ws.quiet(t, 5*ackWait)
		}
	})
}
