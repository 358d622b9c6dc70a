package test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/edge/token"
	"github.com/herald-push/herald/streams/streamstest"
)

func TestSSEDeliveryInOrder(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		c := newCluster(t, engine, nil)
		e := newEdge(t, c)

		d := openSSE(t, e.url, "alice", "phone", "", nil)
		h := d.resp.Header
		if h.Get("Content-Type") != "text/event-stream" || h.Get("Cache-Control") != "no-cache" || h.Get("X-Accel-Buffering") != "no" {
			t.Fatalf("headers %v", h)
		}
		w := d.expect(t, "welcome")
		if w.User != "alice" || w.Device != "phone" || w.From != nil || w.Gap {
			t.Fatalf("welcome = %+v", w)
		}
		d.expect(t, "synced")
		bob := openSSESynced(t, e.url, "bob", "phone", "", nil)

		var want []uint64
		for i := 0; i < 5; i++ {
			want = append(want, c.publish(t, "alice", fmt.Sprintf("m%d", i)))
		}
		got := d.messages(t, 5) // checks each id against the seq in the data
		if !slices.Equal(seqs(got), want) || !slices.Equal(bodies(got), []string{"m0", "m1", "m2", "m3", "m4"}) {
			t.Fatalf("got %v %v, want %v", seqs(got), bodies(got), want)
		}
		for _, f := range got {
			if f.User != "alice" {
				t.Fatalf("message %+v", f)
			}
		}
		c.fenceSSE(t, bob, "bob")
		if n := e.srv.Connections(); n != 2 {
			t.Fatalf("connections = %d, want 2", n)
		}
	})
}

// TestSSELastEventIDResumes: Last-Event-ID wins over since (an EventSource
// reconnects to the same URL with the header) and acts as since does: it
// positions the device, so a later connect without it resumes there.
func TestSSELastEventIDResumes(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		c := newCluster(t, engine, nil)
		e := newEdge(t, c)
		var want []uint64
		for i := 0; i < 5; i++ {
			c.publish(t, "bob", "noise")
			want = append(want, c.publish(t, "alice", fmt.Sprintf("m%d", i)))
		}
		d := openSSE(t, e.url, "alice", "phone", "since=0", nil)
		if w := d.expect(t, "welcome"); w.From == nil || *w.From != want[0] {
			t.Fatalf("welcome = %+v, want from %d", w, want[0])
		}
		if got := d.messages(t, 5); !slices.Equal(seqs(got), want) {
			t.Fatalf("got %v, want %v", seqs(got), want)
		}
		if s := d.expect(t, "synced"); s.Seq != want[4] {
			t.Fatalf("synced %d, want %d", s.Seq, want[4])
		}
		d.Close()

		h := http.Header{"Last-Event-Id": {strconv.FormatUint(want[2], 10)}}
		d = openSSE(t, e.url, "alice", "phone", "since=0", h)
		if w := d.expect(t, "welcome"); w.From == nil || *w.From != want[3] || w.Gap {
			t.Fatalf("welcome = %+v, want from %d", w, want[3])
		}
		if got := d.messages(t, 2); !slices.Equal(seqs(got), want[3:]) {
			t.Fatalf("resumed %v, want %v", seqs(got), want[3:])
		}
		d.expect(t, "synced")
		c.fenceSSE(t, d, "alice")
		d.Close()

		// Last-Event-ID acked everything up to want[2]; want[3:] were
		// delivered but not acked.
		waitAckFloor(t, c, "alice", "phone", want[2])
		d = openSSE(t, e.url, "alice", "phone", "", nil)
		if w := d.expect(t, "welcome"); w.From == nil || *w.From != want[3] {
			t.Fatalf("welcome = %+v, want from %d", w, want[3])
		}
		if got := d.messages(t, 2); !slices.Equal(seqs(got), want[3:]) {
			t.Fatalf("after reconnect %v, want %v", seqs(got), want[3:])
		}
	})
}

