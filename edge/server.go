package edge

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/edge/token"
	"github.com/herald-push/herald/streams"
)

// TokenVerifier checks client tokens; *token.Verifier satisfies it.
type TokenVerifier interface {
	Verify(raw string) (token.Verified, error)
}

// ProducerKeys tells a producer key; ingest's Keyring satisfies it (cmd
// wires it), comparing in constant time.
type ProducerKeys interface {
	Match(key string) bool
}

// Options configure a Server.
type Options struct {
	Edge   Config
	Engine Engine
	Tokens TokenVerifier
	// JetStream reaches the devices bucket (read positions, device status)
	// and the stream, and its connection carries the control subjects that
	// share acks and reads with the other edges. nil: no read state, no
	// device status, and acks stay on this edge.
	JetStream jetstream.JetStream
	// Stream names the stream and its subject prefix (with JetStream).
	Stream streams.Config
	// Timeout bounds each JetStream call of the server itself (0: 5 s).
	Timeout time.Duration
	// Producers admits producers to device status by their key; nil:
	// only the user's own token does.
	Producers  ProducerKeys
	Logger     *slog.Logger          // nil: discard
	Registerer prometheus.Registerer // nil: no metrics
	// CheckOrigin decides browser upgrades; nil: same origin or one of
	// Edge.AllowedOrigins (see Gate).
	CheckOrigin func(r *http.Request) bool
	// Ntfy, when set, serves ntfy's subscribe endpoints (ntfy.go).
	Ntfy *NtfyOptions
}

// Server is the device-facing edge: the WebSocket and SSE endpoints, POST
// /v1/ack and /v1/read, device status, the registry of live sessions, and
// the browser files (the JavaScript client and the console, web.go).
type Server struct {
	opts      Options
	log       *slog.Logger
	metrics   *metrics
	up        websocket.Upgrader
	lim       *limits // request gate: IP rate, origin, connection limit
	web       webFiles
	reads     *readStore   // nil without Options.JetStream
	ctl       *control     // nil without Options.JetStream
	producers ProducerKeys // nil without Options.Producers

	ctx    context.Context // parent of every session
	cancel context.CancelFunc

	closingMu sync.Mutex // guards closing; held only to flip or read it
	closing   bool
	wg        sync.WaitGroup // one per running session handler, and shareAcks while it runs
	shared    sharedAcks

	shards [64]shard
}

// shard is one part of the session registry. Lock order: a shard lock is
// never held while taking another lock or doing I/O.
type shard struct {
	mu       sync.Mutex
	sessions map[*session]struct{}
	perUser  map[string]int
}

// New validates opts and returns a ready Server.
func New(opts Options) (*Server, error) {
	if opts.Engine == nil {
		return nil, errors.New("edge: new: no delivery engine")
	}
	if opts.Tokens == nil {
		return nil, errors.New("edge: new: no token verifier")
	}
	if n := opts.Ntfy; n != nil && (n.Store == nil || n.Timeout <= 0) {
		return nil, errors.New("edge: new: the ntfy endpoints need a store and a positive timeout")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(opts.Registerer, opts.Edge.Delivery, opts.Engine.Collector())
	if err != nil {
		return nil, err
	}
	files, err := newWebFiles(opts.Edge.Console)
	if err != nil {
		return nil, err
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:    opts,
		log:     opts.Logger.With("component", "edge"),
		metrics: m,
		up: websocket.Upgrader{
			HandshakeTimeout: 10 * time.Second,
			// Client frames are acks of a few dozen bytes: a 256 B read
			// buffer takes them (larger frames pass through it), and
			// net/http's 4 KiB one is let go with the handler (serveWS).
			// The write buffer comes from a pool for each write, so an
			// idle connection holds none.
			ReadBufferSize:  wsReadBuffer,
			WriteBufferPool: &sync.Pool{},
			// Gate checked the origin before the upgrade, answering
			// with a JSON 403 rather than the upgrader's plain text.
			CheckOrigin: func(*http.Request) bool { return true },
		},
		lim:       newLimits(opts.Edge, opts.CheckOrigin),
		web:       files,
		producers: opts.Producers,
		ctx:       ctx,
		cancel:    cancel,
	}
	if opts.JetStream != nil {
		subj := streams.Subjects{Prefix: opts.Stream.Prefix}
		s.reads = newReadStore(opts.JetStream, opts.Stream.Name, subj, opts.Timeout)
		s.ctl = newControl(opts.JetStream.Conn(), subj, s, s.log)
	}
	// A handshake the upgrader refuses (no or a bad Sec-WebSocket-Key, a
	// version other than 13) gets the JSON error and is counted, like
	// every other refusal before the upgrade.
	s.up.Error = func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
		w.Header().Set("Sec-WebSocket-Version", "13")
		s.reject(w, handshakeError(status, reason))
	}
	for i := range s.shards {
		s.shards[i].sessions = map[*session]struct{}{}
		s.shards[i].perUser = map[string]int{}
	}
	return s, nil
}

