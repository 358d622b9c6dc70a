package edge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-push/herald/streams"
)

// ConsumerEngine keeps each device's position in a durable JetStream pull
// consumer (SPEC §1, engine `consumer`): AckAll, MaxAckPending = W, AckWait
// = the ack wait, InactiveThreshold = the device TTL, one replica. JetStream
// does acks and redelivery. It is safe for concurrent use.
//
// Each device also has an entry in the devices bucket (key
// streams.DeviceKey; value the device's acked position when it connected,
// in the live engine's format). Consumer names are hashes, and JetStream
// cannot list the consumers of one subject, so the entries are what counts
// a user's devices (edge.max_devices_per_user) and lists them (device
// status). An entry is rewritten when its device connects and it is older
// than a quarter of the device TTL (at most a day); a device that stays
// connected for longer than the device TTL is not counted or listed from
// then until it reconnects.
type ConsumerEngine struct {
	js      jetstream.JetStream
	stream  streams.Config
	edge    Config
	subj    streams.Subjects
	timeout time.Duration
	log     *slog.Logger

	mu   sync.Mutex
	strm jetstream.Stream   // cached handle, refreshed on error
	kv   jetstream.KeyValue // cached devices bucket
}

var (
	_ Engine = (*ConsumerEngine)(nil)
	_ Feed   = (*consumerFeed)(nil)
)

// NewConsumerEngine returns a consumer engine over js.
func NewConsumerEngine(js jetstream.JetStream, stream streams.Config, edge Config, timeout time.Duration, log *slog.Logger) (*ConsumerEngine, error) {
	if js == nil {
		return nil, errors.New("edge: consumer engine: nil JetStream")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &ConsumerEngine{js: js, stream: stream, edge: edge, subj: streams.Subjects{Prefix: stream.Prefix}, timeout: timeout, log: log.With("component", "edge.consumer")}, nil
}

// Run blocks until ctx ends: the consumer engine has no background work
// (JetStream keeps positions and redelivers).
func (e *ConsumerEngine) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// Devices lists the user's device entries, each with its consumer's ack
// floor and the latest of the entry's write and the consumer's last
// delivery and ack. A device whose consumer is gone (unused for the device
// TTL) keeps the position its entry recorded.
func (e *ConsumerEngine) Devices(ctx context.Context, user string) ([]DeviceState, error) {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	s, err := e.handle(ctx)
	if err != nil {
		return nil, err
	}
	entries, err := listDevices(ctx, e.js, user, maxListedDevices)
	if err != nil {
		return nil, unavailable("devices of "+streams.LogUser(user), err)
	}
	out := make([]DeviceState, len(entries))
	failed := make([]error, len(entries))
	idx := make([]int, len(entries))
	for i := range idx {
		idx[i] = i
	}
	parallel(ctx, idx, func(ctx context.Context, i int) {
		en := entries[i]
		pos, _ := strconv.ParseUint(string(en.value), 10, 64)
		ds := DeviceState{Device: en.device, Acked: pos, LastSeen: en.written}
		c, err := s.Consumer(ctx, ConsumerName(user, en.device))
		switch {
		case errors.Is(err, jetstream.ErrConsumerNotFound):
		case err != nil:
			failed[i] = err
		default:
			info := c.CachedInfo()
			ds.Acked = info.AckFloor.Stream
			for _, t := range []*time.Time{info.AckFloor.Last, info.Delivered.Last} {
				if t != nil && t.After(ds.LastSeen) {
					ds.LastSeen = *t
				}
			}
		}
		out[i] = ds
	})
	if ctx.Err() != nil {
		failed = append(failed, ctx.Err())
	}
	if err := errors.Join(failed...); err != nil {
		e.forget()
		return nil, unavailable("consumers of "+streams.LogUser(user), err)
	}
	return out, nil
}

// Collector returns nil: the consumer engine has no series of its own.
func (e *ConsumerEngine) Collector() prometheus.Collector { return nil }

// ConsumerName is the durable name of a device's consumer: a hash of the
// user token and the device, so that it is a valid name of bounded length.
func ConsumerName(user, device string) string {
	h := sha256.Sum256([]byte(streams.Token(user) + "\x00" + device))
	return "dev_" + hex.EncodeToString(h[:16])
}

func (e *ConsumerEngine) handle(ctx context.Context) (jetstream.Stream, error) {
	e.mu.Lock()
	s := e.strm
	e.mu.Unlock()
	if s != nil {
		return s, nil
	}
	s, err := e.js.Stream(ctx, e.stream.Name)
	if err != nil {
		return nil, unavailable("stream "+e.stream.Name, err)
	}
	e.mu.Lock()
	e.strm = s
	e.mu.Unlock()
	return s, nil
}

// devices returns the devices bucket.
func (e *ConsumerEngine) devices(ctx context.Context) (jetstream.KeyValue, error) {
	e.mu.Lock()
	kv := e.kv
	e.mu.Unlock()
	if kv != nil {
		return kv, nil
	}
	kv, err := e.js.KeyValue(ctx, streams.DevicesBucketName)
	if err != nil {
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			err = fmt.Errorf("%w (create it with `herald streams apply`)", err)
		}
		return nil, unavailable("bucket "+streams.DevicesBucketName, err)
	}
	e.mu.Lock()
	e.kv = kv
	e.mu.Unlock()
	return kv, nil
}

