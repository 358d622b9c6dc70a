package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/edge"
	"github.com/herald-push/herald/edge/token"
	"github.com/herald-push/herald/ingest"
	"github.com/herald-push/herald/streams"
	"github.com/herald-push/herald/streams/streamstest"
)

// The browser tests drive a headless Chromium over the DevTools protocol
// (chromedp) against a Herald built like `herald serve`: an embedded NATS
// server storing in a data dir, ingest and edge on one listener, /metrics.

// browserDeadline bounds each browser test: every browser action fails once
// it has passed.
const browserDeadline = 50 * time.Second

const testProducerKey = "test-producer-key-0123456789"

// chromiumPath finds a Chromium (or Chrome) binary, HERALD_CHROMIUM first;
// the test is skipped when there is none.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("HERALD_CHROMIUM"); p != "" {
		return p
	}
	names := []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skipf("browser test skipped: no Chromium found (looked for %s in PATH, or set HERALD_CHROMIUM); install it, e.g. apt-get install -y chromium", strings.Join(names, ", "))
	return ""
}

// newBrowser starts a headless Chromium with a profile of its own for the
// test and returns the context of its first tab. The browser stops at the
// test's cleanup, or when browserDeadline has passed. Called first in a
// test, it also checks, after every later cleanup, that no goroutine of
// Herald's is left.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	checkNoHeraldLeaks(t)
	path := chromiumPath(t)
	deadline, cancelDeadline := context.WithTimeout(context.Background(), browserDeadline)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox cannot start
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(deadline, opts...)
	var mu sync.Mutex
	done := false
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			t.Logf("chromedp: "+format, args...)
		}
	}
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(logf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		cancelDeadline()
		mu.Lock()
		done = true
		mu.Unlock()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return ctx
}

// newTab opens another tab of the browser (same profile: storage, locks and
// broadcast channels are shared); the cleanup closes it.
func newTab(t *testing.T, browser context.Context) (context.Context, context.CancelFunc) {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	return ctx, cancel
}

// navigate loads url in the tab.
func navigate(t *testing.T, tab context.Context, url string) {
	t.Helper()
	if err := chromedp.Do(tab, chromedp.Navigate(url)); err != nil {
		t.Fatalf("navigate to %s: %v", url, err)
	}
}

