package test

// Failure tests: a 3-node NATS cluster in this process (R3 stream and R3
// devices bucket), two ingests and two edges on real sockets, producers
// publishing over HTTP and devices connected over WebSocket throughout. Each
// test breaks one part while the load runs and then checks, for every
// message that got a 2xx, that every device of its user received it, with
// seqs strictly increasing on each connection (duplicates only across
// reconnects). The counts are logged.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
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

	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/edge"
	"github.com/herald-push/herald/ingest"
	"github.com/herald-push/herald/streams"
	"github.com/herald-push/herald/streams/streamstest"
)

const failureProducerKey = "failure-test-producer-key-0123456789"

// TestFailureEdgeKilled kills one edge (listener, sockets and NATS
// connection, no close frames) mid-stream; its devices reconnect to the
// other edge with since = the last seq they saw.
func TestFailureEdgeKilled(t *testing.T) {
	forEachEngineSerial(t, func(t *testing.T, engine string) {
		runFailure(t, engine, func(t *testing.T, r *rig) {
			r.waitDelivered(t, 0, 20)
			r.edges[0].kill()
			t.Logf("edge 0 killed at %d acked", r.prod.total())
			// 60 s: a reconnect opens the device's feed on the other edge,
			// several JetStream calls that a loaded CI machine has made
			// take over 20 s.
			killed := time.Now()
			defer func() { t.Logf("devices reconnected %v after the kill", time.Since(killed).Round(time.Millisecond)) }()
			streamstest.WaitFor(t, 60*time.Second, func() error {
				for _, d := range r.devices {
					if d.prefer == 0 && d.connections() < 2 {
						return fmt.Errorf("%s/%s has not reconnected", d.user, d.name)
					}
				}
				return nil
			})
		})
	})
}

// TestFailureNATSServers, under load: stops a server that is not the stream
// leader and brings it back; stops the stream leader (a new one is elected)
// and brings it back; then stops the leader and one more server, so that the
// cluster loses its quorum and writes fail, and brings both back.
//
// The consumer engine is skipped by default. Its pull responses lost in
// transit while servers restart used to be acknowledged by the device's
// next cumulative ack (a device received seq 51, then 55, never 54); the
// feed now refills them from the store when the consumer's delivery
// sequence skips. But after the quorum loss step its consumers can stop
// delivering for longer than this test waits, so docs/operations.md
// section says to run clusters with the live engine;
// -consumer-cluster-failures runs it.
func TestFailureNATSServers(t *testing.T) {
	forEachEngineSerial(t, func(t *testing.T, engine string) {
		if engine == config.DeliveryConsumer && !*consumerClusterFailures {
			t.Skip("consumer engine can stall after a quorum loss of an R3 stream; -consumer-cluster-failures runs it")
		}
		runFailure(t, engine, func(t *testing.T, r *rig) { natsFailures(t, r) })
	})
}

var consumerClusterFailures = flag.Bool("consumer-cluster-failures", false, "run TestFailureNATSServers against the consumer engine too (it can stall after a quorum loss)")

func natsFailures(t *testing.T, r *rig) {
	leader := r.streamLeader(t)
	follower := -1
	for i, s := range r.servers {
		if s.Name() != leader {
			follower = i
			break
		}
	}
	r.stopServer(t, follower)
	r.waitAcked(t, 30)
	r.restartServer(t, follower)
	r.waitCurrent(t)
	r.waitAcked(t, 30)

	leader = r.streamLeader(t)
	li := slices.IndexFunc(r.servers, func(s *server.Server) bool { return s.Name() == leader })
	r.stopServer(t, li)
	streamstest.WaitFor(t, 30*time.Second, func() error {
		l, err := r.leaderOf(r.cfg.Stream.Name)
		if err != nil {
			return err
		}
		if l == "" || l == leader {
			return fmt.Errorf("stream leader is still %q", l)
		}
		return nil
	})
	t.Logf("%v: stream leader moved from %s to %s", r.since(), leader, r.streamLeader(t))
	r.waitAcked(t, 30)
	r.restartServer(t, li)
	r.waitCurrent(t)
	r.waitAcked(t, 30)

	// Two of three down: no quorum, so no write may be acknowledged
	// until they are back; producers see 503s and keep retrying.
	leader = r.streamLeader(t)
	li = slices.IndexFunc(r.servers, func(s *server.Server) bool { return s.Name() == leader })
	other := (li + 1) % len(r.servers)
	r.stopServer(t, other)
	r.stopServer(t, li)
	retries := r.prod.failures()
	streamstest.WaitFor(t, 20*time.Second, func() error {
		if n := r.prod.failures() - retries; n < 10 {
			return fmt.Errorf("%d failed attempts without quorum", n)
		}
		return nil
	})
	r.restartServer(t, li)
	r.restartServer(t, other)
	r.waitCurrent(t)
	t.Logf("%v: all replicas current again", r.since())
}

