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
)

// Delivery engines (SPEC §1).
const (
	DeliveryConsumer = "consumer"
	DeliveryLive     = "live"
)

// Config is the whole configuration of every Herald role.
type Config struct {
	// Listen is the HTTP address of ingest and edge.
	Listen string `yaml:"listen"`
	// DataDir holds the embedded NATS store and generated credentials (serve).
	DataDir string `yaml:"data_dir"`
	NATS    NATS   `yaml:"nats"`
	Stream  Stream `yaml:"stream"`
	Ingest  Ingest `yaml:"ingest"`
	Auth    Auth   `yaml:"auth"`
	Edge    Edge   `yaml:"edge"`
	Log     Log    `yaml:"log"`
	HTTP    HTTP   `yaml:"http"`
}

// NATS is how Herald connects to NATS, and for serve, where the embedded
// server listens.
type NATS struct {
	// URL is a comma-separated list of server URLs (ingest, edge, streams).
	URL      string `yaml:"url"`
	Token    string `yaml:"token"`
	User     string `yaml:"user"`
	Password string `yaml:"password"`
	Creds    string `yaml:"creds"`
	TLSCA    string `yaml:"tls_ca"`
	TLSCert  string `yaml:"tls_cert"`
	TLSKey   string `yaml:"tls_key"`
	// Embedded is the client listen address of the embedded server in
	// serve; "off" disables the client port.
	Embedded string `yaml:"embedded_listen"`
	// Timeout bounds connects and JetStream API calls.
	Timeout time.Duration `yaml:"timeout"`
	// PingInterval and MaxPingsOut bound how long a connection to a server
	// that stopped answering (hung, or cut off without a reset) counts as
	// up: after MaxPingsOut unanswered pings, PingInterval apart, the client
	// drops it and reconnects to another server of the cluster.
	PingInterval time.Duration `yaml:"ping_interval"`
	MaxPingsOut  int           `yaml:"max_pings_out"`
}

// Stream is the definition of the HERALD stream (SPEC §9).
type Stream struct {
	Name            string        `yaml:"name"`
	Prefix          string        `yaml:"prefix"`
	MaxAge          time.Duration `yaml:"max_age"`
	MaxMsgsPerUser  int64         `yaml:"max_msgs_per_user"`
	MaxBytes        int64         `yaml:"max_bytes"` // 0: unlimited
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
	Replicas        int           `yaml:"replicas"`
	MaxConsumers    int           `yaml:"max_consumers"`
}

// Ingest configures the producer API.
type Ingest struct {
	ProducerKeys    []string      `yaml:"producer_keys"`
	MaxMessageBytes int           `yaml:"max_message_bytes"`
	MaxBatch        int           `yaml:"max_batch"`
	PublishTimeout  time.Duration `yaml:"publish_timeout"`
	RetryAfter      time.Duration `yaml:"retry_after"`
	// RateLimit is the messages per second each producer key may publish
	// (a token bucket; a batch takes one token per message, at most
	// RateBurst). 0: unlimited.
	RateLimit int `yaml:"rate_limit"`
	// RateBurst is the bucket size of RateLimit.
	RateBurst int `yaml:"rate_burst"`
}

// Auth configures client tokens (SPEC §5).
type Auth struct {
	// JWTSecret verifies HS256 tokens and signs `herald token`.
	JWTSecret string `yaml:"jwt_secret"`
	// PublicKeys are PEM files of EdDSA, ES256 or RS256 public keys.
	PublicKeys []string `yaml:"public_keys"`
}

