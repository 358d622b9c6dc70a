package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald/streams"
)

// LiveEngine is the `live` delivery engine (SPEC §1). The stream republishes
// every stored message to <prefix>.live.<token>; the engine holds one core
// subscription per user connected to this edge, shared by that user's
// devices, and fans each message out to the devices' feeds (one dispatcher
// goroutine serves every subscription). A feed reads its backlog, and any
// gap the live subject reveals, with direct gets; it keeps its own unacked
// window and resends what is not acked in time. Each device's acked
// position is one entry of the KV bucket HERALD_DEVICES
// (streams.DevicesBucket), written when a new device first connects, then
// at most once a second per device and when the feed closes.
//
// Run must be running while the engine serves: it writes coalesced
// positions and, after NATS reconnects, re-checks every connected user for
// messages whose republish was lost. Feeds opened before Run starts work
// (their positions wait for it, or for Close); once Run has returned, Open
// refuses new feeds. A LiveEngine is safe for concurrent use.
//
// Locks: the registry shard locks, the dirty-set lock and each feed's lock
// are never held together, across I/O, or across a channel send that can
// block. The one thing held across I/O is a feed's write token (a one-slot
// channel) around the KV write of that device's position, so that writes of
// one key never overtake each other: the flusher only tries to take it and
// skips a feed whose Close is writing; Close waits for it, bounded by its
// timeout.
type LiveEngine struct {
	js      jetstream.JetStream
	nc      *nats.Conn
	stream  streams.Config
	edge    Config
	subj    streams.Subjects
	timeout time.Duration
	log     *slog.Logger

	// dropLive, set only by tests in this package before the first Open,
	// makes the fan-out drop the live messages it returns true for, as a
	// lost republish would be.
	dropLive func(seq uint64) bool

	handleMu sync.Mutex
	strm     jetstream.Stream   // cached, dropped on error
	kv       jetstream.KeyValue // cached, dropped on error

	runMu   sync.Mutex
	running bool
	stopped bool // Run has returned

	shards [64]userShard
	disp   dispatcher

	dirtyMu sync.Mutex
	dirty   map[*liveFeed]struct{} // feeds whose position awaits a write

	gapFills atomic.Uint64 // messages read from the store before a held live message
}

var _ Engine = (*LiveEngine)(nil)

// Tuning of the live engine.
const (
	// flushEvery is how often coalesced positions are written: at most one
	// write per device per period.
	flushEvery = time.Second
	// sweepEvery is how often every connected user is re-checked for a
	// message whose republish was lost and that no later message revealed
	// (a safety net; reconnects and client-side drops trigger a check at
	// once).
	sweepEvery = time.Minute
	// apiParallel bounds the concurrent JetStream calls of one flush or
	// re-check.
	apiParallel = 16
	// closeWriteTimeout bounds the position write of Close.
	closeWriteTimeout = 2 * time.Second
)