// Register adds the edge routes to mux: the device endpoints, the
// JavaScript client and, unless edge.console is false, the console
// (web.go). ntfy's endpoints have RegisterNtfy.
func (s *Server) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/ws", s.handleWS)
	mux.HandleFunc("GET /v1/sse", s.handleSSE)
	mux.HandleFunc("POST /v1/ack", s.handleAck)
	mux.HandleFunc("OPTIONS /v1/ack", s.handlePreflight("POST"))
	mux.HandleFunc("POST /v1/read", s.handleRead)
	mux.HandleFunc("OPTIONS /v1/read", s.handlePreflight("POST"))
	mux.HandleFunc("GET /v1/users/{user}/devices", s.handleDevices)
	mux.HandleFunc("OPTIONS /v1/users/{user}/devices", s.handlePreflight("GET"))
	s.web.register(mux)
}

func (s *Server) shardOf(user string) *shard {
	return &s.shards[shardIndex(user, len(s.shards))]
}

// shardSeed seeds shardIndex for the life of the process.
var shardSeed = maphash.MakeSeed()

// shardIndex maps key to one of n shards, without allocating (the live
// engine's fan-out calls it for every message).
func shardIndex(key string, n int) uint64 {
	return maphash.String(shardSeed, key) % uint64(n)
}

// admit registers a session unless the server is shutting down, and joins
// its user's control subject.
func (s *Server) admit(ss *session) bool {
	s.closingMu.Lock()
	if s.closing {
		s.closingMu.Unlock()
		return false
	}
	s.wg.Add(1)
	sh := s.shardOf(ss.dev.User)
	sh.mu.Lock()
	sh.sessions[ss] = struct{}{}
	sh.perUser[ss.dev.User]++
	sh.mu.Unlock()
	s.closingMu.Unlock()
	ss.hooks = s
	s.ctl.join(ss.dev.User)
	return true
}

func (s *Server) release(ss *session) {
	s.ctl.leave(ss.dev.User)
	sh := s.shardOf(ss.dev.User)
	sh.mu.Lock()
	delete(sh.sessions, ss)
	if sh.perUser[ss.dev.User]--; sh.perUser[ss.dev.User] <= 0 {
		delete(sh.perUser, ss.dev.User)
	}
	sh.mu.Unlock()
	close(ss.ended)
	s.wg.Done()
}

func (s *Server) isClosing() bool {
	s.closingMu.Lock()
	defer s.closingMu.Unlock()
	return s.closing
}

// connRequest is a validated connection request.
type connRequest struct {
	dev     Device
	pos     Position
	expires time.Time
}

// authorize validates the request before any upgrade: device id, since and
// token. Errors are *herald.Error.
func (s *Server) authorize(r *http.Request) (connRequest, error) {
	device, pos, err := parseConnQuery(r.URL.Query())
	if err != nil {
		return connRequest{}, err
	}
	g, err := s.verifyToken(r)
	if err != nil {
		return connRequest{}, err
	}
	if err := g.CheckDevice(device); err != nil {
		return connRequest{}, herald.WrapError(herald.Unauthorized, err, "the token is bound to another device")
	}
	return connRequest{dev: Device{User: g.User, Device: device}, pos: pos, expires: g.Expires}, nil
}

// verifyToken verifies the request's client token. Errors are
// *herald.Error (unauthorized).
func (s *Server) verifyToken(r *http.Request) (token.Verified, error) {
	g, err := s.opts.Tokens.Verify(token.FromRequest(r))
	if err != nil {
		msg := "invalid token"
		if errors.Is(err, token.ErrMissing) {
			msg = "a token is required (Authorization: Bearer or ?token=)"
		}
		return g, herald.WrapError(herald.Unauthorized, err, msg)
	}
	return g, nil
}

// errShuttingDown answers a request the edge no longer takes.
func errShuttingDown() error {
	return &herald.Error{Code: herald.Unavailable, Message: "the edge is shutting down", RetryAfter: time.Second}
}