// Edge configures device delivery (SPEC §6).
type Edge struct {
	Delivery         string        `yaml:"delivery"`
	AckWait          time.Duration `yaml:"ack_wait"`
	MaxInflight      int           `yaml:"max_inflight"`
	WriteTimeout     time.Duration `yaml:"write_timeout"`
	PingInterval     time.Duration `yaml:"ping_interval"`
	IdleTimeout      time.Duration `yaml:"idle_timeout"`
	DeviceTTL        time.Duration `yaml:"device_ttl"`
	NewDeviceBacklog int           `yaml:"new_device_backlog"`
	MaxFrameBytes    int           `yaml:"max_frame_bytes"`
	SendQueue        int           `yaml:"send_queue"`
	MaxConnsPerUser  int           `yaml:"max_conns_per_user"` // 0: unlimited
	ShutdownTimeout  time.Duration `yaml:"shutdown_timeout"`
	// MaxConns bounds the connections of one edge; beyond it an upgrade is
	// refused with 503 unavailable. 0: unlimited.
	MaxConns int `yaml:"max_conns"`
	// IPConnectRate is the connection attempts per second one client IP
	// may make (a token bucket of IPConnectBurst); beyond it 429
	// rate_limited. 0: unlimited.
	IPConnectRate  int `yaml:"ip_connect_rate"`
	IPConnectBurst int `yaml:"ip_connect_burst"`
	// AllowedOrigins are the Origin values (scheme://host[:port]) a browser
	// upgrade may come from besides the edge's own host; "*" allows any.
	AllowedOrigins []string `yaml:"allowed_origins"`
}

// Log configures log/slog output.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// HTTP configures the HTTP server.
type HTTP struct {
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	MaxHeaderBytes    int           `yaml:"max_header_bytes"`
	MaxBodyBytes      int64         `yaml:"max_body_bytes"`
	// TLSCert and TLSKey are PEM files; when set the listener serves
	// HTTPS and WSS only.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
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
			URL:      "nats://127.0.0.1:4222",
			Embedded: "127.0.0.1:4222",
			Timeout:  5 * time.Second,
			// nats.go's defaults (2 min, 2) take 4 to 6 minutes to notice
			// a hung server; these take 15 to 20 s.
			PingInterval: 5 * time.Second,
			MaxPingsOut:  3,
		},
		Stream: Stream{
			Name:            "HERALD",
			Prefix:          "herald",
			MaxAge:          7 * 24 * time.Hour,
			MaxMsgsPerUser:  10000,
			DuplicateWindow: 2 * time.Minute,
			Replicas:        1,
			MaxConsumers:    100000,
		},
		Ingest: Ingest{
			MaxMessageBytes: 64 << 10,
			MaxBatch:        1000,
			PublishTimeout:  5 * time.Second,
			RetryAfter:      time.Second,
			RateBurst:       1000,
		},
		Edge: Edge{
			Delivery:        DeliveryLive,
			AckWait:         30 * time.Second,
			MaxInflight:     256,
			WriteTimeout:    10 * time.Second,
			PingInterval:    30 * time.Second,
			IdleTimeout:     60 * time.Second,
			DeviceTTL:       30 * 24 * time.Hour,
			MaxFrameBytes:   4 << 10,
			SendQueue:       512,
			ShutdownTimeout: 10 * time.Second,
			IPConnectBurst:  20,
		},
		Log:  Log{Level: "info", Format: "text"},
		HTTP: HTTP{ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 16 << 10, MaxBodyBytes: 8 << 20},
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
	c.Stream.validate(bad)
	c.Ingest.validate(bad)
	c.Edge.validate(bad)
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
	if n.PingInterval <= 0 {
		bad("nats.ping_interval", n.PingInterval, "must be positive")
	}
	if n.MaxPingsOut < 1 {
		bad("nats.max_pings_out", n.MaxPingsOut, "must be at least 1")
	}
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

func (s *Stream) validate(bad badFunc) {
	if s.Name == "" || strings.ContainsAny(s.Name, ".*> \t") {
		bad("stream.name", s.Name, "must be a non-empty name without . * > or spaces")
	}
	if s.Prefix == "" || strings.ContainsAny(s.Prefix, "*> \t") || strings.HasPrefix(s.Prefix, ".") || strings.HasSuffix(s.Prefix, ".") || strings.Contains(s.Prefix, "..") {
		bad("stream.prefix", s.Prefix, "must be dot-separated tokens without wildcards")
	}
	if s.MaxAge < 0 {
		bad("stream.max_age", s.MaxAge, "must not be negative (0: unlimited)")
	}
	if s.MaxMsgsPerUser < 0 {
		bad("stream.max_msgs_per_user", s.MaxMsgsPerUser, "must not be negative (0: unlimited)")
	}
	if s.MaxBytes < 0 {
		bad("stream.max_bytes", s.MaxBytes, "must not be negative (0: unlimited)")
	}
	if s.DuplicateWindow <= 0 {
		bad("stream.duplicate_window", s.DuplicateWindow, "must be positive")
	}
	if s.MaxAge > 0 && s.DuplicateWindow > s.MaxAge {
		bad("stream.duplicate_window", s.DuplicateWindow, "must not exceed stream.max_age")
	}
	if s.Replicas < 1 || s.Replicas > 5 {
		bad("stream.replicas", s.Replicas, "must be 1 to 5")
	}
	if s.MaxConsumers < 1 {
		bad("stream.max_consumers", s.MaxConsumers, "must be positive")
	}
}

