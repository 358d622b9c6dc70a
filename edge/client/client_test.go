package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/edge/client"
	"github.com/herald-push/herald/edge/token"
	"github.com/herald-push/herald/streams/streamstest"
)

// running is a client whose Run runs on a goroutine of the test, stopped
// at cleanup at the latest.
type running struct {
	c      *client.Client
	events chan client.Event
	cancel context.CancelFunc
	done   chan struct{} // closed when Run has returned err
	err    error
}

// start runs a client with opts, a short backoff unless opts sets one, and
// its events recorded (up to a thousand; the tests make far fewer).
func start(t *testing.T, opts client.Options) *running {
	t.Helper()
	r := &running{events: make(chan client.Event, 1000), done: make(chan struct{})}
	opts.OnEvent = func(e client.Event) {
		select {
		case r.events <- e:
		default:
		}
	}
	if opts.MinBackoff == 0 {
		opts.MinBackoff, opts.MaxBackoff = 10*time.Millisecond, 100*time.Millisecond
	}
	c, err := client.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	r.c = c
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		r.err = c.Run(ctx)
	}()
	t.Cleanup(func() { _ = r.stop(t) })
	return r
}

// stop cancels Run and returns its error; it fails the test if Run does
// not return within 10 s.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	return r.wait(t)
}

// wait returns Run's error once it has returned, failing the test after
// 10 s.
func (r *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s")
		return nil
	}
}

// event waits for the next event for which match is true.
func (r *running) event(t *testing.T, match func(client.Event) bool) client.Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-r.events:
			if match(e) {
				return e
			}
		case <-r.done:
			t.Fatalf("Run returned %v while waiting for an event", r.err)
		case <-deadline:
			t.Fatal("no matching event within 10s")
		}
	}
}

func kind(k client.EventKind) func(client.Event) bool {
	return func(e client.Event) bool { return e.Kind == k }
}

// next returns the next message.
func (r *running) next(t *testing.T) client.Message {
	t.Helper()
	select {
	case m, ok := <-r.c.Messages():
		if !ok {
			t.Fatal("Messages closed")
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10s")
	}
	return client.Message{}
}

// take returns the next n messages' seqs and bodies.
func (r *running) take(t *testing.T, n int) (seqs []uint64, bodies []string) {
	t.Helper()
	for range n {
		m := r.next(t)
		seqs = append(seqs, m.Seq)
		bodies = append(bodies, m.Body)
	}
	return seqs, bodies
}

func TestInOrderDelivery(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		h := newHarness(t, engine, nil)
		e := h.newEdge(t)
		r := start(t, client.Options{URLs: []string{e.url}, Device: "phone", Token: tokens("alice", "phone")})
		w := r.event(t, kind(client.EventConnected))
		if w.Since != 0 || w.From != 0 || w.Gap || w.URL != "ws://"+e.addr+"/v1/ws" {
			t.Fatalf("connected event = %+v", w)
		}
		var want []uint64
		var wantBodies []string
		for i := range 20 {
			body := fmt.Sprintf("m%d", i)
			want = append(want, h.mustPublish(t, "alice", body))
			h.mustPublish(t, "bob", "noise")
			wantBodies = append(wantBodies, body)
		}
		for i := range 20 {
			m := r.next(t)
			if m.Seq != want[i] || m.Body != wantBodies[i] || m.User != "alice" {
				t.Fatalf("message %d = %d %q, want %d %q", i, m.Seq, m.Body, want[i], wantBodies[i])
			}
			m.Done()
		}
		if err := r.stop(t); err != nil {
			t.Fatalf("Run = %v, want nil after cancel", err)
		}
		if _, ok := <-r.c.Messages(); ok {
			t.Fatal("Messages is open after Run returned")
		}
	})
}

