package edge

import (
	"errors"
	"io"
	"net"
	"time"

	"github.com/gorilla/websocket"
)

// wsConn is the WebSocket transport of a session: one reader, one writer,
// and a bounded queue between the session and the writer.
type wsConn struct {
	s    *session
	conn *websocket.Conn
	out  chan []byte
	opts wsOptions
}

type wsOptions struct {
	writeTimeout  time.Duration
	pingInterval  time.Duration
	idleTimeout   time.Duration
	maxFrameBytes int
}

var _ sink = (*wsConn)(nil)

func (c *wsConn) enqueue(frame []byte) bool {
	select {
	case c.out <- frame:
		return true
	default:
		return false
	}
}

// run starts the reader, writer and pump, and returns once all three have
// stopped and the socket is closed. expires is when the token expires.
func (c *wsConn) run(expires time.Time) {
	done := make(chan struct{}, 3)
	go func() { c.writeLoop(); done <- struct{}{} }()
	go func() { c.readLoop(); done <- struct{}{} }()
	go func() { c.s.pump(c); done <- struct{}{} }()

	var expired <-chan time.Time
	if !expires.IsZero() {
		t := time.NewTimer(time.Until(expires))
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-c.s.ctx.Done():
	case <-expired:
		c.s.close(CloseUnauthorized)
	}
	for i := 0; i < 3; i++ {
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
		case f := <-c.out:
			if !c.write(websocket.TextMessage, f) {
				return
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
	buf := make([]byte, c.opts.maxFrameBytes+1)
	for {
		kind, r, err := c.conn.NextReader()
		if err != nil {
			c.s.close(CloseClientGone)
			return
		}
		idle()
		n, err := io.ReadFull(r, buf)
		switch {
		case err == nil:
			c.s.close(CloseFrameTooBig)
			return
		case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		default:
			c.s.close(CloseClientGone)
			return
		}
		if kind != websocket.TextMessage && kind != websocket.BinaryMessage {
			continue
		}
		c.s.handleFrame(c, buf[:n])
	}
}
