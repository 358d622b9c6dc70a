package edge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald/streams"
)

// Bounds of a live feed's queue of messages received from the user's
// subscription and not yet looked at. Beyond them the fan-out stops queueing
// for that feed, which reads what it missed from the store instead.
const (
	liveQueueMin   = 64
	liveQueueBytes = 8 << 20
)

// Store reads that miss a message known to be stored (a replica serving a
// direct get can lag the leader that republished it) are retried this many
// times, backing off from missBackoff, before the message is taken as
// removed by retention.
const (
	maxMisses   = 4
	missBackoff = 25 * time.Millisecond
)

// liveFeed is one device's feed of the live engine: it merges the user's
// live messages with store reads (backlog, gaps, catch-up) into one run in
// seq order, keeps the unacked window and resends what is not acked in
// time.
//
// Ownership: cursor, checked, held and misses belong to the session's pump,
// the only caller of Next or Poll (never concurrently with each other or
// themselves; successive pumps of a session are ordered by its lock). The
// fields under mu are shared with the fan-out
// (push), Ack, Close and the engine's flusher; mu is never held across I/O
// or a blocking channel send, and never together with another lock. hint
// is atomic.
type liveFeed struct {
	e       *LiveEngine
	dev     Device
	subject string
	key     string
	store   storeReader
	kv      jetstream.KeyValue
	start   Start
	user    *userSub // set by attach under the shard lock
	window  int
	qcap    int

	wake chan struct{} // one slot: a message was queued, an ack freed the window, or hint grew
	done chan struct{} // closed by Close
	wtok chan struct{} // one slot: the right to write this device's position

	hint   atomic.Uint64          // the highest seq known to be stored on the subject
	notify atomic.Pointer[func()] // set by Notify: called on each signal

	// Next's goroutine only.
	cursor  uint64   // every message of the subject ≤ cursor was delivered once
	checked uint64   // the store had nothing after cursor for hints up to this
	held    *liveMsg // a live message waiting for the gap before it to be read
	misses  int      // consecutive store reads that missed a stored message

	mu       sync.Mutex
	closed   bool
	q        []liveMsg // live messages from qHead on, not yet looked at
	qHead    int
	qBytes   int
	inflight []inflightMsg // delivered and not acked, in seq order, ≤ window
	acked    uint64        // the device's position: everything ≤ acked is done
	written  uint64        // the position last written to the bucket
	wroteAt  time.Time     // when it was written (or, before any write, when the entry was)
	touch    bool          // write the position even if unchanged
	queued   bool          // in the engine's dirty set
	resend   *time.Timer   // armed by Poll for the earliest resend deadline
}

type inflightMsg struct {
	d        Delivery
	deadline time.Time
}

var _ Feed = (*liveFeed)(nil)

// newLiveFeed returns a feed positioned at the start of the stream;
// position places it before Open returns it.
func newLiveFeed(e *LiveEngine, d Device, subject, key string, store storeReader, kv jetstream.KeyValue) *liveFeed {
	return &liveFeed{
		e: e, dev: d, subject: subject, key: key, store: store, kv: kv,
		window: e.edge.MaxInflight,
		qcap:   max(2*e.edge.MaxInflight, liveQueueMin),
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		wtok:   make(chan struct{}, 1),
	}
}

// position places a feed that Open has not returned yet before first.
func (f *liveFeed) position(first uint64) {
	f.cursor = first - 1
	f.mu.Lock()
	f.acked = first - 1
	f.mu.Unlock()
}

func (f *liveFeed) Start() Start { return f.start }

func (f *liveFeed) signal() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
	if fn := f.notify.Load(); fn != nil {
		(*fn)()
	}
}

// Notify sets fn, called whenever Poll may have something new.
func (f *liveFeed) Notify(fn func()) { f.notify.Store(&fn) }