// TestResumeAfterEdgeRestart: messages handed out but not marked processed
// when the edge goes away are resent by the edge and dropped by the
// client; messages stored while it was down arrive once, in order.
func TestResumeAfterEdgeRestart(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		h := newHarness(t, engine, nil)
		e := h.newEdge(t)
		r := start(t, client.Options{URLs: []string{e.url}, Device: "phone", Token: tokens("alice", "phone")})
		r.event(t, kind(client.EventConnected))
		var all []uint64
		for i := range 3 {
			all = append(all, h.mustPublish(t, "alice", fmt.Sprintf("m%d", i)))
		}
		got, _ := r.take(t, 3)
		r.c.Processed(got[0]) // m1 and m2 stay unprocessed

		if err := e.stop(); err != nil {
			t.Fatalf("edge stop: %v", err)
		}
		d := r.event(t, kind(client.EventDisconnected))
		var ce *client.CloseError
		if !errors.As(d.Err, &ce) || ce.Code != herald.CloseGoingAway {
			t.Fatalf("disconnected with %v, want close 1001", d.Err)
		}
		for i := 3; i < 5; i++ {
			all = append(all, h.mustPublish(t, "alice", fmt.Sprintf("m%d", i)))
		}
		e2, err := h.startEdge(e.addr)
		if err != nil {
			t.Fatal(err)
		}
		w := r.event(t, kind(client.EventConnected))
		if w.Since != all[0] || w.From != all[1] || w.Gap {
			t.Fatalf("reconnected with %+v, want since %d from %d", w, all[0], all[1])
		}
		more, _ := r.take(t, 2)
		got = append(got, more...)
		r.c.Processed(got[len(got)-1])
		// The fence: a message published now is the next one handed out,
		// so nothing was handed out twice in between.
		fence := h.mustPublish(t, "alice", "fence")
		if m := r.next(t); m.Seq != fence {
			t.Fatalf("after the resent messages got %d %q, want the fence %d", m.Seq, m.Body, fence)
		}
		if !slices.Equal(got, all) {
			t.Fatalf("handed out %v, want %v", got, all)
		}
		if n := e2.es.Connections(); n != 1 {
			t.Fatalf("edge has %d connections, want 1", n)
		}
	})
}

func TestFailover(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		h := newHarness(t, engine, nil)
		e := h.newEdge(t)
		down := downServer(t)
		r := start(t, client.Options{URLs: []string{down, e.url}, Device: "phone", Token: tokens("alice", "phone")})
		d := r.event(t, kind(client.EventDisconnected))
		if d.URL != down+"/v1/ws" || d.Err == nil {
			t.Fatalf("first attempt = %+v, want a failure on %s", d, down)
		}
		w := r.event(t, kind(client.EventConnected))
		if w.URL != "ws://"+e.addr+"/v1/ws" {
			t.Fatalf("connected to %s, want the second URL", w.URL)
		}
		seq := h.mustPublish(t, "alice", "hello")
		if m := r.next(t); m.Seq != seq || m.Body != "hello" {
			t.Fatalf("got %d %q", m.Seq, m.Body)
		}
	})
}

// TestTokenRefreshOn4001: the edge closes with 4001 when the token
// expires; the client asks the source again, gets a fresh one, and resumes
// without a loss.
func TestTokenRefreshOn4001(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		h := newHarness(t, engine, nil)
		e := h.newEdge(t)
		short, err := token.Mint(testSecret, "alice", "phone", 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var claims jwt.RegisteredClaims
		if _, _, err := jwt.NewParser().ParseUnverified(short, &claims); err != nil {
			t.Fatal(err)
		}
		// The source returns its token until it has expired.
		var calls atomic.Int32
		source := func(ctx context.Context) (string, error) {
			calls.Add(1)
			if time.Now().Before(claims.ExpiresAt.Time) {
				return short, nil
			}
			return tokens("alice", "phone")(ctx)
		}
		r := start(t, client.Options{URLs: []string{e.url}, Device: "phone", Token: source})
		r.event(t, kind(client.EventConnected))
		first := h.mustPublish(t, "alice", "before")
		m := r.next(t)
		m.Done()

		d := r.event(t, kind(client.EventDisconnected))
		var ce *client.CloseError
		if !errors.As(d.Err, &ce) || ce.Code != herald.CloseUnauthorized || ce.Frame == nil || ce.Frame.Code != herald.TokenExpired {
			t.Fatalf("disconnected with %v, want close 4001 after a token_expired error frame", d.Err)
		}
		w := r.event(t, kind(client.EventConnected))
		if w.Since != first {
			t.Fatalf("reconnected since %d, want %d", w.Since, first)
		}
		after := h.mustPublish(t, "alice", "after")
		if m := r.next(t); m.Seq != after {
			t.Fatalf("got %d %q, want %d", m.Seq, m.Body, after)
		}
		// The first call, one before the exp (which returned the same
		// token), and one after the 4001.
		if n := calls.Load(); n < 3 {
			t.Fatalf("token source called %d times, want at least 3", n)
		}
	})
}

