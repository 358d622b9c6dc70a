package edge

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/streams"
)

// transport is the socket side of a session (WebSocket or SSE). write and
// flush are called by the session's pump, or by the handler for the
// welcome and by the reader for error frames, never concurrently with
// each other (the transport orders them under its own lock).
type transport interface {
	// write writes, or buffers, one encoded frame of kind; seq is a
	// message's. It is false when the session cannot take the frame (a
	// failed or timed-out write, the session ended); the transport has
	// closed the session then.
	write(kind frameKind, seq uint64, frame []byte) bool
	// flush sends what write buffered; called when the pump has nothing
	// more ready. false as for write.
	flush() bool
}

// session is the transport-independent part of a connection: it pumps the
// feed into the transport in seq order, sends the synced frame once the backlog
// is out, and applies acks. Its close reason is set once.
type session struct {
	dev     Device
	feed    Feed
	codec   codec
	start   Start
	baseLog *slog.Logger // the server's; log adds the device
	metrics *metrics

	ctx    context.Context
	cancel context.CancelFunc
	ended  chan struct{} // closed by Server.release once the handler is done

	// hooks is the server's side of acks and reads; nil in tests of a
	// session alone (reads are then refused, acks stay local).
	hooks hooks

	mu      sync.Mutex
	reason  CloseReason
	onClose func()
	kick    func() // the pump's, set by newPumper
	// The user's read position: the highest seen (readSeq, read by
	// readDev) and the highest sent to the device (sent).
	readSeq uint64
	readDev string
	sent    uint64
}

// hooks is what a session asks of its server beyond its feed.
type hooks interface {
	// shareAck tells the device's streams on other edges of an ack.
	shareAck(d Device, seq uint64)
	// markRead moves the user's read position (SPEC §10).
	markRead(ctx context.Context, d Device, seq uint64) (uint64, error)
}

// newSession returns the session of dev over feed, whose frames c encodes;
// log is the server's logger, to which the session adds the device when it
// logs.
func newSession(parent context.Context, dev Device, feed Feed, c codec, log *slog.Logger, m *metrics) *session {
	ctx, cancel := context.WithCancel(parent)
	return &session{dev: dev, feed: feed, codec: c, start: feed.Start(), baseLog: log, metrics: m, ctx: ctx, cancel: cancel, ended: make(chan struct{})}
}

// log returns a logger that names the device. It is made on each call
// (sessions log rarely), so that an idle session does not hold one.
func (s *session) log() *slog.Logger {
	return s.baseLog.With("user", streams.LogUser(s.dev.User), "device", s.dev.Device)
}

// close ends the session with reason; the first reason wins. Safe to call
// from any goroutine, never blocks.
func (s *session) close(reason CloseReason) {
	s.mu.Lock()
	if s.reason == CloseNone {
		s.reason = reason
	}
	onClose := s.onClose
	s.mu.Unlock()
	s.cancel()
	if onClose != nil {
		onClose()
	}
}

// setOnClose sets fn, called (without blocking) by every close after this
// call. A session ends only by close: its context is canceled by nothing
// else (Server.Shutdown closes each session before it cancels theirs).
func (s *session) setOnClose(fn func()) {
	s.mu.Lock()
	s.onClose = fn
	s.mu.Unlock()
}

func (s *session) closeReason() CloseReason {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reason
}

// begin sends the synced frame when there is no backlog to send first;
// synced reports whether it is out, ok false when the transport refused it.
func (s *session) begin(out transport) (synced, ok bool) {
	synced = s.start.From == 0 || s.start.Synced < s.start.From
	if synced && !out.write(kindSynced, 0, s.codec.synced(s.start.Synced)) {
		s.close(CloseSlow)
		return synced, false
	}
	return synced, true
}

// deliver sends one message, and the synced frame after the last message
// of the backlog; false when the transport refused a frame (the session is
// closed then).
func (s *session) deliver(out transport, d Delivery, synced *bool) bool {
	if !out.write(kindMessage, d.Seq, s.codec.message(d)) {
		s.close(CloseSlow)
		return false
	}
	s.metrics.deliveries.Inc()
	if d.Redelivered {
		s.metrics.redeliveries.Inc()
	}
	if !*synced && d.Seq >= s.start.Synced {
		*synced = true
		if !out.write(kindSynced, 0, s.codec.synced(s.start.Synced)) {
			s.close(CloseSlow)
			return false
		}
	}
	return true
}

// feedFailed closes the session after the feed returned err, unless the
// session had already ended.
func (s *session) feedFailed(err error) {
	if s.ctx.Err() != nil {
		return
	}
	if !errors.Is(err, ErrFeedClosed) && s.baseLog.Enabled(s.ctx, slog.LevelWarn) {
		s.log().Warn("feed failed", "err", err)
	}
	s.close(CloseInternal)
}

// pumper is a session's pump: it moves messages from the feed to the
// transport in seq order, only while there is work. kick starts a
// goroutine unless one is running, which drains the feed into the
// transport, flushes it, and exits once Poll has had nothing for
// pumpLinger. At most one runs at a time, so frames keep their order. A
// transport that refuses a frame closes this session alone (4008). Once the
// session has ended, the next run calls end (the transport's close) and
// closes done.
//
// Every session of both engines and both transports runs on a pumper, so
// that an idle connection costs no goroutine beyond its transport's own.
type pumper struct {
	s    *session
	out  transport
	feed Feed
	end  func()

	// The pump's progress: touched only by the running pump; each run
	// starts after the previous one ended under mu.
	started   bool
	synced    bool
	unflushed int // frames delivered since the last flush

	linger *time.Timer // the running pump's, made on its first linger

	mu       sync.Mutex
	running  bool
	again    bool // kicked while running: poll once more before exiting
	finished bool

	wake chan struct{} // one slot: a kick while the pump lingers
	done chan struct{} // closed once end has returned
}

