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
	"unicode"
	"unicode/utf8"
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
	Compat  Compat `yaml:"compat"`
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
	// SyncInterval is how often serve's embedded server fsyncs JetStream
	// writes: a duration, or "always" to fsync every write before it is
	// acknowledged. Between syncs, acknowledged writes may be in the OS
	// page cache only, which an OS crash or power loss loses. Only the
	// embedded server reads it; an external cluster has its own
	// jetstream sync_interval.
	SyncInterval string `yaml:"sync_interval"`
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
	// (a token bucket; a batch takes one token per message). 0: unlimited.
	RateLimit int `yaml:"rate_limit"`
	// RateBurst is the bucket size of RateLimit, and so the largest batch
	// a rate-limited key can send.
	RateBurst int `yaml:"rate_burst"`
	// MaxConcurrentBatches bounds the batch requests one ingest node
	// decodes and publishes at once; a batch beyond it waits up to
	// PublishTimeout for a slot, then gets 503. 0: unlimited.
	MaxConcurrentBatches int `yaml:"max_concurrent_batches"`
}

// MinJWTSecretBytes is the shortest auth.jwt_secret accepted: HS256 needs a
// key of at least the hash size, 256 bits (RFC 7518 §3.2).
const MinJWTSecretBytes = 32

// Auth configures client tokens (SPEC §5).
type Auth struct {
	// JWTSecret verifies HS256 tokens and signs `herald token`; at least
	// MinJWTSecretBytes bytes.
	JWTSecret string `yaml:"jwt_secret"`
	// PublicKeys are PEM files of EdDSA, ES256 or RS256 public keys.
	PublicKeys []string `yaml:"public_keys"`
	// MaxTokenTTL is the longest lifetime a client token may have: exp
	// minus iat (or minus now when it has no iat). Longer tokens are
	// refused. 0: no maximum.
	MaxTokenTTL time.Duration `yaml:"max_token_ttl"`
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
	// MaxDevicesPerUser bounds the devices (positions kept for the device
	// TTL) of one user; a new device beyond it is refused before the
	// upgrade with 429 too_many_devices. 0: unlimited.
	MaxDevicesPerUser int           `yaml:"max_devices_per_user"`
	ShutdownTimeout   time.Duration `yaml:"shutdown_timeout"`
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
	// Console serves the web console at GET / (the JavaScript client at
	// GET /v1/herald.js is served either way).
	Console bool `yaml:"console"`
}

// Compat configures the drop-in endpoints that let tools written for ntfy
// and gotify publish to and subscribe from Herald unchanged (SPEC §12).
type Compat struct {
	// NTFY serves ntfy's publish and subscribe endpoints.
	NTFY NTFY `yaml:"ntfy"`
	// Gotify serves gotify's publish endpoint.
	Gotify Gotify `yaml:"gotify"`
}

// NTFY configures the ntfy-compatible endpoints: PUT|POST /<topic> and the
// JSON form POST / on ingest nodes, GET /<topic>/json, /sse and /ws on
// edges. The topic is the user id.
type NTFY struct {
	// Enabled serves the endpoints; they never shadow /v1/…, /healthz,
	// /readyz, /metrics or the console at /.
	Enabled bool `yaml:"enabled"`
}

// Gotify configures the gotify-compatible endpoint POST /message on ingest
// nodes.
type Gotify struct {
	// Enabled serves POST /message.
	Enabled bool `yaml:"enabled"`
	// Apps maps each gotify application token to the user its messages
	// go to. The tokens are secrets, like producer keys. As an environment
	// variable or flag: comma-separated token=user pairs.
	Apps map[string]string `yaml:"apps"`
}

// MinGotifyTokenLen is the shortest compat.gotify.apps token accepted:
// gotify's own application tokens are 15 characters.
const MinGotifyTokenLen = 12

// Log configures log/slog output.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// HTTP configures the HTTP server.
type HTTP struct {
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// BodyTimeout bounds the reading of a request body, from the end of
	// the headers, before routing and authentication.
	BodyTimeout time.Duration `yaml:"body_timeout"`
	// IdleTimeout closes a keep-alive connection idle between requests.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes bounds the request line and headers; beyond it the
	// answer is 431 too_large.
	MaxHeaderBytes int   `yaml:"max_header_bytes"`
	MaxBodyBytes   int64 `yaml:"max_body_bytes"`
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
			URL:          "nats://127.0.0.1:4222",
			Embedded:     "127.0.0.1:4222",
			Timeout:      5 * time.Second,
			SyncInterval: "2m",
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
			// A batch in progress holds its encoded messages, about the
			// size of its body, until JetStream acks them: 8 bound that
			// to about 8 × http.max_body_bytes per node.
			MaxConcurrentBatches: 8,
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
			Console:         true,
			// Limits a normal deployment does not reach; 0 turns each off.
			MaxConnsPerUser:   64,
			MaxDevicesPerUser: 32,
			MaxConns:          100000,
			IPConnectRate:     20,
			IPConnectBurst:    50,
		},
		Auth:   Auth{MaxTokenTTL: 30 * 24 * time.Hour},
		Compat: Compat{NTFY: NTFY{Enabled: true}, Gotify: Gotify{Enabled: true}},
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
	c.Stream.validate(bad)
	c.Ingest.validate(bad)
	c.Auth.validate(bad)
	c.Edge.validate(bad)
	c.Compat.validate(bad)
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
	if i.MaxConcurrentBatches < 0 {
		bad("ingest.max_concurrent_batches", i.MaxConcurrentBatches, "must not be negative (0: unlimited)")
	}
}

func (a *Auth) validate(bad badFunc) {
	if a.JWTSecret != "" && len(a.JWTSecret) < MinJWTSecretBytes {
		bad("auth.jwt_secret", "***", fmt.Sprintf("must be at least %d bytes (HS256 needs a 256-bit key, RFC 7518 §3.2); generate one with `openssl rand -hex 32`", MinJWTSecretBytes))
	}
	if a.MaxTokenTTL < 0 {
		bad("auth.max_token_ttl", a.MaxTokenTTL, "must not be negative (0: no maximum)")
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
	if e.MaxDevicesPerUser < 0 {
		bad("edge.max_devices_per_user", e.MaxDevicesPerUser, "must not be negative (0: unlimited)")
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

func (c *Compat) validate(bad badFunc) {
	// One problem is reported per kind; the tokens are never shown.
	var badToken, badUser bool
	for tok, user := range c.Gotify.Apps {
		if !badToken && (len(tok) < MinGotifyTokenLen || strings.ContainsFunc(tok, unicode.IsSpace)) {
			badToken = true
			bad("compat.gotify.apps", "***", fmt.Sprintf("each application token must be at least %d characters without spaces", MinGotifyTokenLen))
		}
		if !badUser && (user == "" || len(user) > 256 || !utf8.ValidString(user) || strings.ContainsFunc(user, unicode.IsControl)) {
			badUser = true
			bad("compat.gotify.apps", "(a user id, not shown)", "each user must be 1–256 bytes of UTF-8 without control characters")
		}
	}
}
