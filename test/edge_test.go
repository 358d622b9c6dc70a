package test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/streams"
)

func TestDeliveryToConnectedDevices(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		c := newCluster(t, engine, nil)
		e := newEdge(t, c)

		phone := dial(t, e.url, "alice", "phone", "")
		w := phone.expect(t, "welcome")
		if w.User != "alice" || w.Device != "phone" || w.From != nil || w.Gap {
			t.Fatalf("welcome = %+v", w)
		}
		phone.expect(t, "synced")
		laptop := dialSynced(t, e.url, "alice", "laptop", "")
		bob := dialSynced(t, e.url, "bob", "phone", "")

		var want []uint64
		for i := 0; i < 5; i++ {
			want = append(want, c.publish(t, "alice", fmt.Sprintf("m%d", i)))
		}
		for _, d := range []*wsClient{phone, laptop} {
			got := d.messages(t, 5)
			if !slices.Equal(seqs(got), want) || !slices.Equal(bodies(got), []string{"m0", "m1", "m2", "m3", "m4"}) {
				t.Fatalf("got %v %v, want %v", seqs(got), bodies(got), want)
			}
		}
		c.fenceWS(t, bob, "bob")
	})
}

func TestOfflineDeliveryAndResume(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		c := newCluster(t, engine, nil)
		e := newEdge(t, c)

		d := dialSynced(t, e.url, "alice", "phone", "")
		first := c.publish(t, "alice", "before")
		got := d.messages(t, 1)
		if got[0].Seq != first {
			t.Fatalf("got %v", got)
		}
		d.ack(t, first)
		// The ack is stored asynchronously; waitAckFloor below waits for
		// it before the device reconnects.
		d.Close()

		var want []uint64
		for i := 0; i < 5; i++ {
			c.publish(t, "bob", "noise")
			want = append(want, c.publish(t, "alice", fmt.Sprintf("off%d", i)))
		}
		waitAckFloor(t, c, "alice", "phone", first)
		d = dial(t, e.url, "alice", "phone", "")
		w := d.expect(t, "welcome")
		if w.From == nil || *w.From != want[0] || w.Gap {
			t.Fatalf("welcome = %+v, want from %d", w, want[0])
		}
		got = d.messages(t, 5)
		if !slices.Equal(seqs(got), want) {
			t.Fatalf("resumed %v, want %v", seqs(got), want)
		}
		s := d.expect(t, "synced")
		if s.Seq != want[4] {
			t.Fatalf("synced %d, want %d", s.Seq, want[4])
		}
		c.fenceWS(t, d, "alice")
	})
}

func TestUnackedResentAfterReconnect(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		c := newCluster(t, engine, nil)
		e := newEdge(t, c)
		d := dialSynced(t, e.url, "alice", "phone", "")
		var want []uint64
		for i := 0; i < 4; i++ {
			want = append(want, c.publish(t, "alice", fmt.Sprintf("m%d", i)))
		}
		got := d.messages(t, 4)
		if !slices.Equal(seqs(got), want) {
			t.Fatalf("delivered %v, want %v", seqs(got), want)
		}
		d.ack(t, want[1]) // cumulative: m0 and m1
		waitAckFloor(t, c, "alice", "phone", want[1])
		d.Close()

		d = dial(t, e.url, "alice", "phone", "")
		d.expect(t, "welcome")
		got = d.messages(t, 2)
		if !slices.Equal(seqs(got), want[2:]) {
			t.Fatalf("re-sent %v, want %v", seqs(got), want[2:])
		}
		d.ack(t, want[3])
		waitAckFloor(t, c, "alice", "phone", want[3])
		d.Close()

		d = dial(t, e.url, "alice", "phone", "")
		w := d.expect(t, "welcome")
		if w.From != nil {
			t.Fatalf("welcome after a full ack = %+v, want from null", w)
		}
		if s := d.expect(t, "synced"); s.Seq != want[3] {
			t.Fatalf("synced = %d, want %d", s.Seq, want[3])
		}
		c.fenceWS(t, d, "alice")
	})
}

func TestResendAfterAckWaitOnSameConnection(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		c := newCluster(t, engine, func(cfg *config.Config) { cfg.Edge.AckWait = 300 * time.Millisecond })
		e := newEdge(t, c)
		d := dialSynced(t, e.url, "alice", "phone", "")
		seq := c.publish(t, "alice", "once")
		first := d.messages(t, 1)
		again := d.messages(t, 1)
		if first[0].Seq != seq || again[0].Seq != seq {
			t.Fatalf("got %d then %d, want %d twice", first[0].Seq, again[0].Seq, seq)
		}
		d.ack(t, seq)
		waitAckFloor(t, c, "alice", "phone", seq)
		c.fenceResendWS(t, d, "alice")
	})
}

