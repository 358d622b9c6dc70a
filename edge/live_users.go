package edge

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald/streams"
)

// userShard is one part of the live engine's registry of user
// subscriptions, keyed by live subject. Its lock is held only to read or
// change the map and a user's feed list; never across I/O or while taking
// another lock.
type userShard struct {
	mu    sync.Mutex
	users map[string]*userSub
}

// userSub is this edge's core subscription to one user's live subject,
// shared by the user's feeds here and reference-counted by them: the last
// feed to leave unsubscribes.
type userSub struct {
	live    string // the user's live subject, the registry key
	subject string // the user's stream subject, for re-checks

	ready chan struct{} // closed once sub and err are set
	sub   *nats.Subscription
	err   error

	// feeds is replaced, never modified, under the shard lock, so that the
	// fan-out reads it without a lock.
	feeds atomic.Pointer[[]*liveFeed]

	dropped int // messages the client library dropped, as last seen by Run (Run's goroutine only)
}

// liveMsg is one message as republished to the live subject.
type liveMsg struct {
	seq     uint64
	last    uint64 // the previous seq of the same subject, 0 for the first
	time    time.Time
	payload []byte
	frame   *sharedFrame // encoded once, by the first device's pump
	encoded bool         // payload is Envelope.Encode's output
}

func (m liveMsg) delivery() Delivery {
	return Delivery{Seq: m.seq, Payload: m.payload, Time: m.time, frame: m.frame, encoded: m.encoded}
}

func (e *LiveEngine) shardOf(live string) *userShard {
	return &e.shards[shardIndex(live, len(e.shards))]
}

// attach adds f to its user's subscription on this edge, subscribing when
// f is the user's first feed here. On return the subscription is
// registered with the client, so the server sees it before any later
// request on the same connection.
func (e *LiveEngine) attach(f *liveFeed) error {
	user := f.dev.User
	live := e.subj.Live(user)
	sh := e.shardOf(live)
	sh.mu.Lock()
	u, ok := sh.users[live]
	if !ok {
		u = &userSub{live: live, subject: f.subject, ready: make(chan struct{})}
		u.feeds.Store(&[]*liveFeed{})
		sh.users[live] = u
	}
	old := *u.feeds.Load()
	feeds := make([]*liveFeed, len(old), len(old)+1)
	copy(feeds, old)
	feeds = append(feeds, f)
	u.feeds.Store(&feeds)
	f.user = u
	sh.mu.Unlock()

	if !ok {
		// The user is in the registry before the subscription exists, so
		// that the dispatcher finds it for the first message.
		ch := e.disp.start()
		u.sub, u.err = e.nc.ChanSubscribe(live, ch)
		if u.err != nil {
			e.disp.stop()
		}
		close(u.ready)
	} else {
		<-u.ready // a local registration; it does not wait on the network
	}
	if u.err != nil {
		e.detach(f)
		return u.err
	}
	return nil
}

// detach removes f from its user's subscription and unsubscribes when f
// was the last feed of the user here.
func (e *LiveEngine) detach(f *liveFeed) {
	u := f.user
	if u == nil {
		return
	}
	sh := e.shardOf(u.live)
	sh.mu.Lock()
	old := *u.feeds.Load()
	feeds := make([]*liveFeed, 0, len(old))
	for _, g := range old {
		if g != f {
			feeds = append(feeds, g)
		}
	}
	u.feeds.Store(&feeds)
	last := len(feeds) == 0 && sh.users[u.live] == u
	if last {
		delete(sh.users, u.live)
	}
	sh.mu.Unlock()
	if last {
		<-u.ready
		if u.sub != nil {
			_ = u.sub.Unsubscribe()
			e.disp.stop()
		}
	}
}

// fanOut hands one republished message to its user's feeds. It never
// blocks: each feed queues it or, when its queue is full, falls back to
// reading the store.
func (e *LiveEngine) fanOut(m *nats.Msg) {
	sh := e.shardOf(m.Subject)
	sh.mu.Lock()
	u := sh.users[m.Subject]
	sh.mu.Unlock()
	if u == nil {
		return // the user's last feed here closed meanwhile
	}
	lm, ok := e.parseLive(m)
	if !ok {
		return
	}
	if drop := e.dropLive; drop != nil && drop(lm.seq) {
		return
	}
	feeds := *u.feeds.Load()
	if len(feeds) > 1 {
		lm.frame = &sharedFrame{}
	}
	for _, f := range feeds {
		f.push(lm)
	}
}

