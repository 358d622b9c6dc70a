package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/herald-push/herald/ingest/apierr"
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
// always the seq of the last message it received. Last-Event-ID (or since)
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

// Bounds of the events written between two flushes: a count, and bytes
// (the last event may pass it). A larger buffer is not kept.
const (
	sseMaxBatch      = 64
	sseMaxBatchBytes = 32 << 10
)

// sseEvent is one queued event: id is 0 for events without an id line.
type sseEvent struct {
	name string
	id   uint64
	data []byte
}

// sseConn is the SSE transport of a session. The handler's goroutine is the
// only writer; the pump runs on a goroutine run starts and waits for. The
// queue between them is bounded: a full queue closes the session alone
// (slow_consumer), as a WebSocket write that misses its deadline does.
type sseConn struct {
	s    *session
	w    http.ResponseWriter
	rc   *http.ResponseController
	out  chan sseEvent
	ack  sseAckMode
	opts sseOptions
}

type sseOptions struct {
	writeTimeout time.Duration
	pingInterval time.Duration
}

var (
	_ sink        = (*sseConn)(nil)
	_ messageSink = (*sseConn)(nil)
)

// enqueue queues a non-message frame; its type is the event name.
func (c *sseConn) enqueue(frame []byte) bool {
	var head struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(frame, &head)
	return c.push(sseEvent{name: head.Type, data: frame})
}

// enqueueMessage queues a message frame as an event with id seq and the
// default event type.
func (c *sseConn) enqueueMessage(seq uint64, frame []byte) bool {
	return c.push(sseEvent{id: seq, data: frame})
}

func (c *sseConn) push(ev sseEvent) bool {
	select {
	case c.out <- ev:
		return true
	default:
		return false
	}
}

// appendEvent appends ev in the text/event-stream format. The data is
// JSON from frames.go, which never holds a raw newline; a newline would
// still be split into several data lines.
func appendEvent(b []byte, ev sseEvent) []byte {
	if ev.name != "" && ev.name != "message" {
		b = append(b, "event: "...)
		b = append(b, ev.name...)
		b = append(b, '\n')
	}
	if ev.id != 0 {
		b = append(b, "id: "...)
		b = strconv.AppendUint(b, ev.id, 10)
		b = append(b, '\n')
	}
	data := ev.data
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

// run starts the pump and writes events until the session ends, the client
// goes away or the token expires; it returns once the pump has stopped.
// gone is closed when the client's request ends.
func (c *sseConn) run(expires time.Time, gone <-chan struct{}) {
	pumpDone := make(chan struct{})
	go func() { defer close(pumpDone); c.s.pump(c) }()
	defer func() { <-pumpDone }()

	ping := time.NewTicker(c.opts.pingInterval)
	defer ping.Stop()
	var expired <-chan time.Time
	if !expires.IsZero() {
		t := time.NewTimer(time.Until(expires))
		defer t.Stop()
		expired = t.C
	}
	buf := make([]byte, 0, 4096)
	for {
		select {
		case <-c.s.ctx.Done():
			c.writeClose()
			return
		case <-gone:
			c.s.close(CloseClientGone)
		case <-expired:
			c.s.close(CloseUnauthorized)
		case <-ping.C:
			if !c.write(append(buf[:0], ": ping\n\n"...)) {
				return
			}
		case ev := <-c.out:
			var top uint64
			buf, top = c.batch(buf[:0], ev)
			if !c.write(buf) {
				return
			}
			if cap(buf) > 2*sseMaxBatchBytes {
				buf = make([]byte, 0, 4096)
			}
			if top != 0 && c.ack == sseAckAuto {
				c.autoAck(top)
			}
		}
	}
}

// batch appends ev and more queued events, within the batch bounds, to
// buf; top is the highest message seq among them (0: none).
func (c *sseConn) batch(buf []byte, ev sseEvent) ([]byte, uint64) {
	var top uint64
	for n := 0; ; n++ {
		buf = appendEvent(buf, ev)
		top = max(top, ev.id)
		if n+1 >= sseMaxBatch || len(buf) >= sseMaxBatchBytes {
			return buf, top
		}
		select {
		case ev = <-c.out:
		default:
			return buf, top
		}
	}
}

// write writes b and flushes it within the write timeout. A write that
// times out closes the session as a slow consumer; any other failure means
// the client is gone.
func (c *sseConn) write(b []byte) bool {
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

// autoAck acks everything up to seq once it was written (ack=auto).
func (c *sseConn) autoAck(seq uint64) {
	c.s.metrics.acks.Inc()
	_ = c.s.ack(seq)
}

// writeClose ends the stream with an error event naming the reason, under
// a short deadline, unless the client is gone. After a write that timed
// out the event cannot be written; after a full queue it may.
func (c *sseConn) writeClose() {
	r := c.s.closeReason()
	if r == CloseClientGone {
		return
	}
	_ = c.rc.SetWriteDeadline(time.Now().Add(min(c.opts.writeTimeout, time.Second)))
	b := appendEvent(nil, sseEvent{name: "error", data: encodeError(r.Text(), sseCloseMessage(r))})
	if _, err := c.w.Write(b); err == nil {
		_ = c.rc.Flush()
	}
}

func sseCloseMessage(r CloseReason) string {
	switch r {
	case CloseShutdown:
		return "the edge is shutting down; reconnect"
	case CloseInternal:
		return "delivery failed; reconnect"
	}
	return closeMessage(r)
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
			return connRequest{}, 0, apierr.New(apierr.InvalidRequest, "Last-Event-ID must be a non-negative integer (a seq)")
		}
		cr.pos = Position{Since: n, HasSince: true}
	}
	switch r.URL.Query().Get("ack") {
	case "", "client":
		return cr, sseAckClient, nil
	case "auto":
		return cr, sseAckAuto, nil
	default:
		return connRequest{}, 0, apierr.New(apierr.InvalidRequest, `ack must be "client" or "auto"`)
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
	rc := http.NewResponseController(w)
	// A stream needs write deadlines and flushes; a wrapping
	// ResponseWriter without Unwrap cannot give them.
	if err := rc.SetWriteDeadline(time.Time{}); err != nil {
		s.reject(w, apierr.Wrap(apierr.Internal, err, "streaming is not supported here"))
		return
	}
	feed, err := s.openFeed(r, cr)
	if err != nil {
		s.reject(w, err)
		return
	}
	ss := newSession(s.ctx, cr.dev, feed, s.log, s.metrics)
	if !s.admit(ss) {
		ss.close(CloseShutdown)
		_ = feed.Close()
		s.reject(w, errShuttingDown())
		return
	}
	defer s.release(ss)
	if s.overUserLimit(cr.dev.User) {
		ss.close(CloseTooMany)
		_ = feed.Close()
		s.metrics.closed(CloseTooMany)
		s.reject(w, apierr.New(apierr.TooMany, "too many connections for this user"))
		return
	}

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)

	c := &sseConn{s: ss, w: w, rc: rc, out: make(chan sseEvent, s.opts.Edge.SendQueue), ack: mode, opts: sseOptions{
		writeTimeout: s.opts.Edge.WriteTimeout,
		pingInterval: s.opts.Edge.PingInterval,
	}}
	s.serveSession(ss, c, "sse", func() { c.run(cr.expires, r.Context().Done()) })
}
