// Package node is the process side of herald's roles: the HTTP node that
// serves ingest and edge on one listener (with /healthz, /readyz, /metrics,
// the HTTP guard and the admin listener), the NATS client connection, and
// the in-process starter (StartEmbedded) that serve and bench share. It is
// cmd's wiring, kept out of package main so that the command files hold
// only flags, calls and printing.
//
// A Node's Run owns every goroutine it starts (HTTP servers, the engine's
// loop, readiness probes) and waits for them before it returns.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/edge"
	"github.com/herald-push/herald/edge/token"
	"github.com/herald-push/herald/ingest"
	"github.com/herald-push/herald/ingest/compat"
	"github.com/herald-push/herald/streams"
)

// Roles says which HTTP roles a node serves.
type Roles struct {
	Ingest bool
	Edge   bool
}

func (r Roles) String() string {
	switch {
	case r.Ingest && r.Edge:
		return "ingest+edge"
	case r.Ingest:
		return "ingest"
	case r.Edge:
		return "edge"
	}
	return "none"
}

// Preflight reports, naming the YAML path, what a role set cannot run
// without: producer keys for ingest; for edge a JWT secret or public keys.
// It runs before anything starts.
func Preflight(cfg *config.Config, r Roles) error {
	var errs []error
	if r.Ingest && len(cfg.Ingest.ProducerKeys) == 0 {
		errs = append(errs, errors.New("cmd: ingest.producer_keys is not set (HERALD_PRODUCER_KEYS): the ingest role needs at least one producer key"))
	}
	if r.Edge && cfg.Auth.JWTSecret == "" && len(cfg.Auth.PublicKeys) == 0 {
		errs = append(errs, errors.New("cmd: auth.jwt_secret (HERALD_JWT_SECRET) or auth.public_keys is not set: the edge role needs a key to verify client tokens"))
	}
	return errors.Join(errs...)
}

// Node is the HTTP side of one process: the roles it serves on one mux,
// plus /healthz, /readyz and /metrics. It does not own the NATS connection.
type Node struct {
	cfg     config.Config
	roles   Roles
	nc      *nats.Conn
	js      jetstream.JetStream
	edge    *edge.Server // nil without the edge role
	engine  edge.Engine  // its background loop runs while the edge serves; nil without the edge role
	handler http.Handler
	metrics http.Handler // /metrics, also on the admin listener
	log     *slog.Logger

	readyMu    sync.Mutex // guards lastReady and readyCall; held only to swap them
	lastReady  string
	readyCall  *readyCheck    // the check in flight, nil when none
	readyProbe sync.WaitGroup // the goroutines of readyCheck; run waits for them
}

// readyzTimeout bounds the answer of /readyz. A server that stopped reading
// (hung, not dead) can hold the client connection's lock while a write
// blocks (up to nats.timeout, the flusher timeout), so the check runs on
// its own goroutine and a probe gets 503 when it does not finish in time.
const readyzTimeout = 2 * time.Second

// readyCheck is one readiness check shared by the probes that arrive while
// it runs, so that a stuck connection holds at most one goroutine.
type readyCheck struct {
	done chan struct{} // closed when nats and err are set
	nats string
	err  error
}

