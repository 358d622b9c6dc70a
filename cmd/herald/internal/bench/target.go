package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald/cmd/herald/internal/creds"
	"github.com/herald-push/herald/cmd/herald/internal/node"
	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/streams/embedded"
)

// ExternalOptions name a running deployment (herald bench --url).
type ExternalOptions struct {
	URL, WSURL     string // ingest and edge base URLs; WSURL "" is URL with ws://
	Key, JWTSecret string // "" takes cfg's, else the data dir's
	NATS           bool   // publish over cfg.NATS instead of HTTP
}

// scenarioDefaults are what each scenario sets unlike Options.Defaults
// (sized for 2 cores); fanout takes those as they are.
var scenarioDefaults = map[string]Options{
	"slow":        {Stuck: 1},
	"connections": {Devices: 1},
	"resume":      {Users: 500, ConnectConcurrency: 1000},
}

// ScenarioOptions overlays the scenario's defaults on the zero flags, then
// bench's own defaults on what is still zero.
func ScenarioOptions(scenario string, o Options) Options {
	d := scenarioDefaults[scenario]
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

// Env describes the machine and setup, so that a result can be
// reproduced: delivery is the engine of a server the bench started, ""
// for a deployment it targets.
func Env(delivery, version string) map[string]string {
	env := map[string]string{
		"cpus":       strconv.Itoa(runtime.NumCPU()),
		"gomaxprocs": strconv.Itoa(runtime.GOMAXPROCS(0)),
		"go":         runtime.Version(),
		"os/arch":    runtime.GOOS + "/" + runtime.GOARCH,
		"herald":     version,
		"args":       strings.Join(os.Args[1:], " "),
	}
	if delivery != "" {
		env["delivery"] = delivery
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if line, _, ok := strings.Cut(string(b), "\n"); ok {
			env["memory"] = strings.Join(strings.Fields(strings.TrimPrefix(line, "MemTotal:")), " ")
		}
	}
	return env
}

func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func ParsePID(s string) (Proc, error) {
	name, v, ok := strings.Cut(s, "=")
	if !ok {
		name, v = "pid "+s, s
	}
	pid, err := strconv.Atoi(v)
	if err != nil || pid <= 0 {
		return Proc{}, fmt.Errorf("bench: --pid %q: want [name=]PID", s)
	}
	return Proc{Name: name, PID: pid}, nil
}

// LimitPaths are the edge limits a server the bench starts runs
// without: every bench device connects from one address, thousands within
// seconds, and a scenario may give one user many devices.
var LimitPaths = []string{"edge.max_conns", "edge.max_conns_per_user", "edge.max_devices_per_user", "edge.ip_connect_rate"}

// InProcess starts Herald in this process as serve does
// (node.StartEmbedded), with its store in a temporary directory, on a
// loopback port, with fresh credentials and without LimitPaths.
func InProcess(cfg config.Config, viaNATS bool, version string, log *slog.Logger) (t Target, stop func(), err error) {
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
		return t, nil, fmt.Errorf("bench: %w", err)
	}
	cleanup = append(cleanup, func() { _ = os.RemoveAll(dir) })
	cfg.DataDir = dir
	cfg.Listen = "127.0.0.1:0"
	cfg.NATS.Embedded = "off"
	// The in-process server takes no anonymous clients either.
	cfg.NATS.Token, cfg.NATS.User = "", creds.ServiceUser
	secrets := make([]string, 3)
	for i := range secrets {
		if secrets[i], err = creds.Random(); err != nil {
			return t, nil, err
		}
	}
	cfg.Ingest.ProducerKeys = []string{secrets[0]}
	cfg.Auth.JWTSecret, cfg.Auth.PublicKeys = secrets[1], nil
	cfg.NATS.Password = secrets[2]
	for _, p := range LimitPaths {
		if err := cfg.Set(p, "0"); err != nil {
			return t, nil, fmt.Errorf("bench: %w", err)
		}
	}
	e, err := node.StartEmbedded(context.Background(), cfg, embedded.User{}, log, node.NewRegistry("bench", version))
	if err != nil {
		return t, nil, err
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(runCtx) }()
	cleanup = append(cleanup, func() {
		stopRun()
		if err := <-done; err != nil {
			log.Warn("bench server stopped with an error", "err", err)
		}
	})
	base := node.BaseURL("http", e.Listener.Addr())
	t = Target{
		Name:         "in-process herald (" + cfg.Edge.Delivery + ")",
		HTTPURL:      base,
		WSURL:        node.BaseURL("ws", e.Listener.Addr()),
		MetricsURL:   base + "/metrics",
		Key:          secrets[0],
		JWTSecret:    secrets[1],
		Prefix:       cfg.Stream.Prefix,
		Stream:       cfg.Stream.Name,
		Procs:        []Proc{{Name: "bench process (server+clients)", PID: os.Getpid()}},
		BeforeSample: runtime.GC,
		MemNote:      "in-process: RSS and Go heap include the bench's own clients; use --spawn (or --url with --pid) for the server alone",
	}
	if viaNATS {
		pub, err := node.Connect(&cfg, "herald-bench", log, e.Server)
		if err != nil {
			return t, nil, err
		}
		cleanup = append(cleanup, func() { pub.Drain(cfg.NATS.Timeout) })
		if t.JS, err = jetstream.New(pub.NC); err != nil {
			return t, nil, fmt.Errorf("bench: jetstream: %w", err)
		}
	}
	return t, stop, nil
}

