package test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/edge"
	"github.com/herald-push/herald/edge/token"
	"github.com/herald-push/herald/ingest"
	"github.com/herald-push/herald/streams"
	"github.com/herald-push/herald/streams/streamstest"
)

const testSecret = "test-secret-0123456789abcdef-0123456789"

// cluster is the NATS side of a test: one embedded server with the stream.
type cluster struct {
	srv *server.Server
	nc  *nats.Conn
	js  jetstream.JetStream
	cfg config.Config
}

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

// forEachEngineSerial runs f as one subtest per delivery engine, one after
// the other: for tests that check the goroutines of the whole process.
func forEachEngineSerial(t *testing.T, f func(t *testing.T, engine string)) {
	t.Helper()
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) { f(t, engine) })
	}
}

// newCluster starts a server with the stream and the devices bucket; its
// edges use engine (cfg.Edge.Delivery) unless mutate changes it.
func newCluster(t *testing.T, engine string, mutate func(*config.Config)) *cluster {
	t.Helper()
	return clusterOn(t, streamstest.RunServer(t), testConfig(engine, mutate))
}

// testConfig is the configuration of a test cluster.
func testConfig(engine string, mutate func(*config.Config)) config.Config {
	cfg := config.Default()
	cfg.Auth.JWTSecret = testSecret
	cfg.Edge.AckWait = 2 * time.Second
	cfg.Edge.Delivery = engine
	if mutate != nil {
		mutate(&cfg)
	}
	return cfg
}

// clusterOn applies the stream and the devices bucket on srv.
func clusterOn(t *testing.T, srv *server.Server, cfg config.Config) *cluster {
	t.Helper()
	nc := streamstest.Connect(t, srv.ClientURL())
	// Apply creates the devices bucket too, with the default device TTL.
	streamstest.Apply(t, nc, cfg.Stream)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Edge.DeviceTTL != config.Default().Edge.DeviceTTL {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := streams.ApplyDevices(ctx, js, streams.DevicesBucket(cfg.Stream, cfg.Edge.DeviceTTL)); err != nil {
			t.Fatal(err)
		}
	}
	return &cluster{srv: srv, nc: nc, js: js, cfg: cfg}
}

// newEngine builds the engine cfg.Edge.Delivery names. A live engine's loop
// runs until stop, which reports its error; stop runs once, and at the
// test's cleanup at the latest.
func newEngine(t testing.TB, js jetstream.JetStream, cfg config.Config) (edge.Engine, func(testing.TB)) {
	t.Helper()
	switch cfg.Edge.Delivery {
	case config.DeliveryConsumer:
		eng, err := edge.NewConsumerEngine(js, cfg.Stream, cfg.Edge, 5*time.Second, nil)
		if err != nil {
			t.Fatal(err)
		}
		return eng, func(testing.TB) {}
	case config.DeliveryLive:
		eng, err := edge.NewLiveEngine(js, cfg.Stream, cfg.Edge, 5*time.Second, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- eng.Run(ctx) }()
		var once sync.Once
		stop := func(t testing.TB) {
			once.Do(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("live engine: %v", err)
				}
			})
		}
		t.Cleanup(func() { stop(t) })
		return eng, stop
	}
	t.Fatalf("unknown engine %q", cfg.Edge.Delivery)
	return nil, nil
}

// buildEdge builds the engine cfg.Edge.Delivery names on nc and an edge
// server on it with its own registry, its handlers registered on mux. The
// caller serves mux and shuts the server down before stopEngine (see
// newEngine).
func buildEdge(t testing.TB, nc *nats.Conn, cfg config.Config) (es *edge.Server, reg *prometheus.Registry, mux *http.ServeMux, stopEngine func(testing.TB)) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	eng, stopEngine := newEngine(t, js, cfg)
	v, err := token.New(cfg.Auth)
	if err != nil {
		t.Fatal(err)
	}
	reg = prometheus.NewRegistry()
	opts := edge.Options{Edge: cfg.Edge, Engine: eng, Tokens: v, Registerer: reg, JetStream: js, Stream: cfg.Stream}
	if len(cfg.Ingest.ProducerKeys) > 0 {
		kr, err := ingest.NewKeyring(cfg.Ingest.ProducerKeys)
		if err != nil {
			t.Fatal(err)
		}
		opts.Producers = kr
	}
	es, err = edge.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	mux = http.NewServeMux()
	es.Register(mux)
	return es, reg, mux, stopEngine
}

