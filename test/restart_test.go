package test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/streams/streamstest"
)

// startOwnedEdge starts an edge (newEdge) whose stop the test may call;
// the cleanup runs it too, reporting a failed shutdown.
func startOwnedEdge(t *testing.T, c *cluster) *edgeNode {
	t.Helper()
	e := newEdge(t, c)
	t.Cleanup(func() { e.stop(t) })
	return e
}

// TestGracefulRestartKeepsPosition: a device acks the first N of its
// messages, the edge shuts down gracefully right away (no time for the
// periodic position writer), and after reconnecting to a new edge without
// since the device receives exactly the messages after N, those published
// while no edge ran included.
func TestGracefulRestartKeepsPosition(t *testing.T) {
	t.Parallel()
	c := newCluster(t, config.DeliveryLive, func(cfg *config.Config) { cfg.Edge.AckWait = time.Minute })
	e1 := startOwnedEdge(t, c)
	d := dialSynced(t, e1.url, "alice", "phone", "since=0")
	var all []uint64
	for i := range 10 {
		all = append(all, c.publish(t, "alice", "m"+strconv.Itoa(i)))
	}
	got := seqs(d.messages(t, 10))
	for i := range all {
		if got[i] != all[i] {
			t.Fatalf("delivered %v, want %v", got, all)
		}
	}
	n := all[5]
	d.ack(t, n)
	// Client frames are handled in order: the error frame for the junk
	// frame proves the ack before it was applied.
	if err := d.conn.WriteMessage(websocket.TextMessage, []byte("junk")); err != nil {
		t.Fatal(err)
	}
	if f := d.expect(t, "error"); f.Code != "invalid_frame" {
		t.Fatalf("got %+v, want an invalid_frame error", f)
	}
	e1.stop(t)
	if code := d.waitClosed(t, 5*time.Second); code != websocket.CloseGoingAway {
		t.Fatalf("close code %d, want 1001", code)
	}
	// The position was written during the shutdown, not later.
	if pos, err := c.position("alice", "phone"); err != nil || pos != n {
		t.Fatalf("stored position = %d, %v; want %d", pos, err, n)
	}
	for i := range 3 {
		all = append(all, c.publish(t, "alice", "offline"+strconv.Itoa(i)))
	}

	e2 := startOwnedEdge(t, c)
	d2 := dial(t, e2.url, "alice", "phone", "")
	if w := d2.expect(t, "welcome"); w.From == nil || *w.From != n+1 || w.Gap {
		t.Fatalf("welcome = %+v, want from %d", w, n+1)
	}
	want := all[6:]
	got = seqs(d2.messages(t, len(want)))
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("after the restart got %v, want %v", got, want)
		}
	}
	c.fenceWS(t, d2, "alice")
}