// New builds the roles over nc. reg receives every metric.
func New(cfg config.Config, nc *nats.Conn, roles Roles, log *slog.Logger, reg *prometheus.Registry) (*Node, error) {
	if err := Preflight(&cfg, roles); err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("cmd: jetstream: %w", err)
	}
	n := &Node{cfg: cfg, roles: roles, nc: nc, js: js, log: log}
	var verifier *token.Verifier
	if cfg.Auth.JWTSecret != "" || len(cfg.Auth.PublicKeys) > 0 {
		if verifier, err = token.New(cfg.Auth); err != nil {
			return nil, fmt.Errorf("cmd: auth: %w", err)
		}
	}
	mux := http.NewServeMux()
	// The endpoints for ntfy's and gotify's tools take only what Herald's
	// own routes leave (dispatch).
	compatMux := http.NewServeMux()
	if roles.Ingest {
		ijs, err := jetstream.New(nc, ingest.JetStreamOpts(cfg.Ingest)...)
		if err != nil {
			return nil, fmt.Errorf("cmd: jetstream: %w", err)
		}
		opts := ingest.Options{
			Ingest:       cfg.Ingest,
			Stream:       cfg.Stream,
			MaxBodyBytes: cfg.HTTP.MaxBodyBytes,
			Logger:       log,
			Registerer:   reg,
		}
		if verifier != nil { // a nil *Verifier in the interface would not be nil
			opts.Tokens = verifier
		}
		h, err := ingest.New(opts, ijs)
		if err != nil {
			return nil, fmt.Errorf("cmd: ingest: %w", err)
		}
		h.Register(mux)
		c, err := compat.New(h, compat.Options{Config: cfg.Compat, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("cmd: %w", err)
		}
		c.Register(compatMux)
	}
	if roles.Edge {
		eng, err := newEngine(&cfg, js, log)
		if err != nil {
			return nil, err
		}
		eopts := edge.Options{
			Edge: cfg.Edge, Engine: eng, Tokens: verifier,
			JetStream: js, Stream: cfg.Stream, Timeout: cfg.NATS.Timeout,
			Logger: log, Registerer: reg,
		}
		// Producers read device status from the edge with their key.
		if len(cfg.Ingest.ProducerKeys) > 0 {
			kr, err := ingest.NewKeyring(cfg.Ingest.ProducerKeys)
			if err != nil {
				return nil, fmt.Errorf("cmd: ingest.producer_keys: %w", err)
			}
			eopts.Producers = kr
		}
		if cfg.Compat.NTFY.Enabled {
			eopts.Ntfy = &edge.NtfyOptions{
				Store:    streams.NewDirectGet(js, cfg.Stream.Name),
				Subjects: streams.Subjects{Prefix: cfg.Stream.Prefix},
				Timeout:  cfg.NATS.Timeout,
			}
		}
		es, err := edge.New(eopts)
		if err != nil {
			return nil, fmt.Errorf("cmd: edge: %w", err)
		}
		es.Register(mux)
		es.RegisterNtfy(compatMux)
		n.edge = es
		n.engine = eng
	}
	if err := registerNATSMetrics(reg, nc); err != nil {
		return nil, err
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		herald.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", n.readyz)
	n.metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	mux.Handle("GET /metrics", n.metrics)
	n.handler = jsonNotFound(mux, compatMux, log)
	return n, nil
}

// newEngine builds the delivery engine edge.delivery names.
func newEngine(cfg *config.Config, js jetstream.JetStream, log *slog.Logger) (edge.Engine, error) {
	switch cfg.Edge.Delivery {
	case config.DeliveryLive:
		eng, err := edge.NewLiveEngine(js, cfg.Stream, cfg.Edge, cfg.NATS.Timeout, log)
		if err != nil {
			return nil, fmt.Errorf("cmd: edge: %w", err)
		}
		return eng, nil
	case config.DeliveryConsumer:
		eng, err := edge.NewConsumerEngine(js, cfg.Stream, cfg.Edge, cfg.NATS.Timeout, log)
		if err != nil {
			return nil, fmt.Errorf("cmd: edge: %w", err)
		}
		return eng, nil
	}
	return nil, fmt.Errorf("cmd: edge.delivery: unknown engine %q", cfg.Edge.Delivery)
}

// NewRegistry returns the metrics registry of a process: Go runtime and
// process collectors plus herald_build_info naming version and role.
func NewRegistry(role, version string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "herald_build_info",
		Help:        "Always 1; labels name the version and the role of this process.",
		ConstLabels: prometheus.Labels{"version": version, "role": role},
	})
	info.Set(1)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), info)
	return reg
}

// readyStatus is the body of /readyz.
type readyStatus struct {
	Status string `json:"status"` // "ok" or "unavailable"
	NATS   string `json:"nats"`   // the connection status
	Stream string `json:"stream"` // the stream name
	Error  string `json:"error,omitempty"`
}