func (e *ConsumerEngine) forget() {
	e.mu.Lock()
	e.strm, e.kv = nil, nil
	e.mu.Unlock()
}

func unavailable(op string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
}

// Open positions the device's consumer and starts pulling from it.
func (e *ConsumerEngine) Open(ctx context.Context, d Device, p Position) (Feed, error) {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	s, err := e.handle(ctx)
	if err != nil {
		return nil, err
	}
	kv, err := e.devices(ctx)
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

func (e *ConsumerEngine) open(ctx context.Context, s jetstream.Stream, kv jetstream.KeyValue, d Device, p Position) (Feed, error) {
	subject := e.subj.User(d.User)
	// With the subject filter, the state also counts the user's messages
	// (locate's per-user gap check).
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return nil, unavailable("stream info", err)
	}
	state := info.State
	name := ConsumerName(d.User, d.Device)
	cfg := jetstream.ConsumerConfig{
		Durable:           name,
		Description:       "herald device",
		FilterSubject:     subject,
		AckPolicy:         jetstream.AckAllPolicy,
		AckWait:           e.edge.AckWait,
		MaxAckPending:     e.edge.MaxInflight,
		MaxDeliver:        -1,
		InactiveThreshold: e.edge.DeviceTTL,
		Replicas:          1,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		MaxRequestBatch:   e.edge.MaxInflight,
		HeadersOnly:       false,
	}
	cons, err := s.Consumer(ctx, name)
	var first uint64
	known := err == nil
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		if err := checkDeviceCap(ctx, e.js, d.User, e.edge.MaxDevicesPerUser); err != nil {
			return nil, err
		}
		cons, err = s.CreateConsumer(ctx, cfg)
		if errors.Is(err, jetstream.ErrMaximumConsumersLimit) {
			return nil, fmt.Errorf("%w: stream.max_consumers %d: %w", ErrNoConsumerRoom, e.stream.MaxConsumers, err)
		}
		if err != nil {
			return nil, unavailable("create consumer", err)
		}
		switch {
		case p.HasSince:
			first = clampSince(p.Since, state.LastSeq) + 1
		default:
			first, err = newDeviceStart(ctx, s, subject, state.LastSeq, e.edge.NewDeviceBacklog)
			if err != nil {
				return nil, err
			}
		}
		if first, err = reset(ctx, s, name, first); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, unavailable("consumer info", err)
	case p.HasSince:
		if first, err = reset(ctx, s, name, clampSince(p.Since, state.LastSeq)+1); err != nil {
			return nil, err
		}
	default:
		// A known device: resend what it has not acked, now rather than
		// after the ack wait.
		if first, err = reset(ctx, s, name, 0); err != nil {
			return nil, err
		}
	}
	if err := e.recordDevice(ctx, kv, d, first-1, known); err != nil {
		return nil, err
	}
	store := newStoreReader(e.js, s)
	st, err := locate(ctx, store, subject, first, p, state, e.stream.MaxMsgsPerUser)
	if err != nil {
		return nil, unavailable("locate backlog", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(e.edge.MaxInflight), jetstream.PullExpiry(30*time.Second))
	if err != nil {
		return nil, unavailable("pull", err)
	}
	f := &consumerFeed{
		start: st, it: it, store: store, subject: subject, timeout: e.timeout, window: e.edge.MaxInflight,
		lastStream: first - 1,
		inflight:   map[uint64]jetstream.Msg{},
		pulled:     make(chan pulledMsg, e.edge.MaxInflight+1),
		stop:       make(chan struct{}),
		pullDone:   make(chan struct{}),
	}
	go f.pull()
	return f, nil
}