// NewLiveEngine returns a live engine over js (its connection carries the
// live subscriptions). The HERALD stream and the HERALD_DEVICES bucket must
// exist (streams.Apply, streams.ApplyDevices); timeout bounds each JetStream
// call (0: 5s).
func NewLiveEngine(js jetstream.JetStream, stream streams.Config, edge Config, timeout time.Duration, log *slog.Logger) (*LiveEngine, error) {
	if js == nil || js.Conn() == nil {
		return nil, errors.New("edge: live engine: nil JetStream")
	}
	if edge.MaxInflight < 1 {
		return nil, fmt.Errorf("edge: live engine: max inflight %d: must be positive", edge.MaxInflight)
	}
	if edge.AckWait <= 0 {
		return nil, fmt.Errorf("edge: live engine: ack wait %v: must be positive", edge.AckWait)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	e := &LiveEngine{
		js:      js,
		nc:      js.Conn(),
		stream:  stream,
		edge:    edge,
		subj:    streams.Subjects{Prefix: stream.Prefix},
		timeout: timeout,
		log:     log.With("component", "edge.live"),
		dirty:   map[*liveFeed]struct{}{},
	}
	for i := range e.shards {
		e.shards[i].users = map[string]*userSub{}
	}
	e.disp.handle = e.fanOut
	return e, nil
}

// errStopped is returned by Open once Run has returned.
var errStopped = errors.New("live engine stopped")

// Run writes coalesced device positions, re-checks connected users after a
// NATS reconnect, and blocks until ctx ends; then it writes the pending
// positions (bounded by the engine timeout) and returns nil. Feeds opened
// before keep working, and still write their position on Close.
func (e *LiveEngine) Run(ctx context.Context) error {
	e.runMu.Lock()
	if e.running || e.stopped {
		e.runMu.Unlock()
		return errors.New("edge: live run: already running or stopped")
	}
	e.running = true
	e.runMu.Unlock()
	defer func() {
		e.runMu.Lock()
		e.running, e.stopped = false, true
		e.runMu.Unlock()
	}()

	// A status listener, unlike the reconnect handler, does not replace
	// anyone else's: several engines and the caller can share nc.
	status := e.nc.StatusChanged(nats.CONNECTED)
	defer e.nc.RemoveStatusListener(status)
	tick := time.NewTicker(flushEvery)
	defer tick.Stop()
	lastSweep := time.Now()
	var retry []*userSub // users a re-check failed for, checked again next tick
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), e.timeout)
			e.flushDirty(fctx)
			cancel()
			return nil
		case _, ok := <-status:
			if !ok {
				status = nil
				continue
			}
			retry = e.resync(ctx, e.connectedUsers(), true)
		case <-tick.C:
			e.flushDirty(ctx)
			check := append(retry, e.droppedUsers()...)
			if time.Since(lastSweep) >= sweepEvery {
				lastSweep = time.Now()
				check = e.connectedUsers()
			}
			retry = e.resync(ctx, dedupUsers(check), false)
		}
	}
}

func (e *LiveEngine) isStopped() bool {
	e.runMu.Lock()
	defer e.runMu.Unlock()
	return e.stopped
}

// handles returns the cached stream and bucket handles, looking them up
// when needed.
func (e *LiveEngine) handles(ctx context.Context) (jetstream.Stream, jetstream.KeyValue, error) {
	e.handleMu.Lock()
	s, kv := e.strm, e.kv
	e.handleMu.Unlock()
	if s != nil && kv != nil {
		return s, kv, nil
	}
	var err error
	if s == nil {
		if s, err = e.js.Stream(ctx, e.stream.Name); err != nil {
			return nil, nil, unavailable("stream "+e.stream.Name, err)
		}
	}
	if kv == nil {
		if kv, err = e.js.KeyValue(ctx, streams.DevicesBucketName); err != nil {
			if errors.Is(err, jetstream.ErrBucketNotFound) {
				err = fmt.Errorf("%w (create it with `herald streams apply`)", err)
			}
			return nil, nil, unavailable("bucket "+streams.DevicesBucketName, err)
		}
	}
	e.handleMu.Lock()
	e.strm, e.kv = s, kv
	e.handleMu.Unlock()
	return s, kv, nil
}

func (e *LiveEngine) forget() {
	e.handleMu.Lock()
	e.strm, e.kv = nil, nil
	e.handleMu.Unlock()
}

