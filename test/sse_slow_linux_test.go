//go:build linux

package test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/herald-push/herald/config"
)

// stuckSSE opens an SSE stream on a socket with a tiny receive buffer,
// reads the response head and then never reads again.
func stuckSSE(t *testing.T, base, tok, device string) net.Conn {
	t.Helper()
	host := strings.TrimPrefix(base, "http://")
	conn := dialTinyBuffer(t, host)
	req := fmt.Sprintf("GET /v1/sse?device=%s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\nAuthorization: Bearer %s\r\n\r\n", device, host, tok)
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	return conn
}

// TestSSEStuckClientClosedAlone: an SSE client that stops reading is
// closed as a slow consumer once a write misses the write timeout; a
// reading device of another user keeps getting its messages.
func TestSSEStuckClientClosedAlone(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		c := newCluster(t, engine, func(cfg *config.Config) { cfg.Edge.WriteTimeout = 300 * time.Millisecond })
		e := newEdge(t, c)
		bob := openSSE(t, e.url, "bob", "phone", "", nil)
		bob.expect(t, "welcome")
		bob.expect(t, "synced")

		stuckSSE(t, e.url, mint(t, "alice", ""), "stuck")
		wait := flood(t, c, "alice", 300)
		waitUntil(t, 15*time.Second, func() bool {
			return testutil.ToFloat64(mustCounter(t, e, "herald_edge_closes_total", "slow_consumer")) >= 1
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
