package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-push/herald"
)

// Defaults of Options.
const (
	DefaultAckDelay     = 100 * time.Millisecond
	DefaultAckEvery     = 64
	DefaultMinBackoff   = 100 * time.Millisecond
	DefaultMaxBackoff   = 30 * time.Second
	DefaultBuffer       = 256
	DefaultIdleTimeout  = 90 * time.Second // the edge pings every 30 s
	DefaultWriteTimeout = 10 * time.Second
)

// A TokenSource returns a client JWT for the device (SPEC §5). The client
// calls it before its first dial, after an edge closed with 4001 or refused
// the token with 401, and shortly before the token's exp. An error ends
// Run, so a source whose backend can fail for a moment should retry itself.
type TokenSource func(ctx context.Context) (string, error)

// Options configure a Client. URLs, Device and Token are required; a zero
// duration or count takes its default.
type Options struct {
	// URLs are the edges, tried in order: base URLs (ws://, wss://,
	// http:// or https://, "/v1/ws" is appended unless the path ends in
	// it) or full endpoint URLs.
	URLs   []string
	Device string
	Token  TokenSource
	// Store keeps the processed position; nil is a new MemoryStore.
	Store PositionStore
	// OnEvent, when set, is told of connection state and read positions;
	// see the package doc for where it runs.
	OnEvent func(Event)
	// Logger gets the client's logs; nil discards them.
	Logger *slog.Logger

	AckDelay     time.Duration // how long a processed mark may wait for its ack
	AckEvery     int           // marks that are acked at once, without waiting AckDelay
	MinBackoff   time.Duration // the first wait before a reconnect
	MaxBackoff   time.Duration // the cap of the doubling waits
	Buffer       int           // capacity of Messages
	IdleTimeout  time.Duration // a connection that receives nothing (pings included) for this long is dropped
	WriteTimeout time.Duration // bound of the handshake and of each write (acks, close frames)
	TLSConfig    *tls.Config   // for wss://; nil is the default
}

// Client is a device connection that survives reconnects. New makes one;
// Run runs it.
type Client struct {
	opts  Options
	urls  []*url.URL
	store PositionStore
	log   *slog.Logger
	msgs  chan Message
	kick  chan struct{} // one slot: a mark waits for the committer
	ran   atomic.Bool
	tok   tokenCache

	mu        sync.Mutex
	processed uint64 // the highest seq marked processed, never above delivered
	delivered uint64 // the highest seq sent on Messages (or loaded)
	readPos   uint64 // the highest read position asked for (Read)
	pending   int    // marks and re-acks since the last flush
	cur       *conn  // the open connection, nil between connections

	flushMu sync.Mutex // held across a flush: one Save and ack at a time
	saved   uint64     // the position last saved; under flushMu
}

// Message is a delivered message: the envelope, with its Seq. When Op is
// herald.OpUpdate it replaces the earlier message whose ID is Ref; when it
// is herald.OpDelete that message is retracted (SPEC §10). Either way it
// is a message of its own, to mark processed like any other.
type Message struct {
	herald.Envelope
	c *Client
}

// Done marks m, and every earlier message, processed.
func (m Message) Done() {
	if m.c != nil {
		m.c.Processed(m.Seq)
	}
}

// EventKind is what an Event reports.
type EventKind int

// Event kinds.
const (
	// EventConnected: a connection is up, its welcome received. URL, Since
	// (0: none sent), From (0: nothing to deliver yet), Gap, Read.
	EventConnected EventKind = iota + 1
	// EventSynced: the backlog at connect time has been received. Seq.
	EventSynced
	// EventRead: the user's read position moved, on Device (SPEC §10). Seq.
	EventRead
	// EventDisconnected: a connection ended, or an attempt failed. URL,
	// Err (why: a *CloseError, a *HandshakeError, ErrTokenRefresh, a
	// network error), Retry (the wait before the next attempt).
	EventDisconnected
)