// TestEdgeLimits: the connection limit of an edge (503 unavailable), the
// per-IP connect rate (429 rate_limited with Retry-After) and the origin
// check (403 forbidden) refuse before the upgrade, and count as rejections.
func TestEdgeLimits(t *testing.T) {
	t.Parallel()
	t.Run("max_conns", func(t *testing.T) {
		c := newCluster(t, config.DeliveryLive, func(cfg *config.Config) { cfg.Edge.MaxConns = 1 })
		e := newEdge(t, c)
		d := dial(t, e.url, "alice", "phone", "")
		d.expect(t, "welcome")
		_, resp, err := tryDial(e.url, mint(t, "bob", ""), "phone", "")
		wantReject(t, resp, err, http.StatusServiceUnavailable, "unavailable")
		if resp.Header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
		d.Close()
		// The slot is free once the first session's handler is done.
		streamstest.WaitFor(t, 5*time.Second, func() error {
			d2, _, err := tryDial(e.url, mint(t, "bob", ""), "phone", "")
			if err == nil {
				d2.Close()
			}
			return err
		})
		if n := counterValue(t, e.reg, "herald_edge_rejected_total", "unavailable"); n < 1 {
			t.Errorf("rejected{unavailable} = %v", n)
		}
	})
	t.Run("ip_connect_rate", func(t *testing.T) {
		c := newCluster(t, config.DeliveryLive, func(cfg *config.Config) {
			cfg.Edge.IPConnectRate = 1
			cfg.Edge.IPConnectBurst = 3
		})
		e := newEdge(t, c)
		// Refused attempts (a bad token) take tokens too.
		for range 2 {
			_, resp, err := tryDial(e.url, "bad-token", "phone", "")
			wantReject(t, resp, err, http.StatusUnauthorized, "unauthorized")
		}
		d := dial(t, e.url, "alice", "phone", "")
		d.expect(t, "welcome")
		_, resp, err := tryDial(e.url, mint(t, "alice", ""), "tablet", "")
		wantReject(t, resp, err, http.StatusTooManyRequests, "rate_limited")
		if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
			t.Errorf("Retry-After = %q", resp.Header.Get("Retry-After"))
		}
		if n := counterValue(t, e.reg, "herald_edge_rejected_total", "rate_limited"); n != 1 {
			t.Errorf("rejected{rate_limited} = %v", n)
		}
	})
	t.Run("allowed_origins", func(t *testing.T) {
		c := newCluster(t, config.DeliveryLive, func(cfg *config.Config) {
			cfg.Edge.AllowedOrigins = []string{"https://app.example.com"}
		})
		e := newEdge(t, c)
		for origin, want := range map[string]int{
			"https://evil.example.com":                 http.StatusForbidden,
			"https://app.example.com":                  http.StatusSwitchingProtocols,
			"http://" + e.hs.Listener.Addr().String():  http.StatusSwitchingProtocols, // same origin
			"https://app.example.com.evil.example.com": http.StatusForbidden,
		} {
			h := http.Header{"Authorization": {"Bearer " + mint(t, "alice", "")}, "Origin": {origin}}
			conn, resp, err := websocket.DefaultDialer.Dial(wsURL(e.url, "phone", ""), h)
			if want == http.StatusSwitchingProtocols {
				if err != nil {
					t.Errorf("origin %s refused: %v", origin, err)
					continue
				}
				_ = conn.Close()
				continue
			}
			wantReject(t, resp, err, want, "forbidden")
		}
	})
}

// wantReject checks a refused upgrade: its status and JSON error code.
func wantReject(t *testing.T, resp *http.Response, err error, status int, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("upgrade succeeded, want %d %s", status, code)
	}
	if resp == nil || resp.StatusCode != status {
		t.Fatalf("response %v (%v), want %d", resp, err, status)
	}
	b, _ := io.ReadAll(resp.Body)
	var body struct {
		Error struct{ Code string } `json:"error"`
	}
	if json.Unmarshal(b, &body) != nil || body.Error.Code != code {
		t.Fatalf("body %s, want code %s", b, code)
	}
}

// TestShutdownClosesEverySessionInBatches: more sessions than one shutdown
// batch all get 1001, and Shutdown returns once every one has ended.
func TestShutdownClosesEverySessionInBatches(t *testing.T) {
	t.Parallel()
	// 300 devices connect from one address at once.
	c := newCluster(t, config.DeliveryLive, func(cfg *config.Config) { cfg.Edge.IPConnectRate = 0 })
	e := startOwnedEdge(t, c)
	var ds []*wsClient
	for i := range 300 {
		d := dial(t, e.url, "user"+strconv.Itoa(i%30), "d"+strconv.Itoa(i), "")
		d.expect(t, "welcome")
		ds = append(ds, d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if n := e.srv.Connections(); n != 0 {
		t.Errorf("%d sessions left after Shutdown", n)
	}
	for i, d := range ds {
		if code := d.waitClosed(t, 5*time.Second); code != websocket.CloseGoingAway {
			t.Fatalf("session %d closed with %d, want 1001", i, code)
		}
	}
}
