package edge

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/herald-push/herald"
)

// The SSE transport (SPEC §7): GET /v1/sse?device=<id>.
//
// Events, each flushed as soon as it is written:
//
//	event: welcome           data: the WebSocket welcome frame
//	id: <seq>                data: the WebSocket message frame (no event line:
//	                         EventSource's default "message" type)
//	event: synced            data: the WebSocket synced frame
//	event: error             data: the WebSocket error frame, right before the
//	                         server ends the stream; its code is the close
//	                         reason (shutting_down, token_expired,
//	                         slow_consumer when the write can still be made,
//	                         internal)
//	: ping                   a comment every ping interval
//
// Only message events carry an id, so an EventSource's Last-Event-ID is
// always the seq of the last message it received. The same connection type
// serves ntfy's streams (ntfy.go) with another eventFormat. Last-Event-ID (or since)
// positions the feed exactly as since does on the WebSocket; that also acks
// everything up to it. Other acks come by POST /v1/ack (ack.go), or, with
// ack=auto, from the stream itself: each written and flushed message is
// acked.

// sseAckMode is who acknowledges the messages of an SSE stream.
type sseAckMode int

const (
	sseAckClient sseAckMode = iota // POST /v1/ack or the next Last-Event-ID
	sseAckAuto                     // the stream acks what it has written
)

// Bounds of the events buffered between two flushes: a count, and bytes
// (the last event may pass it). A larger buffer is not kept.
const (
	sseMaxBatch      = 64
	sseMaxBatchBytes = 32 << 10
)

// sseConn is the SSE transport of a session. The session's pump writes the
// events into a buffer and flushes it when it has nothing more ready, or
// when the buffer holds a batch; the handler's goroutine writes the pings
// and waits for the session to end. Each write and flush is bounded by the
// write timeout: one that misses it closes the session alone with
// slow_consumer, as a WebSocket write does.
type sseConn struct {
	s      *session
	w      http.ResponseWriter
	rc     *http.ResponseController
	format eventFormat
	ack    sseAckMode
	poll   bool // end the session once the backlog is out (ntfy's poll=1)
	opts   sseOptions

	mu  sync.Mutex // held across each write to w, and over buf
	buf []byte     // events not yet written
	n   int        // events in buf
	top uint64     // the highest message seq in buf; 0: none
}

type sseOptions struct {
	writeTimeout time.Duration
	pingInterval time.Duration
}

var _ transport = (*sseConn)(nil)

// eventFormat is how a stream writes its events: Herald's server-sent
// events (sseFormat) or one of ntfy's streams (ntfy.go).
type eventFormat interface {
	// event appends the event of a frame of kind (a message's seq is
	// seq); it may append nothing, for a nil frame.
	event(b []byte, kind frameKind, seq uint64, frame []byte) []byte
	// ping is written every ping interval.
	ping() []byte
	// end is written when the session ends for r (not when the client
	// went away); nil: nothing.
	end(r CloseReason) []byte
	contentType() string
}

// sseFormat is Herald's SSE (SPEC §7), described at the top of this file.
type sseFormat struct{}

var _ eventFormat = sseFormat{}

func (sseFormat) event(b []byte, kind frameKind, seq uint64, frame []byte) []byte {
	return appendEvent(b, kind.event(), seq, frame)
}

func (sseFormat) ping() []byte { return []byte(": ping\n\n") }

func (sseFormat) end(r CloseReason) []byte {
	return appendEvent(nil, kindError.event(), 0, encodeError(herald.Code(r.Text()), r.message()))
}

func (sseFormat) contentType() string { return "text/event-stream" }