// push queues a live message; called by the user's subscription, it never
// blocks. When the queue is full the message is dropped from it and the
// feed reads it from the store later.
func (f *liveFeed) push(m liveMsg) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	n := len(f.q) - f.qHead
	if n >= f.qcap || (n > 0 && f.qBytes+len(m.payload) > liveQueueBytes) {
		f.mu.Unlock()
		f.bump(m.seq) // behind: catch up from the store
		return
	}
	if f.qHead > 0 && len(f.q) == cap(f.q) {
		copy(f.q, f.q[f.qHead:])
		clear(f.q[n:])
		f.q, f.qHead = f.q[:n], 0
	}
	f.q = append(f.q, m)
	f.qBytes += len(m.payload)
	f.mu.Unlock()
	f.signal()
}

func (f *liveFeed) pop() (liveMsg, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.qHead >= len(f.q) {
		return liveMsg{}, false
	}
	m := f.q[f.qHead]
	f.q[f.qHead] = liveMsg{}
	f.qHead++
	f.qBytes -= len(m.payload)
	if f.qHead == len(f.q) {
		f.q, f.qHead = f.q[:0], 0
	}
	return m, true
}

// bump records that seq is stored on the subject; a feed behind it reads
// the store.
func (f *liveFeed) bump(seq uint64) {
	for {
		cur := f.hint.Load()
		if seq <= cur {
			return
		}
		if f.hint.CompareAndSwap(cur, seq) {
			f.signal()
			return
		}
	}
}

// Next returns the next message: first a resend of the oldest message whose
// ack wait expired, else a new message while fewer than W are unacked. It
// blocks until there is one, ctx ends or the feed is closed.
func (f *liveFeed) Next(ctx context.Context) (Delivery, error) {
	for {
		d, ok, due, err := f.poll(ctx)
		switch {
		case err != nil:
			return Delivery{}, err
		case ok:
			return d, nil
		}
		if err := f.wait(ctx, due); err != nil {
			return Delivery{}, err
		}
	}
}

// Poll is Next without the wait: ok is false when nothing is ready. When a
// resend falls due later, the feed signals then.
func (f *liveFeed) Poll(ctx context.Context) (Delivery, bool, error) {
	d, ok, due, err := f.poll(ctx)
	if err != nil || ok || due.IsZero() {
		return d, ok, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return Delivery{}, false, ErrFeedClosed
	}
	if f.resend == nil {
		f.resend = time.AfterFunc(time.Until(due), f.signal)
	} else {
		f.resend.Reset(time.Until(due))
	}
	return Delivery{}, false, nil
}

// poll returns the next message if one is ready; else due is the earliest
// resend deadline (zero: nothing in flight).
func (f *liveFeed) poll(ctx context.Context) (d Delivery, ok bool, due time.Time, err error) {
	now := time.Now()
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return Delivery{}, false, time.Time{}, ErrFeedClosed
	}
	for i := range f.inflight {
		m := &f.inflight[i]
		if !m.deadline.After(now) {
			m.deadline = now.Add(f.e.edge.AckWait)
			d := m.d
			d.Redelivered = true
			f.mu.Unlock()
			return d, true, time.Time{}, nil
		}
		if due.IsZero() || m.deadline.Before(due) {
			due = m.deadline
		}
	}
	full := len(f.inflight) >= f.window
	f.mu.Unlock()

	if !full {
		d, ok, err := f.nextNew(ctx)
		if err != nil {
			return Delivery{}, false, time.Time{}, err
		}
		if ok {
			f.mu.Lock()
			if f.closed {
				f.mu.Unlock()
				return Delivery{}, false, time.Time{}, ErrFeedClosed
			}
			f.inflight = append(f.inflight, inflightMsg{d: d, deadline: time.Now().Add(f.e.edge.AckWait)})
			f.mu.Unlock()
			return d, true, time.Time{}, nil
		}
	}
	return Delivery{}, false, due, nil
}

// wait blocks until something may have changed, due passes (zero: no
// deadline), ctx ends or the feed closes.
func (f *liveFeed) wait(ctx context.Context, due time.Time) error {
	var timeout <-chan time.Time
	if !due.IsZero() {
		t := time.NewTimer(time.Until(due))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-f.done:
		return ErrFeedClosed
	case <-f.wake:
	case <-timeout:
	}
	return nil
}

// sleep waits for d unless ctx ends or the feed closes.
func (f *liveFeed) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-f.done:
		return ErrFeedClosed
	case <-t.C:
		return nil
	}
}