// errStoreUnavailable answers a request that JetStream could not serve.
func errStoreUnavailable(err error) error {
	return &herald.Error{Code: herald.Unavailable, Message: "message store unavailable", RetryAfter: time.Second, Err: err}
}

// handshakeError maps the upgrader's refusal to the catalogue: its 400s
// are invalid_request with its reason (which names the header at fault);
// anything else (a connection that cannot be hijacked) is internal.
func handshakeError(status int, reason error) error {
	switch status {
	case http.StatusBadRequest:
		return herald.WrapError(herald.InvalidRequest, reason, strings.TrimPrefix(reason.Error(), "websocket: "))
	case http.StatusMethodNotAllowed:
		return herald.WrapError(herald.MethodNotAllowed, reason, "a WebSocket handshake is a GET")
	case http.StatusForbidden:
		return herald.WrapError(herald.Forbidden, reason, "origin not allowed")
	}
	return herald.WrapError(herald.Internal, reason, "internal error")
}

func (s *Server) reject(w http.ResponseWriter, err error) {
	e := herald.AsError(err)
	s.metrics.rejects.WithLabelValues(string(e.Code)).Inc()
	herald.WriteError(w, s.log, err)
}

// openFeed opens the device's feed before the upgrade, so that an
// unreachable JetStream is a 503 rather than a socket that closes at once.
func (s *Server) openFeed(r *http.Request, cr connRequest) (Feed, error) {
	if s.isClosing() {
		return nil, errShuttingDown()
	}
	feed, err := s.opts.Engine.Open(r.Context(), cr.dev, cr.pos)
	switch {
	case errors.Is(err, ErrTooManyDevices):
		return nil, herald.WrapError(herald.TooManyDevices, err, fmt.Sprintf("this user has %d devices already (edge.max_devices_per_user): connect as one of them, or wait until an unused one expires (edge.device_ttl)", s.opts.Edge.MaxDevicesPerUser))
	case errors.Is(err, ErrNoConsumerRoom):
		return nil, herald.WrapError(herald.TooManyDevices, err, "the message store has no room for another device (stream.max_consumers): connect as a known device, or wait until unused ones expire (edge.device_ttl)")
	case err != nil:
		s.log.Warn("open feed", "user", streams.LogUser(cr.dev.User), "device", cr.dev.Device, "err", err)
		return nil, errStoreUnavailable(err)
	}
	return feed, nil
}

// overUserLimit reports whether user has more sessions than
// edge.max_conns_per_user allows (the newest one included).
func (s *Server) overUserLimit(user string) bool {
	max := s.opts.Edge.MaxConnsPerUser
	return max > 0 && s.userConns(user) > max
}

// serveSession runs an admitted session over out, its transport: it
// counts the connection, sends the welcome (with the user's read
// position, read after the session joined its user's control subject, so
// that a later move arrives as a read frame), calls run (the transport's
// loop) until the session has ended, then closes the feed, which keeps
// the device's position, and counts the close.
func (s *Server) serveSession(ss *session, out transport, name string, run func()) {
	conns := s.metrics.conns[name]
	conns.Inc()
	defer conns.Dec()
	var read uint64
	if s.reads != nil && ss.ctx.Err() == nil {
		var err error
		if read, err = s.reads.get(ss.ctx, ss.dev.User); err != nil && ss.ctx.Err() == nil {
			ss.log().Warn("read position for the welcome", "err", err)
		}
		ss.readSent(read)
	}
	if !out.write(kindWelcome, 0, ss.codec.welcome(ss.dev, ss.start, read)) || !out.flush() {
		ss.close(CloseSlow)
	}
	run()
	_ = ss.feed.Close()
	reason := ss.closeReason()
	s.metrics.closed(reason)
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		ss.log().Debug("session closed", "transport", name, "reason", reason.Text())
	}
}

func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	release, err := s.Gate(r)
	if err != nil {
		s.reject(w, err)
		return
	}
	cr, err := s.authorize(r)
	if err != nil {
		release()
		s.reject(w, err)
		return
	}
	s.upgrade(w, r, cr, release, wsSpec{name: "ws", codec: heraldCodec{}, reject: s.reject})
}

// wsSpec says how upgrade serves a WebSocket session.
type wsSpec struct {
	name   string // the transport, as the connection gauge names it
	codec  codec
	ntfy   bool // ntfy's events (wsOptions.ntfy)
	poll   bool
	reject func(w http.ResponseWriter, err error) // renders a refusal
}