// External targets a running deployment at o.URL and o.WSURL.
func External(cfg *config.Config, o ExternalOptions, log *slog.Logger) (t Target, stop func(), err error) {
	stop = func() {}
	t = Target{Name: o.URL, HTTPURL: strings.TrimRight(o.URL, "/"), Prefix: cfg.Stream.Prefix, Stream: cfg.Stream.Name}
	t.WSURL = o.WSURL
	if t.WSURL == "" {
		t.WSURL = "ws" + strings.TrimPrefix(t.HTTPURL, "http")
	}
	t.WSURL = strings.TrimRight(t.WSURL, "/")
	t.MetricsURL = "http" + strings.TrimPrefix(t.WSURL, "ws") + "/metrics"
	if t.Key = o.Key; t.Key == "" && !o.NATS {
		if t.Key, err = creds.ProducerKey(cfg); err != nil {
			return t, nil, err
		}
	}
	if t.JWTSecret = o.JWTSecret; t.JWTSecret == "" {
		if t.JWTSecret, err = creds.JWTSecret(cfg); err != nil {
			return t, nil, err
		}
	}
	if o.NATS {
		if t.JS, stop, err = natsTarget(cfg, log); err != nil {
			return t, nil, err
		}
		t.Name += " + " + cfg.NATS.ServerURL()
	}
	return t, stop, nil
}

// natsTarget connects the bench's publishers to cfg.NATS.
func natsTarget(cfg *config.Config, log *slog.Logger) (jetstream.JetStream, func(), error) {
	conn, err := node.Connect(cfg, "herald-bench", log, nil)
	if err != nil {
		return nil, nil, err
	}
	stop := func() { conn.Drain(cfg.NATS.Timeout) }
	js, err := jetstream.New(conn.NC)
	if err != nil {
		stop()
		return nil, nil, fmt.Errorf("bench: jetstream: %w", err)
	}
	return js, stop, nil
}

// SpawnTarget runs herald serve as a child process (Spawn, with the
// engine and log level of cfg and without LimitPaths) and targets it, with
// the credentials serve generated in the data dir Spawn chose; the child's
// RSS is the server's memory.
func SpawnTarget(ctx context.Context, cfg *config.Config, o SpawnOptions, viaNATS bool, log *slog.Logger) (t Target, stop func(), err error) {
	o.Args = append([]string{"--delivery", cfg.Edge.Delivery, "--log-level", cfg.Log.Level}, o.Args...)
	for _, p := range LimitPaths {
		o.Args = append(o.Args, "--set", p+"=0")
	}
	o.Logger = log
	child, err := Spawn(ctx, o)
	if err != nil {
		return t, nil, err
	}
	stop = child.Stop
	defer func() {
		if err != nil {
			stop()
		}
	}()
	// The child's auth: what the configuration gives, else what it
	// generated in its data dir (the producer key, the JWT secret and, for
	// --nats, the service user).
	ccfg := *cfg
	ccfg.NATS.URL, ccfg.DataDir = child.NATSURL, child.DataDir
	if t.Key, err = creds.ProducerKey(&ccfg); err != nil {
		return t, nil, err
	}
	if t.JWTSecret, err = creds.JWTSecret(&ccfg); err != nil {
		return t, nil, err
	}
	t.Name = fmt.Sprintf("spawned herald serve (%s), pid %d", cfg.Edge.Delivery, child.PID)
	t.HTTPURL = child.HTTPURL
	t.WSURL = "ws" + strings.TrimPrefix(t.HTTPURL, "http")
	t.MetricsURL = t.HTTPURL + "/metrics"
	t.Prefix, t.Stream = cfg.Stream.Prefix, cfg.Stream.Name
	t.Procs = []Proc{{Name: "herald serve (edge+ingest+NATS)", PID: child.PID}}
	if viaNATS {
		js, pubStop, err := natsTarget(&ccfg, log)
		if err != nil {
			return t, nil, err
		}
		t.JS, stop = js, func() { pubStop(); child.Stop() }
	}
	return t, stop, nil
}