// nextNew returns the message of the subject after cursor, if one is known:
// from the live queue when nothing before it is missing, else from the
// store. ok is false when there is none yet.
func (f *liveFeed) nextNew(ctx context.Context) (d Delivery, ok bool, err error) {
	for {
		// held is after cursor: it is set so, and cursor moves past it
		// only when it is delivered.
		if h := f.held; h != nil {
			if h.last <= f.cursor {
				f.held, f.misses, f.cursor = nil, 0, h.seq
				return h.delivery(), true, nil
			}
			// (cursor, h.last] did not arrive live: read it from the store.
			m, found, err := f.read(ctx, f.cursor+1)
			if err != nil {
				return Delivery{}, false, err
			}
			if !found && f.misses >= maxMisses {
				if m, found, err = f.readLeader(ctx, f.cursor+1); err != nil {
					if err := f.missed(ctx); err != nil {
						return Delivery{}, false, err
					}
					continue
				}
			}
			switch {
			case found && m.Sequence < h.seq:
				f.misses, f.cursor = 0, m.Sequence
				f.e.gapFills.Add(1)
				return rawDelivery(m), true, nil
			case found || f.misses >= maxMisses:
				// Nothing is left before h: retention removed it (the
				// leader says so too).
				f.held, f.misses, f.cursor = nil, 0, h.seq
				return h.delivery(), true, nil
			}
			if err := f.missed(ctx); err != nil {
				return Delivery{}, false, err
			}
			continue
		}
		if m, ok := f.pop(); ok {
			if m.seq > f.cursor {
				f.held = &m
			}
			continue
		}
		hint := f.hint.Load()
		if hint <= f.cursor || hint <= f.checked {
			return Delivery{}, false, nil
		}
		// The backlog, or messages the queue had no room for, or that a
		// re-check found: read them from the store.
		m, found, err := f.read(ctx, f.cursor+1)
		if err != nil {
			return Delivery{}, false, err
		}
		if !found && f.misses >= maxMisses {
			if m, found, err = f.readLeader(ctx, f.cursor+1); err != nil {
				if err := f.missed(ctx); err != nil {
					return Delivery{}, false, err
				}
				continue
			}
		}
		if found {
			f.misses, f.cursor = 0, m.Sequence
			return rawDelivery(m), true, nil
		}
		if f.misses >= maxMisses {
			f.misses, f.checked = 0, hint // removed by retention: the leader has nothing either
			continue
		}
		if err := f.missed(ctx); err != nil {
			return Delivery{}, false, err
		}
	}
}

// missed backs off before reading a message known to be stored again.
func (f *liveFeed) missed(ctx context.Context) error {
	d := missBackoff << min(f.misses, maxMisses)
	f.misses++
	return f.sleep(ctx, d)
}

// readLeader is read asked of the stream's leader, for a message that
// replicas kept missing: a replica that lags behind the leader (one that
// was stopped and came back, say) answers direct gets without the newest
// messages, which must not be taken as removed by retention. found is
// false only when the leader has nothing at or after seq either.
func (f *liveFeed) readLeader(ctx context.Context, seq uint64) (*jetstream.RawStreamMsg, bool, error) {
	rctx, cancel := context.WithTimeout(ctx, f.e.timeout)
	defer cancel()
	m, err := f.store.nextFromLeader(rctx, seq, f.subject)
	switch {
	case err == nil:
		return m, true, nil
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return nil, false, nil
	}
	f.e.log.Warn("read from the stream leader failed, retrying", "user", streams.LogUser(f.dev.User), "device", f.dev.Device, "seq", seq, "err", err)
	return nil, false, err
}

func rawDelivery(m *jetstream.RawStreamMsg) Delivery {
	return Delivery{Seq: m.Sequence, Payload: m.Data, Time: m.Time, encoded: streams.Encoded(m.Header)}
}

// read returns the first message of the subject at or after seq (a direct
// get by subject), found false when there is none. Failures (NATS down, a
// leader election) are retried with a backoff until ctx ends or the feed
// closes, so that an outage delays the device rather than closing it.
func (f *liveFeed) read(ctx context.Context, seq uint64) (*jetstream.RawStreamMsg, bool, error) {
	warned := false
	return f.store.nextRetry(ctx, f.done, seq, f.subject, f.e.timeout, func(err error) {
		if !warned {
			warned = true
			f.e.log.Warn("read from the store failed, retrying", "user", streams.LogUser(f.dev.User), "device", f.dev.Device, "seq", seq, "err", err)
		}
	})
}