// write buffers one event (message events carry the seq as their id), and
// writes the buffer once it holds a batch.
func (c *sseConn) write(kind frameKind, seq uint64, frame []byte) bool {
	c.mu.Lock()
	if c.s.ctx.Err() != nil {
		c.mu.Unlock()
		return false
	}
	c.buf = c.format.event(c.buf, kind, seq, frame)
	c.n++
	if kind == kindMessage {
		c.top = max(c.top, seq)
	}
	full := c.n >= sseMaxBatch || len(c.buf) >= sseMaxBatchBytes
	c.mu.Unlock()
	if kind == kindSynced && c.poll {
		// The backlog is out: write it, then end.
		ok := c.flush()
		c.s.close(CloseDone)
		return ok
	}
	if full {
		return c.flush()
	}
	return true
}

// flush writes the buffered events and, with ack=auto, acks the messages
// among them once they are out.
func (c *sseConn) flush() bool {
	c.mu.Lock()
	if len(c.buf) == 0 {
		c.mu.Unlock()
		return true
	}
	ok := c.writeLocked(c.buf)
	top := c.top
	c.buf, c.n, c.top = c.buf[:0], 0, 0
	if cap(c.buf) > 2*sseMaxBatchBytes {
		c.buf = nil
	}
	c.mu.Unlock()
	if ok && top != 0 && c.ack == sseAckAuto {
		c.s.metrics.acks.Inc()
		_ = c.s.ack(top)
	}
	return ok
}

// appendEvent appends an event in the text/event-stream format: name is
// empty for message events, id 0 for events without an id. The data is
// JSON from frames.go, which never holds a raw newline; a newline would
// still be split into several data lines.
func appendEvent(b []byte, name string, id uint64, data []byte) []byte {
	if name != "" {
		b = append(b, "event: "...)
		b = append(b, name...)
		b = append(b, '\n')
	}
	if id != 0 {
		b = append(b, "id: "...)
		b = strconv.AppendUint(b, id, 10)
		b = append(b, '\n')
	}
	for {
		line, rest, more := bytes.Cut(data, []byte{'\n'})
		b = append(b, "data: "...)
		b = append(b, bytes.TrimSuffix(line, []byte{'\r'})...)
		b = append(b, '\n')
		if !more {
			break
		}
		data = rest
	}
	return append(b, '\n')
}

// run starts the pump, writes pings and waits until the session ends, the
// client goes away or the token expires; it returns once the pump has
// written the closing event and stopped. gone is closed when the client's
// request ends.
func (c *sseConn) run(expires time.Time, gone <-chan struct{}) {
	p := newPumper(c.s, c, c.s.feed, c.end)
	c.s.setOnClose(p.kick)
	p.kick()
	defer func() { <-p.done }()

	ping := time.NewTicker(c.opts.pingInterval)
	defer ping.Stop()
	var expired <-chan time.Time
	if !expires.IsZero() {
		t := time.NewTimer(time.Until(expires))
		defer t.Stop()
		expired = t.C
	}
	for {
		select {
		case <-c.s.ctx.Done():
			return
		case <-gone:
			// net/http ends the request's context as soon as a write
			// fails, before the write returns to the pump: wait for a
			// write in progress, so that a timed-out one is closed as a
			// slow consumer first.
			c.mu.Lock()
			c.s.close(CloseClientGone)
			c.mu.Unlock()
		case <-expired:
			c.s.close(CloseUnauthorized)
		case <-ping.C:
			c.mu.Lock()
			if c.s.ctx.Err() == nil {
				c.writeLocked(c.format.ping())
			}
			c.mu.Unlock()
		}
	}
}

// writeLocked writes b and flushes it within the write timeout. A write
// that times out closes the session as a slow consumer; any other failure
// means the client is gone. The caller holds mu.
func (c *sseConn) writeLocked(b []byte) bool {
	_ = c.rc.SetWriteDeadline(time.Now().Add(c.opts.writeTimeout))
	_, err := c.w.Write(b)
	if err == nil {
		err = c.rc.Flush()
	}
	if err != nil {
		var ne net.Error
		if (errors.As(err, &ne) && ne.Timeout()) || errors.Is(err, context.DeadlineExceeded) {
			c.s.close(CloseSlow)
		} else {
			c.s.close(CloseClientGone)
		}
		return false
	}
	return true
}