// TestFailureIngestRestart restarts each ingest in turn (abruptly: in-flight
// requests lose their answer) on the same address; producers retry every
// failed or unanswered request with the same Idempotency-Key.
func TestFailureIngestRestart(t *testing.T) {
	forEachEngineSerial(t, func(t *testing.T, engine string) {
		runFailure(t, engine, func(t *testing.T, r *rig) {
			for i := range r.ingests {
				r.ingests[i].stop()
				r.waitAcked(t, 30)
				r.ingests[i].start(t)
				r.waitAcked(t, 30)
			}
		})
	})
}

// runFailure builds the rig, starts devices and producers, runs disrupt,
// checks that publishing still works afterwards, stops the producers and
// checks every acked message against what the devices received.
func runFailure(t *testing.T, engine string, disrupt func(t *testing.T, r *rig)) {
	checkNoHeraldLeaks(t)
	start := time.Now()
	r := newRig(t, engine)
	r.startDevices(t, []string{"alice", "bob"}, []string{"phone", "laptop"})
	r.startProducers(t)
	r.waitAcked(t, 40)

	disrupt(t, r)

	r.waitAcked(t, 40) // publishing works after the failure
	r.stopProducers()
	acked := r.prod.snapshot()
	deadline := time.Now().Add(30 * time.Second)
	for !r.allDelivered(acked) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if r.allDelivered(acked) {
		t.Logf("%v: all acked messages delivered", r.since())
	}
	r.stopDevices()
	r.check(t, acked)
	t.Logf("took %v", time.Since(start).Round(time.Millisecond))
}

// allDelivered reports whether every device has every acked message of its
// user.
func (r *rig) allDelivered(acked map[string][]acked) bool {
	for _, d := range r.devices {
		if len(d.missing(acked[d.user])) > 0 {
			return false
		}
	}
	return true
}

// rig is the system under test.
type rig struct {
	cfg     config.Config
	url     string // the cluster's client URL list
	servers []*server.Server
	opts    []*server.Options
	c       *cluster // the harness view: a client on the cluster URL
	ingests []*ingestProc
	edges   []*edgeProc
	devices []*device
	prod    *producers

	start    time.Time
	stopDev  context.CancelFunc
	devWG    sync.WaitGroup
	stopProd context.CancelFunc
	prodWG   sync.WaitGroup
}

func newRig(t *testing.T, engine string) *rig {
	t.Helper()
	servers, opts := streamstest.StartCluster(t, 3)
	url := streamstest.ClusterURL(servers)
	cfg := testConfig(engine, func(cfg *config.Config) {
		cfg.NATS.URL = url
		cfg.NATS.Timeout = 2 * time.Second
		cfg.Stream.Replicas = 3
		cfg.Ingest.ProducerKeys = []string{failureProducerKey}
		cfg.Ingest.PublishTimeout = 2 * time.Second
		// No resend on the same connection during the test: a lost ack
		// must not look like a reordering.
		cfg.Edge.AckWait = time.Minute
		// Every device dials from 127.0.0.1 and, while an edge is down,
		// retries every 50 ms: the per-IP connect rate is a proxy's job.
		cfg.Edge.IPConnectRate = 0
	})
	nc := streamstest.Connect(t, url)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// A young cluster may not know all its peers yet: retry until the R3
	// stream and bucket exist.
	streamstest.WaitFor(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _, err := streams.ApplyAll(ctx, js, cfg.Stream, cfg.Edge.DeviceTTL)
		return err
	})
	r := &rig{cfg: cfg, url: url, servers: servers, opts: opts, c: &cluster{srv: servers[0], nc: nc, js: js, cfg: cfg}, prod: newProducers(), start: time.Now()}
	r.waitCurrent(t)
	for range 2 {
		r.ingests = append(r.ingests, r.newIngest(t))
	}
	for range 2 {
		r.edges = append(r.edges, r.newEdge(t))
	}
	return r
}

