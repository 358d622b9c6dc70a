package edge

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-push/herald/streams"
)

// benchFeed hands out n copies of one stored payload with rising seqs, at
// most window unacked. It stands in for an engine so that the benchmark
// measures the session's write path alone: decode and encode of the frame,
// the pump, the socket and the ack path.
type benchFeed struct {
	payload []byte
	n       uint64
	window  uint64
	seq     uint64 // owned by the pump
	at      time.Time
	acked   atomic.Uint64
	notify  atomic.Pointer[func()]
}

func (f *benchFeed) Start() Start { return Start{} }

func (f *benchFeed) Notify(fn func()) { f.notify.Store(&fn) }

func (f *benchFeed) Poll(context.Context) (Delivery, bool, error) {
	if f.seq >= f.n || f.seq-f.acked.Load() >= f.window {
		return Delivery{}, false, nil
	}
	f.seq++
	return Delivery{Seq: f.seq, Payload: f.payload, Time: f.at}, true, nil
}

func (f *benchFeed) Ack(_ context.Context, seq uint64) error {
	f.acked.Store(seq)
	if fn := f.notify.Load(); fn != nil {
		(*fn)()
	}
	return nil
}

func (f *benchFeed) Close() error { return nil }

func benchPayload(b *testing.B) []byte {
	b.Helper()
	p := 5
	e := streams.Envelope{ID: "01J9ZK3V6Q2W8E4R5T6Y7U8I9O", User: "alice", Time: time.Now().UTC(),
		Title: "Build failed", Body: strings.Repeat("x", 128), Priority: &p, Tags: []string{"ci"}}
	payload, err := e.Encode()
	if err != nil {
		b.Fatal(err)
	}
	return payload
}

// BenchmarkEncodeMessage is the per-delivery frame encoding (the stored
// envelope decoded, validated and re-encoded with type and seq).
func BenchmarkEncodeMessage(b *testing.B) {
	d := Delivery{Seq: 4211, Payload: benchPayload(b), Time: time.Now()}
	b.SetBytes(int64(len(d.Payload)))
	b.ReportAllocs()
	for b.Loop() {
		_ = encodeMessage(d)
	}
}

// BenchmarkSessionWrite pushes b.N messages through one session over a
// real loopback WebSocket: pump → socket → a client that
// reads every frame and acks every 16th (window 256, as edge.max_inflight).
func BenchmarkSessionWrite(b *testing.B) {
	payload := benchPayload(b)
	m, err := newMetrics(nil, "bench")
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	up := websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096}
	served := make(chan struct{})
	var feed *benchFeed
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(served)
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		ss := newSession(context.Background(), Device{User: "alice", Device: "d"}, feed, heraldCodec{}, log, m)
		c := newWSConn(ss, conn, nil, wsOptions{
			writeTimeout: 10 * time.Second, pingInterval: time.Minute, idleTimeout: time.Minute, maxFrameBytes: 4096,
		})
		c.run(time.Time{})
	}))
	defer hs.Close()
	feed = &benchFeed{payload: payload, n: uint64(b.N), window: 256, at: time.Now()}
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	got := 0
	for got < b.N {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			b.Fatal(err)
		}
		if strings.HasPrefix(string(msg), `{"type":"message"`) {
			got++
			if got%16 == 0 || got == b.N {
				ack := `{"type":"ack","seq":` + strconv.Itoa(got) + `}`
				if err := conn.WriteMessage(websocket.TextMessage, []byte(ack)); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.StopTimer()
	_ = conn.Close()
	<-served
	if got != b.N {
		b.Fatal(errors.New("short read"))
	}
}