// publish stores an envelope for user straight through JetStream and
// returns its seq.
func (c *cluster) publish(t *testing.T, user, body string) uint64 {
	t.Helper()
	e := streams.Envelope{ID: fmt.Sprintf("%s-%d", body, time.Now().UnixNano()), User: user, Time: time.Now().UTC(), Body: body}
	b, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return c.publishRaw(t, user, b)
}

func (c *cluster) publishRaw(t *testing.T, user string, payload []byte) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := c.js.Publish(ctx, streams.Subjects{Prefix: c.cfg.Stream.Prefix}.User(user), payload)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	return ack.Sequence
}

// edgeNode is one edge on its own HTTP listener.
type edgeNode struct {
	url string
	srv *edge.Server
	reg *prometheus.Registry
	hs  *httptest.Server
	// stop shuts the edge down in the order `herald edge` does on SIGTERM:
	// the server closes every session with 1001 (each feed writes its
	// position), the listener closes, then the engine's loop stops. It
	// reports the errors of the shutdown and of the engine, and runs once;
	// the cleanup runs it too, ignoring a shutdown error.
	stop func(t testing.TB)
}

func newEdge(t *testing.T, c *cluster) *edgeNode {
	t.Helper()
	return newEdgeOn(t, c.cfg, streamstest.Connect(t, c.srv.ClientURL()))
}

// newEdgeOn starts an edge whose engine uses nc.
func newEdgeOn(t testing.TB, cfg config.Config, nc *nats.Conn) *edgeNode {
	t.Helper()
	return newEdgeWith(t, cfg, nc, nil)
}

// newEdgeWith is newEdgeOn that lets more registers more routes on the
// edge's mux first (nil: none).
func newEdgeWith(t testing.TB, cfg config.Config, nc *nats.Conn, more func(*http.ServeMux, *prometheus.Registry)) *edgeNode {
	t.Helper()
	es, reg, mux, stopEngine := buildEdge(t, nc, cfg)
	if more != nil {
		more(mux, reg)
	}
	hs := httptest.NewServer(mux)
	var once sync.Once
	shutdown := func(t testing.TB, report bool) {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := es.Shutdown(ctx); err != nil && report {
				t.Errorf("edge shutdown: %v", err)
			}
			hs.Close()
			stopEngine(t)
		})
	}
	t.Cleanup(func() { shutdown(t, false) })
	return &edgeNode{url: hs.URL, srv: es, reg: reg, hs: hs, stop: func(t testing.TB) { shutdown(t, true) }}
}

func mint(t *testing.T, user, device string) string {
	t.Helper()
	tok, err := token.Mint(testSecret, user, device, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// frame is any server frame.
type frame = herald.ServerFrame

// wsClient is a device under test. Its reader goroutine stops when the
// connection closes; Close waits for it.
type wsClient struct {
	conn    *websocket.Conn
	frames  chan frame
	done    chan struct{}
	closeMu sync.Mutex
	closeCE *websocket.CloseError
}

func dial(t *testing.T, base, user, device, query string) *wsClient {
	t.Helper()
	c, resp, err := tryDial(base, mint(t, user, device), device, query)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s/%s: %v (status %d)", user, device, err, status)
	}
	t.Cleanup(c.Close)
	return c
}

// dialSynced dials like dial and reads the welcome and synced frames.
func dialSynced(t *testing.T, base, user, device, query string) *wsClient {
	t.Helper()
	c := dial(t, base, user, device, query)
	c.expect(t, "welcome")
	c.expect(t, "synced")
	return c
}

func wsURL(base, device, query string) string {
	u := strings.Replace(base, "http://", "ws://", 1) + "/v1/ws?device=" + url.QueryEscape(device)
	if query != "" {
		u += "&" + query
	}
	return u
}

func tryDial(base, tok, device, query string) (*wsClient, *http.Response, error) {
	h := http.Header{}
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	conn, resp, err := websocket.DefaultDialer.Dial(wsURL(base, device, query), h)
	if err != nil {
		return nil, resp, err
	}
	c := &wsClient{conn: conn, frames: make(chan frame, 10000), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		defer close(c.frames)
		for {
			_, b, err := conn.ReadMessage()
			if err != nil {
				if ce, ok := err.(*websocket.CloseError); ok {
					c.closeMu.Lock()
					c.closeCE = ce
					c.closeMu.Unlock()
				}
				return
			}
			f, err := herald.ParseServerFrame(b)
			if err != nil {
				f = frame{Type: "unparsable"}
				f.Body = string(b)
			}
			c.frames <- f
		}
	}()
	return c, resp, nil
}

func (c *wsClient) Close() {
	_ = c.conn.Close()
	<-c.done
}

// next returns the next frame or fails after d.
func (c *wsClient) next(t *testing.T, d time.Duration) frame {
	t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			t.Fatalf("connection closed while waiting for a frame (close: %v)", c.closeErr())
		}
		return f
	case <-time.After(d):
		t.Fatalf("no frame within %v", d)
	}
	return frame{}
}

