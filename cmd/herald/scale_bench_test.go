package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald/cmd/herald/internal/bench"
	"github.com/herald-push/herald/cmd/herald/internal/node"
	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/streams"
	"github.com/herald-push/herald/streams/streamstest"
)

// BenchmarkScale compares both delivery engines at scale, each in one run
// (-benchtime 1x): N devices (users × 2) connected to one edge, 10 000
// messages published straight to JetStream at 2000 msg/s, every device
// acking each message. The NATS server and the edge each run in a child
// process (this test binary again, TestBenchChild), so that heap and RSS
// per connected device are each server's alone. It reports deliveries/s, publish→deliver
// p50/p99, the time to connect every device, the edge's Shutdown with
// every socket open, and the NATS server's shutdown.
//
// The consumer engine runs at fewer devices by default: each device is a
// durable consumer (≈ 30 KiB of server heap, ≈ 10 ms of server shutdown
// each), and its acks saturate the server long before 10k devices.
//
// Each run is bounded at 15 minutes and each shutdown at 5, so give go test
// a timeout above their sum:
//
//	go test -run xxx -bench Scale -benchtime 1x -timeout 25m ./cmd/herald/
//	HERALD_SCALE_DEVICES=10000 HERALD_SCALE_CONSUMER_DEVICES=2000 (defaults)
//	HERALD_SCALE_PROFILES=dir: heap profiles of edge and NATS, devices connected
func BenchmarkScale(b *testing.B) {
	if testing.Short() {
		b.Skip("scale benchmark skipped in -short mode")
	}
	if runtime.GOOS != "linux" {
		b.Skip("reads /proc for the NATS server's RSS")
	}
	if _, err := bench.RaiseFileLimit(); err != nil {
		b.Logf("open-file limit: %v", err)
	}
	for _, tc := range []struct {
		engine string
		env    string
		def    int
	}{
		{config.DeliveryConsumer, "HERALD_SCALE_CONSUMER_DEVICES", 2000},
		{config.DeliveryLive, "HERALD_SCALE_DEVICES", 10000},
	} {
		n := tc.def
		if v := os.Getenv(tc.env); v != "" {
			var err error
			if n, err = strconv.Atoi(v); err != nil || n < 2 {
				b.Fatalf("%s=%q: want a device count ≥ 2", tc.env, v)
			}
		}
		b.Run(fmt.Sprintf("%s/devices=%d", tc.engine, n), func(b *testing.B) {
			for b.Loop() {
				benchScale(b, tc.engine, n)
			}
		})
	}
}