// parseLive reads the republish headers. A message on the live subject
// that the stream did not republish is ignored.
func (e *LiveEngine) parseLive(m *nats.Msg) (liveMsg, bool) {
	if m.Header == nil || streams.LastHeader(m.Header, jetstream.StreamHeader) != e.stream.Name {
		return liveMsg{}, false
	}
	seq, err := strconv.ParseUint(streams.LastHeader(m.Header, jetstream.SequenceHeader), 10, 64)
	if err != nil || seq == 0 {
		return liveMsg{}, false
	}
	last, err := strconv.ParseUint(streams.LastHeader(m.Header, jetstream.LastSequenceHeader), 10, 64)
	if err != nil || last >= seq {
		// Unknown predecessor: assume the previous seq, so that a feed
		// behind it checks the store.
		last = seq - 1
	}
	ts, _ := time.Parse(time.RFC3339Nano, streams.LastHeader(m.Header, jetstream.TimeStampHeaer))
	return liveMsg{seq: seq, last: last, time: ts, payload: m.Data, encoded: streams.Encoded(m.Header)}, true
}

// connectedUsers snapshots the subscribed users of this edge.
func (e *LiveEngine) connectedUsers() []*userSub {
	var out []*userSub
	for i := range e.shards {
		sh := &e.shards[i]
		sh.mu.Lock()
		for _, u := range sh.users {
			out = append(out, u)
		}
		sh.mu.Unlock()
	}
	ready := out[:0]
	for _, u := range out {
		select {
		case <-u.ready:
			if u.sub != nil {
				ready = append(ready, u)
			}
		default:
		}
	}
	return ready
}

// droppedUsers returns the users whose subscription dropped messages in the
// client library (a slow consumer) since the last call. Run's goroutine only.
func (e *LiveEngine) droppedUsers() []*userSub {
	var out []*userSub
	for _, u := range e.connectedUsers() {
		n, err := u.sub.Dropped()
		if err == nil && n > u.dropped {
			u.dropped = n
			out = append(out, u)
		}
	}
	return out
}

// resync re-checks users for messages this edge did not receive live: it
// reads each user's last stored seq and lets every feed behind it catch up
// from the store. After a reconnect it first makes a round trip, so that the
// client's resent subscriptions are in place before the check. It returns
// the users it could not check.
func (e *LiveEngine) resync(ctx context.Context, users []*userSub, reconnected bool) []*userSub {
	if len(users) == 0 {
		return nil
	}
	if reconnected {
		fctx, cancel := context.WithTimeout(ctx, e.timeout)
		err := e.nc.FlushWithContext(fctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			e.log.Warn("flush after reconnect", "err", err)
		}
	}
	hctx, cancel := context.WithTimeout(ctx, e.timeout)
	s, _, err := e.handles(hctx)
	cancel()
	if err != nil { // no stream or bucket handle (no quorum, not applied)
		if ctx.Err() == nil {
			e.log.Warn("re-check users", "err", err)
		}
		return users
	}
	store := newStoreReader(e.js, s)
	failed := make([]bool, len(users))
	idx := make([]int, len(users))
	for i := range idx {
		idx[i] = i
	}
	parallel(ctx, idx, func(ctx context.Context, i int) {
		u := users[i]
		cctx, cancel := context.WithTimeout(ctx, e.timeout)
		defer cancel()
		last, err := store.last(cctx, u.subject)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			return
		case err != nil:
			failed[i] = true
			return
		}
		for _, f := range *u.feeds.Load() {
			f.bump(last.Sequence)
		}
	})
	var retry []*userSub
	for i, bad := range failed {
		if bad {
			retry = append(retry, users[i])
		}
	}
	if len(retry) > 0 {
		e.forget()
		if ctx.Err() == nil {
			e.log.Warn("re-check users failed, retrying", "users", len(retry))
		}
	}
	return retry
}