// TestTokenRefreshBeforeExpiry: a source with a fresh token is asked before
// the exp, and the client moves to a new connection before the edge closes
// the old one.
func TestTokenRefreshBeforeExpiry(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		h := newHarness(t, engine, nil)
		e := h.newEdge(t)
		var calls atomic.Int32
		source := func(context.Context) (string, error) {
			ttl := time.Hour
			if calls.Add(1) == 1 {
				ttl = 3 * time.Second
			}
			return token.Mint(testSecret, "alice", "phone", ttl)
		}
		r := start(t, client.Options{URLs: []string{e.url}, Device: "phone", Token: source})
		r.event(t, kind(client.EventConnected))
		d := r.event(t, kind(client.EventDisconnected))
		if !errors.Is(d.Err, client.ErrTokenRefresh) {
			t.Fatalf("disconnected with %v, want %v", d.Err, client.ErrTokenRefresh)
		}
		r.event(t, kind(client.EventConnected))
		seq := h.mustPublish(t, "alice", "hello")
		if m := r.next(t); m.Seq != seq {
			t.Fatalf("got %d, want %d", m.Seq, seq)
		}
		if n := calls.Load(); n != 2 {
			t.Fatalf("token source called %d times, want 2", n)
		}
	})
}

// TestExpiredTokenEndsRun: a source that returns an expired token ends Run,
// naming the 4001 that preceded it.
func TestExpiredTokenEndsRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t, config.DeliveryLive, nil)
	e := h.newEdge(t)
	short, err := token.Mint(testSecret, "alice", "phone", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Options{URLs: []string{e.url}, Device: "phone", MinBackoff: 10 * time.Millisecond,
		Token: func(context.Context) (string, error) { return short, nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = c.Run(ctx)
	if !errors.Is(err, client.ErrTokenExpired) || ctx.Err() != nil {
		t.Fatalf("Run = %v, want %v before the context's end", err, client.ErrTokenExpired)
	}
	var ce *client.CloseError
	if !errors.As(err, &ce) || ce.Code != herald.CloseUnauthorized {
		t.Fatalf("Run = %v, want it to name close 4001", err)
	}
}

func TestHandshakeRefusalEndsRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t, config.DeliveryLive, nil)
	e := h.newEdge(t)
	bad, err := token.Mint("another-secret-0123456789abcdefghijk", "alice", "phone", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Options{URLs: []string{e.url}, Device: "phone",
		Token: func(context.Context) (string, error) { return bad, nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = c.Run(ctx)
	var he *client.HandshakeError
	if !errors.As(err, &he) || he.Status != 401 || he.Code != herald.Unauthorized {
		t.Fatalf("Run = %v, want a 401 unauthorized handshake error", err)
	}
}

func TestGapReported(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		h := newHarness(t, engine, func(cfg *config.Config) { cfg.Stream.MaxMsgsPerUser = 3 })
		e := h.newEdge(t)
		var all []uint64
		for i := range 6 {
			all = append(all, h.mustPublish(t, "alice", fmt.Sprintf("m%d", i)))
		}
		store := &client.MemoryStore{}
		if err := store.Save(context.Background(), all[0]); err != nil {
			t.Fatal(err)
		}
		r := start(t, client.Options{URLs: []string{e.url}, Device: "phone", Token: tokens("alice", "phone"), Store: store})
		w := r.event(t, kind(client.EventConnected))
		if !w.Gap || w.Since != all[0] || w.From != all[3] {
			t.Fatalf("connected event = %+v, want a gap from %d", w, all[3])
		}
		if got, _ := r.take(t, 3); !slices.Equal(got, all[3:]) {
			t.Fatalf("got %v, want %v", got, all[3:])
		}
		if s := r.event(t, kind(client.EventSynced)); s.Seq != all[5] {
			t.Fatalf("synced at %d, want %d", s.Seq, all[5])
		}
	})
}

// TestAcksAreDebounced: with a long delay, marks are acked once per
// AckEvery and once at the end; with a large AckEvery, the delay acks.
func TestAcksAreDebounced(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		h := newHarness(t, engine, nil)
		t.Run("count", func(t *testing.T) {
			t.Parallel()
			e := h.newEdge(t)
			r := start(t, client.Options{URLs: []string{e.url}, Device: "count", Token: tokens("alice", "count"), AckEvery: 64, AckDelay: time.Hour})
			r.event(t, kind(client.EventConnected))
			for i := range 130 {
				h.mustPublish(t, "alice", fmt.Sprintf("m%d", i))
			}
			for range 130 {
				r.next(t).Done()
			}
			streamstest.WaitFor(t, 10*time.Second, func() error {
				if n := e.acks(t); n < 1 {
					return fmt.Errorf("%v acks", n)
				}
				return nil
			})
			if err := r.stop(t); err != nil {
				t.Fatal(err)
			}
			streamstest.WaitFor(t, 10*time.Second, func() error {
				if n := e.es.Connections(); n != 0 {
					return fmt.Errorf("%d connections", n)
				}
				return nil
			})
			// At most two by count (one when the committer woke late), and
			// one on close for what the count left.
			if n := e.acks(t); n < 1 || n > 3 {
				t.Fatalf("the edge received %v acks for 130 messages, want 1 to 3", n)
			}
		})
		t.Run("delay", func(t *testing.T) {
			t.Parallel()
			e := h.newEdge(t)
			r := start(t, client.Options{URLs: []string{e.url}, Device: "delay", Token: tokens("alice", "delay"), AckEvery: 1000})
			r.event(t, kind(client.EventConnected))
			for i := range 5 {
				h.mustPublish(t, "alice", fmt.Sprintf("m%d", i))
			}
			for range 5 {
				r.next(t).Done()
			}
			// Connected, with 5 of 1000 marks: only the delay acks.
			streamstest.WaitFor(t, 10*time.Second, func() error {
				if n := e.acks(t); n < 1 {
					return fmt.Errorf("%v acks", n)
				}
				return nil
			})
			if n := e.es.Connections(); n != 1 {
				t.Fatalf("%d connections, want the client still connected", n)
			}
		})
	})
}

