package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-push/herald"
)

// maxFrameBytes bounds a server frame: a message of the largest size NATS
// carries by default, with room for the frame around it.
const maxFrameBytes = 8 << 20

// conn is one WebSocket connection. Writes (acks, the close frame) hold
// wmu; reads happen on Run's goroutine only.
type conn struct {
	ws           *websocket.Conn
	writeTimeout time.Duration
	wmu          sync.Mutex

	// Under Client.mu.
	recv     uint64 // the highest seq received on this connection, or its since
	acked    uint64 // the highest seq acked on it, or its since
	welcomed bool   // the welcome arrived: reads may be sent
	read     uint64 // the highest read position the edge knows of, from the welcome or sent on it
}

func (cn *conn) write(b []byte) error {
	cn.wmu.Lock()
	defer cn.wmu.Unlock()
	_ = cn.ws.SetWriteDeadline(time.Now().Add(cn.writeTimeout))
	return cn.ws.WriteMessage(websocket.TextMessage, b)
}

// close sends a normal close frame and closes the socket, which ends the
// reader.
func (cn *conn) close(text string) {
	cn.wmu.Lock()
	_ = cn.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, text), time.Now().Add(min(cn.writeTimeout, time.Second)))
	cn.wmu.Unlock()
	_ = cn.ws.Close()
}

// outcome is how a session ended.
type outcome struct {
	welcomed bool  // the welcome arrived: the backoff starts over
	refresh  bool  // closed to reconnect with a new token, at once
	err      error // why it ended
	fatal    error // set when Run must end with it
}

// HandshakeError is an edge's answer other than 101 to the upgrade: its
// status and, when the body is Herald's error JSON, the error code and
// message.
type HandshakeError struct {
	URL     string
	Status  int
	Code    herald.Code
	Message string
}

func (e *HandshakeError) Error() string {
	s := fmt.Sprintf("handshake with %s: %d %s", e.URL, e.Status, http.StatusText(e.Status))
	if e.Code != "" {
		s += fmt.Sprintf(": %s: %s", e.Code, e.Message)
	}
	return s
}

// permanent reports whether retrying cannot help: a 4xx other than 408
// and 429.
func (e *HandshakeError) permanent() bool {
	return e.Status >= 400 && e.Status < 500 && e.Status != http.StatusRequestTimeout && e.Status != http.StatusTooManyRequests
}

// session dials u and runs the connection until it ends.
func (c *Client) session(ctx context.Context, u *url.URL) outcome {
	tok, fresh, err := c.tok.get(ctx)
	if err != nil {
		return outcome{fatal: err}
	}
	c.mu.Lock()
	since := c.processed
	c.mu.Unlock()
	target := *u
	q := target.Query()
	q.Set("device", c.opts.Device)
	if since > 0 {
		q.Set("since", strconv.FormatUint(since, 10))
	}
	target.RawQuery = q.Encode()
	base := u.Redacted()

	dialer := websocket.Dialer{HandshakeTimeout: c.opts.WriteTimeout, Proxy: http.ProxyFromEnvironment, TLSClientConfig: c.opts.TLSConfig}
	ws, resp, err := dialer.DialContext(ctx, target.String(), http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		if resp == nil {
			return outcome{err: fmt.Errorf("client: dial %s: %w", base, err)}
		}
		he := handshakeError(base, resp)
		if he.Status == http.StatusUnauthorized && !fresh {
			// A cached token the edge no longer takes: the next attempt
			// asks the source for a new one.
			c.tok.invalidate()
			return outcome{err: he}
		}
		if he.permanent() {
			return outcome{err: he, fatal: fmt.Errorf("client: %w", he)}
		}
		return outcome{err: he}
	}
	cn := &conn{ws: ws, writeTimeout: c.opts.WriteTimeout, recv: since, acked: since}
	c.mu.Lock()
	c.cur = cn
	c.mu.Unlock()

	// The closer ends the connection on ctx's end (after a last flush, so
	// that the edge gets the final ack) or to reconnect with a new token.
	stop, done := make(chan struct{}), make(chan struct{})
	var refreshed bool // written by the closer before done is closed
	go func() {
		defer close(done)
		var renew <-chan time.Time
		if at := c.tok.refreshAt(); !at.IsZero() {
			t := time.NewTimer(time.Until(at))
			defer t.Stop()
			renew = t.C
		}
		for {
			select {
			case <-ctx.Done():
				_ = c.finalFlush(ctx) // a failed save is reported by Run's own
				cn.close("bye")
				return
			case <-renew:
				renew = nil
				if c.tok.renew(ctx, c.log) {
					refreshed = true
					cn.close("token refresh")
					return
				}
			case <-stop:
				return
			}
		}
	}()

	out := c.read(ctx, cn, base, since)
	if ctx.Err() == nil {
		close(stop)
	} // else the closer is sending the last ack and the close frame
	<-done
	_ = ws.Close()
	c.mu.Lock()
	c.cur = nil
	c.mu.Unlock()
	if refreshed {
		return outcome{welcomed: out.welcomed, refresh: true, err: ErrTokenRefresh}
	}
	var ce *CloseError
	if errors.As(out.err, &ce) && ce.Code == herald.CloseUnauthorized {
		c.tok.invalidate()
	}
	return out
}

