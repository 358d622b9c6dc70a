package edge

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// wsConn is the WebSocket transport of a session: one reader, one writer,
// and a bounded queue between the session and the writer.
//
// The queue is a slice under qmu rather than a channel, so that an idle
// connection holds no queue buffer (a channel of edge.send_queue slots
// costs 12 KiB per connection up front). qmu is held only to append or
// take frames, never across I/O or a channel send.
type wsConn struct {
	s    *session
	conn *websocket.Conn
	opts wsOptions

	ready chan struct{} // one slot: frames were queued

	qmu     sync.Mutex
	q       [][]byte // queued frames, oldest first
	spare   [][]byte // an empty small slice for the next batch, or nil
	pending int      // frames queued or taken and not yet written; ≤ opts.sendQueue
}

type wsOptions struct {
	writeTimeout  time.Duration
	pingInterval  time.Duration
	idleTimeout   time.Duration
	maxFrameBytes int
	sendQueue     int
}

var _ sink = (*wsConn)(nil)

func newWSConn(s *session, conn *websocket.Conn, opts wsOptions) *wsConn {
	return &wsConn{s: s, conn: conn, opts: opts, ready: make(chan struct{}, 1)}
}

// enqueue queues a frame for the writer; false when opts.sendQueue frames
// are already waiting to be written. It never blocks.
func (c *wsConn) enqueue(frame []byte) bool {
	c.qmu.Lock()
	if c.pending >= c.opts.sendQueue {
		c.qmu.Unlock()
		return false
	}
	c.pending++
	if c.q == nil && c.spare != nil {
		c.q, c.spare = c.spare, nil
	}
	c.q = append(c.q, frame)
	c.qmu.Unlock()
	select {
	case c.ready <- struct{}{}:
	default:
	}
	return true
}

// take removes every queued frame; the writer owns the returned slice.
func (c *wsConn) take() [][]byte {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	q := c.q
	c.q = nil
	return q
}

// written accounts one frame of a batch as written, and keeps a small
// drained batch slice for reuse (a large one is dropped, so that memory
// falls back once a burst is over).
func (c *wsConn) written(batch [][]byte, last bool) {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	c.pending--
	if last && cap(batch) <= spareBatch && c.spare == nil {
		clear(batch)
		c.spare = batch[:0]
	}
}

// spareBatch is the largest batch slice kept for reuse.
const spareBatch = 8

// run starts the writer and the pump, reads client frames on the calling
// goroutine (so that a connection costs three goroutines), and returns once
// all three have stopped and the socket is closed. expires is when the
// token expires.
func (c *wsConn) run(expires time.Time) {
	done := make(chan struct{}, 2)
	go func() { c.writeLoop(); done <- struct{}{} }()
	go func() { c.s.pump(c); done <- struct{}{} }()
	if !expires.IsZero() {
		t := time.AfterFunc(time.Until(expires), func() { c.s.close(CloseUnauthorized) })
		defer t.Stop()
	}
	// The reader returns when the socket fails or is closed: the writer
	// closes it once the session ends, whoever ended it.
	c.readLoop()
	for i := 0; i < 2; i++ {
		<-done
	}
}

// writeLoop is the only goroutine that writes to the socket.
func (c *wsConn) writeLoop() {
	ping := time.NewTicker(c.opts.pingInterval)
	defer ping.Stop()
	defer c.conn.Close() // unblocks the reader
	for {
		select {
		case <-c.s.ctx.Done():
			c.writeClose()
			return
		case <-c.ready:
			batch := c.take()
			for i, f := range batch {
				if c.s.ctx.Err() != nil {
					c.writeClose()
					return
				}
				if !c.write(websocket.TextMessage, f) {
					return
				}
				batch[i] = nil
				c.written(batch, i == len(batch)-1)
			}
		case <-ping.C:
			if !c.write(websocket.PingMessage, nil) {
				return
			}
		}
	}
}

func (c *wsConn) write(kind int, b []byte) bool {
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.opts.writeTimeout))
	if err := c.conn.WriteMessage(kind, b); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.s.close(CloseSlow)
		} else {
			c.s.close(CloseClientGone)
		}
		return false
	}
	return true
}

// writeClose sends the error frame (for client-caused closes) and the close
// frame, each bounded by a short deadline.
func (c *wsConn) writeClose() {
	r := c.s.closeReason()
	if r == CloseClientGone {
		return
	}
	deadline := time.Now().Add(min(c.opts.writeTimeout, time.Second))
	if r.clientCaused() {
		_ = c.conn.SetWriteDeadline(deadline)
		if c.conn.WriteMessage(websocket.TextMessage, encodeError(r.Text(), closeMessage(r))) != nil {
			return
		}
	}
	_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(r.Code(), r.Text()), deadline)
}

func closeMessage(r CloseReason) string {
	switch r {
	case CloseUnauthorized:
		return "the token expired"
	case CloseFrameTooBig:
		return "client frames are limited in size"
	case CloseTooMany:
		return "too many connections for this user"
	}
	return r.Text()
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
		if kind != websocket.TextMessage && kind != websocket.BinaryMessage {
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