// Open reads the device's position, subscribes to the user's live subject
// (or joins this edge's subscription), locates the backlog and returns the
// feed.
func (e *LiveEngine) Open(ctx context.Context, d Device, p Position) (Feed, error) {
	if e.isStopped() {
		return nil, unavailable("open", errStopped)
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	s, kv, err := e.handles(ctx)
	if err != nil {
		return nil, err
	}
	f, err := e.open(ctx, s, kv, d, p)
	if err != nil {
		if errors.Is(err, ErrUnavailable) {
			e.forget()
		}
		return nil, err
	}
	return f, nil
}

func (e *LiveEngine) open(ctx context.Context, s jetstream.Stream, kv jetstream.KeyValue, d Device, p Position) (_ *liveFeed, err error) {
	subject := e.subj.User(d.User)
	key := streams.DeviceKey(d.User, d.Device)

	var (
		known   bool
		pos     uint64
		touched time.Time
	)
	entry, err := kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		// A new device: it takes one of the user's device slots.
		if err := checkDeviceCap(ctx, e.js, d.User, e.edge.MaxDevicesPerUser); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, unavailable("position of "+d.logName(), err)
	default:
		pos, err = strconv.ParseUint(string(entry.Value()), 10, 64)
		if err != nil {
			// Not written by Herald; treat the device as new.
			e.log.Warn("bad device position, treating the device as new", "user", streams.LogUser(d.User), "device", d.Device, "err", err)
		} else {
			known, touched = true, entry.Created()
		}
	}

	f := newLiveFeed(e, d, subject, key, newStoreReader(e.js, s), kv)
	// Subscribe before reading the user's last message: a message stored
	// after that read arrives live, one stored before is in the backlog,
	// and the overlap is dropped by seq.
	if err := e.attach(f); err != nil {
		return nil, unavailable("subscribe to the live subject of "+streams.LogUser(d.User), err)
	}
	defer func() {
		if err != nil {
			e.detach(f)
		}
	}()
	var userLast uint64
	switch last, err := f.store.last(ctx, subject); {
	case errors.Is(err, jetstream.ErrMsgNotFound):
	case err != nil:
		return nil, unavailable("last message of "+streams.LogUser(d.User), err)
	default:
		userLast = last.Sequence
	}
	// The user's last message places a new device and bounds a known
	// position or a since: one past it (a since from a recreated stream, or
	// a client ahead of the store) starts after it, which skips none of the
	// user's messages and delivers the next one. The stream's own state, a
	// request to its leader, is read only when the user's messages cannot
	// tell whether retention removed messages after a since (locateFrom).
	var first uint64
	switch {
	case p.HasSince:
		first = min(p.Since, userLast) + 1
	case known:
		first = min(pos, userLast) + 1
	default:
		if first, err = newDeviceStart(ctx, s, subject, userLast, e.edge.NewDeviceBacklog); err != nil {
			return nil, err
		}
	}
	f.position(first)
	stateOf := func(ctx context.Context) (jetstream.StreamState, error) {
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
		if err != nil {
			return jetstream.StreamState{}, err
		}
		return info.State, nil
	}
	st, err := locateFrom(ctx, f.store, subject, first, p, stateOf, e.stream.MaxMsgsPerUser, userLast)
	if err != nil {
		return nil, unavailable("locate backlog", err)
	}
	f.start = st
	f.bump(st.Synced) // the backlog; never lowers what the fan-out recorded

	if !known {
		// Make the device known now, so that a reconnect resumes here
		// rather than starting over as a new device.
		if err := e.writePosition(ctx, kv, key, first-1); err != nil {
			return nil, unavailable("position of "+d.logName(), err)
		}
		pos, touched = first-1, time.Now()
	}
	f.mu.Lock()
	f.written, f.wroteAt = pos, touched
	// A since moves the position (as a consumer reset does); an unchanged
	// one is rewritten now and then, so that the bucket's TTL counts from
	// the device's last use, not its last ack.
	queue := f.acked != f.written || (known && time.Since(touched) > touchAfter(e.edge.DeviceTTL))
	if queue {
		f.touch, f.queued = true, true
	}
	f.mu.Unlock()
	if queue {
		e.markDirty(f)
	}
	return f, nil
}

