package edge

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-push/herald"
)

// wsConn is the WebSocket transport of a session: a reader, and the
// session's pump, which writes each frame itself (a device that stops
// reading blocks only its own pump, and a write that cannot complete
// within the write timeout closes it with 4008). Pings come from a timer,
// on a short-lived goroutine of the runtime. Each frame is written at
// once, so flush has nothing to do.
//
// There is no send queue: the feed behind the pump bounds what a device
// has in flight (edge.max_inflight), and the live engine's fan-out queues
// into the feed without ever waiting on the socket.
type wsConn struct {
	s    *session
	conn *websocket.Conn
	cc   *corkConn // conn's socket; nil: every frame is written at once
	opts wsOptions

	wmu sync.Mutex // held across each data frame's write (the pump's, the reader's error frames) and the closing frames
	top uint64     // ntfy: the highest seq written since the last flush; under wmu

	pingMu      sync.Mutex // held across a ping, so that run can wait for one in flight
	ping        *time.Timer
	pingStopped bool
}

type wsOptions struct {
	writeTimeout  time.Duration
	pingInterval  time.Duration
	idleTimeout   time.Duration
	maxFrameBytes int
	// ntfy: the frames are ntfy's events (ntfy.go), whose clients never
	// ack: what is written is acked at each flush, client frames are
	// read (they prove liveness) but not applied, and no error frame
	// precedes a close.
	ntfy bool
	poll bool // end the session once the backlog is out (ntfy's poll=1)
}

var _ transport = (*wsConn)(nil)

func newWSConn(s *session, conn *websocket.Conn, cc *corkConn, opts wsOptions) *wsConn {
	return &wsConn{s: s, conn: conn, cc: cc, opts: opts}
}

// write writes a frame, on the caller's goroutine, into the burst that
// flush sends; false when the session has ended or a write failed (which
// ends it: 4008 when the write timed out). A nil frame is not written.
func (c *wsConn) write(kind frameKind, seq uint64, frame []byte) bool {
	c.wmu.Lock()
	if c.s.ctx.Err() != nil {
		c.wmu.Unlock()
		return false
	}
	if frame != nil {
		if c.cc != nil {
			c.cc.cork()
		}
		if !c.writeMessage(websocket.TextMessage, frame) {
			c.wmu.Unlock()
			return false
		}
	}
	if kind == kindMessage && c.opts.ntfy {
		c.top = max(c.top, seq)
	}
	c.wmu.Unlock()
	if kind == kindSynced && c.opts.poll {
		c.flush()
		c.s.close(CloseDone)
	}
	return true
}

// flush sends the burst of frames written since the last flush, with one
// system call, within the write timeout; for ntfy's events it then acks
// what it sent.
func (c *wsConn) flush() bool {
	c.wmu.Lock()
	if c.cc != nil {
		_ = c.cc.SetWriteDeadline(time.Now().Add(c.opts.writeTimeout))
		if err := c.cc.uncork(); err != nil {
			c.wmu.Unlock()
			c.failed(err)
			return false
		}
	}
	top := c.top
	c.top = 0
	c.wmu.Unlock()
	if top != 0 {
		c.s.metrics.acks.Inc()
		_ = c.s.ack(top)
	}
	return true
}

// run serves the session until it has ended, the close frame is out
// (bounded by a short deadline), the socket is closed and every goroutine
// it started has stopped. expires is when the token expires. The calling
// goroutine reads client frames; the pump runs only while there is
// something to write.
func (c *wsConn) run(expires time.Time) {
	if !expires.IsZero() {
		t := time.AfterFunc(time.Until(expires), func() { c.s.close(CloseUnauthorized) })
		defer t.Stop()
	}
	c.pingMu.Lock()
	c.ping = time.AfterFunc(c.opts.pingInterval, c.sendPing)
	c.pingMu.Unlock()
	defer c.stopPings()

	p := newPumper(c.s, c, c.s.feed, c.end)
	// A close from now on kicks the pump, which closes the socket; one
	// before finds the context canceled at the first kick.
	c.s.setOnClose(p.kick)
	p.kick()
	// The reader returns when the socket fails or is closed, and ends the
	// session whichever it was.
	c.readLoop()
	<-p.done
}