// natsConn connects a node to the cluster as `herald` roles do (URL list,
// reconnect forever every second with jitter), closed at cleanup.
func (r *rig) natsConn(t *testing.T, name string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(r.url, nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second), nats.ReconnectJitter(500*time.Millisecond, 0), nats.RetryOnFailedConnect(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// streams whose replicas waitCurrent checks: the messages and the device
// positions.
func (r *rig) streamNames() []string {
	return []string{r.cfg.Stream.Name, "KV_" + streams.DevicesBucketName}
}

// leaderOf returns the server name of stream name's leader.
func (r *rig) leaderOf(name string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := r.c.js.Stream(ctx, name)
	if err != nil {
		return "", err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return "", err
	}
	if info.Cluster == nil {
		return "", errors.New("no cluster info")
	}
	return info.Cluster.Leader, nil
}

func (r *rig) streamLeader(t *testing.T) string {
	t.Helper()
	var leader string
	streamstest.WaitFor(t, 20*time.Second, func() error {
		var err error
		leader, err = r.leaderOf(r.cfg.Stream.Name)
		if err == nil && leader == "" {
			err = errors.New("no stream leader")
		}
		return err
	})
	return leader
}

// waitCurrent waits until the stream and the bucket have a leader and two
// current, online replicas.
func (r *rig) waitCurrent(t *testing.T) {
	t.Helper()
	streamstest.WaitFor(t, 30*time.Second, func() error {
		for _, name := range r.streamNames() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			s, err := r.c.js.Stream(ctx, name)
			var info *jetstream.StreamInfo
			if err == nil {
				info, err = s.Info(ctx)
			}
			cancel()
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			c := info.Cluster
			if c == nil || c.Leader == "" || len(c.Replicas) != 2 {
				return fmt.Errorf("%s: cluster %+v", name, c)
			}
			for _, p := range c.Replicas {
				if !p.Current || p.Offline {
					return fmt.Errorf("%s: replica %s current=%v offline=%v", name, p.Name, p.Current, p.Offline)
				}
			}
		}
		return nil
	})
}

// since is the time since the rig started, for the log.
func (r *rig) since() time.Duration { return time.Since(r.start).Round(time.Millisecond) }

func (r *rig) stopServer(t *testing.T, i int) {
	t.Helper()
	t.Logf("%v: stopping %s at %d acked", r.since(), r.servers[i].Name(), r.prod.total())
	r.servers[i].Shutdown()
	r.servers[i].WaitForShutdown()
}

func (r *rig) restartServer(t *testing.T, i int) {
	t.Helper()
	r.servers[i] = streamstest.Restart(t, r.servers[i], r.opts[i])
	t.Logf("%v: restarted %s at %d acked", r.since(), r.servers[i].Name(), r.prod.total())
}

// waitAcked waits until n more messages have been acked.
func (r *rig) waitAcked(t *testing.T, n int) {
	t.Helper()
	want := r.prod.total() + n
	streamstest.WaitFor(t, 30*time.Second, func() error {
		if err := r.prod.failed(); err != nil {
			t.Fatalf("producer: %v", err)
		}
		if got := r.prod.total(); got < want {
			return fmt.Errorf("%d acked, want %d", got, want)
		}
		return nil
	})
}

// waitDelivered waits until every device preferring edge i has received n
// messages.
func (r *rig) waitDelivered(t *testing.T, edgeIndex, n int) {
	t.Helper()
	streamstest.WaitFor(t, 30*time.Second, func() error {
		for _, d := range r.devices {
			if d.prefer == edgeIndex && d.received() < n {
				return fmt.Errorf("%s/%s received %d", d.user, d.name, d.received())
			}
		}
		return nil
	})
}

// ingestProc is one ingest node: its own NATS connection and HTTP server
// on an address that stays the same across restarts.
type ingestProc struct {
	r    *rig
	addr string

	mu   sync.Mutex // guards hs, nc and done
	hs   *http.Server
	nc   *nats.Conn
	done chan struct{} // closed when Serve returned
}

func (r *rig) newIngest(t *testing.T) *ingestProc {
	t.Helper()
	p := &ingestProc{r: r, addr: "127.0.0.1:0"}
	p.start(t)
	t.Cleanup(p.stop)
	return p
}

// start listens on p.addr (the first start picks a port) and serves.
func (p *ingestProc) start(t *testing.T) {
	t.Helper()
	nc := p.r.natsConn(t, "ingest")
	js, err := jetstream.New(nc, ingest.JetStreamOpts(p.r.cfg.Ingest)...)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ingest.New(ingest.Options{
		Ingest:       p.r.cfg.Ingest,
		Stream:       p.r.cfg.Stream,
		MaxBodyBytes: p.r.cfg.HTTP.MaxBodyBytes,
		Registerer:   prometheus.NewRegistry(),
	}, js)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Register(mux)
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("ingest listen %s: %v", p.addr, err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hs.Serve(ln)
	}()
	p.mu.Lock()
	p.addr, p.hs, p.nc, p.done = ln.Addr().String(), hs, nc, done
	p.mu.Unlock()
}

// stop closes the listener and every connection at once (in-flight
// requests get no answer) and the NATS connection.
func (p *ingestProc) stop() {
	p.mu.Lock()
	hs, nc, done := p.hs, p.nc, p.done
	p.hs = nil
	p.mu.Unlock()
	if hs == nil {
		return
	}
	_ = hs.Close()
	<-done
	nc.Close()
}

func (p *ingestProc) url() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return "http://" + p.addr
}