// Ack acknowledges the delivered messages at or below seq, frees their
// window slots and moves the device's position to the newest of them. It
// does no I/O: the position is written by the engine's flusher within a
// second, or by Close.
func (f *liveFeed) Ack(_ context.Context, seq uint64) error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	n := 0
	for n < len(f.inflight) && f.inflight[n].d.Seq <= seq {
		n++
	}
	if n == 0 {
		f.mu.Unlock()
		return nil
	}
	if top := f.inflight[n-1].d.Seq; top > f.acked {
		f.acked = top
	}
	// Only a full window held anything back: freeing slots of one that
	// was not makes nothing new deliverable.
	wasFull := len(f.inflight) >= f.window
	rest := copy(f.inflight, f.inflight[n:])
	clear(f.inflight[rest:])
	f.inflight = f.inflight[:rest]
	queue := !f.queued && f.acked != f.written
	if queue {
		f.queued = true
	}
	f.mu.Unlock()
	if wasFull {
		f.signal()
	}
	if queue {
		f.e.markDirty(f)
	}
	return nil
}

// flush writes the position if it changed; called by the engine's flusher.
// It does not wait for a write by Close, which writes the newest position.
func (f *liveFeed) flush(ctx context.Context) {
	select {
	case f.wtok <- struct{}{}:
	default:
		return
	}
	defer func() { <-f.wtok }()
	f.mu.Lock()
	f.queued = false
	seq, write := f.acked, !f.closed && (f.acked != f.written || f.touch)
	f.touch = false
	f.mu.Unlock()
	if !write {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, f.e.timeout)
	err := f.e.writePosition(wctx, f.kv, f.key, seq)
	cancel()
	requeue := false
	f.mu.Lock()
	switch {
	case err == nil:
		f.written, f.wroteAt = seq, time.Now()
	case !f.closed:
		f.touch = true
		requeue = !f.queued
		f.queued = true
	}
	f.mu.Unlock()
	if err != nil && ctx.Err() == nil {
		f.e.log.Warn("write position", "user", streams.LogUser(f.dev.User), "device", f.dev.Device, "seq", seq, "err", err)
	}
	if requeue {
		f.e.markDirty(f)
	}
}

// lastSeenEvery is the age after which Close writes an unchanged position,
// the device's last seen time in device status.
const lastSeenEvery = time.Minute

// Close stops the feed (a pending Next returns ErrFeedClosed), leaves the
// user's subscription and writes the position if it changed (or its entry
// is older than lastSeenEvery), bounded by a short timeout.
func (f *liveFeed) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	close(f.done)
	f.q, f.qHead, f.qBytes = nil, 0, 0
	f.inflight = nil
	if f.resend != nil {
		f.resend.Stop()
	}
	f.mu.Unlock()
	f.signal()
	f.e.detach(f)
	f.e.unmarkDirty(f)

	ctx, cancel := context.WithTimeout(context.Background(), min(closeWriteTimeout, f.e.timeout))
	defer cancel()
	select {
	case f.wtok <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("edge: close %s: %w", f.dev.logName(), ctx.Err())
	}
	defer func() { <-f.wtok }()
	f.mu.Lock()
	// An unchanged position is written too when the entry is older than
	// lastSeenEvery, so that device status sees when the device left.
	seq, write := f.acked, f.acked != f.written || f.touch || time.Since(f.wroteAt) > lastSeenEvery
	f.mu.Unlock()
	if !write {
		return nil
	}
	if err := f.e.writePosition(ctx, f.kv, f.key, seq); err != nil {
		f.e.log.Warn("write position on close", "user", streams.LogUser(f.dev.User), "device", f.dev.Device, "seq", seq, "err", err)
		return fmt.Errorf("edge: close: %w", err)
	}
	f.mu.Lock()
	f.written = seq
	f.mu.Unlock()
	return nil
}