func TestSinceReplayClampAndGap(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		c := newCluster(t, engine, func(cfg *config.Config) { cfg.Stream.MaxMsgsPerUser = 5 })
		e := newEdge(t, c)
		var all []uint64
		for i := 0; i < 8; i++ {
			all = append(all, c.publish(t, "alice", fmt.Sprintf("m%d", i)))
			c.publish(t, "bob", "noise")
		}
		// alice keeps m3..m7 (5 per user).
		t.Run("replay", func(t *testing.T) {
			d := dial(t, e.url, "alice", "a", fmt.Sprintf("since=%d", all[5]))
			w := d.expect(t, "welcome")
			if w.From == nil || *w.From != all[6] || w.Gap {
				t.Fatalf("welcome = %+v, want from %d no gap", w, all[6])
			}
			got := d.messages(t, 2)
			if !slices.Equal(seqs(got), all[6:]) || got[1].Body != "m7" {
				t.Fatalf("replayed %v", seqs(got))
			}
			if s := d.expect(t, "synced"); s.Seq != all[7] {
				t.Fatalf("synced = %d, want %d", s.Seq, all[7])
			}
		})
		t.Run("gap", func(t *testing.T) {
			d := dial(t, e.url, "alice", "b", fmt.Sprintf("since=%d", all[0]))
			w := d.expect(t, "welcome")
			if !w.Gap || w.From == nil || *w.From != all[3] {
				t.Fatalf("welcome = %+v, want gap from %d", w, all[3])
			}
			got := d.messages(t, 5)
			if !slices.Equal(seqs(got), all[3:]) {
				t.Fatalf("got %v", seqs(got))
			}
		})
		t.Run("no gap from the first retained", func(t *testing.T) {
			d := dial(t, e.url, "alice", "c", fmt.Sprintf("since=%d", all[3]))
			if w := d.expect(t, "welcome"); w.Gap {
				t.Fatalf("welcome = %+v, want no gap", w)
			}
		})
		t.Run("beyond the end is clamped", func(t *testing.T) {
			d := dial(t, e.url, "alice", "d", "since=999999")
			w := d.expect(t, "welcome")
			if w.From != nil || w.Gap {
				t.Fatalf("welcome = %+v", w)
			}
			d.expect(t, "synced")
			seq := c.publish(t, "alice", "next")
			if got := d.messages(t, 1); got[0].Seq != seq {
				t.Fatalf("after clamp got %v, want %d", seqs(got), seq)
			}
		})
	})
}

func TestResumeOnAnotherEdge(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		c := newCluster(t, engine, nil)
		e1, e2 := newEdge(t, c), newEdge(t, c)
		d := dialSynced(t, e1.url, "alice", "phone", "")
		var want []uint64
		for i := 0; i < 10; i++ {
			want = append(want, c.publish(t, "alice", fmt.Sprintf("m%d", i)))
		}
		got := d.messages(t, 10)
		d.ack(t, got[5].Seq)
		waitAckFloor(t, c, "alice", "phone", got[5].Seq)
		d.Close()
		for i := 10; i < 15; i++ {
			want = append(want, c.publish(t, "alice", fmt.Sprintf("m%d", i)))
		}
		d = dial(t, e2.url, "alice", "phone", "")
		d.expect(t, "welcome")
		got = d.messages(t, 9)
		if !slices.Equal(seqs(got), want[6:]) {
			t.Fatalf("on edge 2 got %v, want %v", seqs(got), want[6:])
		}
	})
}

func TestRawPayloadDeliveredAsText(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		c := newCluster(t, engine, nil)
		e := newEdge(t, c)
		d := dial(t, e.url, "a.b*c>d", "phone", "")
		if w := d.expect(t, "welcome"); w.User != "a.b*c>d" {
			t.Fatalf("welcome = %+v", w)
		}
		d.expect(t, "synced")
		seq := c.publishRaw(t, "a.b*c>d", []byte("not json \xff"))
		got := d.messages(t, 1)
		if got[0].Seq != seq || got[0].Body != "not json \uFFFD" {
			t.Fatalf("got %+v", got[0])
		}
	})
}

func TestNewDeviceBacklog(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		c := newCluster(t, engine, func(cfg *config.Config) { cfg.Edge.NewDeviceBacklog = 3 })
		e := newEdge(t, c)
		var all []uint64
		for i := 0; i < 6; i++ {
			all = append(all, c.publish(t, "alice", fmt.Sprintf("m%d", i)))
			c.publish(t, "bob", "noise")
		}
		d := dial(t, e.url, "alice", "new", "")
		w := d.expect(t, "welcome")
		if w.From == nil || *w.From != all[3] {
			t.Fatalf("welcome = %+v, want from %d", w, all[3])
		}
		if got := d.messages(t, 3); !slices.Equal(seqs(got), all[3:]) {
			t.Fatalf("got %v", seqs(got))
		}
	})
}

// TestForgedStreamHeaders publishes straight to NATS with headers that
// imitate the server's (Nats-Sequence, Nats-Time-Stamp): the server's own
// values must win, live and from the backlog.
func TestForgedStreamHeaders(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		c := newCluster(t, engine, nil)
		e := newEdge(t, c)
		live := dialSynced(t, e.url, "alice", "live", "")
		m := nats.NewMsg(streams.Subjects{}.User("alice"))
		m.Header.Set("Nats-Sequence", "999")
		m.Header.Set("Nats-Last-Sequence", "998")
		m.Header.Set("Nats-Time-Stamp", "not a time")
		m.Data = []byte(`{"body":"forged"}`)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ack, err := c.js.PublishMsg(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		next := c.publish(t, "alice", "next")
		want := []uint64{ack.Sequence, next}
		if got := live.messages(t, 2); !slices.Equal(seqs(got), want) || got[0].Body != "forged" {
			t.Fatalf("live got %v %v, want %v", seqs(got), bodies(got), want)
		}
		replay := dial(t, e.url, "alice", "replay", "since=0")
		if w := replay.expect(t, "welcome"); w.From == nil || *w.From != want[0] {
			t.Fatalf("welcome = %+v, want from %d", w, want[0])
		}
		if got := replay.messages(t, 2); !slices.Equal(seqs(got), want) {
			t.Fatalf("replay got %v, want %v", seqs(got), want)
		}
		if s := replay.expect(t, "synced"); s.Seq != next {
			t.Fatalf("synced %d, want %d", s.Seq, next)
		}
	})
}
