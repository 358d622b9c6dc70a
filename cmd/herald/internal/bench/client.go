package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/edge/token"
)

// tokenTTL is the lifetime of the device tokens a run mints.
const tokenTTL = time.Hour

// maxRetries bounds the retries of a dial answered with 503.
const maxRetries = 20

// retryBackoff is the wait before retry attempt+1: 100 ms doubling to 2 s,
// with up to 50% jitter so that retries spread out.
func retryBackoff(attempt int) time.Duration {
	d := min(100*time.Millisecond<<min(attempt, 5), 2*time.Second)
	return d/2 + time.Duration(mrand.Int64N(int64(d/2)+1))
}

// tracker counts what the devices of one phase received. Messages are
// numbered 0..n-1 (the i of their data); each goes to one user, so to
// Devices devices.
type tracker struct {
	run     string // the run id in each message's data
	base    int    // index of the first message of this phase
	n       int    // messages in this phase
	perMsg  []atomic.Int32
	ack     int          // devices ack every ack messages
	want    atomic.Int64 // deliveries expected once every publish is known
	got     atomic.Int64 // first deliveries of a message to a device
	dups    atomic.Int64 // a seq seen twice on one connection
	ooo     atomic.Int64 // a seq lower than one already seen, not a duplicate
	foreign atomic.Int64 // messages of other runs or phases
	last    atomic.Int64 // unix nanos of the last first delivery
	done    chan struct{}
	doneMu  sync.Mutex
	closed  bool
}

func newTracker(run string, base, n, ack int) *tracker {
	return &tracker{run: run, base: base, n: n, ack: ack, perMsg: make([]atomic.Int32, n), done: make(chan struct{})}
}

// expect sets the number of deliveries that completes the phase.
func (t *tracker) expect(want int64) {
	t.want.Store(want)
	t.check()
}

func (t *tracker) check() {
	t.doneMu.Lock()
	defer t.doneMu.Unlock()
	if want := t.want.Load(); !t.closed && want > 0 && t.got.Load() >= want {
		t.closed = true
		close(t.done)
	}
}

// msgData is the data object of every bench message.
type msgData struct {
	Run string `json:"b"`
	I   int    `json:"i"`
	T   int64  `json:"t"` // unix nanos just before the publish
}

// inFrame is any server frame, with a message's data decoded into msgData
// (the field shadows the envelope's raw data).
type inFrame struct {
	herald.ServerFrame
	Data *msgData `json:"data"`
}

// device is one bench client. Its reader goroutine owns every field below
// the line until done is closed.
type device struct {
	user, id string
	conn     *websocket.Conn
	welcome  chan inFrame // the welcome frame, once
	synced   chan uint64  // the synced frame's seq, once
	done     chan struct{}

	// owned by the reader
	tr      *tracker
	ackN    int
	lastSeq uint64            // highest seq seen, across connections
	seen    map[uint64]uint32 // seq → count, this connection
	lat     []time.Duration   // publish→deliver of first deliveries
	err     error             // why the reader stopped (an error frame's code, a read error)

	gap bool // the last welcome said gap; written by the dialing goroutine
}

// dialer dials the bench's WebSockets with small buffers: thousands of
// clients share the machine with the server.
var dialer = websocket.Dialer{
	HandshakeTimeout: 15 * time.Second,
	ReadBufferSize:   2048,
	WriteBufferSize:  256,
	NetDialContext:   spreadLoopback,
}

// loopbackSources is how many loopback addresses spreadLoopback dials
// from: one source address has about 28 000 ephemeral ports towards one
// server address (Linux's default range), short of 100 000 devices.
const loopbackSources = 8

var loopbackNext atomic.Uint32

// spreadLoopback dials addr; when addr is an IPv4 loopback address it
// binds each connection to the next of 127.0.0.1 … 127.0.0.<loopbackSources>
// in turn, so that a run on one machine is not bounded by the ports of one
// source address.
func spreadLoopback(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	if host, _, err := net.SplitHostPort(addr); err == nil {
		if ip := net.ParseIP(host).To4(); ip != nil && ip.IsLoopback() {
			n := loopbackNext.Add(1) % loopbackSources
			nd.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+n))}
		}
	}
	return nd.DialContext(ctx, network, addr)
}