func TestSSEAckEndpoint(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		c := newCluster(t, engine, nil)
		e := newEdge(t, c)
		tok := mint(t, "alice", "")

		d := openSSESynced(t, e.url, "alice", "phone", "", nil)
		var want []uint64
		for i := 0; i < 4; i++ {
			want = append(want, c.publish(t, "alice", fmt.Sprintf("m%d", i)))
		}
		d.messages(t, 4)
		// Through the open stream on this edge.
		if st, code := postAck(t, e.url, tok, ackBody("phone", want[1])); st != http.StatusNoContent {
			t.Fatalf("ack = %d %s, want 204", st, code)
		}
		waitAckFloor(t, c, "alice", "phone", want[1])
		d.Close()

		d = openSSE(t, e.url, "alice", "phone", "", nil)
		if w := d.expect(t, "welcome"); w.From == nil || *w.From != want[2] {
			t.Fatalf("welcome = %+v, want from %d", w, want[2])
		}
		if got := d.messages(t, 2); !slices.Equal(seqs(got), want[2:]) {
			t.Fatalf("after ack %v, want %v", seqs(got), want[2:])
		}
		d.Close()

		// The device is offline: the ack moves its stored position.
		waitUntil(t, 10*time.Second, func() bool { return e.srv.Connections() == 0 })
		if st, code := postAck(t, e.url, tok, ackBody("phone", want[3])); st != http.StatusNoContent {
			t.Fatalf("offline ack = %d %s, want 204", st, code)
		}
		waitAckFloor(t, c, "alice", "phone", want[3])
		// An ack never moves the position back.
		if st, code := postAck(t, e.url, tok, ackBody("phone", want[0])); st != http.StatusNoContent {
			t.Fatalf("old ack = %d %s, want 204", st, code)
		}
		d = openSSE(t, e.url, "alice", "phone", "", nil)
		if w := d.expect(t, "welcome"); w.From != nil {
			t.Fatalf("welcome after a full ack = %+v, want from null", w)
		}
		if s := d.expect(t, "synced"); s.Seq != want[3] {
			t.Fatalf("synced = %d, want %d", s.Seq, want[3])
		}
		c.fenceSSE(t, d, "alice")
		// And through another edge, which has no stream of the device.
		next := c.publish(t, "alice", "later")
		if got := d.messages(t, 1); got[0].Seq != next {
			t.Fatalf("got %v, want %d", seqs(got), next)
		}
		e2 := newEdge(t, c)
		if st, code := postAck(t, e2.url, tok, ackBody("phone", next)); st != http.StatusNoContent {
			t.Fatalf("ack on another edge = %d %s, want 204", st, code)
		}
		waitAckFloor(t, c, "alice", "phone", next)
	})
}

func TestSSEAckEndpointErrors(t *testing.T) {
	t.Parallel()
	c := newCluster(t, config.DeliveryLive, nil)
	e := newEdge(t, c)
	d := openSSE(t, e.url, "alice", "phone", "", nil)
	d.expect(t, "welcome")
	bound := mint(t, "alice", "phone")
	for _, tc := range []struct {
		name, tok, body string
		status          int
		code            string
	}{
		{"no token", "", ackBody("phone", 1), 401, "unauthorized"},
		{"bad token", "x.y.z", ackBody("phone", 1), 401, "unauthorized"},
		{"bad json", bound, `{"device":`, 400, "invalid_json"},
		{"not an object", bound, `[1]`, 400, "invalid_json"},
		{"bad device", bound, ackBody("a b", 1), 400, "invalid_device"},
		{"no device", bound, `{"seq":1}`, 400, "invalid_device"},
		{"zero seq", bound, ackBody("phone", 0), 400, "invalid_request"},
		{"negative seq", bound, `{"device":"phone","seq":-1}`, 400, "invalid_request"},
		{"too large", bound, `{"device":"phone","seq":1,"x":"` + strings.Repeat("x", 5000) + `"}`, 413, "too_large"},
		{"token of another device", bound, ackBody("laptop", 1), 403, "forbidden"},
		{"unknown device", mint(t, "alice", ""), ackBody("never", 1), 404, "not_found"},
		{"another user's device", mint(t, "bob", ""), ackBody("phone", 1), 404, "not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if st, code := postAck(t, e.url, tc.tok, tc.body); st != tc.status || code != tc.code {
				t.Fatalf("got %d %q, want %d %q", st, code, tc.status, tc.code)
			}
		})
	}
}