// AckPosition moves the device consumer's ack floor to seq (clamped to the
// stream's last seq) by resetting it to seq+1, unless the floor is already
// there. Messages after seq that the consumer had delivered are delivered
// again.
func (e *ConsumerEngine) AckPosition(ctx context.Context, d Device, seq uint64) error {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	s, err := e.handle(ctx)
	if err != nil {
		return err
	}
	name := ConsumerName(d.User, d.Device)
	cons, err := s.Consumer(ctx, name)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		return fmt.Errorf("edge: ack %s: %w", name, ErrNoPosition)
	case err != nil:
		e.forget()
		return unavailable("consumer info", err)
	}
	if cons.CachedInfo().AckFloor.Stream >= seq {
		return nil
	}
	info, err := s.Info(ctx)
	if err != nil {
		e.forget()
		return unavailable("stream info", err)
	}
	seq = clampSince(seq, info.State.LastSeq)
	if cons.CachedInfo().AckFloor.Stream >= seq {
		return nil
	}
	if _, err := reset(ctx, s, name, seq+1); err != nil {
		e.forget()
		return err
	}
	return nil
}

// recordDevice writes the device's entry in the devices bucket, which counts
// it against edge.max_devices_per_user and lists it in device status:
// always for a new device, for a known one when the entry is missing or
// due to be refreshed. A known device connects even when the write fails;
// the failure is logged.
func (e *ConsumerEngine) recordDevice(ctx context.Context, kv jetstream.KeyValue, d Device, pos uint64, known bool) error {
	key := streams.DeviceKey(d.User, d.Device)
	if known {
		entry, err := kv.Get(ctx, key)
		if err == nil && time.Since(entry.Created()) <= touchAfter(e.edge.DeviceTTL) {
			return nil
		}
		if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			e.log.Warn("read device entry", "user", streams.LogUser(d.User), "device", d.Device, "err", err)
			return nil
		}
	}
	if _, err := kv.Put(ctx, key, strconv.AppendUint(nil, pos, 10)); err != nil {
		if known {
			e.log.Warn("write device entry", "user", streams.LogUser(d.User), "device", d.Device, "err", err)
			return nil
		}
		return unavailable("record the device of "+streams.LogUser(d.User), err)
	}
	return nil
}

// clampSince keeps a since beyond the end of the stream at the end: a reset
// past the end would silently skip the next messages (SPEC §9).
func clampSince(since, last uint64) uint64 {
	if since > last {
		return last
	}
	return since
}

// reset positions consumer name at seq (0: its ack floor + 1) and returns
// the seq it was reset to.
func reset(ctx context.Context, s jetstream.Stream, name string, seq uint64) (uint64, error) {
	var (
		r   *jetstream.ConsumerResetResponse
		err error
	)
	if seq == 0 {
		r, err = s.ResetConsumer(ctx, name)
	} else {
		r, err = s.ResetConsumerToSequence(ctx, name, seq)
	}
	if err != nil {
		return 0, unavailable(fmt.Sprintf("reset consumer %s to %d", name, seq), err)
	}
	return r.ResetSeq, nil
}

