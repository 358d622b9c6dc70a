package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-push/herald/cmd/herald/internal/node"
	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/edge/token"
	"github.com/herald-push/herald/streams"
	"github.com/herald-push/herald/streams/streamstest"
)

const listenSecret = "listen-test-secret-0123456789abcdef"

// edgeNode is the cmd's own edge role wiring on a loopback listener.
type edgeNode struct {
	addr string
	n    *node.Node
	stop func() error
}

func startEdgeNode(t *testing.T, cfg config.Config, natsURL string) *edgeNode {
	t.Helper()
	nc := streamstest.Connect(t, natsURL)
	n, err := node.New(cfg, nc, node.Roles{Edge: true}, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx, ln) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return &edgeNode{addr: ln.Addr().String(), n: n, stop: stop}
}

// cutProxy forwards TCP to a target it can switch, refuse or cut, so that a
// test can break a client's connection from the server side.
type cutProxy struct {
	ln     net.Listener
	mu     sync.Mutex
	target string // "" refuses connections
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		target := p.target
		p.mu.Unlock()
		if target == "" {
			_ = c.Close()
			continue
		}
		up, err := net.Dial("tcp", target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			_, _ = io.Copy(dst, src)
			_ = dst.Close()
			_ = src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		go pipe(c, up)
		go pipe(up, c)
	}
}

func (p *cutProxy) setTarget(addr string) {
	p.mu.Lock()
	p.target = addr
	p.mu.Unlock()
}

// cut closes every forwarded connection.
func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
}

func publishEnvelope(t *testing.T, js jetstream.JetStream, user, body string) uint64 {
	t.Helper()
	e := streams.Envelope{ID: fmt.Sprintf("%s-%d", body, time.Now().UnixNano()), User: user, Time: time.Now().UTC(), Title: "t-" + body, Body: body}
	b, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := js.Publish(ctx, streams.Subjects{}.User(user), b)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// printed parses the listener's output lines: seq, title, body.
func printed(out string) ([]uint64, []string) {
	var seqs []uint64
	var bodies []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		f := strings.SplitN(line, "\t", 3)
		n, _ := strconv.ParseUint(f[0], 10, 64)
		seqs = append(seqs, n)
		if len(f) == 3 {
			bodies = append(bodies, f[1]+"|"+f[2])
		}
	}
	return seqs, bodies
}

func TestListenResumesAfterDisconnect(t *testing.T) {
	checkNoLeaks(t)
	cfg := config.Default()
	cfg.Auth.JWTSecret = listenSecret
	srv := streamstest.RunServer(t)
	nc := streamstest.Connect(t, srv.ClientURL())
	streamstest.Apply(t, nc, cfg.Stream)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	e1 := startEdgeNode(t, cfg, srv.ClientURL())
	e2 := startEdgeNode(t, cfg, srv.ClientURL())
	proxy := newCutProxy(t, e1.addr)

	out := &syncBuffer{}
	statePath := filepath.Join(t.TempDir(), "state.json")
	l := &listener{
		baseURL:    "ws://" + proxy.ln.Addr().String(),
		user:       "alice",
		device:     "laptop",
		token:      func() (string, error) { return token.Mint(listenSecret, "alice", "laptop", time.Hour) },
		statePath:  statePath,
		out:        out,
		log:        slog.New(slog.DiscardHandler),
		minBackoff: 5 * time.Millisecond,
		maxBackoff: 50 * time.Millisecond,
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- l.Run(ctx) }()

	conns := func(e *edgeNode, want int) func() error {
		return func() error {
			if n := e.n.Edge().Connections(); n != want {
				return fmt.Errorf("edge %s has %d connections, want %d", e.addr, n, want)
			}
			return nil
		}
	}
	lines := func(want int) func() error {
		return func() error {
			if seqs, _ := printed(out.String()); len(seqs) < want {
				return fmt.Errorf("printed %d lines, want %d:\n%s", len(seqs), want, out.String())
			}
			return nil
		}
	}
	waitFor(t, 10*time.Second, conns(e1, 1))
	var want []uint64
	want = append(want, publishEnvelope(t, js, "alice", "m1"), publishEnvelope(t, js, "alice", "m2"))
	waitFor(t, 10*time.Second, lines(2))

	// Cut the connection from the server side and keep the client out while
	// two more messages are stored.
	proxy.setTarget("")
	proxy.cut()
	waitFor(t, 10*time.Second, conns(e1, 0))
	want = append(want, publishEnvelope(t, js, "alice", "m3"), publishEnvelope(t, js, "alice", "m4"))
	proxy.setTarget(e1.addr)
	waitFor(t, 10*time.Second, lines(4))

	// The edge shuts down (close 1001); the client moves to another edge.
	proxy.setTarget(e2.addr)
	if err := e1.stop(); err != nil {
		t.Fatalf("edge 1 stop: %v", err)
	}
	waitFor(t, 10*time.Second, conns(e2, 1))
	want = append(want, publishEnvelope(t, js, "alice", "m5"))
	waitFor(t, 10*time.Second, lines(5))

	seqs, bodies := printed(out.String())
	if fmt.Sprint(seqs) != fmt.Sprint(want) {
		t.Errorf("printed seqs %v, want exactly %v (no loss, no duplicates)", seqs, want)
	}
	for i, b := range bodies {
		if w := fmt.Sprintf("t-m%d|m%d", i+1, i+1); b != w {
			t.Errorf("line %d = %q, want %q", i, b, w)
		}
	}
	waitFor(t, 5*time.Second, func() error {
		b, err := os.ReadFile(statePath)
		if err != nil {
			return err
		}
		var st struct {
			User, Device string
			Seq          uint64
		}
		if err := json.Unmarshal(b, &st); err != nil {
			return err
		}
		if st.Seq != want[len(want)-1] || st.User != "alice" || st.Device != "laptop" {
			return fmt.Errorf("state = %+v, want seq %d", st, want[len(want)-1])
		}
		return nil
	})

	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}

	// A new listener on the same state file resumes after the last seq.
	out2 := &syncBuffer{}
	l2 := &listener{
		baseURL: "ws://" + e2.addr, user: l.user, device: l.device, token: l.token, statePath: l.statePath,
		out: out2, log: l.log, minBackoff: l.minBackoff, maxBackoff: l.maxBackoff,
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	errc2 := make(chan error, 1)
	go func() { errc2 <- l2.Run(ctx2) }()
	m6 := publishEnvelope(t, js, "alice", "m6")
	waitFor(t, 10*time.Second, func() error {
		if seqs, _ := printed(out2.String()); fmt.Sprint(seqs) != fmt.Sprint([]uint64{m6}) {
			return fmt.Errorf("restarted listener printed %v, want [%d]", seqs, m6)
		}
		return nil
	})
	cancel2()
	if err := <-errc2; err != nil {
		t.Fatalf("second Run = %v", err)
	}
}

