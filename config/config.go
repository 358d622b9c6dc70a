// Package config holds Herald's one configuration struct. A Config starts
// from Default(), is overlaid by a YAML file (LoadYAML), HERALD_* environment
// variables (ApplyEnv) and command-line flags (Set), and is then checked by
// Validate, which names the YAML path of the bad field.
//
// A Config is a plain value: safe to copy, not safe for concurrent mutation.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/herald-push/herald/edge"
	"github.com/herald-push/herald/edge/token"
	"github.com/herald-push/herald/ingest"
	"github.com/herald-push/herald/streams"
)

// Delivery engines (SPEC §1).
const (
	DeliveryConsumer = edge.DeliveryConsumer
	DeliveryLive     = edge.DeliveryLive
)

// Config is the whole configuration of every Herald role.
type Config struct {
	// Listen is the HTTP address of ingest and edge.
	Listen string `yaml:"listen"`
	// DataDir holds the embedded NATS store and generated credentials (serve).
	DataDir string `yaml:"data_dir"`
	// NATS is how every role connects to NATS.
	NATS NATS `yaml:"nats"`
	// Stream defines the HERALD stream and its subjects.
	Stream Stream `yaml:"stream"`
	// Ingest configures the producer API.
	Ingest Ingest `yaml:"ingest"`
	// Auth configures client tokens.
	Auth Auth `yaml:"auth"`
	// Edge configures device delivery.
	Edge Edge `yaml:"edge"`
	// Log configures the logs.
	Log Log `yaml:"log"`
	// HTTP configures the HTTP listeners.
	HTTP HTTP `yaml:"http"`
}

// NATS is how Herald connects to NATS, and for serve, where the embedded
// server listens.
type NATS struct {
	// URL is a comma-separated list of server URLs (ingest, edge, streams).
	URL string `yaml:"url"`
	// Token authenticates with a NATS token (not with User).
	Token string `yaml:"token"`
	// User and Password authenticate with a NATS user.
	User string `yaml:"user"`
	// Password is User's password.
	Password string `yaml:"password"`
	// Creds is a NATS credentials file (JWT and NKey seed).
	Creds string `yaml:"creds"`
	// TLSCA is a PEM file of the CAs that sign the NATS servers'
	// certificates.
	TLSCA string `yaml:"tls_ca"`
	// TLSCert is a PEM client certificate for mutual TLS, with TLSKey.
	TLSCert string `yaml:"tls_cert"`
	// TLSKey is TLSCert's PEM private key.
	TLSKey string `yaml:"tls_key"`
	// Embedded is the client listen address of the embedded server in
	// serve; "off" disables the client port.
	Embedded string `yaml:"embedded_listen"`
	// Timeout bounds connects and JetStream API calls.
	Timeout time.Duration `yaml:"timeout"`
	// SyncInterval is how often serve's embedded server fsyncs JetStream
	// writes: a duration, or "always" to fsync every write before it is
	// acknowledged. Between syncs, acknowledged writes may be in the OS
	// page cache only, which an OS crash or power loss loses. Only the
	// embedded server reads it; an external cluster has its own
	// jetstream sync_interval.
	SyncInterval string `yaml:"sync_interval"`
}

// The sections of the packages that own them: each package defines its
// section's fields, defaults and checks; this package names them, reads
// them and reports their problems with their YAML paths.
type (
	// Stream is the stream: section (streams.Config).
	Stream = streams.Config
	// Ingest is the ingest: section (ingest.Config).
	Ingest = ingest.Config
	// Auth is the auth: section (token.Config).
	Auth = token.Config
	// Edge is the edge: section (edge.Config).
	Edge = edge.Config
)

// MinJWTSecretBytes is the shortest auth.jwt_secret accepted.
const MinJWTSecretBytes = token.MinSecretBytes

// Log configures log/slog output.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is text or json.
	Format string `yaml:"format"`
}

// HTTP configures the HTTP server.
type HTTP struct {
	// ReadHeaderTimeout bounds the reading of a request's headers.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// BodyTimeout bounds the reading of a request body, from the end of
	// the headers, before routing and authentication.
	BodyTimeout time.Duration `yaml:"body_timeout"`
	// IdleTimeout closes a keep-alive connection idle between requests.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes bounds the request line and headers; beyond it the
	// answer is 431 too_large.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxBodyBytes is the hard cap on a request body (413 too_large).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// TLSCert is a PEM certificate; with TLSKey the listener serves HTTPS
	// and WSS only.
	TLSCert string `yaml:"tls_cert"`
	// TLSKey is TLSCert's PEM private key.
	TLSKey string `yaml:"tls_key"`
	// AdminListen is the address of the admin listener (/debug/pprof/ and
	// /metrics); "" keeps it off.
	AdminListen string `yaml:"admin_listen"`
}

