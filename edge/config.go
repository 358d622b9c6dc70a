package edge

import (
	"net/url"
	"time"
)

// Delivery engines (SPEC §1).
const (
	DeliveryConsumer = "consumer"
	DeliveryLive     = "live"
)

// Config configures device delivery (SPEC §6). It is the `edge:` section of
// Herald's configuration; package config names it and calls Check.
type Config struct {
	// Delivery is the engine: live (the default) or consumer.
	Delivery string `yaml:"delivery"`
	// AckWait is how long a delivered message waits for its ack before it
	// is sent again on the same connection.
	AckWait time.Duration `yaml:"ack_wait"`
	// MaxInflight is W, the most unacked messages per device; delivery to
	// a device pauses while it has W.
	MaxInflight int `yaml:"max_inflight"`
	// WriteTimeout bounds each write to a socket; one that misses it
	// closes that connection with 4008 (slow consumer), keeping its
	// position.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// PingInterval is how often the edge pings (WebSocket) or sends a
	// comment (SSE).
	PingInterval time.Duration `yaml:"ping_interval"`
	// IdleTimeout closes a WebSocket that sent nothing, pong included, for
	// this long; longer than PingInterval.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// DeviceTTL is how long an unused device's position (KV entry or
	// consumer) is kept.
	DeviceTTL time.Duration `yaml:"device_ttl"`
	// NewDeviceBacklog is how many of the user's last messages a new
	// device without since receives (0: only those published after it
	// connects).
	NewDeviceBacklog int `yaml:"new_device_backlog"`
	// MaxFrameBytes bounds a client frame; a larger one closes the
	// connection with 1009.
	MaxFrameBytes int `yaml:"max_frame_bytes"`
	// MaxConnsPerUser bounds the connections of one user on one edge
	// (WebSocket close 4009, SSE 429 too_many_connections). 0: unlimited.
	MaxConnsPerUser int `yaml:"max_conns_per_user"`
	// MaxDevicesPerUser bounds the devices (positions kept for the device
	// TTL) of one user; a new device beyond it is refused before the
	// upgrade with 429 too_many_devices. 0: unlimited.
	MaxDevicesPerUser int `yaml:"max_devices_per_user"`
	// ShutdownTimeout bounds a graceful shutdown: sessions closed with
	// 1001, positions written.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// MaxConns bounds the connections of one edge; beyond it an upgrade is
	// refused with 503 unavailable. 0: unlimited.
	MaxConns int `yaml:"max_conns"`
	// IPConnectRate is the connection attempts per second one client IP
	// may make (a token bucket of IPConnectBurst); beyond it 429
	// rate_limited. It sees the TCP peer: set 0 behind a proxy. 0:
	// unlimited.
	IPConnectRate int `yaml:"ip_connect_rate"`
	// IPConnectBurst is the bucket size of IPConnectRate.
	IPConnectBurst int `yaml:"ip_connect_burst"`
	// AllowedOrigins are the Origin values (scheme://host[:port]) a browser
	// upgrade may come from besides the edge's own origin; "*" allows any.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// Console serves the web console at GET / (the JavaScript client at
	// GET /v1/herald.js is served either way).
	Console bool `yaml:"console"`
}

// DefaultConfig is the edge section's default.
func DefaultConfig() Config {
	return Config{
		Delivery:        DeliveryLive,
		AckWait:         30 * time.Second,
		MaxInflight:     256,
		WriteTimeout:    10 * time.Second,
		PingInterval:    30 * time.Second,
		IdleTimeout:     60 * time.Second,
		DeviceTTL:       30 * 24 * time.Hour,
		MaxFrameBytes:   4 << 10,
		ShutdownTimeout: 10 * time.Second,
		Console:         true,
		// Limits a normal deployment does not reach; 0 turns each off.
		MaxConnsPerUser:   64,
		MaxDevicesPerUser: 32,
		MaxConns:          100000,
		IPConnectRate:     20,
		IPConnectBurst:    50,
	}
}

// Check calls bad for each invalid field, with its YAML key.
func (c *Config) Check(bad func(key string, value any, msg string)) {
	switch c.Delivery {
	case DeliveryConsumer, DeliveryLive:
	default:
		bad("delivery", c.Delivery, "must be consumer or live")
	}
	if c.AckWait < 100*time.Millisecond {
		bad("ack_wait", c.AckWait, "must be at least 100ms")
	}
	if c.MaxInflight < 1 || c.MaxInflight > 10000 {
		bad("max_inflight", c.MaxInflight, "must be 1 to 10000")
	}
	if c.WriteTimeout <= 0 {
		bad("write_timeout", c.WriteTimeout, "must be positive")
	}
	if c.PingInterval <= 0 {
		bad("ping_interval", c.PingInterval, "must be positive")
	}
	if c.IdleTimeout <= c.PingInterval {
		bad("idle_timeout", c.IdleTimeout, "must be longer than edge.ping_interval")
	}
	if c.DeviceTTL < time.Minute {
		bad("device_ttl", c.DeviceTTL, "must be at least 1m")
	}
	if c.NewDeviceBacklog < 0 {
		bad("new_device_backlog", c.NewDeviceBacklog, "must not be negative")
	}
	if c.MaxFrameBytes < 64 {
		bad("max_frame_bytes", c.MaxFrameBytes, "must be at least 64")
	}
	if c.MaxConnsPerUser < 0 {
		bad("max_conns_per_user", c.MaxConnsPerUser, "must not be negative (0: unlimited)")
	}
	if c.MaxDevicesPerUser < 0 {
		bad("max_devices_per_user", c.MaxDevicesPerUser, "must not be negative (0: unlimited)")
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown_timeout", c.ShutdownTimeout, "must be positive")
	}
	if c.MaxConns < 0 {
		bad("max_conns", c.MaxConns, "must not be negative (0: unlimited)")
	}
	if c.IPConnectRate < 0 {
		bad("ip_connect_rate", c.IPConnectRate, "must not be negative (0: unlimited)")
	}
	if c.IPConnectRate > 0 && c.IPConnectBurst < 1 {
		bad("ip_connect_burst", c.IPConnectBurst, "must be positive when edge.ip_connect_rate is set")
	}
	for _, o := range c.AllowedOrigins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			bad("allowed_origins", o, `each must be "*" or an origin like https://app.example.com`)
		}
	}
}
