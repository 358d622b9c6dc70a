package test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"github.com/herald-push/herald/config"
)

func hs256(t *testing.T, claims jwt.MapClaims, secret string) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRejectedBeforeUpgrade(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		c := newCluster(t, engine, nil)
		e := newEdge(t, c)
		exp := time.Now().Add(time.Hour).Unix()
		good := mint(t, "alice", "")
		cases := []struct {
			name, token, device, query string
			status                     int
		}{
			{"no token", "", "phone", "", 401},
			{"garbage", "not-a-jwt", "phone", "", 401},
			{"alg none", "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSIsImV4cCI6OTk5OTk5OTk5OX0.", "phone", "", 401},
			{"unknown alg", func() string {
				s, _ := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims{"sub": "alice", "exp": exp}).SignedString([]byte(testSecret))
				return s
			}(), "phone", "", 401},
			{"bad signature", hs256(t, jwt.MapClaims{"sub": "alice", "exp": exp}, "another-secret-0123456789"), "phone", "", 401},
			{"expired", hs256(t, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(-time.Hour).Unix()}, testSecret), "phone", "", 401},
			{"no exp", hs256(t, jwt.MapClaims{"sub": "alice"}, testSecret), "phone", "", 401},
			{"wrong audience", hs256(t, jwt.MapClaims{"sub": "alice", "exp": exp, "aud": "other"}, testSecret), "phone", "", 401},
			{"device contradicts dev", mint(t, "alice", "tablet"), "phone", "", 401},
			{"bad device id", good, "my phone", "", 400},
			{"missing device", good, "", "", 400},
			{"bad since", good, "phone", "since=-1", 400},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				_, resp, err := tryDial(e.url, tc.token, tc.device, tc.query)
				if err == nil {
					t.Fatal("upgrade succeeded")
				}
				if resp == nil || resp.StatusCode != tc.status {
					t.Fatalf("status = %v, want %d", resp, tc.status)
				}
			})
		}
		// ?token= works for browsers.
		conn, _, err := websocket.DefaultDialer.Dial(wsURL(e.url, "phone", "token="+good), nil)
		if err != nil {
			t.Fatalf("?token= dial: %v", err)
		}
		conn.Close()
		if got := counterValue(t, e.reg, "herald_edge_rejected_total", "unauthorized"); got != 9 {
			t.Errorf("rejected unauthorized = %v, want 9", got)
		}
	})
}

func TestJunkFramesGetErrorFrames(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		c := newCluster(t, engine, nil)
		e := newEdge(t, c)
		d := dialSynced(t, e.url, "alice", "phone", "")
		for _, junk := range []string{"hello", "{}", `{"type":"nope"}`, `{"type":"ack"}`, `{"type":"ack","seq":-3}`, `{"type":"ack","seq":"7"}`, `[1,2]`, `{"type":"ack","seq":0}`} {
			if err := d.conn.WriteMessage(websocket.TextMessage, []byte(junk)); err != nil {
				t.Fatal(err)
			}
			f := d.expect(t, "error")
			if f.Code != "invalid_frame" || f.Message == "" {
				t.Fatalf("for %q got %+v", junk, f)
			}
		}
		// Still connected and delivering.
		seq := c.publish(t, "alice", "still here")
		if got := d.messages(t, 1); got[0].Seq != seq {
			t.Fatalf("got %v", got)
		}
	})
}

func TestOversizedFrameCloses1009(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		c := newCluster(t, engine, nil)
		e := newEdge(t, c)
		d := dialSynced(t, e.url, "alice", "phone", "")
		big := `{"type":"ack","seq":1,"pad":"` + strings.Repeat("x", 5000) + `"}`
		if err := d.conn.WriteMessage(websocket.TextMessage, []byte(big)); err != nil {
			t.Fatal(err)
		}
		f := d.expect(t, "error")
		if f.Code != "frame_too_large" {
			t.Fatalf("got %+v", f)
		}
		if code := d.waitClosed(t, 5*time.Second); code != websocket.CloseMessageTooBig {
			t.Fatalf("close code %d, want 1009", code)
		}
	})
}

func TestTokenExpiryCloses4001(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		c := newCluster(t, engine, nil)
		e := newEdge(t, c)
		tok := hs256(t, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(1500 * time.Millisecond).Unix()}, testSecret)
		d, _, err := tryDial(e.url, tok, "phone", "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(d.Close)
		d.expect(t, "welcome")
		d.expect(t, "synced")
		f := d.next(t, 10*time.Second)
		if f.Type != "error" || f.Code != "token_expired" {
			t.Fatalf("got %+v", f)
		}
		if code := d.waitClosed(t, 5*time.Second); code != 4001 {
			t.Fatalf("close code %d, want 4001", code)
		}
	})
}

func TestTooManyConnectionsCloses4009(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		c := newCluster(t, engine, func(cfg *config.Config) { cfg.Edge.MaxConnsPerUser = 2 })
		e := newEdge(t, c)
		for _, dev := range []string{"a", "b"} {
			d := dial(t, e.url, "alice", dev, "")
			d.expect(t, "welcome")
		}
		d := dial(t, e.url, "alice", "c", "")
		for {
			f := d.next(t, 5*time.Second)
			if f.Type == "error" {
				if f.Code != "too_many_connections" {
					t.Fatalf("got %+v", f)
				}
				break
			}
		}
		if code := d.waitClosed(t, 5*time.Second); code != 4009 {
			t.Fatalf("close code %d, want 4009", code)
		}
		other := dial(t, e.url, "bob", "c", "")
		other.expect(t, "welcome")
	})
}

func TestShutdownCloses1001AndKeepsPosition(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		c := newCluster(t, engine, nil)
		e := newEdge(t, c)
		d := dialSynced(t, e.url, "alice", "phone", "")
		s1 := c.publish(t, "alice", "one")
		d.messages(t, 1)
		d.ack(t, s1)
		waitAckFloor(t, c, "alice", "phone", s1)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.srv.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		if code := d.waitClosed(t, 5*time.Second); code != websocket.CloseGoingAway {
			t.Fatalf("close code %d, want 1001", code)
		}
		if _, resp, err := tryDial(e.url, mint(t, "alice", ""), "phone", ""); err == nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("dial after shutdown: %v %v", err, resp)
		}
		s2 := c.publish(t, "alice", "two")
		e2 := newEdge(t, c)
		d = dial(t, e2.url, "alice", "phone", "")
		if w := d.expect(t, "welcome"); w.From == nil || *w.From != s2 {
			t.Fatalf("welcome = %+v, want from %d", w, s2)
		}
	})
}