// burstFrames is the most frames a pump writes before it flushes its
// transport.
const burstFrames = 16

// pumpLinger is how long a pump with nothing to do waits for more before
// its goroutine exits. A device that gets messages more often than this
// keeps one pump (no goroutine start and stack growth per message); an
// idle one costs none.
const pumpLinger = 100 * time.Millisecond

func newPumper(s *session, out transport, feed Feed, end func()) *pumper {
	p := &pumper{s: s, out: out, feed: feed, end: end, wake: make(chan struct{}, 1), done: make(chan struct{})}
	feed.Notify(p.kick)
	s.mu.Lock()
	s.kick = p.kick
	s.mu.Unlock()
	return p
}

// kick makes sure a pump runs after this call. It never blocks.
func (p *pumper) kick() {
	p.mu.Lock()
	switch {
	case p.finished:
	case p.running:
		p.again = true
		select {
		case p.wake <- struct{}{}:
		default:
		}
	default:
		p.running = true
		go p.run()
	}
	p.mu.Unlock()
}

// idle waits up to pumpLinger for a kick; false when none came.
func (p *pumper) idle() bool {
	if p.linger == nil {
		p.linger = time.NewTimer(pumpLinger)
	} else {
		p.linger.Reset(pumpLinger)
	}
	select {
	case <-p.wake:
		p.linger.Stop()
		return true
	case <-p.linger.C:
		return false
	}
}

func (p *pumper) run() {
	for {
		if p.s.ctx.Err() != nil {
			p.end()
			p.mu.Lock()
			p.finished, p.running = true, false
			p.mu.Unlock()
			close(p.done)
			return
		}
		if !p.started {
			p.started = true
			var ok bool
			if p.synced, ok = p.s.begin(p.out); !ok {
				continue
			}
		}
		if f := p.s.takeRead(); f != nil {
			if !p.out.write(kindRead, 0, f) {
				p.s.close(CloseSlow)
			}
			continue
		}
		d, ok, err := p.feed.Poll(p.s.ctx)
		switch {
		case err != nil:
			p.s.feedFailed(err)
			continue
		case ok:
			p.s.deliver(p.out, d, &p.synced)
			// A burst is bounded in frames too: a backlog read from the
			// store one message at a time would otherwise hold the first
			// frames until the whole burst is read.
			if p.unflushed++; p.unflushed >= burstFrames {
				p.unflushed = 0
				p.out.flush()
			}
			continue
		}
		p.unflushed = 0
		if !p.out.flush() {
			continue
		}
		if p.kicked() || p.idle() || !p.stop() {
			continue
		}
		return
	}
}

// kicked reports, and clears, a kick that came while the pump ran.
func (p *pumper) kicked() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := p.again
	p.again = false
	return k
}

// stop marks the pump stopped, unless a kick came meanwhile: then it
// clears the kick and returns false, and the pump goes on.
func (p *pumper) stop() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.again {
		p.again = false
		return false
	}
	p.running = false
	return true
}

// handleFrame applies one client frame; a malformed one gets an error frame.
// It runs on the transport's reader: a read frame does its JetStream I/O
// there, bounded by the server's timeout.
func (s *session) handleFrame(out transport, b []byte) {
	f, err := herald.ParseClientFrame(b)
	if err == nil && f.Type == herald.TypeRead && s.hooks == nil {
		err = errReadUnsupported
	}
	if err != nil {
		if !out.write(kindError, 0, encodeError(herald.InvalidFrame, err.Error())) || !out.flush() {
			s.close(CloseSlow)
		}
		return
	}
	if f.Type == herald.TypeRead {
		s.read(f.Seq)
		return
	}
	s.metrics.acks.Inc()
	_ = s.ack(f.Seq)
	if s.hooks != nil {
		s.hooks.shareAck(s.dev, f.Seq)
	}
}

// errReadUnsupported answers a read frame on a session without a server.
var errReadUnsupported = errors.New("read frames are not supported by this edge")

// read moves the user's read position to seq, logging a failure while the
// session is open. The device that read gets no read frame for it.
func (s *session) read(seq uint64) {
	pos, err := s.hooks.markRead(s.ctx, s.dev, seq)
	if err != nil {
		if s.ctx.Err() == nil {
			s.log().Warn("read failed", "seq", seq, "err", err)
		}
		return
	}
	s.readSent(pos)
}

// readSent records that the device knows the read position pos (from the
// welcome, or because it read up to it), so that no read frame repeats it.
func (s *session) readSent(pos uint64) {
	s.mu.Lock()
	s.sent = max(s.sent, pos)
	s.mu.Unlock()
}

// pushRead records a read position from the user's device dev, for the
// pump to send; it never blocks. Only the newest position is sent.
func (s *session) pushRead(seq uint64, dev string) {
	s.mu.Lock()
	if seq <= s.readSeq {
		s.mu.Unlock()
		return
	}
	s.readSeq, s.readDev = seq, dev
	kick := s.kick
	s.mu.Unlock()
	if kick != nil {
		kick()
	}
}

// takeRead returns the read frame to send, nil when the device knows the
// newest position already.
func (s *session) takeRead() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.readSeq <= s.sent {
		return nil
	}
	s.sent = s.readSeq
	return encodeRead(s.readSeq, s.readDev)
}

// ack applies a cumulative ack to the feed, logging a failure while the
// session is open. The feed bounds any I/O it does (Feed.Ack).
func (s *session) ack(seq uint64) error {
	err := s.feed.Ack(s.ctx, seq)
	if err != nil && s.ctx.Err() == nil {
		s.log().Warn("ack failed", "seq", seq, "err", err)
	}
	return err
}