// Default returns the configuration every overlay starts from.
func Default() Config {
	return Config{
		Listen:  ":8080",
		DataDir: "./herald-data",
		NATS: NATS{
			URL:          "nats://127.0.0.1:4222",
			Embedded:     "127.0.0.1:4222",
			Timeout:      5 * time.Second,
			SyncInterval: "2m",
		},
		Stream: streams.DefaultConfig(),
		Ingest: ingest.DefaultConfig(),
		Edge:   edge.DefaultConfig(),
		Auth:   token.DefaultConfig(),
		Log:    Log{Level: "info", Format: "text"},
		HTTP:   HTTP{ReadHeaderTimeout: 10 * time.Second, BodyTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10, MaxBodyBytes: 8 << 20},
	}
}

// FieldError names the YAML path of a bad setting.
type FieldError struct {
	Path  string
	Value any
	Msg   string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("config: %s = %v: %s", e.Path, e.Value, e.Msg)
}

// Validate checks every section and returns all problems joined.
func (c *Config) Validate() error {
	var errs []error
	bad := func(path string, v any, msg string) {
		errs = append(errs, &FieldError{Path: path, Value: v, Msg: msg})
	}
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			bad("listen", c.Listen, "must be host:port")
		}
	}
	c.NATS.validate(bad)
	c.Stream.Check(section("stream", bad))
	c.Ingest.Check(section("ingest", bad))
	c.Auth.Check(section("auth", bad))
	c.Edge.Check(section("edge", bad))
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", c.Log.Level, "must be debug, info, warn or error")
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", c.Log.Format, "must be text or json")
	}
	if c.HTTP.ReadHeaderTimeout <= 0 {
		bad("http.read_header_timeout", c.HTTP.ReadHeaderTimeout, "must be positive")
	}
	if c.HTTP.BodyTimeout <= 0 {
		bad("http.body_timeout", c.HTTP.BodyTimeout, "must be positive")
	}
	if c.HTTP.IdleTimeout <= 0 {
		bad("http.idle_timeout", c.HTTP.IdleTimeout, "must be positive")
	}
	if c.HTTP.MaxHeaderBytes < 1024 {
		bad("http.max_header_bytes", c.HTTP.MaxHeaderBytes, "must be at least 1024")
	}
	if c.HTTP.MaxBodyBytes < int64(c.Ingest.MaxMessageBytes) {
		bad("http.max_body_bytes", c.HTTP.MaxBodyBytes, "must be at least ingest.max_message_bytes")
	}
	if (c.HTTP.TLSCert == "") != (c.HTTP.TLSKey == "") {
		bad("http.tls_cert", c.HTTP.TLSCert, "http.tls_cert and http.tls_key go together")
	}
	if c.HTTP.AdminListen != "" {
		if _, _, err := net.SplitHostPort(c.HTTP.AdminListen); err != nil {
			bad("http.admin_listen", c.HTTP.AdminListen, "must be host:port (empty: off)")
		}
	}
	return errors.Join(errs...)
}

type badFunc func(path string, v any, msg string)

// section prefixes the keys a package's Check reports with its section.
func section(name string, bad badFunc) func(key string, v any, msg string) {
	return func(key string, v any, msg string) { bad(name+"."+key, v, msg) }
}

func (n *NATS) validate(bad badFunc) {
	for _, u := range n.URLs() {
		pu, err := url.Parse(u)
		if err != nil || pu.Host == "" {
			bad("nats.url", n.URL, fmt.Sprintf("%q is not a URL like nats://host:4222", u))
		}
	}
	if n.Embedded != "off" {
		if _, _, err := net.SplitHostPort(n.Embedded); err != nil {
			bad("nats.embedded_listen", n.Embedded, `must be host:port or "off"`)
		}
	}
	if (n.TLSCert == "") != (n.TLSKey == "") {
		bad("nats.tls_cert", n.TLSCert, "tls_cert and tls_key go together")
	}
	if n.Token != "" && n.User != "" {
		bad("nats.token", "***", "use either a token or user/password")
	}
	if n.Timeout <= 0 {
		bad("nats.timeout", n.Timeout, "must be positive")
	}
	if _, _, err := n.Sync(); err != nil {
		bad("nats.sync_interval", n.SyncInterval, err.Error())
	}
}

// Sync returns nats.sync_interval as the embedded server takes it: always
// is true for "always" (case-insensitive), else interval is the duration.
func (n *NATS) Sync() (interval time.Duration, always bool, err error) {
	if strings.EqualFold(n.SyncInterval, "always") {
		return 0, true, nil
	}
	d, err := time.ParseDuration(n.SyncInterval)
	if err != nil || d <= 0 {
		return 0, false, errors.New(`must be a positive duration (e.g. "2m", "1s") or "always"`)
	}
	return d, false, nil
}

// URLs returns the configured server URLs.
func (n *NATS) URLs() []string {
	var out []string
	for _, u := range strings.Split(n.URL, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}
