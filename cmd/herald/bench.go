package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/herald-push/herald/cmd/herald/internal/bench"
	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/streams"
)

// benchFlags are the flags of herald bench and its scenarios. A zero
// number means the scenario's default (scenarioOptions).
type benchFlags struct {
	url, wsURL, key, secret string
	cpuProfile              string
	viaNATS, spawn, json    bool
	pids                    []string
	opts                    bench.Options
}

// benchDefaults are what each scenario sets unlike bench.Options.Defaults
// (sized for 2 cores); fanout takes those as they are.
var benchDefaults = map[string]bench.Options{
	"slow":        {Stuck: 1},
	"connections": {Devices: 1},
	"resume":      {Users: 500, ConnectConcurrency: 1000},
}

func newBenchCmd(a *app) *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench SCENARIO",
		Short: "Load-test Herald with real devices and producers: fanout, slow, connections, resume",
		Long: `Measure Herald with the real protocol over real sockets.

Without --url (or --spawn), bench starts its own Herald in this process: an
embedded NATS server in a temporary directory, ingest and edge on a loopback
port, with the engine of --delivery. --spawn runs "herald serve" as a child
process instead, so that memory figures cover the server alone. Both run
without the edge's connection and device limits (edge.max_conns,
edge.max_conns_per_user, edge.max_devices_per_user, edge.ip_connect_rate),
which one client address opening thousands of devices would trip. With --url,
--ws-url, --key and --jwt-secret it targets a running deployment; --nats
publishes straight to JetStream at --nats-url.

A status line goes to stderr once a second; the results go to stdout as a
table, or as JSON with --json.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.url, "url", "", "ingest base URL of a running Herald (default: start one in-process)")
	pf.StringVar(&f.wsURL, "ws-url", "", "edge base URL (default: --url with ws://)")
	pf.StringVar(&f.key, "key", "", "producer key (default: ingest.producer_keys or <data-dir>/credentials.json)")
	pf.StringVar(&f.secret, "jwt-secret", "", "HS256 secret that signs device tokens (default: auth.jwt_secret or <data-dir>/credentials.json)")
	pf.BoolVar(&f.viaNATS, "nats", false, "publish straight to JetStream (--nats-url) instead of over HTTP")
	pf.BoolVar(&f.spawn, "spawn", false, "run `herald serve` as a child process and target it (server-only memory figures)")
	pf.StringArrayVar(&f.pids, "pid", nil, "a server process to report the RSS of, `[name=]PID` (repeatable; connections)")
	pf.BoolVar(&f.json, "json", false, "write the results as JSON instead of a table")
	pf.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (in-process: server and clients) to `file`")
	o := &f.opts
	pf.IntVar(&o.Users, "users", 0, "users with connected devices (fanout/slow 200, resume 500)")
	pf.IntVar(&o.Devices, "devices", 0, "devices per user (default 2; connections 1)")
	pf.IntVar(&o.Messages, "messages", 0, "messages to publish (fanout, slow; default 20000)")
	pf.IntVar(&o.Producers, "producers", 0, "concurrent producers (default 16)")
	pf.IntVar(&o.Size, "size", 0, "bytes of each message body (default 128)")
	pf.Float64Var(&o.Rate, "rate", 0, "publish rate in msg/s over all producers (default: as fast as possible)")
	pf.IntVar(&o.AckEvery, "ack-every", 0, "devices ack (cumulatively) every N messages (default 1)")
	pf.IntVar(&o.Stuck, "stuck", 0, "slow: devices that never read their socket, on the first user (default 1)")
	pf.IntVar(&o.PerUser, "per-user", 0, "resume: messages per user while the devices are away (default 50)")
	pf.IntVar(&o.Connections, "connections", 0, "connections: idle devices (default 5000)")
	pf.IntVar(&o.ConnectConcurrency, "connect-concurrency", 0, "dials in flight (default 256; resume 1000)")
	pf.DurationVar(&o.Drain, "drain", 0, "wait this long for deliveries after the last publish (default 15s)")
	pf.DurationVar(&o.StuckWait, "stuck-wait", 0, "slow: wait this long for the edge to close the stuck devices with 4008 (default 20s)")
	pf.DurationVar(&o.Settle, "settle", 0, "connections: wait before sampling memory (default 2s)")
	pf.DurationVar(&o.Timeout, "timeout", 0, "bound on the whole scenario (default 5m)")

	for _, sc := range []struct{ name, short string }{
		{"fanout", "U users × D devices connected, M messages from C producers: msg/s, deliveries/s, latency, lost"},
		{"slow", "fanout without and with devices that never read: the healthy devices' figures side by side"},
		{"connections", "N idle devices: connect rate, memory per connection (RSS, Go heap, goroutines)"},
		{"resume", "devices disconnect, K messages per user, all reconnect with since: catch-up time, completeness"},
	} {
		cmd.AddCommand(&cobra.Command{
			Use:   sc.name,
			Short: sc.short,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return a.runBench(cmd, sc.name, f)
			},
		})
	}
	return cmd
}

// scenarioOptions overlays the scenario's defaults on the zero flags, then
// bench's own defaults on what is still zero.
func scenarioOptions(scenario string, o bench.Options) bench.Options {
	d := benchDefaults[scenario]
	pick := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	pick(&o.Users, d.Users)
	pick(&o.Devices, d.Devices)
	pick(&o.Stuck, d.Stuck)
	pick(&o.ConnectConcurrency, d.ConnectConcurrency)
	return o.Defaults()
}

func (a *app) runBench(cmd *cobra.Command, scenario string, f benchFlags) error {
	cfg, err := a.loadConfig(cmd)
	if err != nil {
		return err
	}
	if !cmd.Flags().Changed("log-level") {
		cfg.Log.Level = "warn" // keep the server's info lines out of the status line
	}
	log := newLogger(cfg.Log, a.stderr).With("role", "bench")
	if n, err := bench.RaiseFileLimit(); err != nil {
		log.Warn("cannot raise the open-file limit", "limit", n, "err", err)
	}
	ctx := cmd.Context()
	opts := scenarioOptions(scenario, f.opts)
	opts.NATS = f.viaNATS
	opts.Progress = a.stderr
	opts.ProgressTTY = isTerminal(a.stderr)
	opts.Logger = log

	var procs []bench.Proc
	for _, p := range f.pids {
		proc, err := parsePID(p)
		if err != nil {
			return err
		}
		procs = append(procs, proc)
	}
	if opts.Rate < 0 {
		return fmt.Errorf("cmd: bench: --rate %v is negative", opts.Rate)
	}
	var target bench.Target
	var stop func()
	switch {
	case f.url != "" && f.spawn:
		return errors.New("cmd: bench: --url and --spawn exclude each other")
	case f.url != "":
		target, stop, err = a.externalTarget(&cfg, f, log)
	case f.spawn:
		target, stop, err = a.spawnTarget(ctx, cmd, &cfg, f, log)
	default:
		target, stop, err = a.inProcessTarget(cfg, f.viaNATS, log)
	}
	if err != nil {
		return err
	}
	defer stop()
	target.Procs = append(target.Procs, procs...)
	r, err := bench.New(target, opts)
	if err != nil {
		return fmt.Errorf("cmd: bench: %w", err)
	}
	if f.cpuProfile != "" {
		pf, err := os.Create(f.cpuProfile)
		if err != nil {
			return fmt.Errorf("cmd: bench: %w", err)
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return fmt.Errorf("cmd: bench: cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	res, err := r.Run(ctx, scenario)
	if err != nil {
		return fmt.Errorf("cmd: bench %s: %w", scenario, err)
	}
	res.Env = benchEnv(&cfg, f)
	if f.json {
		return bench.WriteJSON(a.stdout, res)
	}
	return bench.WriteTable(a.stdout, res)
}

// benchEnv describes the machine and setup, so that a result can be
// reproduced.
func benchEnv(cfg *config.Config, f benchFlags) map[string]string {
	env := map[string]string{
		"cpus":       strconv.Itoa(runtime.NumCPU()),
		"gomaxprocs": strconv.Itoa(runtime.GOMAXPROCS(0)),
		"go":         runtime.Version(),
		"os/arch":    runtime.GOOS + "/" + runtime.GOARCH,
		"herald":     versionString(),
		"args":       strings.Join(os.Args[1:], " "),
	}
	if f.url == "" {
		env["delivery"] = cfg.Edge.Delivery
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if line, _, ok := strings.Cut(string(b), "\n"); ok {
			env["memory"] = strings.Join(strings.Fields(strings.TrimPrefix(line, "MemTotal:")), " ")
		}
	}
	return env
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func parsePID(s string) (bench.Proc, error) {
	name, v, ok := strings.Cut(s, "=")
	if !ok {
		name, v = "pid "+s, s
	}
	pid, err := strconv.Atoi(v)
	if err != nil || pid <= 0 {
		return bench.Proc{}, fmt.Errorf("cmd: bench: --pid %q: want [name=]PID", s)
	}
	return bench.Proc{Name: name, PID: pid}, nil
}

// benchLimitPaths are the edge limits a server the bench starts runs
// without: every bench device connects from one address, thousands within
// seconds, and a scenario may give one user many devices.
var benchLimitPaths = []string{"edge.max_conns", "edge.max_conns_per_user", "edge.max_devices_per_user", "edge.ip_connect_rate"}

// inProcessTarget starts Herald in this process like serve does: embedded
// NATS with its store in a temporary directory, the stream and bucket, and
// ingest plus edge on a loopback port, with fresh credentials.
func (a *app) inProcessTarget(cfg config.Config, viaNATS bool, log *slog.Logger) (t bench.Target, stop func(), err error) {
	var cleanup []func()
	stop = func() {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	dir, err := os.MkdirTemp("", "herald-bench-")
	if err != nil {
		return t, nil, fmt.Errorf("cmd: bench: %w", err)
	}
	cleanup = append(cleanup, func() { _ = os.RemoveAll(dir) })
	cfg.DataDir = dir
	cfg.Listen = "127.0.0.1:0"
	cfg.NATS.Embedded = "off"
	key, err := randomSecret()
	if err != nil {
		return t, nil, err
	}
	secret, err := randomSecret()
	if err != nil {
		return t, nil, err
	}
	cfg.Ingest.ProducerKeys = []string{key}
	cfg.Auth.JWTSecret, cfg.Auth.PublicKeys = secret, nil
	for _, p := range benchLimitPaths {
		if err := cfg.Set(p, "0"); err != nil {
			return t, nil, fmt.Errorf("cmd: bench: %w", err)
		}
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return t, nil, fmt.Errorf("cmd: bench: listen: %w", err)
	}
	cleanup = append(cleanup, func() { _ = ln.Close() })
	// The in-process server takes no anonymous clients either.
	cfg.NATS.Token, cfg.NATS.User = "", natsServiceUser
	if cfg.NATS.Password, err = randomSecret(); err != nil {
		return t, nil, err
	}
	srv, err := startEmbedded(&cfg, natsUser{}, log)
	if err != nil {
		return t, nil, err
	}
	cleanup = append(cleanup, func() { srv.Shutdown(); srv.WaitForShutdown() })
	conn, err := connectNATS(&cfg, "herald-bench-server", log, srv)
	if err != nil {
		return t, nil, err
	}
	cleanup = append(cleanup, func() { conn.drain(cfg.Edge.ShutdownTimeout) })
	js, err := jetstream.New(conn.nc)
	if err != nil {
		return t, nil, fmt.Errorf("cmd: jetstream: %w", err)
	}
	actx, cancel := context.WithTimeout(context.Background(), cfg.NATS.Timeout)
	_, _, err = streams.ApplyAll(actx, js, cfg.Stream, cfg.Edge.DeviceTTL)
	cancel()
	if err != nil {
		return t, nil, fmt.Errorf("cmd: bench: %w", err)
	}
	n, err := newNode(cfg, conn.nc, roleSet{ingest: true, edge: true}, log, newRegistry("bench"))
	if err != nil {
		return t, nil, err
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.run(runCtx, ln) }()
	cleanup = append(cleanup, func() {
		stopRun()
		if err := <-done; err != nil {
			log.Warn("bench server stopped with an error", "err", err)
		}
	})
	base := baseURL("http", ln.Addr())
	t = bench.Target{
		Name:         "in-process herald (" + cfg.Edge.Delivery + ")",
		HTTPURL:      base,
		WSURL:        baseURL("ws", ln.Addr()),
		MetricsURL:   base + "/metrics",
		Key:          key,
		JWTSecret:    secret,
		Prefix:       cfg.Stream.Prefix,
		Stream:       cfg.Stream.Name,
		Procs:        []bench.Proc{{Name: "bench process (server+clients)", PID: os.Getpid()}},
		BeforeSample: runtime.GC,
		MemNote:      "in-process: RSS and Go heap include the bench's own clients; use --spawn (or --url with --pid) for the server alone",
	}
	if viaNATS {
		pub, err := connectNATS(&cfg, "herald-bench", log, srv)
		if err != nil {
			return t, nil, err
		}
		cleanup = append(cleanup, func() { pub.drain(cfg.NATS.Timeout) })
		if t.JS, err = jetstream.New(pub.nc); err != nil {
			return t, nil, fmt.Errorf("cmd: jetstream: %w", err)
		}
	}
	return t, stop, nil
}

// externalTarget targets a running deployment at --url and --ws-url.
func (a *app) externalTarget(cfg *config.Config, f benchFlags, log *slog.Logger) (t bench.Target, stop func(), err error) {
	stop = func() {}
	t = bench.Target{Name: f.url, HTTPURL: strings.TrimRight(f.url, "/"), Prefix: cfg.Stream.Prefix, Stream: cfg.Stream.Name}
	t.WSURL = f.wsURL
	if t.WSURL == "" {
		t.WSURL = "ws" + strings.TrimPrefix(t.HTTPURL, "http")
	}
	t.WSURL = strings.TrimRight(t.WSURL, "/")
	t.MetricsURL = "http" + strings.TrimPrefix(t.WSURL, "ws") + "/metrics"
	if t.Key = f.key; t.Key == "" && !f.viaNATS {
		if t.Key, err = producerKey(cfg); err != nil {
			return t, nil, err
		}
	}
	if t.JWTSecret = f.secret; t.JWTSecret == "" {
		if t.JWTSecret, err = jwtSecret(cfg); err != nil {
			return t, nil, err
		}
	}
	if f.viaNATS {
		conn, err := connectNATS(cfg, "herald-bench", log, nil)
		if err != nil {
			return t, nil, err
		}
		stop = func() { conn.drain(cfg.NATS.Timeout) }
		if t.JS, err = jetstream.New(conn.nc); err != nil {
			stop()
			return t, nil, fmt.Errorf("cmd: jetstream: %w", err)
		}
		t.Name += " + " + cfg.NATS.ServerURL()
	}
	return t, stop, nil
}

// spawnStartTimeout bounds the start of a spawned herald serve.
const spawnStartTimeout = 30 * time.Second

// spawnTarget runs this binary's serve as a child process on loopback
// ports with a temporary data dir, reads its banner for the URLs and
// credentials, and targets it; the child's RSS is the server's memory.
func (a *app) spawnTarget(ctx context.Context, cmd *cobra.Command, cfg *config.Config, f benchFlags, log *slog.Logger) (t bench.Target, stop func(), err error) {
	exe, err := os.Executable()
	if err != nil {
		return t, nil, fmt.Errorf("cmd: bench: --spawn: %w", err)
	}
	dir, err := os.MkdirTemp("", "herald-bench-")
	if err != nil {
		return t, nil, fmt.Errorf("cmd: bench: %w", err)
	}
	args := []string{"serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0",
		"--delivery", cfg.Edge.Delivery, "--log-level", cfg.Log.Level}
	if p, _ := cmd.Flags().GetString("config"); p != "" {
		args = append(args, "--config", p)
	}
	sets, _ := cmd.Flags().GetStringArray("set")
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	for _, p := range benchLimitPaths {
		args = append(args, "--set", p+"=0")
	}
	child := exec.Command(exe, args...)
	child.Env = a.environ
	child.Stderr = a.stderr
	out, err := child.StdoutPipe()
	if err != nil {
		_ = os.RemoveAll(dir)
		return t, nil, fmt.Errorf("cmd: bench: --spawn: %w", err)
	}
	if err := child.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return t, nil, fmt.Errorf("cmd: bench: --spawn: %w", err)
	}
	// The reader goroutine ends when the child's stdout closes (it exits).
	lines := make(chan string, 64)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default: // nobody listens after the banner
			}
		}
	}()
	var pubStop func()
	stopChild := func() {
		if pubStop != nil {
			pubStop()
		}
		_ = child.Process.Signal(syscall.SIGTERM)
		exited := make(chan struct{})
		go func() { _ = child.Wait(); close(exited) }()
		select {
		case <-exited:
		case <-time.After(2 * time.Minute):
			log.Warn("spawned serve did not stop; killing it", "pid", child.Process.Pid)
			_ = child.Process.Kill()
			<-exited
		}
		<-readDone
		_ = os.RemoveAll(dir)
	}
	// The early returns below set stop to nil: stop the child through
	// stopChild.
	defer func() {
		if err != nil {
			stopChild()
		}
	}()
	var natsURL string
	timeout := time.NewTimer(spawnStartTimeout)
	defer timeout.Stop()
	for t.HTTPURL == "" || natsURL == "" || t.Key == "" || t.JWTSecret == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				return t, nil, errors.New("cmd: bench: --spawn: serve exited before printing its banner")
			}
			fields := strings.Fields(line)
			switch {
			case len(fields) >= 2 && fields[0] == "HTTP":
				t.HTTPURL = fields[1]
			case len(fields) >= 2 && fields[0] == "NATS":
				natsURL = fields[1]
			case len(fields) >= 3 && fields[0] == "producer" && fields[1] == "key":
				t.Key = fields[2]
			case len(fields) >= 3 && fields[0] == "JWT" && fields[1] == "secret":
				t.JWTSecret = fields[2]
			}
		case <-timeout.C:
			return t, nil, fmt.Errorf("cmd: bench: --spawn: no banner within %v", spawnStartTimeout)
		case <-ctx.Done():
			return t, nil, ctx.Err()
		}
	}
	t.Name = fmt.Sprintf("spawned herald serve (%s), pid %d", cfg.Edge.Delivery, child.Process.Pid)
	t.WSURL = "ws" + strings.TrimPrefix(t.HTTPURL, "http")
	t.MetricsURL = t.HTTPURL + "/metrics"
	t.Prefix, t.Stream = cfg.Stream.Prefix, cfg.Stream.Name
	t.Procs = []bench.Proc{{Name: "herald serve (edge+ingest+NATS)", PID: child.Process.Pid}}
	if f.viaNATS {
		ncfg := *cfg
		// The child's NATS takes its service user, from its data dir.
		ncfg.NATS.URL, ncfg.DataDir = natsURL, dir
		conn, err := connectNATS(&ncfg, "herald-bench", log, nil)
		if err != nil {
			return t, nil, err
		}
		pubStop = func() { conn.drain(cfg.NATS.Timeout) }
		if t.JS, err = jetstream.New(conn.nc); err != nil {
			return t, nil, fmt.Errorf("cmd: jetstream: %w", err)
		}
	}
	return t, stopChild, nil
}
