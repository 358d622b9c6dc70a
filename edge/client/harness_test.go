package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/edge"
	"github.com/herald-push/herald/edge/token"
	"github.com/herald-push/herald/streams"
	"github.com/herald-push/herald/streams/streamstest"
)

const testSecret = "client-test-secret-0123456789abcdef"

// engines are the delivery engines every end-to-end test runs against.
var engines = []string{config.DeliveryConsumer, config.DeliveryLive}

// forEachEngine runs f as one parallel subtest per delivery engine.
func forEachEngine(t *testing.T, f func(t *testing.T, engine string)) {
	t.Helper()
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			f(t, engine)
		})
	}
}

// harness is an embedded JetStream server with the stream, and the edges
// started on it. It is built without a testing.TB, so that the Examples
// can use it; newHarness wraps it for tests.
type harness struct {
	cfg config.Config
	dir string
	srv *server.Server
	nc  *nats.Conn
	js  jetstream.JetStream

	mu    sync.Mutex
	edges []*edgeNode
}

func startHarness(engine string, mutate func(*config.Config)) (_ *harness, err error) {
	cfg := config.Default()
	cfg.Auth.JWTSecret = testSecret
	cfg.Edge.Delivery = engine
	if mutate != nil {
		mutate(&cfg)
	}
	dir, err := os.MkdirTemp("", "herald-client-test-")
	if err != nil {
		return nil, err
	}
	h := &harness{cfg: cfg, dir: dir}
	defer func() {
		if err != nil {
			h.close()
		}
	}()
	if h.srv, err = server.NewServer(streamstest.Options(dir)); err != nil {
		return nil, err
	}
	h.srv.Start()
	if !h.srv.ReadyForConnections(10 * time.Second) {
		return nil, errors.New("harness: NATS not ready within 10s")
	}
	if h.nc, err = nats.Connect(h.srv.ClientURL()); err != nil {
		return nil, err
	}
	if h.js, err = jetstream.New(h.nc); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err = streams.ApplyAll(ctx, h.js, cfg.Stream, cfg.Edge.DeviceTTL); err != nil {
		return nil, err
	}
	return h, nil
}

// newHarness starts a harness whose edges use engine, closed at cleanup.
func newHarness(t *testing.T, engine string, mutate func(*config.Config)) *harness {
	t.Helper()
	h, err := startHarness(engine, mutate)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.close)
	return h
}

// close stops the edges, then NATS, and removes the store.
func (h *harness) close() {
	h.mu.Lock()
	edges := h.edges
	h.mu.Unlock()
	for _, e := range edges {
		_ = e.stop()
	}
	if h.nc != nil {
		h.nc.Close()
	}
	if h.srv != nil {
		h.srv.Shutdown()
		h.srv.WaitForShutdown()
	}
	_ = os.RemoveAll(h.dir)
}

// edgeNode is one edge (engine, server, HTTP listener) of a harness.
type edgeNode struct {
	addr string
	url  string // http://addr
	es   *edge.Server
	reg  *prometheus.Registry
	stop func() error // shuts it down as `herald edge` does on SIGTERM; once
}

// startEdge starts an edge listening on addr ("127.0.0.1:0" for a new
// port, or the addr of a stopped edge to reopen it).
func (h *harness) startEdge(addr string) (_ *edgeNode, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(h.srv.ClientURL())
	if err != nil {
		ln.Close()
		return nil, err
	}
	var stops []func() error // run in reverse order
	stopAll := func() error {
		var errs []error
		for i := len(stops) - 1; i >= 0; i-- {
			errs = append(errs, stops[i]())
		}
		return errors.Join(errs...)
	}
	stops = append(stops, func() error { nc.Close(); return nil }, func() error { _ = ln.Close(); return nil })
	defer func() {
		if err != nil {
			_ = stopAll()
		}
	}()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	var eng edge.Engine
	switch h.cfg.Edge.Delivery {
	case config.DeliveryConsumer:
		if eng, err = edge.NewConsumerEngine(js, h.cfg.Stream, h.cfg.Edge, 5*time.Second, nil); err != nil {
			return nil, err
		}
	case config.DeliveryLive:
		live, err := edge.NewLiveEngine(js, h.cfg.Stream, h.cfg.Edge, 5*time.Second, nil)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- live.Run(ctx) }()
		stops = append(stops, func() error { cancel(); return <-done })
		eng = live
	default:
		return nil, fmt.Errorf("harness: unknown engine %q", h.cfg.Edge.Delivery)
	}
	v, err := token.New(h.cfg.Auth)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	es, err := edge.New(edge.Options{Edge: h.cfg.Edge, Engine: eng, Tokens: v, Registerer: reg, JetStream: js, Stream: h.cfg.Stream})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	es.Register(mux)
	hs := &http.Server{Handler: mux}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = hs.Serve(ln)
	}()
	stops = append(stops, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := es.Shutdown(ctx)
		_ = hs.Close()
		<-served
		return err
	})
	var once sync.Once
	var stopErr error
	e := &edgeNode{addr: ln.Addr().String(), url: "http://" + ln.Addr().String(), es: es, reg: reg}
	e.stop = func() error {
		once.Do(func() { stopErr = stopAll() })
		return stopErr
	}
	h.mu.Lock()
	h.edges = append(h.edges, e)
	h.mu.Unlock()
	return e, nil
}

// newEdge starts an edge on a new port, failing the test on error.
func (h *harness) newEdge(t *testing.T) *edgeNode {
	t.Helper()
	e, err := h.startEdge("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// publish stores a message for user straight through JetStream and
// returns its seq.
func (h *harness) publish(user, body string) (uint64, error) {
	e := herald.Envelope{ID: fmt.Sprintf("%s-%d", body, time.Now().UnixNano()), User: user, Time: time.Now().UTC(), Body: body}
	b, err := e.Encode()
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := h.js.Publish(ctx, streams.Subjects{Prefix: h.cfg.Stream.Prefix}.User(user), b)
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

func (h *harness) mustPublish(t *testing.T, user, body string) uint64 {
	t.Helper()
	seq, err := h.publish(user, body)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	return seq
}

// tokens returns a token source minting hour-long tokens for user and
// device.
func tokens(user, device string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return token.Mint(testSecret, user, device, time.Hour) }
}

// acks is the edge's count of acks received.
func (e *edgeNode) acks(t *testing.T) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "herald_edge_acks_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// downServer accepts TCP connections and closes them at once: an edge
// address that is down.
func downServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })
	return "ws://" + ln.Addr().String()
}
