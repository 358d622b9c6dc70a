package test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/config"
)

// Read state and device status (SPEC §10), end to end on both engines.

// sendRead sends the read frame of seq.
func (c *wsClient) sendRead(t *testing.T, seq uint64) {
	t.Helper()
	if err := c.conn.WriteMessage(websocket.TextMessage, herald.AppendRead(nil, seq)); err != nil {
		t.Fatalf("read: %v", err)
	}
}

// expectRead reads up to the next frame that is not a message (the
// consumer engine may send a message again), which must be a read frame
// of seq by device.
func (c *wsClient) expectRead(t *testing.T, seq uint64, device string) {
	t.Helper()
	for {
		f := c.next(t, 10*time.Second)
		if f.Type == "message" {
			continue
		}
		if f.Type != "read" || f.Seq != seq || f.Device != device {
			t.Fatalf("got %+v, want a read frame of seq %d by %q", f, seq, device)
		}
		return
	}
}

// postRead posts {"seq":seq} to base's /v1/read with tok and returns the
// read position of the answer.
func postRead(t *testing.T, base, tok string, seq uint64) uint64 {
	t.Helper()
	out := expectJSON(t, http.MethodPost, base, "/v1/read", tok, `{"seq":`+strconv.FormatUint(seq, 10)+`}`, http.StatusOK)
	return uint64(out["read"].(float64))
}

// deviceStatus reads GET /v1/users/{user}/devices with auth.
func deviceStatus(t *testing.T, base, user, auth string) herald.Devices {
	t.Helper()
	status, b := call(t, http.MethodGet, base, "/v1/users/"+user+"/devices", auth, "")
	if status != http.StatusOK {
		t.Fatalf("device status: %d %s", status, b)
	}
	var d herald.Devices
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("device status %s: %v", b, err)
	}
	return d
}

// TestReadState: a read frame moves the user's read position and reaches
// the user's other devices (not the one that read); it never moves back,
// is clamped to the last message, and the welcome of the next connection
// carries it. POST /v1/read does the same for a client without a socket.
func TestReadState(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		c := newCluster(t, engine, withProducerKey)
		n := newNode(t, c)
		phone := dialSynced(t, n.url, "alice", "phone", "")
		laptop := dialSynced(t, n.url, "alice", "laptop", "")
		bob := dialSynced(t, n.url, "bob", "phone", "")
		var all []uint64
		for i := range 3 {
			all = append(all, c.publish(t, "alice", "m"+strconv.Itoa(i)))
		}
		phone.messages(t, 3)
		laptop.messages(t, 3)

		phone.sendRead(t, all[1])
		laptop.expectRead(t, all[1], "phone")
		phone.sendRead(t, all[0]) // backwards: nothing moves, nobody is told
		laptop.sendRead(t, all[2]+100)
		// The phone gets the laptop's read, clamped, and nothing before it.
		phone.expectRead(t, all[2], "laptop")

		if got := postRead(t, n.url, mint(t, "alice", ""), all[0]); got != all[2] {
			t.Errorf("POST /v1/read of an older seq = %d, want the position %d", got, all[2])
		}
		last := c.publish(t, "alice", "m3")
		phone.messages(t, 1)
		laptop.messages(t, 1)
		if got := postRead(t, n.url, mint(t, "alice", "tablet"), last); got != last {
			t.Errorf("POST /v1/read = %d, want %d", got, last)
		}
		phone.expectRead(t, last, "tablet")
		laptop.expectRead(t, last, "tablet")

		w := dial(t, n.url, "alice", "watch", "")
		if f := w.expect(t, "welcome"); f.Read != last {
			t.Errorf("welcome %+v, want read %d", f, last)
		}
		// Over SSE: the welcome event carries it, a read event follows.
		tv := openSSE(t, n.url, "alice", "tv", "", nil)
		if f := tv.expect(t, "welcome"); f.Read != last {
			t.Errorf("SSE welcome %+v, want read %d", f, last)
		}
		tv.expect(t, "synced")
		newest := c.publish(t, "alice", "m4")
		tv.messages(t, 1)
		phone.sendRead(t, newest)
		if f := tv.expect(t, "read"); f.Seq != newest || f.Device != "phone" {
			t.Errorf("SSE read event %+v, want seq %d by phone", f, newest)
		}
		bob.quiet(t, 100*time.Millisecond) // another user's reads never reach bob
		if w := dial(t, n.url, "bob", "phone", ""); w.expect(t, "welcome").Read != 0 {
			t.Error("bob has a read position")
		}

		for _, tc := range []struct {
			tok, body string
			status    int
		}{
			{"", `{"seq":1}`, http.StatusUnauthorized},
			{mint(t, "alice", ""), `{"seq":0}`, http.StatusBadRequest},
			{mint(t, "alice", ""), `{"seq":"x"}`, http.StatusBadRequest},
			{mint(t, "alice", ""), `[`, http.StatusBadRequest},
			{mint(t, "alice", ""), `{"seq":1,"device":"bad device"}`, http.StatusBadRequest},
			{mint(t, "alice", "phone"), `{"seq":1,"device":"laptop"}`, http.StatusForbidden},
		} {
			if status, b := call(t, http.MethodPost, n.url, "/v1/read", tc.tok, tc.body); status != tc.status {
				t.Errorf("POST /v1/read %s: %d %s, want %d", tc.body, status, b, tc.status)
			}
		}
	})
}