// TestFileStoreSurvivesANewClient: a second client on the same file resumes
// after the last message the first one processed.
func TestFileStoreSurvivesANewClient(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		h := newHarness(t, engine, nil)
		e := h.newEdge(t)
		path := filepath.Join(t.TempDir(), "position.json")
		store := func() *client.FileStore { return &client.FileStore{Path: path, User: "alice", Device: "phone"} }
		r := start(t, client.Options{URLs: []string{e.url}, Device: "phone", Token: tokens("alice", "phone"), Store: store()})
		r.event(t, kind(client.EventConnected))
		m1, m2 := h.mustPublish(t, "alice", "m1"), h.mustPublish(t, "alice", "m2")
		r.next(t).Done()
		r.next(t).Done()
		if err := r.stop(t); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var saved struct {
			User, Device string
			Seq          uint64
		}
		if err := json.Unmarshal(b, &saved); err != nil || saved.Seq != m2 || saved.User != "alice" || saved.Device != "phone" {
			t.Fatalf("position file %s (%v), want seq %d", b, err, m2)
		}

		m3 := h.mustPublish(t, "alice", "m3")
		r2 := start(t, client.Options{URLs: []string{e.url}, Device: "phone", Token: tokens("alice", "phone"), Store: store()})
		if w := r2.event(t, kind(client.EventConnected)); w.Since != m2 {
			t.Fatalf("second client connected since %d, want %d (m1 was %d)", w.Since, m2, m1)
		}
		if m := r2.next(t); m.Seq != m3 || m.Body != "m3" {
			t.Fatalf("second client got %d %q first, want %d", m.Seq, m.Body, m3)
		}
	})
}

// failingStore is a caller's PositionStore whose Save fails.
type failingStore struct{ client.MemoryStore }

func (*failingStore) Save(context.Context, uint64) error { return errors.New("disk full") }

func TestStoreFailureEndsRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t, config.DeliveryLive, nil)
	e := h.newEdge(t)
	r := start(t, client.Options{URLs: []string{e.url}, Device: "phone", Token: tokens("alice", "phone"), Store: &failingStore{}})
	r.event(t, kind(client.EventConnected))
	h.mustPublish(t, "alice", "hello")
	r.next(t).Done()
	if err := r.wait(t); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Run = %v, want the store's error", err)
	}
	if n := e.acks(t); n != 0 {
		t.Fatalf("the edge received %v acks, want none: nothing was saved", n)
	}
}