// read reads frames until the connection fails or ctx ends.
func (c *Client) read(ctx context.Context, cn *conn, base string, since uint64) outcome {
	ws := cn.ws
	idle := func() { _ = ws.SetReadDeadline(time.Now().Add(c.opts.IdleTimeout)) }
	idle()
	ws.SetPingHandler(func(data string) error {
		idle()
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		var ne net.Error
		if errors.Is(err, websocket.ErrCloseSent) || errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		return err
	})
	ws.SetReadLimit(maxFrameBytes)
	var out outcome
	var errFrame *herald.ErrorFrame
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				err = &CloseError{Code: herald.CloseCode(ce.Code), Text: ce.Text, Frame: errFrame}
			} else {
				err = fmt.Errorf("client: read from %s: %w", base, err)
			}
			out.err = err
			return out
		}
		idle()
		f, err := herald.ParseServerFrame(b)
		if err != nil {
			c.log.Warn("ignoring a frame", "url", base, "err", err)
			continue
		}
		switch f.Type {
		case herald.TypeWelcome:
			out.welcomed = true
			var from uint64
			if f.From != nil {
				from = *f.From
			}
			c.log.Info("connected", "url", base, "since", since, "from", from)
			if f.Gap {
				c.log.Warn("gap: messages after the position were removed by retention", "since", since, "from", from)
			}
			c.mu.Lock()
			cn.welcomed = true
			cn.read = max(cn.read, f.Read)
			unsent := c.readPos > cn.read
			c.mu.Unlock()
			if unsent {
				c.wake() // a Read made while disconnected
			}
			c.emit(Event{Kind: EventConnected, URL: base, Since: since, From: from, Gap: f.Gap, Read: f.Read})
		case herald.TypeMessage:
			if !c.receive(ctx, cn, f.Envelope) {
				out.err = ctx.Err()
				return out
			}
		case herald.TypeSynced:
			c.log.Info("synced", "seq", f.Seq)
			c.emit(Event{Kind: EventSynced, URL: base, Seq: f.Seq})
		case herald.TypeRead:
			c.mu.Lock()
			cn.read = max(cn.read, f.Seq)
			c.mu.Unlock()
			c.emit(Event{Kind: EventRead, URL: base, Seq: f.Seq, Device: f.Device})
		case herald.TypeError:
			errFrame = &herald.ErrorFrame{Code: f.Code, Message: f.Message}
			c.log.Warn("error frame", "url", base, "code", f.Code, "message", f.Message)
		}
	}
}

// receive hands a message to the application unless its seq was handed out
// before; false when ctx ended while Messages was full. A duplicate at or
// below the processed position means the edge still holds it unacked, so
// it is acked again.
func (c *Client) receive(ctx context.Context, cn *conn, e herald.Envelope) bool {
	c.mu.Lock()
	cn.recv = max(cn.recv, e.Seq)
	if e.Seq <= c.delivered {
		reack := e.Seq <= c.processed && e.Seq > cn.acked
		if reack {
			c.pending++
		}
		c.mu.Unlock()
		if reack {
			c.wake()
		}
		return true
	}
	c.delivered = e.Seq
	c.mu.Unlock()
	select {
	case c.msgs <- Message{Envelope: e, c: c}:
		return true
	case <-ctx.Done():
		return false
	}
}

// handshakeError reads an edge's refusal of the upgrade.
func handshakeError(base string, resp *http.Response) *HandshakeError {
	defer resp.Body.Close()
	he := &HandshakeError{URL: base, Status: resp.StatusCode}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body herald.ErrorBody
	if json.Unmarshal(b, &body) == nil {
		he.Code, he.Message = body.Error.Code, body.Error.Message
	}
	return he
}