// TestReadDeviceStatus: device status lists each device with its acked
// position, last seen time and whether it is connected, and the user's read
// position and last seq, for the producer key or the user's token.
func TestReadDeviceStatus(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		c := newCluster(t, engine, withProducerKey)
		n := newNode(t, c)
		phone := dialSynced(t, n.url, "alice", "phone", "")
		laptop := dialSynced(t, n.url, "alice", "laptop", "")
		first := c.publish(t, "alice", "one")
		last := c.publish(t, "alice", "two")
		phone.messages(t, 2)
		laptop.messages(t, 2)
		phone.ack(t, first)
		laptop.ack(t, last)
		waitAckFloor(t, c, "alice", "phone", first)
		waitAckFloor(t, c, "alice", "laptop", last)
		phone.sendRead(t, first)
		laptop.expectRead(t, first, "phone")
		laptop.Close()

		var st herald.Devices
		waitUntil(t, 10*time.Second, func() bool {
			st = deviceStatus(t, n.url, "alice", testProducerKey)
			return len(st.Devices) == 2 && !st.Devices[0].Connected && st.Devices[1].Connected
		})
		if st.Read != first || st.LastSeq != last {
			t.Errorf("status %+v, want read %d and last_seq %d", st, first, last)
		}
		lap, ph := st.Devices[0], st.Devices[1]
		if lap.Device != "laptop" || lap.Acked != last || lap.LastSeen == nil || time.Since(*lap.LastSeen) > time.Minute {
			t.Errorf("laptop %+v", lap)
		}
		if ph.Device != "phone" || ph.Acked != first || ph.LastSeen == nil {
			t.Errorf("phone %+v", ph)
		}

		if got := deviceStatus(t, n.url, "alice", mint(t, "alice", "")); len(got.Devices) != 2 {
			t.Errorf("with the user's token: %+v", got)
		}
		if got := deviceStatus(t, n.url, "nobody", testProducerKey); got.Read != 0 || got.LastSeq != 0 || len(got.Devices) != 0 || got.Devices == nil {
			t.Errorf("an unknown user: %+v", got)
		}
		for _, tc := range []struct {
			user, auth string
			status     int
		}{
			{"alice", "", http.StatusUnauthorized},
			{"alice", "not-a-key", http.StatusUnauthorized},
			{"alice", mint(t, "bob", ""), http.StatusForbidden},
		} {
			if status, b := call(t, http.MethodGet, n.url, "/v1/users/"+tc.user+"/devices", tc.auth, ""); status != tc.status {
				t.Errorf("device status of %s: %d %s, want %d", tc.user, status, b, tc.status)
			}
		}
	})
}

