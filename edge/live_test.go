package edge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/herald-push/herald/streams"
	"github.com/herald-push/herald/streams/streamstest"
)

// testConfig is the part of Herald's configuration an engine takes.
type testConfig struct {
	Stream streams.Config
	Edge   Config
}

// liveRig is a server with the stream and the devices bucket, a producer
// connection and a live engine on its own connection.
type liveRig struct {
	cfg testConfig
	js  jetstream.JetStream // producer
	kv  jetstream.KeyValue
	nc  *nats.Conn // the engine's
	eng *LiveEngine
}

func newLiveRig(t *testing.T, mutate func(*testConfig), dropLive func(seq uint64) bool) *liveRig {
	t.Helper()
	cfg := testConfig{Stream: streams.DefaultConfig(), Edge: DefaultConfig()}
	cfg.Edge.Delivery = DeliveryLive
	if mutate != nil {
		mutate(&cfg)
	}
	srv := streamstest.RunServer(t)
	pnc := streamstest.Connect(t, srv.ClientURL())
	streamstest.Apply(t, pnc, cfg.Stream)
	js, err := jetstream.New(pnc)
	if err != nil {
		t.Fatal(err)
	}
	// streamstest.Apply created the devices bucket, with the default
	// device TTL.
	if cfg.Edge.DeviceTTL != DefaultConfig().DeviceTTL {
		t.Fatalf("newLiveRig: the devices bucket has the default device TTL, not %v", cfg.Edge.DeviceTTL)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, streams.DevicesBucketName)
	if err != nil {
		t.Fatal(err)
	}
	nc := streamstest.Connect(t, srv.ClientURL())
	ejs, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := NewLiveEngine(ejs, cfg.Stream, cfg.Edge, 5*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	eng.dropLive = dropLive // before the first Open, as documented
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return &liveRig{cfg: cfg, js: js, kv: kv, nc: nc, eng: eng}
}

func (r *liveRig) publish(t *testing.T, user, body string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := r.js.Publish(ctx, streams.Subjects{Prefix: r.cfg.Stream.Prefix}.User(user), []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

func (r *liveRig) open(t *testing.T, user, device string, p Position) Feed {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f, err := r.eng.Open(ctx, Device{User: user, Device: device}, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func (r *liveRig) position(t *testing.T, user, device string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	e, err := r.kv.Get(ctx, streams.DeviceKey(user, device))
	if err != nil {
		t.Fatalf("position of %s/%s: %v", user, device, err)
	}
	n, err := strconv.ParseUint(string(e.Value()), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitNext waits for the feed's next delivery. Only tests wait on a feed: the
// server's pump polls it when notified.
func waitNext(ctx context.Context, f Feed) (Delivery, error) {
	wake := make(chan struct{}, 1)
	f.Notify(func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	for {
		d, ok, err := f.Poll(ctx)
		if err != nil || ok {
			return d, err
		}
		select {
		case <-ctx.Done():
			return Delivery{}, ctx.Err()
		case <-wake:
		}
	}
}

// take reads n deliveries, acking each, and fails on a redelivery.
func take(t *testing.T, f Feed, n int) []Delivery {
	t.Helper()
	var out []Delivery
	for len(out) < n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		d, err := waitNext(ctx, f)
		cancel()
		if err != nil {
			t.Fatalf("after %d deliveries (%v): %v", len(out), seqsOf(out), err)
		}
		if d.Redelivered {
			t.Fatalf("unexpected redelivery of %d", d.Seq)
		}
		out = append(out, d)
		if err := f.Ack(context.Background(), d.Seq); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func seqsOf(ds []Delivery) []uint64 {
	var out []uint64
	for _, d := range ds {
		out = append(out, d.Seq)
	}
	return out
}

// idle asserts that Next has nothing for d.
func idle(t *testing.T, f Feed, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if got, err := waitNext(ctx, f); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next = %+v, %v; want nothing", got, err)
	}
}

// dropSet drops the live copies of chosen seqs, each once, as a lost
// republish would.
type dropSet struct {
	mu      sync.Mutex
	seqs    map[uint64]bool
	dropped []uint64
}

func (s *dropSet) drop(seq uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seqs[seq] {
		delete(s.seqs, seq)
		s.dropped = append(s.dropped, seq)
		return true
	}
	return false
}

func (s *dropSet) add(seqs ...uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, q := range seqs {
		s.seqs[q] = true
	}
}

func (s *dropSet) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.dropped)
}

func TestLiveGapFilledFromStore(t *testing.T) {
	t.Parallel()
	drops := &dropSet{seqs: map[uint64]bool{}}
	r := newLiveRig(t, nil, drops.drop)
	phone := r.open(t, "alice", "phone", Position{})
	laptop := r.open(t, "alice", "laptop", Position{})
	if st := phone.Start(); st.From != 0 || st.Synced != 0 {
		t.Fatalf("start = %+v", st)
	}
	// The stream numbers messages 1, 2, 3…: alice gets the odd seqs, bob
	// the even ones. Lose the republish of alice's 3rd message, and of her
	// 5th and 6th in a row.
	drops.add(5, 9, 11)
	var want []uint64
	var bodies []string
	for i := 0; i < 8; i++ {
		body := fmt.Sprintf("m%d", i)
		want = append(want, r.publish(t, "alice", body))
		bodies = append(bodies, body)
		r.publish(t, "bob", "noise")
	}
	if want[2] != 5 || want[4] != 9 || want[5] != 11 {
		t.Fatalf("seqs %v: the stream was not empty", want)
	}
	for _, f := range []Feed{phone, laptop} {
		got := take(t, f, len(want))
		if !slices.Equal(seqsOf(got), want) {
			t.Fatalf("got %v, want %v", seqsOf(got), want)
		}
		for i, d := range got {
			if string(d.Payload) != bodies[i] || d.Time.IsZero() {
				t.Fatalf("delivery %d = %q at %v, want %q", d.Seq, d.Payload, d.Time, bodies[i])
			}
		}
	}
	if n := drops.count(); n != 3 {
		t.Fatalf("dropped %d live messages, want 3", n)
	}
	// A lost last message is read as soon as the next one reveals it.
	before := r.publish(t, "alice", "before")
	drops.add(before + 2)
	r.publish(t, "bob", "noise")
	lost := r.publish(t, "alice", "lost")
	next := r.publish(t, "alice", "reveals")
	for _, f := range []Feed{phone, laptop} {
		if got := take(t, f, 3); !slices.Equal(seqsOf(got), []uint64{before, lost, next}) {
			t.Fatalf("got %v, want %v", seqsOf(got), []uint64{before, lost, next})
		}
		idle(t, f, 100*time.Millisecond)
	}
	// herald_edge_gap_fills_total counts the messages read for gaps: at
	// most the 4 lost republishes, for each of the 2 feeds.
	if n := testutil.ToFloat64(r.eng.Collector()); n < 1 || n > 8 {
		t.Errorf("gap fills = %v, want 1–8", n)
	}
}

func TestLiveQueueOverflowCatchesUpFromStore(t *testing.T) {
	t.Parallel()
	r := newLiveRig(t, func(c *testConfig) { c.Edge.MaxInflight = 4 }, nil)
	slow := r.open(t, "alice", "slow", Position{})
	fast := r.open(t, "alice", "fast", Position{})
	lf := slow.(*liveFeed)
	// Nobody reads slow while far more than its queue holds is published;
	// fast reads along. The shared subscription must not wait for slow.
	const n = 300
	var want []uint64
	got := make(chan []Delivery, 1)
	go func() {
		var out []Delivery
		for len(out) < n {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			d, err := waitNext(ctx, fast)
			cancel()
			if err != nil {
				break
			}
			out = append(out, d)
			_ = fast.Ack(context.Background(), d.Seq)
		}
		got <- out
	}()
	for i := 0; i < n; i++ {
		want = append(want, r.publish(t, "alice", fmt.Sprintf("m%d", i)))
	}
	if fd := <-got; !slices.Equal(seqsOf(fd), want) {
		t.Fatalf("fast got %d messages %v…, want %d", len(fd), seqsOf(fd[:min(len(fd), 10)]), n)
	}
	lf.mu.Lock()
	queued := len(lf.q) - lf.qHead
	lf.mu.Unlock()
	if queued != lf.qcap || lf.hint.Load() != want[n-1] {
		t.Fatalf("slow feed queued %d (cap %d), hint %d: the queue did not overflow", queued, lf.qcap, lf.hint.Load())
	}
	if d := take(t, slow, n); !slices.Equal(seqsOf(d), want) {
		t.Fatalf("slow got %v…, want %d in order", seqsOf(d[:10]), n)
	}
	idle(t, slow, 100*time.Millisecond)
}

func TestLiveWindowAndRedelivery(t *testing.T) {
	t.Parallel()
	r := newLiveRig(t, func(c *testConfig) {
		c.Edge.MaxInflight = 3
		c.Edge.AckWait = 300 * time.Millisecond
	}, nil)
	f := r.open(t, "alice", "phone", Position{})
	var want []uint64
	for i := 0; i < 5; i++ {
		want = append(want, r.publish(t, "alice", fmt.Sprintf("m%d", i)))
	}
	next := func(ctx context.Context) Delivery {
		t.Helper()
		d, err := waitNext(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	start := time.Now()
	for i := 0; i < 3; i++ {
		if d := next(context.Background()); d.Seq != want[i] || d.Redelivered {
			t.Fatalf("delivery %d = %d (redelivered %v), want %d", i, d.Seq, d.Redelivered, want[i])
		}
	}
	// Three unacked: the window is full.
	idle(t, f, 100*time.Millisecond)
	// A cumulative ack frees two slots.
	if err := f.Ack(context.Background(), want[1]); err != nil {
		t.Fatal(err)
	}
	for i := 3; i < 5; i++ {
		if d := next(context.Background()); d.Seq != want[i] || d.Redelivered {
			t.Fatalf("after the ack got %d, want %d", d.Seq, want[i])
		}
	}
	// The unacked ones come again after the ack wait, in seq order.
	for _, seq := range want[2:] {
		d := next(context.Background())
		if d.Seq != seq || !d.Redelivered {
			t.Fatalf("got %d (redelivered %v), want a redelivery of %d", d.Seq, d.Redelivered, seq)
		}
	}
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Fatalf("redelivered after %v, before the ack wait", el)
	}
	if err := f.Ack(context.Background(), want[4]); err != nil {
		t.Fatal(err)
	}
	idle(t, f, 500*time.Millisecond)
	// Close writes the position at once, not at the next flush.
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if pos := r.position(t, "alice", "phone"); pos != want[4] {
		t.Fatalf("position %d, want %d", pos, want[4])
	}
	if _, err := waitNext(context.Background(), f); !errors.Is(err, ErrFeedClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
}

func TestLivePositionsOfOddIDs(t *testing.T) {
	t.Parallel()
	r := newLiveRig(t, nil, nil)
	const user, device = "émile@example.com", "a:b.c..d-"
	if key := streams.DeviceKey(user, device); key != "=7Ew6ltaWxlQGV4YW1wbGUuY29t.a=3Ab=2Ec=2E=2Ed-" {
		t.Fatalf("key %q", key)
	}
	f := r.open(t, user, device, Position{})
	if pos := r.position(t, user, device); pos != 0 {
		t.Fatalf("a new device is stored at %d, want 0", pos)
	}
	s1 := r.publish(t, user, "one")
	s2 := r.publish(t, user, "two")
	take(t, f, 1)
	// The second is delivered and not acked.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if d, err := waitNext(ctx, f); err != nil || d.Seq != s2 {
		t.Fatalf("got %v %v", d, err)
	}
	// The flusher writes the ack within a second or so.
	streamstest.WaitFor(t, 5*time.Second, func() error {
		if pos := r.position(t, user, device); pos != s1 {
			return fmt.Errorf("position %d, want %d", pos, s1)
		}
		return nil
	})
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// A known device resumes after its ack: the unacked one is re-sent.
	f = r.open(t, user, device, Position{})
	if st := f.Start(); st.From != s2 || st.First != s1+1 || st.Synced != s2 {
		t.Fatalf("start = %+v", st)
	}
	take(t, f, 1)
	_ = f.Close()
	if pos := r.position(t, user, device); pos != s2 {
		t.Fatalf("position %d, want %d", pos, s2)
	}
	// since moves the position, as a consumer reset does: closing without
	// an ack leaves the device before the replay.
	f = r.open(t, user, device, Position{Since: 0, HasSince: true})
	if st := f.Start(); st.From != s1 {
		t.Fatalf("start = %+v", st)
	}
	_ = f.Close()
	if pos := r.position(t, user, device); pos != 0 {
		t.Fatalf("position %d after since=0, want 0", pos)
	}
	f = r.open(t, user, device, Position{})
	if got := take(t, f, 2); !slices.Equal(seqsOf(got), []uint64{s1, s2}) {
		t.Fatalf("replay got %v", seqsOf(got))
	}
}

func TestLiveOpenAfterRunStopped(t *testing.T) {
	t.Parallel()
	srv := streamstest.RunServer(t)
	nc := streamstest.Connect(t, srv.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig{Stream: streams.DefaultConfig(), Edge: DefaultConfig()}
	eng, err := NewLiveEngine(js, cfg.Stream, cfg.Edge, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := eng.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Open(context.Background(), Device{User: "a", Device: "b"}, Position{}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("open after run: %v", err)
	}
	if _, err := NewLiveEngine(nil, cfg.Stream, cfg.Edge, 0, nil); err == nil {
		t.Fatal("nil JetStream accepted")
	}
}

func TestLiveForgedRepublishHeadersIgnored(t *testing.T) {
	t.Parallel()
	r := newLiveRig(t, nil, nil)
	f := r.open(t, "alice", "phone", Position{})
	m := nats.NewMsg(streams.Subjects{}.User("alice"))
	m.Header.Set(jetstream.SequenceHeader, "999")
	m.Header.Set(jetstream.LastSequenceHeader, "998")
	m.Data = []byte("forged")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := r.js.PublishMsg(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if got := take(t, f, 1); got[0].Seq != ack.Sequence || string(got[0].Payload) != "forged" {
		t.Fatalf("got %d %q, want %d", got[0].Seq, got[0].Payload, ack.Sequence)
	}
	idle(t, f, 100*time.Millisecond)
}

func TestLiveForgedHeadersInBacklog(t *testing.T) {
	t.Parallel()
	r := newLiveRig(t, nil, nil)
	m := nats.NewMsg(streams.Subjects{}.User("alice"))
	m.Header.Set(jetstream.SequenceHeader, "999")
	m.Data = []byte("forged")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := r.js.PublishMsg(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	next := r.publish(t, "alice", "next")
	f := r.open(t, "alice", "phone", Position{HasSince: true})
	if got := take(t, f, 2); got[0].Seq != ack.Sequence || got[1].Seq != next {
		t.Fatalf("got %v, want %d %d", seqsOf(got), ack.Sequence, next)
	}
}

// TestLiveClientDropsRecovered fills the channel the user subscriptions
// deliver into while the dispatcher is stuck, so that the NATS client drops
// the user's last messages (a client-side slow consumer), with no later
// message to reveal them. Run's check of dropped counts finds them within a
// tick: the device gets every message once, in order.
func TestLiveClientDropsRecovered(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var stuck sync.Once
	r := newLiveRig(t, nil, func(uint64) bool {
		stuck.Do(func() { <-release }) // the first live message holds the dispatcher
		return false
	})
	r.eng.disp.capacity = 1
	f := r.open(t, "alice", "phone", Position{})
	var want []uint64
	for i := range 6 {
		want = append(want, r.publish(t, "alice", fmt.Sprintf("m%d", i)))
	}
	// One message is in the dispatcher, one in the channel: the client drops
	// the other four.
	streamstest.WaitFor(t, 10*time.Second, func() error {
		u := f.(*liveFeed).user
		<-u.ready
		if n, err := u.sub.Dropped(); err != nil || n < len(want)-2 {
			return fmt.Errorf("dropped %d (%v), want %d", n, err, len(want)-2)
		}
		return nil
	})
	close(release)
	if got := take(t, f, len(want)); !slices.Equal(seqsOf(got), want) {
		t.Fatalf("got %v, want %v", seqsOf(got), want)
	}
	idle(t, f, 100*time.Millisecond)
}

// TestLiveOpenAsksTheLeaderOnlyForGaps checks which opens make JetStream
// API requests (served by the stream's leader) rather than direct gets
// (served by any replica): a new device, a known one, and a since whose
// messages are all retained make none, so that a reconnect storm does not
// land on the leader. A since past which retention removed messages needs
// the stream's state, and gets gap.
func TestLiveOpenAsksTheLeaderOnlyForGaps(t *testing.T) {
	t.Parallel()
	r := newLiveRig(t, func(cfg *testConfig) { cfg.Stream.MaxMsgsPerUser = 3 }, nil)
	s1 := r.publish(t, "alice", "m0")
	r.publish(t, "alice", "m1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	api := func() uint64 {
		t.Helper()
		info, err := r.js.AccountInfo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.API.Total
	}
	// The engine looks its stream and bucket up once.
	warm := r.open(t, "bob", "phone", Position{})
	_ = warm.Close()
	idle := api()
	idle = api() - idle // what asking costs

	var carol []uint64
	for i := range 5 {
		carol = append(carol, r.publish(t, "carol", fmt.Sprintf("c%d", i)))
	}
	for _, tc := range []struct {
		name string
		user string
		p    Position
		api  bool
		gap  bool
		from uint64
	}{
		{name: "new device", user: "alice"},
		{name: "known device", user: "alice"},
		{name: "since, retained", user: "alice", p: Position{Since: s1, HasSince: true}, from: s1 + 1},
		{name: "since, removed by retention", user: "carol", p: Position{Since: carol[0], HasSince: true}, api: true, gap: true, from: carol[2]},
	} {
		before := api()
		f := r.open(t, tc.user, "phone", tc.p)
		st := f.Start()
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if got := api() - before - idle; (got > 0) != tc.api {
			t.Errorf("%s: %d JetStream API requests, want any: %v", tc.name, got, tc.api)
		}
		if st.Gap != tc.gap || st.From != tc.from {
			t.Errorf("%s: start %+v, want gap %v from %d", tc.name, st, tc.gap, tc.from)
		}
	}
}