// upgrade opens the feed of an authorized request, upgrades it and starts
// its session; release gives back the connection slot Gate took, once the
// session has ended or the request was refused.
func (s *Server) upgrade(w http.ResponseWriter, r *http.Request, cr connRequest, release func(), spec wsSpec) {
	handedOff := false // serveWS releases the gate once the session ends
	defer func() {
		if !handedOff {
			release()
		}
	}()
	if !websocket.IsWebSocketUpgrade(r) {
		spec.reject(w, herald.NewError(herald.InvalidRequest, "this endpoint needs a WebSocket upgrade"))
		return
	}
	feed, err := s.openFeed(r, cr)
	if err != nil {
		spec.reject(w, err)
		return
	}
	cw := &corkWriter{ResponseWriter: w}
	conn, err := s.up.Upgrade(cw, r, nil)
	if err != nil {
		_ = feed.Close() // the upgrader already answered
		return
	}
	ss := newSession(s.ctx, cr.dev, feed, spec.codec, s.log, s.metrics)
	c := newWSConn(ss, conn, cw.conn, wsOptions{
		writeTimeout:  s.opts.Edge.WriteTimeout,
		pingInterval:  s.opts.Edge.PingInterval,
		idleTimeout:   s.opts.Edge.IdleTimeout,
		maxFrameBytes: s.opts.Edge.MaxFrameBytes,
		ntfy:          spec.ntfy,
		poll:          spec.poll,
	})
	if !s.admit(ss) {
		ss.close(CloseShutdown)
		c.writeClose()
		_ = conn.Close()
		_ = feed.Close()
		return
	}
	handedOff = true
	go s.serveWS(ss, c, cr, spec.name, release)
}

// wsReadBuffer is the size of a WebSocket connection's read buffer.
const wsReadBuffer = 256

// serveWS runs an admitted WebSocket session to its end on a goroutine of
// its own, owned by the Server (admit put it in s.wg; Shutdown waits for
// it). The HTTP handler returns at once, so that net/http lets go of the
// hijacked connection's request and its 4 KiB response buffer, which it
// would otherwise keep for as long as the socket is open.
func (s *Server) serveWS(ss *session, c *wsConn, cr connRequest, name string, releaseGate func()) {
	defer releaseGate()
	defer s.release(ss)
	if s.overUserLimit(cr.dev.User) {
		ss.close(CloseTooMany) // the welcome is not sent; the close frame says 4009
	}
	s.serveSession(ss, c, name, func() { c.run(cr.expires) })
}

func (s *Server) userConns(user string) int {
	sh := s.shardOf(user)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.perUser[user]
}

// Connections returns the number of live sessions.
func (s *Server) Connections() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.sessions)
		sh.mu.Unlock()
	}
	return n
}

// Shutdown stops accepting sessions, closes every live one with 1001 and waits for them to end or for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closingMu.Lock()
	s.closing = true
	s.closingMu.Unlock()

	var all []*session
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for ss := range sh.sessions {
			all = append(all, ss)
		}
		sh.mu.Unlock()
	}
	// Closing only cancels a session; its pump sends the 1001 frame under
	// a short deadline and its feed writes the device's position.
	// Sessions close shutdownBatch at a time, so that the position writes
	// and the clients' reconnects elsewhere do not all land at once; when
	// ctx is about to end (a margin before its deadline, so that their
	// close frames and position writes still fit), the rest close at once.
	bctx := ctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		bctx, cancel = context.WithDeadline(ctx, dl.Add(-min(time.Second, time.Until(dl)/2)))
		defer cancel()
	}
	for i := 0; i < len(all); i += shutdownBatch {
		batch := all[i:min(i+shutdownBatch, len(all))]
		for _, ss := range batch {
			ss.close(CloseShutdown)
		}
		if !waitEnded(bctx, batch) {
			for _, ss := range all[i:] {
				ss.close(CloseShutdown)
			}
			break
		}
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.cancel()
	return err
}

// shutdownBatch is how many sessions Shutdown closes in parallel.
const shutdownBatch = 128

// waitEnded waits until every session's handler is done, false if ctx ends
// first.
func waitEnded(ctx context.Context, batch []*session) bool {
	for _, ss := range batch {
		select {
		case <-ss.ended:
		case <-ctx.Done():
			return false
		}
	}
	return true
}