// readyz answers 200 when NATS is connected and the stream exists, else 503,
// within readyzTimeout.
func (n *Node) readyz(w http.ResponseWriter, r *http.Request) {
	st := readyStatus{Status: "ok", Stream: n.cfg.Stream.Name}
	var err error
	st.NATS, err = n.boundedReady(r.Context())
	if err != nil {
		st.Status, st.Error = "unavailable", err.Error()
	}
	code := http.StatusOK
	if st.Status != "ok" {
		code = http.StatusServiceUnavailable
	}
	n.NoteReady(st.Error)
	herald.WriteJSON(w, code, st)
}

// boundedReady runs CheckReady (or joins the one running) and returns the
// connection status and its result, or an error once readyzTimeout passed.
func (n *Node) boundedReady(ctx context.Context) (natsStatus string, err error) {
	n.readyMu.Lock()
	c := n.readyCall
	if c == nil {
		c = &readyCheck{done: make(chan struct{})}
		n.readyCall = c
		n.readyProbe.Add(1)
		go func() {
			defer n.readyProbe.Done()
			cctx, cancel := context.WithTimeout(context.Background(), readyzTimeout)
			defer cancel()
			c.nats = n.nc.Status().String()
			c.err = n.CheckReady(cctx)
			n.readyMu.Lock()
			n.readyCall = nil
			n.readyMu.Unlock()
			close(c.done)
		}()
	}
	n.readyMu.Unlock()
	t := time.NewTimer(readyzTimeout)
	defer t.Stop()
	select {
	case <-c.done:
		return c.nats, c.err
	case <-t.C:
		return "UNKNOWN", fmt.Errorf("NATS did not answer within %v", readyzTimeout)
	case <-ctx.Done():
		return "UNKNOWN", fmt.Errorf("readyz: %w", ctx.Err())
	}
}

// Edge is the node's edge server; nil without the edge role.
func (n *Node) Edge() *edge.Server { return n.edge }

// CheckReady is the check of /readyz, bounded by nats.timeout.
func (n *Node) CheckReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.NATS.Timeout)
	defer cancel()
	return streams.Ready(ctx, n.js, n.cfg.Stream.Name)
}

// NoteReady logs each change of readiness once, with the hint to apply the
// stream when it is missing.
func (n *Node) NoteReady(problem string) {
	n.readyMu.Lock()
	changed := n.lastReady != problem
	n.lastReady = problem
	n.readyMu.Unlock()
	if !changed {
		return
	}
	if problem == "" {
		n.log.Info("ready", "stream", n.cfg.Stream.Name)
		return
	}
	n.log.Warn("not ready", "err", problem, "hint", "create the stream with `herald streams apply --nats-url …` if it is missing")
}

// Run serves on ln until ctx ends, then stops accepting and closes every
// WebSocket with 1001 in parallel, bounded by edge.shutdown_timeout, and
// stops the engine's loop once every feed has closed (so the last device
// positions are written). The caller then drains NATS.
func (n *Node) Run(ctx context.Context, ln net.Listener) error {
	ln, err := n.wrapTLS(ln)
	if err != nil {
		return err
	}
	admin, err := n.listenAdmin()
	if err != nil {
		return err
	}
	if n.engine != nil {
		engCtx, stopEngine := context.WithCancel(context.Background())
		engDone := make(chan error, 1)
		go func() { engDone <- n.engine.Run(engCtx) }()
		defer func() {
			stopEngine()
			if err := <-engDone; err != nil {
				n.log.Warn("delivery engine stopped with an error", "err", err)
			}
		}()
	}
	hs := newHTTPServer(n.cfg.HTTP, n.handler, n.log)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("cmd: http serve: %w", err)
		}
		return nil
	})
	if admin != nil {
		g.Go(admin.serve)
	}
	g.Go(func() error {
		<-gctx.Done()
		if admin != nil {
			admin.close()
		}
		n.shutdown(hs)
		return nil
	})
	err = g.Wait()
	n.readyProbe.Wait()
	return err
}

