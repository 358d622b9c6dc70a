package edge

import (
	"bufio"
	"net"
	"net/http"
	"sync"
)

// A WebSocket session's pump writes a burst of frames (a backlog, a run of
// live messages) with one system call: while the connection is corked,
// gorilla's writes of whole frames are collected, and the pump's flush, once
// it has nothing more ready, writes them at once. Control frames (pings,
// pongs) written from other goroutines meanwhile go out with the burst.

// corkMax bounds a burst: a write that would pass it sends the burst first.
const corkMax = 64 << 10

// corkBufs holds burst buffers between bursts, so that an idle connection
// holds none.
var corkBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// corkConn is the net.Conn of an upgraded WebSocket. It is safe for
// concurrent use; mu is held across a write to the socket (as gorilla's
// own write lock is), never across anything else.
type corkConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	buf    *[]byte // from corkBufs while a burst is collected
}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked {
		if c.buf == nil {
			c.buf = corkBufs.Get().(*[]byte)
		}
		if len(*c.buf)+len(p) <= corkMax {
			*c.buf = append(*c.buf, p...)
			return len(p), nil
		}
	}
	if err := c.flushLocked(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// cork starts collecting writes.
func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork writes what was collected, under the connection's write deadline
// (set by the caller), and stops collecting.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	return c.flushLocked()
}

func (c *corkConn) flushLocked() error {
	if c.buf == nil {
		return nil
	}
	b := c.buf
	c.buf = nil
	_, err := c.Conn.Write(*b)
	if cap(*b) <= 2*corkMax {
		*b = (*b)[:0]
		corkBufs.Put(b)
	}
	return err
}

// corkWriter hands the upgrader a corkConn when it hijacks the request's
// connection.
type corkWriter struct {
	http.ResponseWriter
	conn *corkConn
}

func (w *corkWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = &corkConn{Conn: nc}
	return w.conn, brw, nil
}

func (w *corkWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
