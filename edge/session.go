package edge

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// sink is the transport side of a session: it takes encoded frames without
// blocking and is told why the session ends.
type sink interface {
	// enqueue queues a frame for the writer; false when the queue is full.
	enqueue(frame []byte) bool
}

// messageSink is a sink that labels message frames with their seq (the SSE
// transport writes it as the event id).
type messageSink interface {
	enqueueMessage(seq uint64, frame []byte) bool
}

func enqueueMessage(out sink, d Delivery) bool {
	if ms, ok := out.(messageSink); ok {
		return ms.enqueueMessage(d.Seq, encodeMessage(d))
	}
	return out.enqueue(encodeMessage(d))
}

// session is the transport-independent part of a connection: it pumps the
// feed into the sink in seq order, sends the synced frame once the backlog
// is out, and applies acks. Its close reason is set once.
type session struct {
	dev     Device
	feed    Feed
	start   Start
	log     *slog.Logger
	metrics *metrics

	ctx    context.Context
	cancel context.CancelFunc
	ended  chan struct{} // closed by Server.release once the handler is done

	mu     sync.Mutex
	reason CloseReason
}

func newSession(parent context.Context, dev Device, feed Feed, log *slog.Logger, m *metrics) *session {
	ctx, cancel := context.WithCancel(parent)
	return &session{dev: dev, feed: feed, start: feed.Start(), log: log, metrics: m, ctx: ctx, cancel: cancel, ended: make(chan struct{})}
}

// close ends the session with reason; the first reason wins. Safe to call
// from any goroutine, never blocks.
func (s *session) close(reason CloseReason) {
	s.mu.Lock()
	if s.reason == CloseNone {
		s.reason = reason
	}
	s.mu.Unlock()
	s.cancel()
}

func (s *session) closeReason() CloseReason {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reason
}

// pump moves messages from the feed to the sink until the session ends.
// A full queue closes this session alone with 4008.
func (s *session) pump(out sink) {
	synced := s.start.From == 0 || s.start.Synced < s.start.From
	if synced {
		if !out.enqueue(encodeSynced(s.start.Synced)) {
			s.close(CloseSlow)
			return
		}
	}
	for {
		d, err := s.feed.Next(s.ctx)
		if err != nil {
			if s.ctx.Err() == nil {
				if !errors.Is(err, ErrFeedClosed) && s.log.Enabled(s.ctx, slog.LevelWarn) {
					s.log.Warn("feed failed", "err", err)
				}
				s.close(CloseInternal)
			}
			return
		}
		if !enqueueMessage(out, d) {
			s.close(CloseSlow)
			return
		}
		s.metrics.deliveries.Inc()
		if d.Redelivered {
			s.metrics.redeliveries.Inc()
		}
		if !synced && d.Seq >= s.start.Synced {
			synced = true
			if !out.enqueue(encodeSynced(s.start.Synced)) {
				s.close(CloseSlow)
				return
			}
		}
	}
}

// handleFrame applies one client frame; a malformed one gets an error frame.
func (s *session) handleFrame(out sink, b []byte) {
	f, err := ParseClientFrame(b)
	if err != nil {
		if !out.enqueue(encodeError("invalid_frame", err.Error())) {
			s.close(CloseSlow)
		}
		return
	}
	s.metrics.acks.Inc()
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	if err := s.feed.Ack(ctx, f.Seq); err != nil && s.ctx.Err() == nil {
		s.log.Warn("ack failed", "seq", f.Seq, "err", err)
	}
}