func TestListenStopsWhenUnauthorized(t *testing.T) {
	checkNoLeaks(t)
	cfg := config.Default()
	cfg.Auth.JWTSecret = listenSecret
	srv := streamstest.RunServer(t)
	nc := streamstest.Connect(t, srv.ClientURL())
	streamstest.Apply(t, nc, cfg.Stream)
	e := startEdgeNode(t, cfg, srv.ClientURL())

	run := func(tok string) error {
		l := &listener{
			baseURL:   "ws://" + e.addr,
			user:      "alice",
			device:    "laptop",
			token:     func() (string, error) { return tok, nil },
			statePath: filepath.Join(t.TempDir(), "state.json"),
			out:       io.Discard,
			log:       slog.New(slog.DiscardHandler),
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return l.Run(ctx)
	}

	t.Run("401 before the upgrade", func(t *testing.T) {
		bad, err := token.Mint("another-secret-0123456789abcdef-0123", "alice", "laptop", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := run(bad); err == nil || !strings.Contains(err.Error(), "401") {
			t.Fatalf("Run with a bad token = %v, want a 401 error", err)
		}
	})
	t.Run("4001 when the token expires", func(t *testing.T) {
		short, err := token.Mint(listenSecret, "alice", "laptop", 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		err = run(short)
		if err == nil || !strings.Contains(err.Error(), "4001") {
			t.Fatalf("Run with an expiring token = %v, want a 4001 error", err)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatal("Run waited for its context instead of stopping on 4001")
		}
	})
}

func TestListenCommandValidates(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--user", "alice", "--device", "bad device"}, "invalid device"},
		{[]string{"--user", "alice", "--device", "d", "--url", "ftp://x"}, "scheme"},
		{[]string{"--user", "alice", "--device", "d", "--data-dir", t.TempDir()}, "auth.jwt_secret"},
		{[]string{"--device", "d"}, `"user" not set`},
	}
	for _, tc := range cases {
		_, _, err := runCmd(t, nil, append([]string{"listen"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("listen %v: %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestDefaultStatePath(t *testing.T) {
	t.Parallel()
	if got := defaultStatePath("alice", "laptop"); got != ".herald-listen-alice-laptop.json" {
		t.Errorf("defaultStatePath = %q", got)
	}
	long := defaultStatePath(strings.Repeat("é", 128), "d")
	if len(long) > 100 || !strings.HasPrefix(long, ".herald-listen-") {
		t.Errorf("defaultStatePath for a long user = %q", long)
	}
}