// expect reads the next frame and checks its type.
func (c *wsClient) expect(t *testing.T, typ string) frame {
	t.Helper()
	f := c.next(t, 10*time.Second)
	if f.Type != typ {
		t.Fatalf("got %+v, want a %s frame", f, typ)
	}
	return f
}

// messages reads n message frames, skipping synced frames.
func (c *wsClient) messages(t *testing.T, n int) []frame {
	t.Helper()
	var out []frame
	for len(out) < n {
		f := c.next(t, 10*time.Second)
		switch f.Type {
		case "message":
			out = append(out, f)
		case "synced":
		default:
			t.Fatalf("unexpected frame %+v", f)
		}
	}
	return out
}

// quiet asserts that no message frame arrives within d and that the
// connection stays open.
func (c *wsClient) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				t.Fatalf("connection closed while it should stay quiet (close: %v)", c.closeErr())
			}
			if f.Type == "message" {
				t.Fatalf("unexpected message %+v", f)
			}
		case <-timer.C:
			return
		}
	}
}

func (c *wsClient) ack(t *testing.T, seq uint64) {
	t.Helper()
	if err := c.conn.WriteMessage(websocket.TextMessage, herald.AppendAck(nil, seq)); err != nil {
		t.Fatalf("ack: %v", err)
	}
}

func (c *wsClient) closeErr() *websocket.CloseError {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	return c.closeCE
}

// waitClosed waits for the server to close the socket and returns the code.
func (c *wsClient) waitClosed(t *testing.T, d time.Duration) int {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case _, ok := <-c.frames:
			if !ok {
				if ce := c.closeErr(); ce != nil {
					return ce.Code
				}
				return -1
			}
		case <-deadline:
			t.Fatalf("socket still open after %v", d)
		}
	}
}

func bodies(fs []frame) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Body)
	}
	return out
}

func seqs(fs []frame) []uint64 {
	var out []uint64
	for _, f := range fs {
		out = append(out, f.Seq)
	}
	return out
}

// waitAckFloor polls the device's position until it reaches seq. With the
// consumer engine acks are fire-and-forget publishes; with the live engine
// positions are written at most once a second per device (and on close). A
// test that reconnects right after an ack waits for the position to be
// stored.
func waitAckFloor(t *testing.T, c *cluster, user, device string, seq uint64) {
	t.Helper()
	if c.cfg.Edge.Delivery == config.DeliveryLive {
		streamstest.WaitFor(t, 10*time.Second, func() error {
			pos, err := c.position(user, device)
			if err != nil {
				return err
			}
			if pos < seq {
				return fmt.Errorf("position %d < %d", pos, seq)
			}
			return nil
		})
		return
	}
	streamstest.WaitFor(t, 10*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		cons, err := c.js.Consumer(ctx, c.cfg.Stream.Name, edge.ConsumerName(user, device))
		if err != nil {
			return err
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if info.AckFloor.Stream < seq {
			return fmt.Errorf("ack floor %d < %d", info.AckFloor.Stream, seq)
		}
		return nil
	})
}

// position reads a device's stored position (live engine).
func (c *cluster) position(user, device string) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	kv, err := c.js.KeyValue(ctx, streams.DevicesBucketName)
	if err != nil {
		return 0, err
	}
	e, err := kv.Get(ctx, streams.DeviceKey(user, device))
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(string(e.Value()), 10, 64)
}

// counterValue reads a counter of reg with the given label value (any
// label), 0 when absent.
func counterValue(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// waitUntil polls f until it is true, failing the test after d.
func waitUntil(t *testing.T, d time.Duration, f func() bool) {
	t.Helper()
	streamstest.WaitFor(t, d, func() error {
		if f() {
			return nil
		}
		return errors.New("not yet")
	})
}