// newDeviceStart is where a device with no position and no since starts:
// after last (the last stored message), or at the last K messages of the
// user when edge.new_device_backlog is K > 0.
func newDeviceStart(ctx context.Context, s jetstream.Stream, subject string, last uint64, k int) (uint64, error) {
	if k <= 0 {
		return last + 1, nil
	}
	// Walk the user's retained messages with a short-lived ordered
	// consumer; the one with K-1 pending after it is the start.
	oc, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverAllPolicy, HeadersOnly: true})
	if err != nil {
		return 0, unavailable("backlog walk", err)
	}
	for {
		batch, err := oc.FetchNoWait(500)
		if err != nil {
			return 0, unavailable("backlog walk", err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			if md.NumPending < uint64(k) {
				return md.Sequence.Stream, nil
			}
		}
		if batch.Error() != nil && !errors.Is(batch.Error(), nats.ErrTimeout) {
			return 0, unavailable("backlog walk", batch.Error())
		}
		if n == 0 {
			return last + 1, nil
		}
	}
}

// consumerFeed is a Feed over one pull consumer. Its puller goroutine
// (started by Open, stopped and waited for by Close) waits on the
// consumer's message iterator and hands each message to Poll through a
// channel that holds a window's worth: JetStream sends no more than
// MaxAckPending (the window) unacked messages, so the puller never waits
// long on it, and it waits on nothing else of the session's.
//
// Deliveries lost in transit: a pull response can be lost between the
// server and this client (a NATS server restart, a route failover). The
// server counts such messages as delivered and would resend them after the
// ack wait, but with AckAll a later cumulative ack from the device would
// acknowledge them first, and they would be gone. The feed therefore
// watches the consumer's delivery sequence: when it skips, or on the first
// message, it reads the user's messages between the last one delivered and
// the new one from the store and delivers those first.
type consumerFeed struct {
	start   Start
	it      jetstream.MessagesContext
	store   storeReader
	subject string
	timeout time.Duration
	window  int

	pulled   chan pulledMsg // from the puller to Poll
	stop     chan struct{}  // closed by Close: the puller stops waiting to hand over
	pullDone chan struct{}  // closed when the puller has returned
	notify   atomic.Pointer[func()]

	// Poll's goroutine only.
	lastCons   uint64     // consumer sequence of the last message pulled; 0 before the first
	lastStream uint64     // the highest stream seq delivered (or the start − 1)
	fill       []Delivery // read from the store, to deliver before the next pulled message

	mu       sync.Mutex
	inflight map[uint64]jetstream.Msg // delivered, not yet acked; ≤ W entries
	closed   bool
}

// pulledMsg is a message from the iterator, or the error that ended it.
type pulledMsg struct {
	m   jetstream.Msg
	err error
}

func (f *consumerFeed) Start() Start { return f.start }

// Notify sets fn, called after each message the puller hands over.
func (f *consumerFeed) Notify(fn func()) { f.notify.Store(&fn) }

func (f *consumerFeed) signal() {
	if fn := f.notify.Load(); fn != nil {
		(*fn)()
	}
}

// pull hands the iterator's messages to Poll until the iterator is
// stopped (Close) or fails; a failure is handed over too, and ends it.
func (f *consumerFeed) pull() {
	defer close(f.pullDone)
	for {
		m, err := f.it.Next()
		var p pulledMsg
		switch {
		case errors.Is(err, jetstream.ErrMsgIteratorClosed):
			return
		case errors.Is(err, nats.ErrNoHeartbeat), errors.Is(err, jetstream.ErrNoHeartbeat):
			continue // the iterator re-pulls by itself
		case err != nil:
			p.err = fmt.Errorf("edge: next: %w", err)
		default:
			p.m = m
		}
		select {
		case f.pulled <- p:
		case <-f.stop:
			return
		}
		f.signal()
		if p.err != nil {
			return
		}
	}
}

