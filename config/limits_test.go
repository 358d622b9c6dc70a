package config

import (
	"errors"
	"testing"
	"time"
)

// TestLimitsValidation: each bad limit, TLS or admin setting is an error
// naming its YAML path.
func TestLimitsValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		path  string
		value string
		extra map[string]string
	}{
		{path: "ingest.rate_limit", value: "-1"},
		{path: "ingest.rate_burst", value: "0", extra: map[string]string{"ingest.rate_limit": "10"}},
		{path: "ingest.max_concurrent_batches", value: "-1"},
		{path: "edge.max_conns", value: "-1"},
		{path: "edge.max_devices_per_user", value: "-1"},
		{path: "auth.jwt_secret", value: "a"},
		{path: "auth.jwt_secret", value: "0123456789abcdef0123456789abcde"}, // 31 bytes
		{path: "auth.max_token_ttl", value: "-1s"},
		{path: "edge.ip_connect_rate", value: "-5"},
		{path: "edge.ip_connect_burst", value: "0", extra: map[string]string{"edge.ip_connect_rate": "1"}},
		{path: "edge.allowed_origins", value: "app.example.com"},
		{path: "edge.allowed_origins", value: "ftp://app.example.com"},
		{path: "edge.allowed_origins", value: "https://app.example.com/path"},
		{path: "http.tls_cert", value: "cert.pem"},
		{path: "http.admin_listen", value: "localhost"},
	} {
		c := Default()
		for p, v := range tc.extra {
			if err := c.Set(p, v); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Set(tc.path, tc.value); err != nil {
			t.Fatal(err)
		}
		err := c.Validate()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Path != tc.path {
			t.Errorf("%s=%s: Validate() = %v, want a FieldError for %s", tc.path, tc.value, err, tc.path)
		}
	}
	c := Default()
	for p, v := range map[string]string{
		"ingest.rate_limit": "100", "edge.max_conns": "10000", "edge.ip_connect_rate": "5",
		"edge.allowed_origins": "https://app.example.com, http://localhost:3000/, *",
		"http.tls_cert":        "c.pem", "http.tls_key": "k.pem", "http.admin_listen": "127.0.0.1:9090",
	} {
		if err := c.Set(p, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Validate(); err != nil {
		t.Errorf("valid limits refused: %v", err)
	}
	if err := c.ApplyEnv([]string{"HERALD_EDGE_MAX_CONNS=5", "HERALD_HTTP_ADMIN_LISTEN=:9091", "HERALD_INGEST_RATE_LIMIT=7"}); err != nil {
		t.Fatal(err)
	}
	if c.Edge.MaxConns != 5 || c.HTTP.AdminListen != ":9091" || c.Ingest.RateLimit != 7 {
		t.Errorf("environment not applied: %+v %+v %+v", c.Edge, c.HTTP, c.Ingest)
	}
}

// TestLimitDefaults: every limit is on by default, at a value a normal
// deployment does not reach, and 0 turns each off explicitly.
func TestLimitDefaults(t *testing.T) {
	t.Parallel()
	c := Default()
	for _, d := range []struct {
		path      string
		got, want int64
	}{
		{"edge.max_conns_per_user", int64(c.Edge.MaxConnsPerUser), 64},
		{"edge.max_devices_per_user", int64(c.Edge.MaxDevicesPerUser), 32},
		{"edge.max_conns", int64(c.Edge.MaxConns), 100000},
		{"edge.ip_connect_rate", int64(c.Edge.IPConnectRate), 20},
		{"edge.ip_connect_burst", int64(c.Edge.IPConnectBurst), 50},
		{"auth.max_token_ttl", int64(c.Auth.MaxTokenTTL), int64(30 * 24 * time.Hour)},
	} {
		if d.got != d.want {
			t.Errorf("default %s = %d, want %d", d.path, d.got, d.want)
		}
	}
	for _, p := range []string{"edge.max_conns_per_user", "edge.max_devices_per_user", "edge.max_conns", "edge.ip_connect_rate", "auth.max_token_ttl"} {
		if err := c.Set(p, "0"); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Validate(); err != nil {
		t.Errorf("every limit set to 0 (unlimited): %v", err)
	}
	if err := c.Set("auth.jwt_secret", "0123456789abcdef0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("a 32-byte auth.jwt_secret: %v", err)
	}
}