// edgeProc is one edge whose sockets can be cut without close frames.
type edgeProc struct {
	url  string
	ln   *trackingListener
	hs   *http.Server
	es   *edge.Server
	nc   *nats.Conn
	done chan struct{}
}

func (r *rig) newEdge(t *testing.T) *edgeProc {
	t.Helper()
	nc := r.natsConn(t, "edge")
	es, _, mux, stopEngine := buildEdge(t, nc, r.cfg)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &trackingListener{Listener: l}
	e := &edgeProc{url: "http://" + l.Addr().String(), ln: ln, hs: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, es: es, nc: nc, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		_ = e.hs.Serve(ln)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = es.Shutdown(ctx)
		_ = e.hs.Close()
		<-e.done
		stopEngine(t)
	})
	return e
}

// kill stops the edge the way a crash does: the sockets and the NATS
// connection close without a goodbye, and no position is written.
func (e *edgeProc) kill() {
	_ = e.ln.Close()
	e.ln.closeAll()
	e.nc.Close()
}

// trackingListener remembers accepted connections, so that kill can cut
// the hijacked WebSocket ones too.
type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

func (l *trackingListener) closeAll() {
	l.mu.Lock()
	conns := l.conns
	l.conns = nil
	l.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// producers publish over HTTP, one goroutine per user, each message with
// its own Idempotency-Key, retried with the same key on any transport
// error or 5xx, alternating between the ingests.
type producers struct {
	mu      sync.Mutex
	acked   map[string][]acked // user → acked messages in ack order
	retries int                // failed attempts
	err     error              // a 4xx, which stops the test
}

type acked struct {
	seq uint64
	key string
}

func newProducers() *producers { return &producers{acked: map[string][]acked{}} }

func (p *producers) total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, a := range p.acked {
		n += len(a)
	}
	return n
}

func (p *producers) failures() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.retries
}

func (p *producers) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *producers) snapshot() map[string][]acked {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string][]acked{}
	for u, a := range p.acked {
		out[u] = slices.Clone(a)
	}
	return out
}

func (r *rig) startProducers(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r.stopProd = cancel
	t.Cleanup(r.stopProducers)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	t.Cleanup(client.CloseIdleConnections)
	users := map[string]bool{}
	for _, d := range r.devices {
		users[d.user] = true
	}
	for user := range users {
		r.prodWG.Go(func() { r.produce(ctx, client, user) })
	}
}

func (r *rig) stopProducers() {
	if r.stopProd != nil {
		r.stopProd()
	}
	r.prodWG.Wait()
}