func (i *Ingest) validate(bad badFunc) {
	for _, k := range i.ProducerKeys {
		if len(k) < 16 {
			bad("ingest.producer_keys", "***", "each key must be at least 16 characters")
			break
		}
	}
	if i.MaxMessageBytes < 256 || i.MaxMessageBytes > 64<<20 {
		bad("ingest.max_message_bytes", i.MaxMessageBytes, "must be 256 B to 64 MiB (and at most the NATS max payload)")
	}
	if i.MaxBatch < 1 || i.MaxBatch > 100000 {
		bad("ingest.max_batch", i.MaxBatch, "must be 1 to 100000")
	}
	if i.PublishTimeout <= 0 {
		bad("ingest.publish_timeout", i.PublishTimeout, "must be positive")
	}
	if i.RetryAfter < time.Second {
		bad("ingest.retry_after", i.RetryAfter, "must be at least 1s")
	}
	if i.RateLimit < 0 {
		bad("ingest.rate_limit", i.RateLimit, "must not be negative (0: unlimited)")
	}
	if i.RateLimit > 0 && i.RateBurst < 1 {
		bad("ingest.rate_burst", i.RateBurst, "must be positive when ingest.rate_limit is set")
	}
}

func (e *Edge) validate(bad badFunc) {
	switch e.Delivery {
	case DeliveryConsumer, DeliveryLive:
	default:
		bad("edge.delivery", e.Delivery, "must be consumer or live")
	}
	if e.AckWait < 100*time.Millisecond {
		bad("edge.ack_wait", e.AckWait, "must be at least 100ms")
	}
	if e.MaxInflight < 1 || e.MaxInflight > 10000 {
		bad("edge.max_inflight", e.MaxInflight, "must be 1 to 10000")
	}
	if e.WriteTimeout <= 0 {
		bad("edge.write_timeout", e.WriteTimeout, "must be positive")
	}
	if e.PingInterval <= 0 {
		bad("edge.ping_interval", e.PingInterval, "must be positive")
	}
	if e.IdleTimeout <= e.PingInterval {
		bad("edge.idle_timeout", e.IdleTimeout, "must be longer than edge.ping_interval")
	}
	if e.DeviceTTL < time.Minute {
		bad("edge.device_ttl", e.DeviceTTL, "must be at least 1m")
	}
	if e.NewDeviceBacklog < 0 {
		bad("edge.new_device_backlog", e.NewDeviceBacklog, "must not be negative")
	}
	if e.MaxFrameBytes < 64 {
		bad("edge.max_frame_bytes", e.MaxFrameBytes, "must be at least 64")
	}
	if e.MaxConnsPerUser < 0 {
		bad("edge.max_conns_per_user", e.MaxConnsPerUser, "must not be negative (0: unlimited)")
	}
	if e.SendQueue < 1 {
		bad("edge.send_queue", e.SendQueue, "must be positive")
	}
	if e.ShutdownTimeout <= 0 {
		bad("edge.shutdown_timeout", e.ShutdownTimeout, "must be positive")
	}
	if e.MaxConns < 0 {
		bad("edge.max_conns", e.MaxConns, "must not be negative (0: unlimited)")
	}
	if e.IPConnectRate < 0 {
		bad("edge.ip_connect_rate", e.IPConnectRate, "must not be negative (0: unlimited)")
	}
	if e.IPConnectRate > 0 && e.IPConnectBurst < 1 {
		bad("edge.ip_connect_burst", e.IPConnectBurst, "must be positive when edge.ip_connect_rate is set")
	}
	for _, o := range e.AllowedOrigins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			bad("edge.allowed_origins", o, `each must be "*" or an origin like https://app.example.com`)
		}
	}
}
