package test

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"
)

// Every way a client names a position (an ack frame, POST /v1/ack, since,
// Last-Event-ID) can name one beyond the stream's last seq, by mistake or
// on purpose. SPEC §9: such a position is clamped to the end, so that the
// messages stored after it are still delivered. A position stored
// unclamped would silently skip them.

// positionPaths are the ways a client names a position.
var positionPaths = []string{"ack-frame", "post-ack", "since", "last-event-id"}

// checkBeyondEnd publishes before messages for a fresh user, names the
// position over (beyond the end) by path, publishes three more and checks
// that the device receives exactly those three, in order, and that the
// welcome of the device's next connection shows where they start.
func checkBeyondEnd(t *testing.T, engine, path string, before int, over uint64) {
	c := newCluster(t, engine, nil)
	e := newEdge(t, c)
	const user, device = "pos", "d1"
	var last uint64
	for i := range before {
		last = c.publish(t, user, fmt.Sprintf("old%d", i))
	}
	over = max(over, last+1)

	var got []frame
	switch path {
	case "ack-frame", "post-ack":
		d := dialSynced(t, e.url, user, device, "")
		if path == "ack-frame" {
			d.ack(t, over)
		}
		d.Close()
		// The edge keeps no session of the device, so POST /v1/ack goes
		// to the stored position, and the session's own final position
		// write is done before it.
		waitUntil(t, 10*time.Second, func() bool { return e.srv.Connections() == 0 })
		if path == "post-ack" {
			if status, code := postAck(t, e.url, mint(t, user, device), ackBody(device, over)); status != http.StatusNoContent {
				t.Fatalf("POST /v1/ack = %d %s", status, code)
			}
		}
		want := publishN(t, c, user, 3)
		r := dial(t, e.url, user, device, "")
		w := r.expect(t, "welcome")
		if w.From == nil || *w.From != want[0] || w.Gap {
			t.Fatalf("welcome = %+v, want from %d without gap", w, want[0])
		}
		got = r.messages(t, 3)
		if !slices.Equal(seqs(got), want) {
			t.Fatalf("after a position of %d (last %d) got %v, want %v", over, last, seqs(got), want)
		}
	case "since":
		d := dialSynced(t, e.url, user, device, "since="+strconv.FormatUint(over, 10))
		want := publishN(t, c, user, 3)
		if got = d.messages(t, 3); !slices.Equal(seqs(got), want) {
			t.Fatalf("since %d (last %d): got %v, want %v", over, last, seqs(got), want)
		}
	case "last-event-id":
		h := http.Header{"Last-Event-Id": {strconv.FormatUint(over, 10)}}
		s := openSSESynced(t, e.url, user, device, "", h)
		want := publishN(t, c, user, 3)
		if got = s.messages(t, 3); !slices.Equal(seqs(got), want) {
			t.Fatalf("Last-Event-ID %d (last %d): got %v, want %v", over, last, seqs(got), want)
		}
	default:
		t.Fatalf("unknown path %q", path)
	}
	for i, f := range got {
		if f.Body != fmt.Sprintf("new%d", i) {
			t.Fatalf("message %d = %q, want new%d", i, f.Body, i)
		}
	}
}

func publishN(t *testing.T, c *cluster, user string, n int) []uint64 {
	t.Helper()
	var out []uint64
	for i := range n {
		out = append(out, c.publish(t, user, fmt.Sprintf("new%d", i)))
	}
	return out
}

func TestPositionBeyondEndIsClamped(t *testing.T) {
	t.Parallel()
	for _, engine := range engines {
		for _, path := range positionPaths {
			for _, before := range []int{0, 2} {
				t.Run(fmt.Sprintf("%s/%s/before=%d", engine, path, before), func(t *testing.T) {
					t.Parallel()
					checkBeyondEnd(t, engine, path, before, 5000)
				})
			}
		}
	}
}

// FuzzPositionBeyondEnd runs checkBeyondEnd with any engine, path, backlog
// and position. Each input starts its own server: `go test -fuzz` runs a
// few inputs a second.
func FuzzPositionBeyondEnd(f *testing.F) {
	for e := range engines {
		for p := range positionPaths {
			f.Add(uint8(e), uint8(p), uint8(1), uint64(1<<63))
		}
	}
	f.Add(uint8(1), uint8(1), uint8(3), uint64(18446744073709551615))
	f.Fuzz(func(t *testing.T, engine, path, before uint8, over uint64) {
		checkBeyondEnd(t, engines[int(engine)%len(engines)], positionPaths[int(path)%len(positionPaths)], int(before%4), over)
	})
}