// end sends the close frame and closes the socket, which unblocks the
// reader and any ping in flight.
func (c *wsConn) end() {
	c.wmu.Lock()
	if c.cc != nil && c.s.closeReason() != CloseClientGone {
		// Frames of the last burst go before the close frame.
		_ = c.cc.SetWriteDeadline(time.Now().Add(min(c.opts.writeTimeout, time.Second)))
		_ = c.cc.uncork()
	}
	c.writeClose()
	c.wmu.Unlock()
	_ = c.conn.Close()
}

// stopPings stops the pings, waiting for one in flight (the socket is
// closed by then, so it fails at once).
func (c *wsConn) stopPings() {
	c.pingMu.Lock()
	c.pingStopped = true
	c.ping.Stop()
	c.pingMu.Unlock()
}

// sendPing writes a ping and schedules the next one, unless run has
// stopped them.
func (c *wsConn) sendPing() {
	c.pingMu.Lock()
	defer c.pingMu.Unlock()
	if c.pingStopped {
		return
	}
	if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.opts.writeTimeout)); err != nil {
		c.failed(err)
		return
	}
	c.ping.Reset(c.opts.pingInterval)
}

func (c *wsConn) writeMessage(kind int, b []byte) bool {
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.opts.writeTimeout))
	if err := c.conn.WriteMessage(kind, b); err != nil {
		c.failed(err)
		return false
	}
	return true
}

// failed ends the session after a failed write: 4008 when it timed out.
func (c *wsConn) failed(err error) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.s.close(CloseSlow)
	} else {
		c.s.close(CloseClientGone)
	}
}

// writeClose sends the error frame (for client-caused closes) and the close
// frame, each bounded by a short deadline.
func (c *wsConn) writeClose() {
	r := c.s.closeReason()
	if r == CloseClientGone {
		return
	}
	deadline := time.Now().Add(min(c.opts.writeTimeout, time.Second))
	if r.clientCaused() && !c.opts.ntfy {
		_ = c.conn.SetWriteDeadline(deadline)
		if c.conn.WriteMessage(websocket.TextMessage, encodeError(herald.Code(r.Text()), r.message())) != nil {
			return
		}
	}
	_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(r.Code(), r.Text()), deadline)
}

// readLoop reads client frames. Any frame or pong proves liveness; a frame
// over the limit closes the session with 1009.
func (c *wsConn) readLoop() {
	idle := func() { _ = c.conn.SetReadDeadline(time.Now().Add(c.opts.idleTimeout)) }
	idle()
	c.conn.SetPongHandler(func(string) error { idle(); return nil })
	c.conn.SetPingHandler(func(data string) error {
		idle()
		_ = c.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		return nil
	})
	// Client frames are acks of a few dozen bytes: a small buffer takes
	// them, and a larger one (up to the limit) is made only for a larger
	// frame, so that an idle connection does not hold max_frame_bytes.
	small := make([]byte, min(smallFrame, c.opts.maxFrameBytes+1))
	for {
		kind, r, err := c.conn.NextReader()
		if err != nil {
			c.s.close(CloseClientGone)
			return
		}
		idle()
		frame, err := readFrame(r, small, c.opts.maxFrameBytes)
		switch {
		case errors.Is(err, errFrameTooBig):
			c.s.close(CloseFrameTooBig)
			return
		case err != nil:
			c.s.close(CloseClientGone)
			return
		}
		if (kind != websocket.TextMessage && kind != websocket.BinaryMessage) || c.opts.ntfy {
			continue
		}
		c.s.handleFrame(c, frame)
	}
}

// smallFrame is the size of a connection's buffer for client frames.
const smallFrame = 64

var errFrameTooBig = errors.New("edge: client frame over the limit")

// readFrame reads one frame of at most limit bytes into small, or into a
// new buffer when it does not fit; errFrameTooBig when it is longer.
func readFrame(r io.Reader, small []byte, limit int) ([]byte, error) {
	n, err := io.ReadFull(r, small)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return small[:n], nil
	case err != nil:
		return nil, err
	case n > limit:
		return nil, errFrameTooBig
	}
	big := make([]byte, limit+1)
	copy(big, small)
	m, err := io.ReadFull(r, big[n:])
	switch {
	case err == nil:
		return nil, errFrameTooBig
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return big[:n+m], nil
	default:
		return nil, err
	}
}