// TestSSEResendAndAck: a message the client does not ack is sent again on
// the same stream after the ack wait, with the same id; POST /v1/ack stops
// that.
func TestSSEResendAndAck(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		c := newCluster(t, engine, func(cfg *config.Config) { cfg.Edge.AckWait = 300 * time.Millisecond })
		e := newEdge(t, c)
		d := openSSESynced(t, e.url, "alice", "phone", "", nil)
		seq := c.publish(t, "alice", "once")
		first := d.messages(t, 1)
		again := d.messages(t, 1)
		if first[0].Seq != seq || again[0].Seq != seq {
			t.Fatalf("got %d then %d, want %d twice", first[0].Seq, again[0].Seq, seq)
		}
		if st, code := postAck(t, e.url, mint(t, "alice", "phone"), ackBody("phone", seq)); st != http.StatusNoContent {
			t.Fatalf("ack = %d %s", st, code)
		}
		waitAckFloor(t, c, "alice", "phone", seq)
		c.fenceResendSSE(t, d, "alice")
	})
}

// TestSSEAutoAck: with ack=auto the stream acks what it wrote: no resends,
// and a reconnect resumes after the last written message.
func TestSSEAutoAck(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		c := newCluster(t, engine, func(cfg *config.Config) { cfg.Edge.AckWait = 300 * time.Millisecond })
		e := newEdge(t, c)
		d := openSSESynced(t, e.url, "alice", "phone", "ack=auto", nil)
		var want []uint64
		for i := 0; i < 3; i++ {
			want = append(want, c.publish(t, "alice", fmt.Sprintf("m%d", i)))
		}
		if got := d.messages(t, 3); !slices.Equal(seqs(got), want) {
			t.Fatalf("got %v, want %v", seqs(got), want)
		}
		waitAckFloor(t, c, "alice", "phone", want[2])
		d.quiet(t, 700*time.Millisecond)
		d.Close()
		d = openSSE(t, e.url, "alice", "phone", "", nil)
		if w := d.expect(t, "welcome"); w.From != nil {
			t.Fatalf("welcome = %+v, want from null", w)
		}
	})
}

func TestSSERejections(t *testing.T) {
	t.Parallel()
	c := newCluster(t, config.DeliveryLive, func(cfg *config.Config) { cfg.Edge.MaxConnsPerUser = 1 })
	e := newEdge(t, c)
	for _, tc := range []struct {
		name, tok, device, query string
		h                        http.Header
		status                   int
	}{
		{"no token", "", "phone", "", nil, 401},
		{"bad token", "not-a-jwt", "phone", "", nil, 401},
		{"expired token", expired(t, "alice"), "phone", "", nil, 401},
		{"token of another device", mint(t, "alice", "laptop"), "phone", "", nil, 401},
		{"bad device", mint(t, "alice", ""), "a/b", "", nil, 400},
		{"no device", mint(t, "alice", ""), "", "", nil, 400},
		{"bad since", mint(t, "alice", ""), "phone", "since=x", nil, 400},
		{"bad Last-Event-ID", mint(t, "alice", ""), "phone", "", http.Header{"Last-Event-Id": {"x"}}, 400},
		{"bad ack mode", mint(t, "alice", ""), "phone", "ack=never", nil, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, resp, err := trySSE(e.url, tc.tok, tc.device, tc.query, tc.h)
			if resp == nil || resp.StatusCode != tc.status {
				t.Fatalf("got %v %v, want %d", resp, err, tc.status)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("content type %q", ct)
			}
		})
	}
	t.Run("token in the query", func(t *testing.T) {
		d, resp, err := trySSE(e.url, "", "phone", "token="+mint(t, "alice", "phone"), nil)
		if err != nil {
			t.Fatalf("%v %v", resp, err)
		}
		defer d.Close()
		d.expect(t, "welcome")
		t.Run("too many connections", func(t *testing.T) {
			_, resp, err := trySSE(e.url, mint(t, "alice", ""), "laptop", "", nil)
			if resp == nil || resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(err.Error(), "too_many_connections") {
				t.Fatalf("got %v %v, want 429 too_many_connections", resp, err)
			}
		})
	})
}