// AckPosition advances the device's KV position to seq (compare and set;
// a position already at or past seq is left alone). A seq beyond the
// user's last stored message is clamped to it (SPEC §9): stored as given,
// it would make the device skip the messages stored after the ack, up to
// seq, without a gap.
func (e *LiveEngine) AckPosition(ctx context.Context, d Device, seq uint64) error {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	s, kv, err := e.handles(ctx)
	if err != nil {
		return err
	}
	key := streams.DeviceKey(d.User, d.Device)
	who := streams.LogUser(d.User) + "/" + d.Device // errors name the user by its hash
	// The user's last message, read before the position: a message stored
	// after this read has a higher seq than the clamp, so it is delivered.
	// A replica that lags can only make the clamp lower (a resend, never a
	// loss).
	subject := e.subj.User(d.User)
	var userLast uint64
	switch last, err := newStoreReader(e.js, s).last(ctx, subject); {
	case errors.Is(err, jetstream.ErrMsgNotFound):
	case err != nil:
		e.forget()
		return unavailable("last message of "+streams.LogUser(d.User), err)
	default:
		userLast = last.Sequence
	}
	seq = clampSince(seq, userLast)
	for range 5 {
		entry, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			return fmt.Errorf("edge: ack %s: %w", who, ErrNoPosition)
		case err != nil:
			e.forget()
			return unavailable("position of "+who, err)
		}
		if pos, err := strconv.ParseUint(string(entry.Value()), 10, 64); err == nil && pos >= seq {
			return nil
		}
		_, err = kv.Update(ctx, key, strconv.AppendUint(nil, seq, 10), entry.Revision())
		switch {
		case err == nil:
			return nil
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch), errors.Is(err, jetstream.ErrKeyExists):
			continue // written meanwhile: look again
		default:
			e.forget()
			return unavailable("ack position of "+who, err)
		}
	}
	return unavailable("ack position of "+who, errors.New("too many concurrent writes"))
}

// Devices lists the user's device entries: the value is the acked
// position, its write time when the device was last seen (the position is
// written at most once a second while it moves, and when a session that
// lasted over lastSeenEvery closes).
func (e *LiveEngine) Devices(ctx context.Context, user string) ([]DeviceState, error) {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	entries, err := listDevices(ctx, e.js, user, maxListedDevices)
	if err != nil {
		return nil, unavailable("devices of "+streams.LogUser(user), err)
	}
	out := make([]DeviceState, 0, len(entries))
	for _, en := range entries {
		pos, _ := strconv.ParseUint(string(en.value), 10, 64)
		out = append(out, DeviceState{Device: en.device, Acked: pos, LastSeen: en.written})
	}
	return out, nil
}

// touchAfter is the age after which an unchanged position is rewritten.
func touchAfter(ttl time.Duration) time.Duration {
	return min(ttl/4, 24*time.Hour)
}

func (e *LiveEngine) writePosition(ctx context.Context, kv jetstream.KeyValue, key string, seq uint64) error {
	if _, err := kv.Put(ctx, key, strconv.AppendUint(nil, seq, 10)); err != nil {
		return fmt.Errorf("edge: write position %d: %w", seq, err)
	}
	return nil
}

// markDirty queues f for the next coalesced write. The caller has set
// f.queued under f's lock.
func (e *LiveEngine) markDirty(f *liveFeed) {
	e.dirtyMu.Lock()
	e.dirty[f] = struct{}{}
	e.dirtyMu.Unlock()
}

func (e *LiveEngine) unmarkDirty(f *liveFeed) {
	e.dirtyMu.Lock()
	delete(e.dirty, f)
	e.dirtyMu.Unlock()
}

// flushDirty writes the positions of the feeds queued since the last flush.
// A feed that fails to write is queued again.
func (e *LiveEngine) flushDirty(ctx context.Context) {
	e.dirtyMu.Lock()
	if len(e.dirty) == 0 {
		e.dirtyMu.Unlock()
		return
	}
	feeds := make([]*liveFeed, 0, len(e.dirty))
	for f := range e.dirty {
		feeds = append(feeds, f)
	}
	clear(e.dirty)
	e.dirtyMu.Unlock()
	parallel(ctx, feeds, func(ctx context.Context, f *liveFeed) { f.flush(ctx) })
}

// parallel calls fn for each item, at most apiParallel at a time, and
// returns when all calls have returned.
func parallel[T any](ctx context.Context, items []T, fn func(context.Context, T)) {
	sem := make(chan struct{}, apiParallel)
	var wg sync.WaitGroup
	for _, it := range items {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			fn(ctx, it)
		}()
	}
	wg.Wait()
}

func dedupUsers(users []*userSub) []*userSub {
	if len(users) < 2 {
		return users
	}
	seen := make(map[*userSub]struct{}, len(users))
	out := users[:0]
	for _, u := range users {
		if _, ok := seen[u]; !ok {
			seen[u] = struct{}{}
			out = append(out, u)
		}
	}
	return out
}