// produce publishes to user until ctx ends, paced at one message per 5 ms
// at most.
func (r *rig) produce(ctx context.Context, client *http.Client, user string) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		key := fmt.Sprintf("%s-%d", user, i)
		for attempt := 0; ; attempt++ {
			seq, retry, err := r.publishOnce(ctx, client, r.ingests[(i+attempt)%len(r.ingests)].url(), user, key)
			if err == nil {
				r.prod.mu.Lock()
				r.prod.acked[user] = append(r.prod.acked[user], acked{seq: seq, key: key})
				r.prod.mu.Unlock()
				break
			}
			if ctx.Err() != nil {
				return // an unanswered message is not counted as acked
			}
			r.prod.mu.Lock()
			if !retry && r.prod.err == nil {
				r.prod.err = err
			}
			r.prod.retries++
			r.prod.mu.Unlock()
			if !retry {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// publishOnce posts one message; retry reports whether a failure may be
// retried (transport error, 5xx).
func (r *rig) publishOnce(ctx context.Context, client *http.Client, base, user, key string) (seq uint64, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/users/"+url.PathEscape(user)+"/messages", strings.NewReader(key))
	if err != nil {
		return 0, false, err
	}
	req.Header.Set("Authorization", "Bearer "+failureProducerKey)
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Idempotency-Key", key)
	resp, err := client.Do(req)
	if err != nil {
		return 0, true, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, true, err
	}
	switch {
	case resp.StatusCode == http.StatusServiceUnavailable:
		if resp.Header.Get("Retry-After") == "" {
			return 0, false, errors.New("503 without Retry-After")
		}
		return 0, true, fmt.Errorf("503: %s", b)
	case resp.StatusCode >= 500:
		return 0, true, fmt.Errorf("%d: %s", resp.StatusCode, b)
	case resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK:
		return 0, false, fmt.Errorf("publish %s: %d %s", key, resp.StatusCode, b)
	}
	var out struct {
		ID  string `json:"id"`
		Seq uint64 `json:"seq"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.ID != key || out.Seq == 0 {
		return 0, false, fmt.Errorf("publish %s: answer %s (%v)", key, b, err)
	}
	return out.Seq, false, nil
}

// device is one WebSocket client: it acks every message, and after a
// disconnect reconnects to the next edge with since = the last seq it saw.
type device struct {
	user, name, token string
	prefer            int // the edge it connects to first

	mu    sync.Mutex
	conns [][]frame // message frames, per connection
	last  uint64
}

func (d *device) connections() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.conns)
}

func (d *device) received() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, c := range d.conns {
		n += len(c)
	}
	return n
}

// around lists, per connection, the seqs received near seq.
func (d *device) around(seq uint64) [][]uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out [][]uint64
	for _, c := range d.conns {
		var near []uint64
		for _, f := range c {
			if f.Seq+20 >= seq && f.Seq <= seq+20 {
				near = append(near, f.Seq)
			}
		}
		out = append(out, near)
	}
	return out
}

// missing lists the acked seqs the device has not received.
func (d *device) missing(acks []acked) []uint64 {
	d.mu.Lock()
	got := map[uint64]bool{}
	for _, c := range d.conns {
		for _, f := range c {
			got[f.Seq] = true
		}
	}
	d.mu.Unlock()
	var out []uint64
	for _, a := range acks {
		if !got[a.seq] {
			out = append(out, a.seq)
		}
	}
	return out
}

func (r *rig) startDevices(t *testing.T, users, names []string) {
	t.Helper()
	for _, u := range users {
		for i, n := range names {
			r.devices = append(r.devices, &device{user: u, name: n, token: mint(t, u, n), prefer: i % len(r.edges)})
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.stopDev = cancel
	t.Cleanup(r.stopDevices)
	for _, d := range r.devices {
		r.devWG.Go(func() { r.runDevice(ctx, d) })
	}
	streamstest.WaitFor(t, 20*time.Second, func() error {
		for _, d := range r.devices {
			if d.connections() == 0 {
				return fmt.Errorf("%s/%s not connected", d.user, d.name)
			}
		}
		return nil
	})
}

func (r *rig) stopDevices() {
	if r.stopDev != nil {
		r.stopDev()
	}
	r.devWG.Wait()
}

func (r *rig) runDevice(ctx context.Context, d *device) {
	dialer := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	for i := d.prefer; ctx.Err() == nil; i++ {
		e := r.edges[i%len(r.edges)]
		d.mu.Lock()
		since := d.last
		d.mu.Unlock()
		h := http.Header{"Authorization": {"Bearer " + d.token}}
		conn, _, err := dialer.DialContext(ctx, wsURL(e.url, d.name, "since="+strconv.FormatUint(since, 10)), h)
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		d.session(ctx, conn)
	}
}

// session reads one connection until it breaks or ctx ends.
func (d *device) session(ctx context.Context, conn *websocket.Conn) {
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	defer conn.Close()
	d.mu.Lock()
	d.conns = append(d.conns, nil)
	idx := len(d.conns) - 1
	d.mu.Unlock()
	for {
		_, b, err := conn.ReadMessage()
		if err != nil {
			return
		}
		var f frame
		if err := json.Unmarshal(b, &f); err != nil || f.Type != "message" {
			continue
		}
		d.mu.Lock()
		d.conns[idx] = append(d.conns[idx], f)
		d.last = max(d.last, f.Seq)
		d.mu.Unlock()
		if err := conn.WriteJSON(map[string]any{"type": "ack", "seq": f.Seq}); err != nil {
			return
		}
	}
}

// check asserts the delivery guarantees and logs the counts.
func (r *rig) check(t *testing.T, acks map[string][]acked) {
	t.Helper()
	nacked := 0
	for user, as := range acks {
		nacked += len(as)
		for i := 1; i < len(as); i++ {
			if as[i].seq <= as[i-1].seq {
				t.Errorf("%s: ack %d (seq %d) after ack %d (seq %d): sequential publishes out of order", user, i, as[i].seq, i-1, as[i-1].seq)
			}
		}
	}
	delivered, dups, reconnects := 0, 0, 0
	for _, d := range r.devices {
		keyOf := map[uint64]string{}
		for _, a := range acks[d.user] {
			keyOf[a.seq] = a.key
		}
		seen := map[uint64]bool{}
		d.mu.Lock()
		reconnects += len(d.conns) - 1
		for ci, c := range d.conns {
			for i, f := range c {
				delivered++
				if seen[f.Seq] {
					dups++
				}
				seen[f.Seq] = true
				if f.User != d.user {
					t.Errorf("%s/%s got seq %d of user %q", d.user, d.name, f.Seq, f.User)
				}
				if k, ok := keyOf[f.Seq]; ok && f.Body != k {
					t.Errorf("%s/%s seq %d: body %q, want %q", d.user, d.name, f.Seq, f.Body, k)
				}
				if i > 0 && f.Seq <= c[i-1].Seq {
					t.Errorf("%s/%s connection %d: seq %d after %d", d.user, d.name, ci, f.Seq, c[i-1].Seq)
				}
			}
		}
		d.mu.Unlock()
		if m := d.missing(acks[d.user]); len(m) > 0 {
			t.Errorf("%s/%s lost %d acked messages: %v; received around the first: %v", d.user, d.name, len(m), m[:min(len(m), 10)], d.around(m[0]))
		}
	}
	r.prod.mu.Lock()
	retries := r.prod.retries
	r.prod.mu.Unlock()
	t.Logf("acked %d messages (%d failed attempts retried); %d devices: delivered %d frames, %d duplicates (across reconnects), expected at least %d; %d reconnects",
		nacked, retries, len(r.devices), delivered, dups, nacked*len(r.devices)/len(acks), reconnects)
}

// checkNoHeraldLeaks fails the test if goroutines running Herald's edge or
// ingest code, or this file's producers and devices, remain once every later
// cleanup has run. Call it first.
func checkNoHeraldLeaks(t *testing.T) {
	streamstest.CheckGoroutines(t, func(g string) bool {
		return strings.Contains(g, "herald-push/herald/edge.") || strings.Contains(g, "herald-push/herald/ingest.") ||
			strings.Contains(g, "herald/test.(*rig)") || strings.Contains(g, "herald/test.(*device)")
	})
}