// wsURL is the device endpoint of base for device id, from since when ≥ 0.
func wsURL(base, device string, since int64) string {
	q := url.Values{"device": {device}}
	if since >= 0 {
		q.Set("since", strconv.FormatInt(since, 10))
	}
	return strings.TrimRight(base, "/") + "/v1/ws?" + q.Encode()
}

// connect dials d and starts its reader; tr receives its messages.
func (r *Runner) connect(ctx context.Context, d *device, tr *tracker, since int64, wg *sync.WaitGroup) error {
	tok, err := token.Mint(r.t.JWTSecret, d.user, d.id, tokenTTL)
	if err != nil {
		return fmt.Errorf("bench: mint token: %w", err)
	}
	h := http.Header{"Authorization": {"Bearer " + tok}}
	var conn *websocket.Conn
	for attempt := 0; ; attempt++ {
		var resp *http.Response
		conn, resp, err = dialer.DialContext(ctx, wsURL(r.t.WSURL, d.id, since), h)
		if err == nil {
			break
		}
		// A 503 (the edge or JetStream is busy) is retried after a
		// backoff, as a real client would; anything else fails the run.
		if resp != nil && resp.StatusCode == http.StatusServiceUnavailable && attempt < maxRetries {
			r.retries.Add(1)
			if serr := sleepCtx(ctx, retryBackoff(attempt)); serr != nil {
				return serr
			}
			continue
		}
		if resp != nil {
			return fmt.Errorf("bench: dial %s/%s: %s: %w", d.user, d.id, resp.Status, err)
		}
		return fmt.Errorf("bench: dial %s/%s: %w", d.user, d.id, err)
	}
	d.conn = conn
	d.welcome = make(chan inFrame, 1)
	d.synced = make(chan uint64, 1)
	d.done = make(chan struct{})
	d.tr = tr
	d.seen = map[uint64]uint32{}
	d.ackN = 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(d.done)
		r.read(d)
	}()
	return nil
}

// read is a device's reader: it records each message and acks every
// AckEvery messages (cumulatively), until the socket closes.
func (r *Runner) read(d *device) {
	var ack []byte
	for {
		_, b, err := d.conn.ReadMessage()
		if err != nil {
			if d.err == nil {
				d.err = err
			}
			return
		}
		var f inFrame
		if err := json.Unmarshal(b, &f); err != nil {
			d.err = fmt.Errorf("bench: bad frame %.80q: %w", b, err)
			return
		}
		switch f.Type {
		case herald.TypeWelcome:
			d.welcome <- f
		case herald.TypeSynced:
			select {
			case d.synced <- f.Seq:
			default: // only one is expected; never block the reader
			}
		case herald.TypeError:
			d.err = fmt.Errorf("bench: error frame %s: %s", f.Code, f.Message)
		case herald.TypeMessage:
			now := time.Now().UnixNano()
			d.record(&f, now)
			d.ackN++
			if d.ackN >= max(1, d.tr.ack) {
				d.ackN = 0
				ack = herald.AppendAck(ack[:0], f.Seq)
				if err := d.conn.WriteMessage(websocket.TextMessage, ack); err != nil {
					d.err = err
					return
				}
			}
		}
	}
}

// record accounts one message frame received at now (unix nanos).
func (d *device) record(f *inFrame, now int64) {
	t := d.tr
	d.seen[f.Seq]++
	switch {
	case d.seen[f.Seq] > 1:
		t.dups.Add(1)
		return
	case f.Seq < d.lastSeq:
		t.ooo.Add(1)
	}
	d.lastSeq = max(d.lastSeq, f.Seq)
	if f.Data == nil || f.Data.Run != t.run || f.Data.I < t.base || f.Data.I >= t.base+t.n {
		t.foreign.Add(1)
		return
	}
	t.perMsg[f.Data.I-t.base].Add(1)
	d.lat = append(d.lat, time.Duration(now-f.Data.T))
	t.last.Store(now)
	if want := t.want.Load(); t.got.Add(1) >= want && want > 0 {
		t.check()
	}
}