// end ends the stream with an error event naming the reason, under a short
// deadline, unless the client is gone; the pump calls it once the session
// has ended. After a write that timed out the event cannot be written.
func (c *sseConn) end() {
	r := c.s.closeReason()
	if r == CloseClientGone {
		return
	}
	b := c.format.end(r)
	if b == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.rc.SetWriteDeadline(time.Now().Add(min(c.opts.writeTimeout, time.Second)))
	if _, err := c.w.Write(b); err == nil {
		_ = c.rc.Flush()
	}
}

// authorizeSSE is authorize plus what only SSE has: Last-Event-ID, which
// wins over since (an EventSource reconnects to the same URL with the
// header set), and the ack mode.
func (s *Server) authorizeSSE(r *http.Request) (connRequest, sseAckMode, error) {
	cr, err := s.authorize(r)
	if err != nil {
		return connRequest{}, 0, err
	}
	if v := strings.TrimSpace(r.Header.Get("Last-Event-ID")); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return connRequest{}, 0, herald.NewError(herald.InvalidRequest, "Last-Event-ID must be a non-negative integer (a seq)")
		}
		cr.pos = Position{Since: n, HasSince: true}
	}
	switch r.URL.Query().Get("ack") {
	case "", "client":
		return cr, sseAckClient, nil
	case "auto":
		return cr, sseAckAuto, nil
	default:
		return connRequest{}, 0, herald.NewError(herald.InvalidRequest, `ack must be "client" or "auto"`)
	}
}

func (s *Server) handleSSE(w http.ResponseWriter, r *http.Request) {
	release, err := s.Gate(r)
	if err != nil {
		s.reject(w, err)
		return
	}
	defer release()
	s.allowCORS(w, r) // Gate refused any origin it does not allow
	cr, mode, err := s.authorizeSSE(r)
	if err != nil {
		s.reject(w, err)
		return
	}
	s.serveStream(w, r, cr, streamSpec{
		name:   "sse",
		codec:  heraldCodec{},
		format: sseFormat{},
		ack:    mode,
		reject: s.reject,
	})
}

// streamSpec says how serveStream serves a stream transport.
type streamSpec struct {
	name   string // the transport, as the connection gauge names it
	codec  codec
	format eventFormat
	ack    sseAckMode
	poll   bool
	reject func(w http.ResponseWriter, err error) // renders a refusal
}

// serveStream serves an authorized stream request (Herald's SSE or an
// ntfy stream) on the handler's goroutine until the session ends.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request, cr connRequest, spec streamSpec) {
	rc := http.NewResponseController(w)
	// A stream needs write deadlines and flushes; a wrapping
	// ResponseWriter without Unwrap cannot give them.
	if err := rc.SetWriteDeadline(time.Time{}); err != nil {
		spec.reject(w, herald.WrapError(herald.Internal, err, "streaming is not supported here"))
		return
	}
	feed, err := s.openFeed(r, cr)
	if err != nil {
		spec.reject(w, err)
		return
	}
	ss := newSession(s.ctx, cr.dev, feed, spec.codec, s.log, s.metrics)
	if !s.admit(ss) {
		ss.close(CloseShutdown)
		_ = feed.Close()
		spec.reject(w, errShuttingDown())
		return
	}
	defer s.release(ss)
	if s.overUserLimit(cr.dev.User) {
		ss.close(CloseTooMany)
		_ = feed.Close()
		s.metrics.closed(CloseTooMany)
		spec.reject(w, herald.NewError(herald.TooManyConnections, "too many connections for this user"))
		return
	}

	h := w.Header()
	h.Set("Content-Type", spec.format.contentType())
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)

	c := &sseConn{s: ss, w: w, rc: rc, format: spec.format, ack: spec.ack, poll: spec.poll, opts: sseOptions{
		writeTimeout: s.opts.Edge.WriteTimeout,
		pingInterval: s.opts.Edge.PingInterval,
	}}
	s.serveSession(ss, c, spec.name, func() { c.run(cr.expires, r.Context().Done()) })
}