// TestReadSyncAcrossEdges: with a user's devices on two edges, a read on
// one edge reaches the device on the other, an ack received by one edge
// reaches the device's stream on the other (it frees the window there),
// and device status on either edge sees the devices of both.
func TestReadSyncAcrossEdges(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		c := newCluster(t, engine, func(cfg *config.Config) {
			withProducerKey(cfg)
			cfg.Edge.MaxInflight = 1
			cfg.Edge.AckWait = time.Minute // no resend during the test
		})
		e1, e2 := newNode(t, c), newNode(t, c)
		phone := dialSynced(t, e1.url, "alice", "phone", "")
		laptop := dialSynced(t, e2.url, "alice", "laptop", "")

		m1 := c.publish(t, "alice", "one")
		m2 := c.publish(t, "alice", "two")
		if f := laptop.messages(t, 1)[0]; f.Seq != m1 {
			t.Fatalf("laptop got %+v, want %d", f, m1)
		}
		// The window of one holds m2 back until m1 is acked, here by an
		// SSE-style POST /v1/ack to the other edge.
		status, b := call(t, http.MethodPost, e1.url, "/v1/ack", mint(t, "alice", "laptop"), `{"device":"laptop","seq":`+strconv.FormatUint(m1, 10)+`}`)
		if status != http.StatusNoContent {
			t.Fatalf("POST /v1/ack: %d %s", status, b)
		}
		if f := laptop.messages(t, 1)[0]; f.Seq != m2 {
			t.Fatalf("laptop got %+v, want %d once the other edge took the ack", f, m2)
		}

		phone.messages(t, 1)
		phone.ack(t, m1)
		phone.messages(t, 1)
		phone.ack(t, m2)
		phone.sendRead(t, m2)
		laptop.expectRead(t, m2, "phone")
		m3 := c.publish(t, "alice", "three")
		phone.messages(t, 1)
		if got := postRead(t, e2.url, mint(t, "alice", "laptop"), m3); got != m3 {
			t.Fatalf("POST /v1/read = %d", got)
		}
		phone.expectRead(t, m3, "laptop")

		for _, e := range []*edgeNode{e1, e2} {
			waitUntil(t, 10*time.Second, func() bool {
				st := deviceStatus(t, e.url, "alice", testProducerKey)
				return len(st.Devices) == 2 && st.Devices[0].Connected && st.Devices[1].Connected && st.Read == m3
			})
		}
	})
}

// TestAckFramesAcrossEdges: with a device streaming from two edges at once
// (as while it moves between them), its ack frames on one free the window
// of its stream on the other, the last of a quick run of acks included
// (the edge coalesces shared acks and sends the last at the end of the
// period).
func TestAckFramesAcrossEdges(t *testing.T) {
	t.Parallel()
	// Live only: two streams of one device on the consumer engine pull
	// from the same durable consumer and split its messages.
	c := newCluster(t, "live", func(cfg *config.Config) {
		withProducerKey(cfg)
		cfg.Edge.MaxInflight = 1
		cfg.Edge.AckWait = time.Minute // no resend during the test
	})
	e1, e2 := newNode(t, c), newNode(t, c)
	here := dialSynced(t, e1.url, "alice", "laptop", "")
	there := dialSynced(t, e2.url, "alice", "laptop", "")
	m1 := c.publish(t, "alice", "one")
	m2 := c.publish(t, "alice", "two")
	m3 := c.publish(t, "alice", "three")
	for _, cl := range []*wsClient{here, there} {
		if f := cl.messages(t, 1)[0]; f.Seq != m1 {
			t.Fatalf("got %+v, want %d", f, m1)
		}
	}
	here.ack(t, m1)
	if f := here.messages(t, 1)[0]; f.Seq != m2 {
		t.Fatalf("got %+v, want %d", f, m2)
	}
	here.ack(t, m2)
	for _, want := range []uint64{m2, m3} {
		if f := there.messages(t, 1)[0]; f.Seq != want {
			t.Fatalf("the other edge's stream got %+v, want %d once the acks reached it", f, want)
		}
	}
}