// TestReadSync: Read on one device reaches the user's other device as an
// EventRead naming the reader, a Read made before connecting is sent once
// connected, and a new connection's EventConnected carries the position.
func TestReadSync(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		h := newHarness(t, engine, nil)
		e := h.newEdge(t)
		phone := start(t, client.Options{URLs: []string{e.url}, Device: "phone", Token: tokens("alice", "phone")})
		phone.event(t, kind(client.EventConnected))
		laptop := start(t, client.Options{URLs: []string{e.url}, Device: "laptop", Token: tokens("alice", "laptop")})
		laptop.event(t, kind(client.EventConnected))
		first := h.mustPublish(t, "alice", "one")
		last := h.mustPublish(t, "alice", "two")
		phone.next(t)
		phone.next(t)

		phone.c.Read(first)
		ev := laptop.event(t, kind(client.EventRead))
		if ev.Seq != first || ev.Device != "phone" {
			t.Fatalf("read event = %+v, want seq %d from phone", ev, first)
		}
		laptop.c.Read(last + 100) // clamped to the last message
		ev = phone.event(t, kind(client.EventRead))
		if ev.Seq != last || ev.Device != "laptop" {
			t.Fatalf("read event = %+v, want seq %d from laptop", ev, last)
		}

		// A client that has not connected yet sends its Read once it has.
		third := h.mustPublish(t, "alice", "three")
		tablet, err := client.New(client.Options{URLs: []string{e.url}, Device: "tablet", Token: tokens("alice", "tablet")})
		if err != nil {
			t.Fatal(err)
		}
		tablet.Read(third)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- tablet.Run(ctx) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("tablet: %v", err)
			}
		}()
		ev = phone.event(t, kind(client.EventRead))
		if ev.Seq != third || ev.Device != "tablet" {
			t.Fatalf("read event = %+v, want seq %d from tablet", ev, third)
		}

		late := start(t, client.Options{URLs: []string{e.url}, Device: "watch", Token: tokens("alice", "watch")})
		if ev := late.event(t, kind(client.EventConnected)); ev.Read != third {
			t.Fatalf("connected event = %+v, want read %d", ev, third)
		}
	})
}

// TestUpdatesAndDeletes: a message with ref and op reaches the application
// with them, in order after the message it names.
func TestUpdatesAndDeletes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, config.DeliveryLive, nil)
	e := h.newEdge(t)
	r := start(t, client.Options{URLs: []string{e.url}, Device: "phone", Token: tokens("alice", "phone")})
	r.event(t, kind(client.EventConnected))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, env := range []herald.Envelope{
		{ID: "m-1", Body: "v1"},
		{ID: "m-2", Body: "v2", Ref: "m-1", Op: herald.OpUpdate},
		{ID: "m-3", Ref: "m-1", Op: herald.OpDelete},
	} {
		env.User, env.Time = "alice", time.Now().UTC()
		b, err := env.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.js.Publish(ctx, "herald.user.alice", b); err != nil {
			t.Fatal(err)
		}
	}
	got := []client.Message{r.next(t), r.next(t), r.next(t)}
	if got[0].Op != "" || got[1].Op != herald.OpUpdate || got[1].Ref != "m-1" || got[1].Body != "v2" ||
		got[2].Op != herald.OpDelete || got[2].Ref != "m-1" || !(got[0].Seq < got[1].Seq && got[1].Seq < got[2].Seq) {
		t.Fatalf("messages %+v", got)
	}
}

// TestEach: Each hands every message to the handler in order, marks each
// processed, and returns the handler's error after the client stopped and
// saved the position of the messages before it.
func TestEach(t *testing.T) {
	t.Parallel()
	h := newHarness(t, config.DeliveryLive, nil)
	e := h.newEdge(t)
	// A new device gets what is published after it connects: publish then.
	published := make(chan []uint64, 1)
	var once sync.Once
	onEvent := func(ev client.Event) {
		if ev.Kind != client.EventConnected {
			return
		}
		once.Do(func() {
			go func() {
				var seqs []uint64
				for i := range 5 {
					seq, err := h.publish("alice", fmt.Sprintf("m%d", i))
					if err != nil {
						break
					}
					seqs = append(seqs, seq)
				}
				published <- seqs
			}()
		})
	}
	store := &client.MemoryStore{}
	c, err := client.New(client.Options{URLs: []string{e.url}, Device: "each", Token: tokens("alice", "each"), Store: store, OnEvent: onEvent})
	if err != nil {
		t.Fatal(err)
	}
	stop := errors.New("enough")
	var got []uint64
	err = c.Each(context.Background(), func(m client.Message) error {
		if len(got) == 3 {
			return stop
		}
		got = append(got, m.Seq)
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("Each = %v, want the handler's error", err)
	}
	want := <-published
	if len(want) != 5 || !slices.Equal(got, want[:3]) {
		t.Fatalf("handled %v, want the first 3 of %v", got, want)
	}
	if pos, err := store.Load(context.Background()); err != nil || pos != want[2] {
		t.Fatalf("saved position %d, %v; want %d", pos, err, want[2])
	}
}