func (f *consumerFeed) Poll(ctx context.Context) (Delivery, bool, error) {
	if len(f.fill) > 0 {
		d := f.fill[0]
		f.fill = f.fill[1:]
		f.lastStream = max(f.lastStream, d.Seq)
		return d, true, nil
	}
	f.mu.Lock()
	closed := f.closed
	f.mu.Unlock()
	if closed {
		return Delivery{}, false, ErrFeedClosed
	}
	var p pulledMsg
	select {
	case p = <-f.pulled:
	default:
		return Delivery{}, false, nil
	}
	if p.err != nil {
		return Delivery{}, false, p.err
	}
	m := p.m
	md, err := m.Metadata()
	if err != nil {
		return Delivery{}, false, nil // not a JetStream message: cannot happen on a pull consumer
	}
	seq := md.Sequence.Stream
	firstPull := f.lastCons == 0
	skipped := firstPull || md.Sequence.Consumer > f.lastCons+1
	if firstPull && f.start.From != 0 && seq <= f.start.From {
		// The user's first message at or after the start, as Open
		// found it: nothing of the user's can be before it.
		skipped = false
	}
	f.lastCons = max(f.lastCons, md.Sequence.Consumer)
	f.mu.Lock()
	if !f.closed {
		f.inflight[seq] = m
	}
	f.mu.Unlock()
	d := Delivery{Seq: seq, Payload: m.Data(), Time: md.Timestamp, Redelivered: md.NumDelivered > 1, encoded: streams.Encoded(m.Headers())}
	if skipped && seq > f.lastStream+1 {
		missing, err := f.readMissing(ctx, seq)
		if err != nil {
			return Delivery{}, false, err
		}
		if len(missing) > 0 {
			f.fill = append(missing[1:], d)
			d = missing[0]
		}
	}
	f.lastStream = max(f.lastStream, d.Seq)
	return d, true, nil
}

// readMissing returns the user's stored messages after lastStream and
// before seq: those the consumer delivered but this feed never received.
// There are at most a window's worth (2W bounds the loop as a guard). A
// failed read (a busy or restarting server) is retried with a backoff until
// ctx ends, so that it delays the device rather than closing it.
func (f *consumerFeed) readMissing(ctx context.Context, seq uint64) ([]Delivery, error) {
	var out []Delivery
	for from := f.lastStream + 1; from < seq && len(out) <= 2*f.window; {
		m, found, err := f.store.nextRetry(ctx, nil, from, f.subject, f.timeout, nil)
		if err != nil {
			return nil, fmt.Errorf("edge: read lost deliveries after %d: %w", f.lastStream, err)
		}
		if !found {
			// The pulled message at seq is stored, so a replica that has
			// nothing from here lags: ask the leader.
			rctx, cancel := context.WithTimeout(ctx, f.timeout)
			m, err = f.store.nextFromLeader(rctx, from, f.subject)
			cancel()
			switch {
			case err == nil:
				found = true
			case !errors.Is(err, jetstream.ErrMsgNotFound):
				return nil, fmt.Errorf("edge: read lost deliveries after %d from the leader: %w", f.lastStream, err)
			}
		}
		if !found || m.Sequence >= seq {
			break
		}
		d := rawDelivery(m)
		d.Redelivered = true
		out = append(out, d)
		from = m.Sequence + 1
	}
	return out, nil
}

// Ack acks the newest delivered message at or below seq; with AckAll that
// acknowledges every earlier one as well.
func (f *consumerFeed) Ack(ctx context.Context, seq uint64) error {
	f.mu.Lock()
	var (
		best    uint64
		bestMsg jetstream.Msg
	)
	for s, m := range f.inflight {
		if s <= seq {
			if s > best {
				best, bestMsg = s, m
			}
			delete(f.inflight, s)
		}
	}
	f.mu.Unlock()
	if bestMsg == nil {
		return nil
	}
	if err := bestMsg.Ack(); err != nil {
		return fmt.Errorf("edge: ack %d: %w", best, err)
	}
	return nil
}

// Close stops the iterator and waits for the puller to return.
func (f *consumerFeed) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	f.inflight = nil
	f.mu.Unlock()
	close(f.stop)
	f.it.Stop()
	<-f.pullDone
	return nil
}