func (k EventKind) String() string {
	switch k {
	case EventConnected:
		return "connected"
	case EventSynced:
		return "synced"
	case EventRead:
		return "read"
	case EventDisconnected:
		return "disconnected"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is a change of connection state or of the read position; Kind
// says which fields are set.
type Event struct {
	Kind   EventKind
	URL    string
	Since  uint64
	From   uint64
	Gap    bool
	Read   uint64
	Seq    uint64
	Device string
	Err    error
	Retry  time.Duration
}

// Errors.
var (
	// ErrTokenExpired ends Run when the token source returns a token that
	// has already expired.
	ErrTokenExpired = errors.New("token expired")
	// ErrTokenRefresh is the Err of the EventDisconnected of a connection
	// the client closed to reconnect with a new token.
	ErrTokenRefresh = errors.New("reconnecting with a new token")
)

// CloseError is a connection closed by the edge: its close code and text,
// and the error frame that preceded the close, if one did.
type CloseError struct {
	Code  herald.CloseCode
	Text  string
	Frame *herald.ErrorFrame
}

func (e *CloseError) Error() string {
	s := fmt.Sprintf("the edge closed the connection with %d", int(e.Code))
	if e.Text != "" {
		s += " " + e.Text
	}
	if e.Frame != nil {
		s += fmt.Sprintf(" (%s: %s)", e.Frame.Code, e.Frame.Message)
	}
	return s
}

// New checks opts and returns a client; Run starts it.
func New(opts Options) (*Client, error) {
	if len(opts.URLs) == 0 {
		return nil, errors.New("client: new: no URLs")
	}
	if opts.Device == "" {
		return nil, errors.New("client: new: no device")
	}
	if opts.Token == nil {
		return nil, errors.New("client: new: no token source")
	}
	if opts.AckDelay < 0 || opts.AckEvery < 0 || opts.MinBackoff < 0 || opts.MaxBackoff < 0 || opts.Buffer < 0 || opts.IdleTimeout < 0 || opts.WriteTimeout < 0 {
		return nil, errors.New("client: new: a duration or count is negative")
	}
	opts.AckDelay = cmpOr(opts.AckDelay, DefaultAckDelay)
	opts.AckEvery = cmpOr(opts.AckEvery, DefaultAckEvery)
	opts.MinBackoff = cmpOr(opts.MinBackoff, DefaultMinBackoff)
	opts.MaxBackoff = max(cmpOr(opts.MaxBackoff, DefaultMaxBackoff), opts.MinBackoff)
	opts.Buffer = cmpOr(opts.Buffer, DefaultBuffer)
	opts.IdleTimeout = cmpOr(opts.IdleTimeout, DefaultIdleTimeout)
	opts.WriteTimeout = cmpOr(opts.WriteTimeout, DefaultWriteTimeout)
	c := &Client{
		opts:  opts,
		store: opts.Store,
		log:   opts.Logger,
		msgs:  make(chan Message, opts.Buffer),
		kick:  make(chan struct{}, 1),
		tok:   tokenCache{source: opts.Token},
	}
	for _, raw := range opts.URLs {
		u, err := endpoint(raw)
		if err != nil {
			return nil, fmt.Errorf("client: new: %w", err)
		}
		c.urls = append(c.urls, u)
	}
	if c.store == nil {
		c.store = &MemoryStore{}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

func cmpOr[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// endpoint turns a base URL into the WebSocket endpoint's.
func endpoint(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("url %q is not a URL like ws://127.0.0.1:8080", raw)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return nil, fmt.Errorf("url %q: scheme must be ws, wss, http or https", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	if !strings.HasSuffix(u.Path, "/v1/ws") {
		u.Path += "/v1/ws"
	}
	u.RawPath, u.Fragment = "", ""
	return u, nil
}

// Messages returns the channel of delivered messages, in seq order and each
// seq once. Run closes it when it returns.
func (c *Client) Messages() <-chan Message { return c.msgs }

// Processed marks every message up to seq processed. A seq at or below the
// current mark changes nothing; one above the last delivered message is
// taken as that message's. Marks made after Run returned are not saved.
func (c *Client) Processed(seq uint64) {
	c.mu.Lock()
	seq = min(seq, c.delivered)
	if seq <= c.processed {
		c.mu.Unlock()
		return
	}
	c.processed = seq
	c.pending++
	c.mu.Unlock()
	c.wake()
}

// Read tells the user's other devices that the user has seen every
// message up to seq (SPEC §10): it is sent on the open connection, or on
// the next one, with the acks (debounced like them). Only the highest seq
// is sent; the edge clamps it to the user's last message and never moves
// the read position back. It never blocks.
func (c *Client) Read(seq uint64) {
	c.mu.Lock()
	if seq <= c.readPos {
		c.mu.Unlock()
		return
	}
	c.readPos = seq
	c.pending++
	c.mu.Unlock()
	c.wake()
}

// wake tells the committer that there is something to flush.
func (c *Client) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Run loads the position, connects and delivers until ctx ends, then
// saves the processed position and returns nil (or the save's error). It
// returns an error
// earlier only when retrying cannot help: the store fails, the token
// source fails or returns an expired token, or an edge refuses the
// handshake with a 4xx other than 408 and 429 (a *HandshakeError).
func (c *Client) Run(ctx context.Context) error {
	if !c.ran.CompareAndSwap(false, true) {
		return errors.New("client: run: a client runs once")
	}
	defer close(c.msgs)
	pos, err := c.store.Load(ctx)
	if err != nil {
		return fmt.Errorf("client: load position: %w", err)
	}
	c.mu.Lock()
	c.processed, c.delivered = pos, pos
	c.mu.Unlock()
	c.saved = pos

	runCtx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.commit(runCtx, fail)
	}()
	err = c.loop(runCtx)
	if err == nil && ctx.Err() == nil {
		err = context.Cause(runCtx) // the committer's
	}
	fail(nil)
	wg.Wait()
	if ferr := c.finalFlush(ctx); err == nil {
		err = ferr
	}
	return err
}

// Each runs the client and calls handle for each message, in seq order, on
// the calling goroutine; a message handle returns nil for is processed
// (Done). It returns when ctx ends (nil, or the final save's error), when
// Run stops for good (its error), or when handle fails (that error, after
// the client has stopped and saved the position of what was processed).
func (c *Client) Each(ctx context.Context, handle func(Message) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	var handleErr error
	for m := range c.Messages() {
		if handleErr != nil {
			continue // Run is stopping; Messages closes when it has
		}
		if handleErr = handle(m); handleErr != nil {
			cancel()
			continue
		}
		m.Done()
	}
	if err := <-errc; err != nil {
		return err
	}
	return handleErr
}

// loop connects until ctx ends (nil) or an attempt fails for good.
func (c *Client) loop(ctx context.Context) error {
	i, fails := 0, 0
	var last error
	for {
		out := c.session(ctx, c.urls[i])
		if ctx.Err() != nil {
			return nil
		}
		if out.fatal != nil {
			var ce *CloseError
			if errors.Is(out.fatal, ErrTokenExpired) && errors.As(last, &ce) {
				return fmt.Errorf("%w, after %w", out.fatal, last)
			}
			return out.fatal
		}
		last = out.err
		base := c.urls[i].Redacted()
		if out.refresh {
			c.emit(Event{Kind: EventDisconnected, URL: base, Err: ErrTokenRefresh})
			continue
		}
		if out.welcomed {
			fails = 0
		} else {
			fails++
		}
		var ce *CloseError
		if !out.welcomed || errors.As(out.err, &ce) && ce.Code == herald.CloseGoingAway {
			i = (i + 1) % len(c.urls)
		}
		// Each URL is tried once per round; the wait doubles per round.
		d := backoff(max(fails-1, 0)/len(c.urls), c.opts.MinBackoff, c.opts.MaxBackoff)
		c.log.Warn("disconnected; reconnecting", "url", base, "err", out.err, "in", d.Round(time.Millisecond))
		c.emit(Event{Kind: EventDisconnected, URL: base, Err: out.err, Retry: d})
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// backoff is min·2^attempt capped at max, drawn uniformly from its upper
// half so that clients do not reconnect in lockstep.
func backoff(attempt int, minB, maxB time.Duration) time.Duration {
	d := maxB
	if attempt < 30 {
		d = min(minB<<attempt, maxB)
	}
	half := d / 2
	return half + rand.N(half+1)
}

func (c *Client) emit(e Event) {
	if c.opts.OnEvent != nil {
		c.opts.OnEvent(e)
	}
}

// commit flushes positions until ctx ends: at once after AckEvery marks,
// else AckDelay after the first. A failed Save ends Run through fail.
func (c *Client) commit(ctx context.Context, fail context.CancelCauseFunc) {
	var timer *time.Timer
	var due <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
			c.mu.Lock()
			n := c.pending
			c.mu.Unlock()
			if n < c.opts.AckEvery {
				if due == nil {
					if timer == nil {
						timer = time.NewTimer(c.opts.AckDelay)
					} else {
						timer.Reset(c.opts.AckDelay)
					}
					due = timer.C
				}
				continue
			}
		case <-due:
		}
		if due != nil {
			timer.Stop()
			due = nil
		}
		if err := c.flush(ctx); err != nil {
			fail(err)
			return
		}
	}
}

// flush saves the processed position if it moved and acks it on the open
// connection, up to what that connection delivered. Save comes first, so
// an edge never holds a position the store does not.
func (c *Client) flush(ctx context.Context) error {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	c.mu.Lock()
	pos := c.processed
	c.pending = 0
	cn := c.cur
	var ack, read uint64
	if cn != nil {
		if a := min(pos, cn.recv); a > cn.acked {
			cn.acked, ack = a, a
		}
		if cn.welcomed && c.readPos > cn.read {
			cn.read, read = c.readPos, c.readPos
		}
	}
	c.mu.Unlock()
	if pos > c.saved {
		if err := c.store.Save(ctx, pos); err != nil {
			return fmt.Errorf("client: save position %d: %w", pos, err)
		}
		c.saved = pos
	}
	if ack > 0 {
		// A failed write fails the connection, whose reader sees it.
		_ = cn.write(herald.AppendAck(make([]byte, 0, 48), ack))
	}
	if read > 0 {
		_ = cn.write(herald.AppendRead(make([]byte, 0, 48), read))
	}
	return nil
}

// finalFlush saves what was marked since the last flush; ctx may have
// ended, so the save gets its own bound.
func (c *Client) finalFlush(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.WriteTimeout)
	defer cancel()
	return c.flush(ctx)
}
