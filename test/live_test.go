package test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/edge/token"
	"github.com/herald-push/herald/streams"
	"github.com/herald-push/herald/streams/streamstest"
)

// TestLiveServerRestartLosesNothing restarts the NATS server (same port and
// store) while a producer publishes. The edge reconnects two seconds after the
// producer, so the last messages are stored while it is away and republished
// to nobody, with no later message to reveal the gap: only the re-check
// after the reconnect finds them. The device stays connected and receives
// every message once, in order.
func TestLiveServerRestartLosesNothing(t *testing.T) {
	t.Parallel()
	opts := streamstest.Options(t.TempDir())
	srv := streamstest.Start(t, opts)
	// Acks are late while the test restarts the server; no resend noise.
	c := clusterOn(t, srv, testConfig(config.DeliveryLive, func(cfg *config.Config) { cfg.Edge.AckWait = time.Minute }))
	enc, err := nats.Connect(srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(2*time.Second), nats.ReconnectJitter(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(enc.Close)
	e := newEdgeOn(t, c.cfg, enc)
	d := dialSynced(t, e.url, "alice", "phone", "")

	const n = 200
	var (
		mu        sync.Mutex
		published []uint64
	)
	halfway := make(chan struct{})
	var edgeBack atomic.Bool // the edge had reconnected when the last message was stored
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	pubErr := make(chan error, 1)
	go func() {
		defer wg.Done()
		subject := streams.Subjects{}.User("alice")
		for i := 0; i < n; i++ {
			if i == n/2 {
				close(halfway)
			}
			// Retry until stored; the message id makes a retry of a
			// stored message a duplicate that reports the first seq.
			for {
				pctx, pcancel := context.WithTimeout(ctx, time.Second)
				ack, err := c.js.Publish(pctx, subject, []byte(fmt.Sprintf(`{"body":"m%d"}`, i)), jetstream.WithMsgID(fmt.Sprintf("restart-%d", i)))
				pcancel()
				if err == nil {
					mu.Lock()
					if len(published) == 0 || published[len(published)-1] != ack.Sequence {
						published = append(published, ack.Sequence)
					}
					mu.Unlock()
					if i == n-1 {
						edgeBack.Store(enc.IsConnected())
					}
					break
				}
				if ctx.Err() != nil {
					pubErr <- err
					return
				}
				select { // back off while JetStream recovers
				case <-time.After(20 * time.Millisecond):
				case <-ctx.Done():
				}
			}
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })

	<-halfway
	srv.Shutdown()
	srv.WaitForShutdown()
	streamstest.Restart(t, srv, opts)

	var got []uint64
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		npub := len(published)
		mu.Unlock()
		if npub == n && len(got) >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("received %d of %d published (%d to publish)", len(got), npub, n)
		}
		select {
		case f, ok := <-d.frames:
			if !ok {
				t.Fatalf("device disconnected (close %v) after %d messages", d.closeErr(), len(got))
			}
			if f.Type != "message" {
				continue
			}
			got = append(got, f.Seq)
			d.ack(t, f.Seq)
		case err := <-pubErr:
			t.Fatalf("publish: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	wg.Wait()
	if edgeBack.Load() {
		t.Log("the edge reconnected before the last publish: the re-check was not needed")
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, published) {
		t.Fatalf("received %d messages, published %d; first difference at %d", len(got), len(published), firstDiff(got, published))
	}
	c.fenceWS(t, d, "alice")
}

func firstDiff(a, b []uint64) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestLiveThousandDevicesResume connects 1000 devices (250 users × 4), has
// each ack a different prefix of its user's messages, disconnects all, adds
// messages, and reconnects all 1000 at once: each must receive exactly what
// it had not acked, in order, then synced.
func TestLiveThousandDevicesResume(t *testing.T) {
	t.Parallel()
	const (
		users   = 250
		before  = 6
		after   = 4
		dialers = 64
	)
	devices := []string{"d0", "tablet:1", "d.2", "d3"}
	acks := []int{0, 2, 5, 6} // messages acked by device i of each user
	// A thousand devices connect from one address at once, twice.
	c := newCluster(t, config.DeliveryLive, func(cfg *config.Config) {
		cfg.Edge.AckWait = time.Minute
		cfg.Edge.IPConnectRate = 0
	})
	e := newEdge(t, c)

	user := func(u int) string { return fmt.Sprintf("u%03d", u) }
	msgs := publishMany(t, c, users, before)

	type dev struct {
		user, device string
		ack          int
	}
	var all []dev
	for u := 0; u < users; u++ {
		for i, d := range devices {
			all = append(all, dev{user(u), d, acks[i]})
		}
	}
	// Phase 1: every device replays its user's messages and acks a prefix.
	errs := runDevices(t, len(all), dialers, func(i int) error {
		d := all[i]
		conn, err := dialLight(e.url, d.user, d.device, "since=0")
		if err != nil {
			return err
		}
		defer conn.Close()
		want := msgs[d.user]
		if err := readExactly(conn, want, want[0]); err != nil {
			return fmt.Errorf("%s/%s first visit: %w", d.user, d.device, err)
		}
		if d.ack > 0 {
			return conn.WriteJSON(map[string]any{"type": "ack", "seq": want[d.ack-1]})
		}
		return nil
	})
	for _, err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	// A session ends (and its feed has written the position) before the
	// edge forgets it.
	streamstest.WaitFor(t, 20*time.Second, func() error {
		if n := e.srv.Connections(); n > 0 {
			return fmt.Errorf("%d sessions still open", n)
		}
		return nil
	})
	for _, d := range all {
		pos, err := c.position(d.user, d.device)
		want := uint64(0)
		if d.ack > 0 {
			want = msgs[d.user][d.ack-1]
		}
		if err != nil || pos != want {
			t.Fatalf("%s/%s position %d (%v), want %d", d.user, d.device, pos, err, want)
		}
	}

	for u, more := range publishMany(t, c, users, after) {
		msgs[u] = append(msgs[u], more...)
	}
	// Phase 2: all reconnect at once and resume after their acks.
	start := time.Now()
	errs = runDevices(t, len(all), len(all), func(i int) error {
		d := all[i]
		conn, err := dialLight(e.url, d.user, d.device, "")
		if err != nil {
			return err
		}
		defer conn.Close()
		want := msgs[d.user][d.ack:]
		if err := readExactly(conn, want, want[0]); err != nil {
			return fmt.Errorf("%s/%s resume after ack %d: %w", d.user, d.device, d.ack, err)
		}
		return conn.WriteJSON(map[string]any{"type": "ack", "seq": want[len(want)-1]})
	})
	for _, err := range errs {
		t.Error(err)
	}
	t.Logf("1000 devices resumed in %v", time.Since(start))
}

// publishMany publishes n messages to each of users users (u000, u001, …)
// and returns each user's seqs in order.
func publishMany(t *testing.T, c *cluster, users, n int) map[string][]uint64 {
	t.Helper()
	type pending struct {
		user string
		f    jetstream.PubAckFuture
	}
	var futures []pending
	for i := 0; i < n; i++ {
		for u := 0; u < users; u++ {
			name := fmt.Sprintf("u%03d", u)
			f, err := c.js.PublishAsync(streams.Subjects{}.User(name), []byte(fmt.Sprintf(`{"body":"%s-%d"}`, name, i)))
			if err != nil {
				t.Fatal(err)
			}
			futures = append(futures, pending{name, f})
		}
	}
	select {
	case <-c.js.PublishAsyncComplete():
	case <-time.After(20 * time.Second):
		t.Fatal("publishes not acked")
	}
	out := map[string][]uint64{}
	for _, p := range futures {
		select {
		case ack := <-p.f.Ok():
			out[p.user] = append(out[p.user], ack.Sequence)
		case err := <-p.f.Err():
			t.Fatal(err)
		}
	}
	for _, seqs := range out {
		slices.Sort(seqs)
	}
	return out
}

// runDevices calls f(0…n-1) from at most par goroutines and returns the
// errors.
func runDevices(t *testing.T, n, par int, f func(i int) error) []error {
	t.Helper()
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	sem := make(chan struct{}, par)
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(i); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs
}

// dialLight opens a device connection without the reader goroutine and
// frame buffer of wsClient, for tests with many devices.
func dialLight(base, user, device, query string) (*websocket.Conn, error) {
	tok, err := token.Mint(testSecret, user, device, time.Hour)
	if err != nil {
		return nil, err
	}
	// Like a real client, it retries a 503 (the edge could not open the
	// feed in time, as can happen to a thousand devices at once on a
	// loaded machine) after the Retry-After, for up to 30 s.
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, resp, err := websocket.DefaultDialer.Dial(wsURL(base, device, query), http.Header{"Authorization": {"Bearer " + tok}})
		if err == nil {
			_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			return conn, nil
		}
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		if status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			return nil, fmt.Errorf("dial %s/%s: %w (status %d)", user, device, err, status)
		}
		wait := time.Second
		if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && ra > 0 {
			wait = time.Duration(ra) * time.Second
		}
		time.Sleep(min(wait, time.Until(deadline)))
	}
}

// readExactly reads the welcome (from = from), exactly the messages want in
// order, and the synced frame for the last of them.
func readExactly(conn *websocket.Conn, want []uint64, from uint64) error {
	read := func() (frame, error) {
		var f frame
		_, b, err := conn.ReadMessage()
		if err != nil {
			return f, err
		}
		return f, json.Unmarshal(b, &f)
	}
	w, err := read()
	if err != nil {
		return err
	}
	if w.Type != "welcome" || w.From == nil || *w.From != from || w.Gap {
		return fmt.Errorf("welcome %+v, want from %d", w, from)
	}
	var got []uint64
	for {
		f, err := read()
		if err != nil {
			return fmt.Errorf("after %v: %w", got, err)
		}
		switch f.Type {
		case "message":
			got = append(got, f.Seq)
		case "synced":
			if f.Seq != want[len(want)-1] {
				return fmt.Errorf("synced %d, want %d", f.Seq, want[len(want)-1])
			}
			if !slices.Equal(got, want) {
				return fmt.Errorf("got %v, want %v", got, want)
			}
			return nil
		default:
			return errors.New("unexpected frame " + f.Type)
		}
	}
}