func (n *Node) shutdown(hs *http.Server) {
	n.log.Info("shutting down", "timeout", n.cfg.Edge.ShutdownTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.Edge.ShutdownTimeout)
	defer cancel()
	var g errgroup.Group
	g.Go(func() error {
		if err := hs.Shutdown(ctx); err != nil {
			n.log.Warn("http shutdown incomplete; closing", "err", err)
			_ = hs.Close()
		}
		return nil
	})
	if n.edge != nil {
		g.Go(func() error {
			if err := n.edge.Shutdown(ctx); err != nil {
				n.log.Warn("edge shutdown incomplete", "err", err, "connections", n.edge.Connections())
			}
			return nil
		})
	}
	_ = g.Wait()
}

// dispatch returns the mux that serves r: mux, Herald's own routes,
// unless none of them takes r's path and one of compat's does (the
// endpoints of ntfy's and gotify's tools, which are as general as
// /<topic>). A path under /v1/ always stays Herald's, so that compat never
// changes Herald's answers there, 404 and 405 included.
func dispatch(mux, compat *http.ServeMux, r *http.Request) *http.ServeMux {
	if _, pattern := mux.Handler(r); pattern != "" || compat == nil {
		return mux
	}
	if p := r.URL.Path; p == "/"+herald.NtfyHeraldPrefix || strings.HasPrefix(p, "/"+herald.NtfyHeraldPrefix+"/") {
		return mux
	}
	if _, pattern := compat.Handler(r); pattern != "" {
		return compat
	}
	return mux
}

// jsonNotFound serves a request from own or compat (dispatch), renders the
// muxes' own 404 and 405 answers as JSON errors, and answers a path the mux
// would redirect to its cleaned form ("." or ".." segments, "//") with a
// JSON 404 instead: API clients do not follow redirects, and
// /v1/users/alice/../bob/messages must not reach bob.
func jsonNotFound(own, compat *http.ServeMux, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !canonicalPath(r) {
			herald.WriteError(w, log, herald.NewError(herald.NotFound, "no such endpoint: %s %s (paths with . or .. segments or // are not served)", r.Method, r.URL.EscapedPath()))
			return
		}
		mux := dispatch(own, compat, r)
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(&errorRewriter{w: w, r: r, log: log}, r)
	})
}

// errorRewriter replaces a plain-text 404 or 405 with the JSON error; any
// other answer passes through.
type errorRewriter struct {
	w       http.ResponseWriter
	r       *http.Request
	log     *slog.Logger
	rewrote bool
}

func (e *errorRewriter) Header() http.Header { return e.w.Header() }

func (e *errorRewriter) WriteHeader(code int) {
	var err *herald.Error
	switch code {
	case http.StatusNotFound:
		err = herald.NewError(herald.NotFound, "no such endpoint: %s %s", e.r.Method, e.r.URL.Path)
	case http.StatusMethodNotAllowed:
		err = herald.NewError(herald.MethodNotAllowed, "method %s is not allowed on %s", e.r.Method, e.r.URL.Path)
	default:
		e.w.WriteHeader(code)
		return
	}
	e.rewrote = true
	e.w.Header().Del("Content-Length")
	herald.WriteError(e.w, e.log, err)
}

func (e *errorRewriter) Write(b []byte) (int, error) {
	if e.rewrote {
		return len(b), nil // drop the plain-text body
	}
	return e.w.Write(b)
}

// BaseURL is the URL a local client reaches a listener at: an unspecified
// address (":8080", "0.0.0.0:8080") becomes 127.0.0.1.
func BaseURL(scheme string, addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return scheme + "://" + addr.String()
	}
	host := "127.0.0.1"
	if !tcp.IP.IsUnspecified() && tcp.IP != nil {
		host = tcp.IP.String()
	}
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(tcp.Port))
}

// Version is base (the version set at build time) plus, when the binary was
// built from a repository, its VCS revision (and "+dirty" for a modified
// tree).
func Version(base string) string {
	v := base
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		v += " (" + rev + dirty + ")"
	}
	return v
}