// stuckConn is a device that upgrades and then never reads its socket; its
// receive buffer is as small as the OS allows.
type stuckConn struct{ conn net.Conn }

// dialStuck opens a stuck device: a raw TCP connection with a tiny receive
// buffer, a hand-written WebSocket upgrade, and no reads after the 101.
func (r *Runner) dialStuck(ctx context.Context, user, dev string) (*stuckConn, error) {
	tok, err := token.Mint(r.t.JWTSecret, user, dev, tokenTTL)
	if err != nil {
		return nil, fmt.Errorf("bench: mint token: %w", err)
	}
	u, err := url.Parse(wsURL(r.t.WSURL, dev, -1))
	if err != nil {
		return nil, fmt.Errorf("bench: ws url: %w", err)
	}
	if u.Scheme != "ws" {
		return nil, fmt.Errorf("bench: stuck devices need a ws:// URL, not %s", u.Scheme)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	nd := net.Dialer{Timeout: 10 * time.Second, Control: smallRecvBuf}
	conn, err := nd.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, fmt.Errorf("bench: dial stuck device: %w", err)
	}
	var key [16]byte
	_, _ = rand.Read(key[:])
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " +
		base64.StdEncoding.EncodeToString(key[:]) + "\r\nAuthorization: Bearer " + tok + "\r\n\r\n"
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte(req)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("bench: stuck device upgrade: %w", err)
	}
	// Read the status line only; whatever follows stays unread.
	status, err := bufio.NewReaderSize(conn, 16).ReadString('\n')
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("bench: stuck device upgrade: %w", err)
	}
	if !strings.Contains(status, " 101 ") {
		conn.Close()
		return nil, fmt.Errorf("bench: stuck device upgrade: %s", strings.TrimSpace(status))
	}
	_ = conn.SetDeadline(time.Time{})
	return &stuckConn{conn: conn}, nil
}

// connectAll dials every device with at most conc dials in flight and waits
// for each welcome (and synced, when wantSynced). since(d) is the since of
// a device, < 0 for none. It returns when all are up or on the first error.
func (r *Runner) connectAll(ctx context.Context, devs []*device, tr *tracker, since func(*device) int64, conc int, wantSynced bool, wg *sync.WaitGroup, progress func(int)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, conc)
	errc := make(chan error, 1)
	var up atomic.Int64
	var dials sync.WaitGroup
	for _, d := range devs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		dials.Add(1)
		go func() {
			defer dials.Done()
			defer func() { <-sem }()
			err := r.connect(ctx, d, tr, since(d), wg)
			if err == nil {
				err = waitUp(ctx, d, wantSynced)
			}
			if err != nil {
				select {
				case errc <- err:
				default:
				}
				cancel()
				return
			}
			if progress != nil {
				progress(int(up.Add(1)))
			}
		}()
	}
	dials.Wait()
	select {
	case err := <-errc:
		return err
	default:
	}
	return ctx.Err()
}

// waitUp waits for d's welcome and, when wantSynced, its synced frame.
func waitUp(ctx context.Context, d *device, wantSynced bool) error {
	select {
	case f := <-d.welcome:
		d.gap = f.Gap
	case <-d.done:
		return fmt.Errorf("bench: %s/%s closed before welcome: %w", d.user, d.id, d.readErr())
	case <-ctx.Done():
		return ctx.Err()
	}
	if !wantSynced {
		return nil
	}
	select {
	case <-d.synced:
		return nil
	case <-d.done:
		return fmt.Errorf("bench: %s/%s closed before synced: %w", d.user, d.id, d.readErr())
	case <-ctx.Done():
		return ctx.Err()
	}
}

// readErr is why d's reader stopped; call only after done is closed.
func (d *device) readErr() error {
	if d.err == nil {
		return errors.New("no error")
	}
	return d.err
}

// closeAll closes every device's socket and waits for the readers.
func closeAll(devs []*device, wg *sync.WaitGroup) {
	for _, d := range devs {
		if d.conn != nil {
			_ = d.conn.Close()
		}
	}
	wg.Wait()
}