func benchScale(b *testing.B, engine string, devices int) {
	nats := startChild(b, "nats", nil)
	natsURL := nats.expect(b, "URL ")
	const secret = "scale-bench-secret-0123456789abcdef"
	cfg := config.Default()
	cfg.NATS.URL = natsURL
	log := newLogger(config.Log{Level: "warn"}, os.Stderr)
	conn, err := node.Connect(&cfg, "herald-scale-publisher", log, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.NC.Close()
	js, err := jetstream.New(conn.NC)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	_, _, err = streams.ApplyAll(ctx, js, cfg.Stream, cfg.Edge.DeviceTTL)
	cancel()
	if err != nil {
		b.Fatal(err)
	}
	// The edge runs in its own process too: one process cannot hold both
	// ends of 10k sockets under a 20k open-file limit.
	edge := startChild(b, "edge", []string{"HERALD_DELIVERY=" + engine, "HERALD_NATS_URL=" + natsURL, "HERALD_JWT_SECRET=" + secret})
	wsURL := edge.expect(b, "URL ")

	natsHeap0, natsRSS0 := nats.mem(b)
	edgeHeap0, edgeRSS0 := edge.mem(b)
	var natsHeap1, natsRSS1, edgeHeap1, edgeRSS1 int64
	var edgeShutdown time.Duration
	target := bench.Target{
		Name: "edge and NATS in child processes", WSURL: wsURL,
		JWTSecret: secret, JS: js, Prefix: cfg.Stream.Prefix, Stream: cfg.Stream.Name,
	}
	r, err := bench.New(target, bench.Options{
		Users: devices / 2, Devices: 2, Messages: 10000, Rate: 2000, NATS: true, Producers: 16,
		ConnectConcurrency: 256, Drain: time.Minute, Timeout: 15 * time.Minute, Progress: os.Stderr,
		OnConnected: func() {
			natsHeap1, natsRSS1 = nats.mem(b)
			edgeHeap1, edgeRSS1 = edge.mem(b)
			if dir := os.Getenv("HERALD_SCALE_PROFILES"); dir != "" {
				edge.send(b, "heap "+filepath.Join(dir, "edge-"+engine+".heap"))
				nats.send(b, "heap "+filepath.Join(dir, "nats-"+engine+".heap"))
			}
		},
		OnDrained: func() {
			edge.send(b, "shutdown")
			d, err := time.ParseDuration(edge.expect(b, "SHUTDOWN "))
			if err != nil {
				b.Error(err)
			}
			edgeShutdown = d
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	res, err := r.Run(context.Background(), "fanout")
	if err != nil {
		b.Fatal(err)
	}
	f := res.Fanout
	edge.stop(b)
	conn.Drain(10 * time.Second)
	natsShutdown := nats.stop(b)
	perDev := func(after, before int64) float64 { return float64(after-before) / float64(devices) }
	b.ReportMetric(f.DeliveryRate, "deliveries/s")
	b.ReportMetric(f.Latency.P50, "p50-ms")
	b.ReportMetric(f.Latency.P99, "p99-ms")
	b.ReportMetric(f.ConnectSeconds, "connect-s")
	b.ReportMetric(edgeShutdown.Seconds(), "edge-shutdown-s")
	b.ReportMetric(natsShutdown.Seconds(), "nats-shutdown-s")
	b.ReportMetric(perDev(natsHeap1, natsHeap0), "nats-heap-B/device")
	b.ReportMetric(perDev(natsRSS1, natsRSS0), "nats-rss-B/device")
	b.ReportMetric(perDev(edgeHeap1, edgeHeap0), "edge-heap-B/device")
	b.ReportMetric(perDev(edgeRSS1, edgeRSS0), "edge-rss-B/device")
	b.ReportMetric(0, "ns/op")
	b.Logf("%s, %d devices: published %d (%.0f msg/s, %d errors), delivered %d of %d, lost %d, dup %d, ooo %d; p90 %.2f ms, max %.2f ms; "+
		"NATS heap %.1f → %.1f MiB, RSS %.1f → %.1f MiB; edge heap %.1f → %.1f MiB, RSS %.1f → %.1f MiB",
		engine, devices, f.Published, f.PublishRate, f.PublishErrors, f.Delivered, f.Expected, f.Lost, f.Duplicates, f.OutOfOrder,
		f.Latency.P90, f.Latency.Max, mib(natsHeap0), mib(natsHeap1), mib(natsRSS0), mib(natsRSS1),
		mib(edgeHeap0), mib(edgeHeap1), mib(edgeRSS0), mib(edgeRSS1))
}

func mib(v int64) float64 { return float64(v) / (1 << 20) }

// child is a part of the system under test in a child process (this test
// binary again, running TestBenchChild), driven over its stdin: "mem" asks
// for its Go heap after a GC, "heap PATH" writes a heap profile, "shutdown" (edge) times the edge's Shutdown
// with every socket open; EOF stops it.
type child struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Scanner
	outRC io.ReadCloser
}

func startChild(b *testing.B, role string, env []string) *child {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchChild$", "-test.count=1")
	cmd.Env = append(append(os.Environ(), childRoleEnv+"="+role, childDirEnv+"="+b.TempDir()), env...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	c := &child{cmd: cmd, in: in, out: bufio.NewScanner(out), outRC: out}
	b.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			_ = c.cmd.Process.Kill()
			_, _ = io.Copy(io.Discard, c.outRC)
			_ = c.cmd.Wait()
		}
	})
	return c
}

// expect reads the child's stdout up to a line with prefix and returns
// the rest of it.
func (c *child) expect(b *testing.B, prefix string) string {
	b.Helper()
	for c.out.Scan() {
		if rest, ok := strings.CutPrefix(c.out.Text(), prefix); ok {
			return rest
		}
	}
	b.Fatalf("child: no %q line: %v", prefix, c.out.Err())
	return ""
}

func (c *child) send(b *testing.B, cmd string) {
	b.Helper()
	if _, err := io.WriteString(c.in, cmd+"\n"); err != nil {
		b.Fatal(err)
	}
}

// mem returns the child's Go heap in use after a GC, and its RSS.
func (c *child) mem(b *testing.B) (heap, rss int64) {
	b.Helper()
	c.send(b, "mem")
	heap, err := strconv.ParseInt(c.expect(b, "MEM "), 10, 64)
	if err != nil {
		b.Fatal(err)
	}
	rss, err = bench.ProcRSS(c.cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	return heap, rss
}

// stop closes the child's stdin and returns how long it took to exit.
func (c *child) stop(b *testing.B) time.Duration {
	b.Helper()
	start := time.Now()
	_ = c.in.Close()
	_, _ = io.Copy(io.Discard, c.outRC)
	if err := c.cmd.Wait(); err != nil {
		b.Errorf("child: %v", err)
	}
	return time.Since(start)
}

// Environment of TestBenchChild.
const (
	childRoleEnv = "HERALD_BENCH_CHILD"     // nats or edge
	childDirEnv  = "HERALD_BENCH_CHILD_DIR" // the NATS store
)

// TestBenchChild is a process of BenchmarkScale: a NATS server, or an
// edge configured from HERALD_* variables. It skips unless started by it.
func TestBenchChild(t *testing.T) {
	t.Parallel()
	role := os.Getenv(childRoleEnv)
	switch role {
	case "":
		t.Skip("runs only as a process of BenchmarkScale")
	case "nats":
		s, err := server.NewServer(streamstest.Options(os.Getenv(childDirEnv)))
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		if !s.ReadyForConnections(30 * time.Second) {
			t.Fatal("nats child: not ready")
		}
		fmt.Printf("URL %s\n", s.ClientURL())
		childCommands(nil)
		s.Shutdown()
		s.WaitForShutdown()
	case "edge":
		if _, err := bench.RaiseFileLimit(); err != nil {
			t.Log(err)
		}
		cfg := config.Default()
		var env []string // only what benchScale set: the rest may be the parent's
		for _, kv := range os.Environ() {
			for _, k := range []string{"HERALD_DELIVERY=", "HERALD_NATS_URL=", "HERALD_JWT_SECRET="} {
				if strings.HasPrefix(kv, k) {
					env = append(env, kv)
				}
			}
		}
		if err := cfg.ApplyEnv(env); err != nil {
			t.Fatal(err)
		}
		cfg.Edge.ShutdownTimeout = 5 * time.Minute
		for _, p := range bench.LimitPaths {
			if err := cfg.Set(p, "0"); err != nil {
				t.Fatal(err)
			}
		}
		log := newLogger(config.Log{Level: "warn"}, os.Stderr)
		conn, err := node.Connect(&cfg, "herald-scale-edge", log, nil)
		if err != nil {
			t.Fatal(err)
		}
		n, err := node.New(cfg, conn.NC, node.Roles{Edge: true}, log, node.NewRegistry("scale", versionString()))
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- n.Run(ctx, ln) }()
		fmt.Printf("URL %s\n", node.BaseURL("ws", ln.Addr()))
		childCommands(func() {
			ctx, cancel := context.WithTimeout(context.Background(), cfg.Edge.ShutdownTimeout)
			defer cancel()
			start := time.Now()
			err := n.Edge().Shutdown(ctx)
			fmt.Printf("SHUTDOWN %s\n", time.Since(start))
			if err != nil {
				t.Error(err)
			}
		})
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
		conn.Drain(10 * time.Second)
	default:
		t.Fatalf("%s=%q", childRoleEnv, role)
	}
}

// writeHeapProfile writes a heap profile to path, or reports why not.
func writeHeapProfile(path string) {
	f, err := os.Create(path)
	if err == nil {
		runtime.GC()
		err = pprof.WriteHeapProfile(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "heap profile: %v\n", err)
	}
}

// childCommands answers "mem" and "shutdown" on stdin until EOF.
func childCommands(shutdown func()) {
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if path, ok := strings.CutPrefix(in.Text(), "heap "); ok {
			writeHeapProfile(path)
			continue
		}
		switch in.Text() {
		case "mem":
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			fmt.Printf("MEM %d\n", ms.HeapInuse)
		case "shutdown":
			if shutdown != nil {
				shutdown()
			}
		}
	}
}
