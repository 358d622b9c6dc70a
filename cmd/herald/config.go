package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/herald-push/herald/config"
)

// configFlags maps each common flag to the YAML path it sets. Only flags
// given on the command line are applied, on top of the file and the
// environment.
func configFlags() []struct{ name, path, usage string } {
	return []struct{ name, path, usage string }{
		{"listen", "listen", "`host:port` the HTTP API (ingest and edge) listens on"},
		{"data-dir", "data_dir", "`dir` of serve's embedded NATS store and generated credentials"},
		{"nats-url", "nats.url", "comma-separated NATS server `URLs` (ingest, edge, streams, doctor, publish --nats, bench --nats)"},
		{"nats-listen", "nats.embedded_listen", "`host:port` of serve's embedded NATS client port (\"off\": in-process only)"},
		{"nats-token", "nats.token", "NATS auth `token`"},
		{"nats-user", "nats.user", "NATS `user` (with --nats-password)"},
		{"nats-password", "nats.password", "NATS `password`"},
		{"nats-creds", "nats.creds", "NATS credentials `file` (.creds)"},
		{"nats-tls-ca", "nats.tls_ca", "PEM `file` of the CA that signed the NATS servers' certificates"},
		{"nats-tls-cert", "nats.tls_cert", "PEM client certificate `file` for NATS (with --nats-tls-key)"},
		{"nats-tls-key", "nats.tls_key", "PEM client key `file` for NATS"},
		{"delivery", "edge.delivery", "delivery `engine`: consumer or live"},
		{"new-device-backlog", "edge.new_device_backlog", "a new device first gets the last `K` messages stored before it connected"},
		{"replicas", "stream.replicas", "`N` stream replicas (1 to 5)"},
		{"log-level", "log.level", "log `level`: debug, info, warn or error"},
		{"log-format", "log.format", "log `format`: text or json"},
		{"tls-cert", "http.tls_cert", "PEM certificate `file`: serve HTTPS and WSS (with --tls-key)"},
		{"tls-key", "http.tls_key", "PEM private key `file` of --tls-cert"},
		{"admin-listen", "http.admin_listen", "`host:port` of the admin listener (/debug/pprof/, /metrics); off when empty"},
	}
}

// addConfigFlags adds the configuration flags, persistent so that every
// command takes them. Their defaults are shown from config.Default(); a flag
// only overrides the file and environment when it is given.
func addConfigFlags(root *cobra.Command) {
	pf := root.PersistentFlags()
	pf.String("config", "", "YAML configuration `file`")
	def := config.Default()
	for _, f := range configFlags() {
		pf.String(f.name, def.Get(f.path), f.usage)
	}
	pf.StringArray("set", nil, "set any configuration path (`path=value`, repeatable), e.g. --set edge.ack_wait=10s")
}

// loadConfig builds the configuration of a command: Default(), then the
// --config file, then HERALD_* variables, then the flags given, then
// Validate.
func (a *app) loadConfig(cmd *cobra.Command) (config.Config, error) {
	cfg := config.Default()
	fs := cmd.Flags()
	if path, _ := fs.GetString("config"); path != "" {
		if err := cfg.LoadFile(path); err != nil {
			return cfg, fmt.Errorf("cmd: load config: %w", err)
		}
	}
	if err := cfg.ApplyEnv(a.environ); err != nil {
		return cfg, fmt.Errorf("cmd: load config: %w", err)
	}
	if err := applyFlags(&cfg, fs); err != nil {
		return cfg, fmt.Errorf("cmd: load config: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("cmd: invalid config: %w", err)
	}
	return cfg, nil
}

// applyFlags overlays the flags that were given: the named ones, then each
// --set path=value in order.
func applyFlags(cfg *config.Config, fs *pflag.FlagSet) error {
	for _, f := range configFlags() {
		fl := fs.Lookup(f.name)
		if fl == nil || !fl.Changed {
			continue
		}
		if err := cfg.Set(f.path, fl.Value.String()); err != nil {
			return fmt.Errorf("%w (from --%s)", err, f.name)
		}
	}
	sets, err := fs.GetStringArray("set")
	if err != nil {
		return err
	}
	for _, kv := range sets {
		path, value, ok := strings.Cut(kv, "=")
		if !ok || path == "" {
			return fmt.Errorf("--set %q: want path=value", kv)
		}
		if err := cfg.Set(strings.TrimSpace(path), value); err != nil {
			return fmt.Errorf("%w (from --set)", err)
		}
	}
	return nil
}

// newLogger returns the process logger: log/slog to w, text or JSON.
func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var lvl slog.Level
	switch c.Level {
	case "debug":
		lvl = slog.LevelDebug
	case "warn":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	default:
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