// evalJS evaluates expr in the tab and decodes its value.
func evalJS[T any](t *testing.T, tab context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(tab, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitJS polls expr in the tab until it is true, failing after d with the
// value of show (an expression describing the page's state).
func waitJS(t *testing.T, tab context.Context, d time.Duration, expr, show string) {
	t.Helper()
	streamstest.WaitFor(t, d, func() error {
		ok, err := chromedp.Run(tab, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return nil
		}
		state, _ := chromedp.Run(tab, chromedp.Evaluate[[]byte](show))
		return fmt.Errorf("%s is not true (error %v); page: %s", expr, err, state)
	})
}

// serveProc is Herald as `herald serve` runs it, in the test process: an
// embedded NATS server with JetStream storing in dataDir, and ingest, edge,
// /metrics and the test page on one HTTP listener whose address stays the
// same across restarts.
type serveProc struct {
	dataDir string
	cfg     config.Config
	addr    string // host:port, fixed by the first start

	mu       sync.Mutex
	requests map[string]int // "METHOD /path" → count, across restarts

	// One run (start to stop).
	ns         *server.Server
	nc         *nats.Conn
	js         jetstream.JetStream
	es         *edge.Server
	hs         *http.Server
	served     chan struct{} // closed when Serve returned
	stopEngine func(testing.TB)
}

// startServe starts Herald on a new data dir, with the live engine (the
// default) and mutate applied to its config; the cleanup stops it.
func startServe(t *testing.T, mutate func(*config.Config)) *serveProc {
	t.Helper()
	cfg := testConfig(config.DeliveryLive, func(c *config.Config) {
		c.Ingest.ProducerKeys = []string{testProducerKey}
		if mutate != nil {
			mutate(c)
		}
	})
	p := &serveProc{dataDir: t.TempDir(), cfg: cfg, addr: "127.0.0.1:0", requests: map[string]int{}}
	p.start(t)
	t.Cleanup(func() { p.stop(t) })
	return p
}

// start runs Herald on p's data dir and address.
func (p *serveProc) start(t *testing.T) {
	t.Helper()
	p.ns = streamstest.Start(t, streamstest.Options(filepath.Join(p.dataDir, "nats")))
	p.nc = streamstest.Connect(t, p.ns.ClientURL())
	// Applying the stream and the devices bucket is idempotent, as on
	// every start of serve.
	streamstest.Apply(t, p.nc, p.cfg.Stream)
	js, err := jetstream.New(p.nc)
	if err != nil {
		t.Fatal(err)
	}
	p.js = js

	es, reg, mux, stopEngine := buildEdge(t, p.nc, p.cfg)
	ijs, err := jetstream.New(p.nc, ingest.JetStreamOpts(p.cfg.Ingest)...)
	if err != nil {
		t.Fatal(err)
	}
	ing, err := ingest.New(ingest.Options{Ingest: p.cfg.Ingest, Stream: p.cfg.Stream, MaxBodyBytes: p.cfg.HTTP.MaxBodyBytes, Registerer: reg}, ijs)
	if err != nil {
		t.Fatal(err)
	}
	ing.Register(mux)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	page, err := os.ReadFile(filepath.Join("testdata", "browser.html"))
	if err != nil {
		t.Fatal(err)
	}
	mux.HandleFunc("GET /test/page", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(page)
	})
	// A token endpoint as an application's backend has one: a new token
	// for ?user and ?device valid ?ttl seconds.
	mux.HandleFunc("GET /test/token", func(w http.ResponseWriter, r *http.Request) {
		ttl, err := strconv.Atoi(r.URL.Query().Get("ttl"))
		if err != nil {
			http.Error(w, "ttl: "+err.Error(), http.StatusBadRequest)
			return
		}
		tok, err := token.Mint(p.cfg.Auth.JWTSecret, r.URL.Query().Get("user"), r.URL.Query().Get("device"), time.Duration(ttl)*time.Second)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, tok)
	})

	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", p.addr, err)
	}
	p.addr = ln.Addr().String()
	p.es, p.stopEngine = es, stopEngine
	p.hs = &http.Server{Handler: p.count(mux), ReadHeaderTimeout: 5 * time.Second}
	p.served = make(chan struct{})
	go func(hs *http.Server, done chan struct{}) {
		defer close(done)
		_ = hs.Serve(ln)
	}(p.hs, p.served)
}

// stop shuts Herald down as serve does on SIGTERM: sessions close with
// 1001 (each writes its device's position), the listener closes, the
// engine stops, then NATS. It does nothing when Herald is not running.
func (p *serveProc) stop(t *testing.T) {
	t.Helper()
	if p.hs == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.es.Shutdown(ctx); err != nil {
		t.Errorf("edge shutdown: %v", err)
	}
	_ = p.hs.Close()
	<-p.served
	p.stopEngine(t)
	p.nc.Close()
	p.ns.Shutdown()
	p.ns.WaitForShutdown()
	p.hs = nil
}

// restart stops Herald and starts it again on the same data dir and address.
func (p *serveProc) restart(t *testing.T) {
	t.Helper()
	p.stop(t)
	p.start(t)
}

func (p *serveProc) url() string { return "http://" + p.addr }

