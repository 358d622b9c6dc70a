//go:build linux

package test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/streams"
)

// dialTinyBuffer connects to host with a 2 KiB socket receive buffer, so
// that a client that stops reading makes the server's writes block soon.
func dialTinyBuffer(t *testing.T, host string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Request headers of a stuck client, after Host and Authorization.
var (
	stuckWSHeaders  = []string{"Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"}
	stuckSSEHeaders = []string{"Accept: text/event-stream"}
)

// stuckClient sends GET path?device=device with tok and headers on a socket
// with a tiny receive buffer, checks the status of the response head (a
// WebSocket handshake or an SSE stream) and then never reads again.
func stuckClient(t *testing.T, base, path, tok, device string, headers []string, status int) net.Conn {
	t.Helper()
	host := strings.TrimPrefix(base, "http://")
	conn := dialTinyBuffer(t, host)
	var req strings.Builder
	fmt.Fprintf(&req, "GET %s?device=%s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n", path, url.QueryEscape(device), host, tok)
	for _, h := range headers {
		req.WriteString(h + "\r\n")
	}
	req.WriteString("\r\n")
	if _, err := conn.Write([]byte(req.String())); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != status {
		t.Fatalf("GET %s: status %d, want %d", path, resp.StatusCode, status)
	}
	return conn
}

// latencies publishes n messages to user one at a time and returns each
// publish→deliver latency seen by the device.
func latencies(t *testing.T, c *cluster, d *wsClient, user string, n int) []time.Duration {
	t.Helper()
	out := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		start := time.Now()
		seq := c.publish(t, user, fmt.Sprintf("probe%d", i))
		got := d.messages(t, 1)
		if got[0].Seq != seq {
			t.Fatalf("probe got seq %d, want %d", got[0].Seq, seq)
		}
		d.ack(t, seq)
		out = append(out, time.Since(start))
	}
	slices.Sort(out)
	return out
}

func p99(d []time.Duration) time.Duration { return d[len(d)*99/100] }

// flood publishes n large messages to user from a goroutine and returns a
// wait function reporting the count published and the slowest publish.
func flood(t *testing.T, c *cluster, user string, n int) func() (int, time.Duration) {
	t.Helper()
	body := []byte(strings.Repeat("x", 16<<10))
	ctx, cancel := context.WithCancel(context.Background())
	var (
		wg         sync.WaitGroup
		published  int
		maxPublish time.Duration
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < n && ctx.Err() == nil; i++ {
			start := time.Now()
			pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := c.js.Publish(pctx, streams.Subjects{Prefix: c.cfg.Stream.Prefix}.User(user), body)
			pcancel()
			if err != nil {
				return
			}
			maxPublish = max(maxPublish, time.Since(start))
			published++
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return func() (int, time.Duration) { wg.Wait(); return published, maxPublish }
}

// stuckWriteTimeout is the edge's write timeout in the stuck-device test:
// long enough that a fan-out waiting on the stuck socket would stand out
// from scheduling noise.
const stuckWriteTimeout = 5 * time.Second

func TestStuckDeviceStallsOnlyItself(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		c := newCluster(t, engine, func(cfg *config.Config) {
			cfg.Edge.WriteTimeout = stuckWriteTimeout
		})
		e := newEdge(t, c)
		bob := dialSynced(t, e.url, "bob", "phone", "")
		const floodN, probes = 300, 100

		// Baseline: the same flood to a user whose device reads.
		carol := dial(t, e.url, "carol", "phone", "")
		carol.expect(t, "welcome")
		wait := flood(t, c, "carol", floodN)
		base := latencies(t, c, bob, "bob", probes)
		if n, _ := wait(); n != floodN {
			t.Fatalf("baseline flood published %d of %d", n, floodN)
		}

		stuckClient(t, e.url, "/v1/ws", mint(t, "alice", ""), "stuck", stuckWSHeaders, http.StatusSwitchingProtocols)
		wait = flood(t, c, "alice", floodN)
		during := latencies(t, c, bob, "bob", probes)
		n, maxPublish := wait()
		if n != floodN {
			t.Fatalf("flood published %d of %d: publishes blocked", n, floodN)
		}
		// The stuck device is closed as a slow consumer (4008).
		waitUntil(t, 15*time.Second, func() bool {
			return counterValue(t, e.reg, "herald_edge_closes_total", "slow_consumer") >= 1
		})
		t.Logf("healthy p50/p99 with a flooded reading device: %v/%v; with a flooded stuck device: %v/%v; slowest flood publish %v",
			base[len(base)/2], p99(base), during[len(during)/2], p99(during), maxPublish)
		// The figures above are logged, not bounded: tests never fail on
		// timing. `herald bench slow` measures the p99 ratio.
	})
}
