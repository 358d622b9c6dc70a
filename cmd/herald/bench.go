package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"

	"github.com/spf13/cobra"

	"github.com/herald-push/herald/cmd/herald/internal/bench"
	"github.com/herald-push/herald/config"
)

// benchFlags are the flags of herald bench and its scenarios. A zero
// number means the scenario's default (bench.ScenarioOptions).
type benchFlags struct {
	url, wsURL, key, secret string
	cpuProfile              string
	viaNATS, spawn, json    bool
	pids                    []string
	opts                    bench.Options
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
	opts := bench.ScenarioOptions(scenario, f.opts)
	opts.NATS = f.viaNATS
	opts.Progress = a.stderr
	opts.ProgressTTY = bench.IsTerminal(a.stderr)
	opts.Logger = log

	var procs []bench.Proc
	for _, p := range f.pids {
		proc, err := bench.ParsePID(p)
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
		o := bench.ExternalOptions{URL: f.url, WSURL: f.wsURL, Key: f.key, JWTSecret: f.secret, NATS: f.viaNATS}
		target, stop, err = bench.External(&cfg, o, log)
	case f.spawn:
		target, stop, err = a.spawnTarget(ctx, cmd, &cfg, f.viaNATS, log)
	default:
		target, stop, err = bench.InProcess(cfg, f.viaNATS, versionString(), log)
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
	delivery := cfg.Edge.Delivery
	if f.url != "" {
		delivery = ""
	}
	res.Env = bench.Env(delivery, versionString())
	if f.json {
		return bench.WriteJSON(a.stdout, res)
	}
	return bench.WriteTable(a.stdout, res)
}

// spawnTarget runs this binary's serve as a child process with the
// configuration flags of this command (bench.SpawnTarget).
func (a *app) spawnTarget(ctx context.Context, cmd *cobra.Command, cfg *config.Config, viaNATS bool, log *slog.Logger) (bench.Target, func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return bench.Target{}, nil, fmt.Errorf("cmd: bench: --spawn: %w", err)
	}
	var args []string
	if p, _ := cmd.Flags().GetString("config"); p != "" {
		args = append(args, "--config", p)
	}
	sets, _ := cmd.Flags().GetStringArray("set")
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	t, stop, err := bench.SpawnTarget(ctx, cfg, bench.SpawnOptions{Exe: exe, Args: args, Env: a.environ, Stderr: a.stderr}, viaNATS, log)
	if err != nil {
		return t, nil, fmt.Errorf("cmd: bench: --spawn: %w", err)
	}
	return t, stop, nil
}