func expired(t *testing.T, user string) string {
	t.Helper()
	tok, err := token.Mint(testSecret, user, "", -time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestSSEKeepalive(t *testing.T) {
	t.Parallel()
	c := newCluster(t, config.DeliveryLive, func(cfg *config.Config) { cfg.Edge.PingInterval = 50 * time.Millisecond })
	e := newEdge(t, c)
	d := openSSE(t, e.url, "alice", "phone", "", nil)
	for {
		if ev := d.next(t, 5*time.Second); ev.Comment == "ping" {
			return
		}
	}
}

// TestSSEShutdown: the edge's Shutdown ends every stream, after an error
// event saying why, and leaves no SSE goroutine behind.
func TestSSEShutdown(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		c := newCluster(t, engine, nil)
		e := newEdge(t, c)
		var ds []*sseClient
		for i := 0; i < 3; i++ {
			d := openSSESynced(t, e.url, "alice", fmt.Sprintf("d%d", i), "", nil)
			ds = append(ds, d)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.srv.Shutdown(ctx); err != nil {
			t.Fatalf("shutdown: %v", err)
		}
		for _, d := range ds {
			evs := d.waitEnded(t, 5*time.Second)
			if len(evs) == 0 || evs[len(evs)-1].Event != "error" {
				t.Fatalf("events before the end %+v, want an error event last", evs)
			}
			if f := decodeEvent(t, evs[len(evs)-1]); f.Code != "shutting_down" {
				t.Fatalf("error event %+v", f)
			}
		}
		if _, resp, _ := trySSE(e.url, mint(t, "alice", ""), "late", "", nil); resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("connect after shutdown: %v, want 503", resp)
		}
		waitUntil(t, 5*time.Second, func() bool { return sseGoroutines() == "" })
	})
}

// sseGoroutines returns the stacks of goroutines running the edge's SSE
// code.
func sseGoroutines() string {
	return strings.Join(streamstest.Goroutines(func(g string) bool {
		return strings.Contains(g, "edge.(*sseConn)") || strings.Contains(g, "edge.(*Server).handleSSE")
	}), "\n\n")
}

// TestSSEBrowserOrigins: a page from an allowed origin may read the stream
// and POST acks (with a CORS preflight); any other origin is refused.
func TestSSEBrowserOrigins(t *testing.T) {
	t.Parallel()
	const app = "https://app.example"
	c := newCluster(t, config.DeliveryLive, func(cfg *config.Config) { cfg.Edge.AllowedOrigins = []string{app} })
	e := newEdge(t, c)

	d := openSSE(t, e.url, "alice", "phone", "", http.Header{"Origin": {app}})
	if got := d.resp.Header.Get("Access-Control-Allow-Origin"); got != app {
		t.Fatalf("Access-Control-Allow-Origin %q", got)
	}
	d.expect(t, "welcome")
	if _, resp, _ := trySSE(e.url, mint(t, "alice", ""), "laptop", "", http.Header{"Origin": {"https://evil.example"}}); resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("other origin: %v, want 403", resp)
	}

	preflight := func(origin string) *http.Response {
		req, err := http.NewRequest(http.MethodOptions, e.url+"/v1/ack", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := preflight(app)
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != app ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	if resp := preflight("https://evil.example"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("preflight of another origin: %d, want 403", resp.StatusCode)
	}
}