// count counts the requests h serves, by method and path.
func (p *serveProc) count(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.requests[r.Method+" "+r.URL.Path]++
		p.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

// requestCount returns how many requests for "METHOD /path" Herald has had.
func (p *serveProc) requestCount(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests[key]
}

// publish publishes msg to user through the ingest HTTP API and returns
// its seq.
func (p *serveProc) publish(t *testing.T, user string, msg map[string]any) uint64 {
	t.Helper()
	b, err := json.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest("POST", p.url()+"/v1/users/"+user+"/messages", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testProducerKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		Seq uint64 `json:"seq"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated || out.Seq == 0 {
		t.Fatalf("publish: %d %+v %v", resp.StatusCode, out, err)
	}
	return out.Seq
}

// publishBodies publishes one message per body and returns their seqs.
func (p *serveProc) publishBodies(t *testing.T, user string, bodies ...string) []uint64 {
	t.Helper()
	var seqs []uint64
	for _, b := range bodies {
		seqs = append(seqs, p.publish(t, user, map[string]any{"body": b}))
	}
	return seqs
}

// connections reads herald_edge_connections for transport (ws or sse) from
// GET /metrics.
func (p *serveProc) connections(t *testing.T, transport string) int {
	t.Helper()
	resp, err := http.Get(p.url() + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "herald_edge_connections{") || !strings.Contains(line, `transport="`+transport+`"`) {
			continue
		}
		f := strings.Fields(line)
		n, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		return int(n)
	}
	t.Fatalf("no herald_edge_connections series for %s in /metrics", transport)
	return 0
}

// position reads a device's stored position (live engine), 0 when it has none.
func (p *serveProc) position(user, device string) uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	kv, err := p.js.KeyValue(ctx, streams.DevicesBucketName)
	if err != nil {
		return 0
	}
	e, err := kv.Get(ctx, streams.DeviceKey(user, device))
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseUint(string(e.Value()), 10, 64)
	return n
}

// waitRead waits until the user's read position (SPEC §10) is seq.
func (p *serveProc) waitRead(t *testing.T, user string, seq uint64) {
	t.Helper()
	streamstest.WaitFor(t, 10*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		kv, err := p.js.KeyValue(ctx, streams.DevicesBucketName)
		if err != nil {
			return err
		}
		e, err := kv.Get(ctx, streams.ReadKey(user))
		if err != nil {
			return err
		}
		if got, _ := strconv.ParseUint(string(e.Value()), 10, 64); got != seq {
			return fmt.Errorf("read position of %s is %d, want %d", user, got, seq)
		}
		return nil
	})
}

// waitPosition waits until the device's stored position is seq.
func (p *serveProc) waitPosition(t *testing.T, user, device string, seq uint64) {
	t.Helper()
	streamstest.WaitFor(t, 10*time.Second, func() error {
		if got := p.position(user, device); got != seq {
			return fmt.Errorf("position of %s/%s is %d, want %d", user, device, got, seq)
		}
		return nil
	})
}

// pageURL is the test page's URL on base for a device with a token.
func pageURL(base, device, token string) string {
	return base + "/test/page#device=" + device + "&token=" + token
}

// pageState describes the test page's state in a failure message.
const pageState = `JSON.stringify({msgs: T.msgs.length, last: T.msgs.slice(-3), states: T.states.slice(-4), errors: T.errors, leader: client.leader})`

// pageMessages returns the messages the test page's application received.
func pageMessages(t *testing.T, tab context.Context) []pageMsg {
	t.Helper()
	return evalJS[[]pageMsg](t, tab, `T.msgs`)
}

type pageMsg struct {
	Seq  uint64 `json:"seq"`
	Body string `json:"body"`
}

// waitBody waits until the page's application has received a message with body.
func waitBody(t *testing.T, tab context.Context, body string) {
	t.Helper()
	waitJS(t, tab, 20*time.Second, `T.msgs.some((m) => m.body === `+strconv.Quote(body)+`)`, pageState)
}

// checkMessages asserts that the page received exactly the messages of
// bodies and seqs, each once, in order.
func checkMessages(t *testing.T, got []pageMsg, bodies []string, seqs []uint64) {
	t.Helper()
	ok := len(got) == len(bodies)
	for i := 0; ok && i < len(got); i++ {
		ok = got[i].Body == bodies[i] && got[i].Seq == seqs[i]
	}
	if !ok {
		t.Fatalf("the page received %+v\nwant bodies %v with seqs %v, each once, in order", got, bodies, seqs)
	}
}
