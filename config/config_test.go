package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDefaultIsValid(t *testing.T) {
	t.Parallel()
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
}

func TestOverlayOrder(t *testing.T) {
	t.Parallel()
	c := Default()
	yml := "edge:\n  ack_wait: 5s\n  max_inflight: 10\nnats:\n  url: nats://a:4222\n"
	if err := c.LoadYAML(strings.NewReader(yml)); err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyEnv([]string{"HERALD_NATS_URL=nats://b:4222,nats://c:4222", "HERALD_EDGE_MAX_INFLIGHT=20", "PATH=/bin"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Set("edge.max_inflight", "30"); err != nil {
		t.Fatal(err)
	}
	if c.Edge.AckWait != 5*time.Second {
		t.Errorf("ack_wait = %v, want 5s from YAML", c.Edge.AckWait)
	}
	if got := c.NATS.URLs(); len(got) != 2 || got[1] != "nats://c:4222" {
		t.Errorf("nats urls = %v, want env value", got)
	}
	if c.Edge.MaxInflight != 30 {
		t.Errorf("max_inflight = %d, want flag value 30", c.Edge.MaxInflight)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestConsoleSetting: the console is on by default, and edge.console turns
// it off from YAML or the environment.
func TestConsoleSetting(t *testing.T) {
	if !Default().Edge.Console {
		t.Fatal("edge.console is off by default")
	}
	c := Default()
	if err := c.LoadYAML(strings.NewReader("edge:\n  console: false\n")); err != nil || c.Edge.Console {
		t.Errorf("YAML edge.console: false: %v, console %v", err, c.Edge.Console)
	}
	c = Default()
	if err := c.ApplyEnv([]string{"HERALD_EDGE_CONSOLE=false"}); err != nil || c.Edge.Console {
		t.Errorf("HERALD_EDGE_CONSOLE=false: %v, console %v", err, c.Edge.Console)
	}
}

func TestUnknownKeysAreErrors(t *testing.T) {
	t.Parallel()
	c := Default()
	if err := c.LoadYAML(strings.NewReader("edge:\n  ack_wiat: 5s\n")); err == nil || !strings.Contains(err.Error(), "ack_wiat") {
		t.Errorf("LoadYAML with a typo = %v, want an error naming ack_wiat", err)
	}
	if err := c.ApplyEnv([]string{"HERALD_NOPE=1"}); err == nil || !strings.Contains(err.Error(), "HERALD_NOPE") {
		t.Errorf("ApplyEnv unknown = %v", err)
	}
	if err := c.Set("edge.nope", "1"); err == nil {
		t.Error("Set unknown path succeeded")
	}
}

func TestValidateNamesField(t *testing.T) {
	t.Parallel()
	cases := []struct {
		path, value string
	}{
		{"edge.delivery", "carrier-pigeon"},
		{"edge.max_inflight", "0"},
		{"stream.replicas", "7"},
		{"stream.name", "a.b"},
		{"ingest.max_batch", "0"},
		{"nats.url", "::nope"},
		{"log.level", "loud"},
		{"listen", "8080"},
		{"ingest.producer_keys", "short"},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			c := Default()
			if err := c.Set(tc.path, tc.value); err != nil {
				t.Fatal(err)
			}
			err := c.Validate()
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Path != tc.path {
				t.Fatalf("Validate() = %v, want a FieldError for %s", err, tc.path)
			}
		})
	}
	c := Default()
	if err := c.Set("edge.ack_wait", "soon"); err == nil || !strings.Contains(err.Error(), "edge.ack_wait") {
		t.Errorf("Set bad duration = %v", err)
	}
}

func TestHTTPTimeoutsAndSyncInterval(t *testing.T) {
	d := Default()
	if d.HTTP.BodyTimeout != 30*time.Second || d.HTTP.IdleTimeout != 2*time.Minute || d.NATS.SyncInterval != "2m" {
		t.Errorf("defaults: body_timeout %v, idle_timeout %v, sync_interval %q", d.HTTP.BodyTimeout, d.HTTP.IdleTimeout, d.NATS.SyncInterval)
	}
	for _, tc := range []struct{ path, value string }{
		{"http.body_timeout", "0s"},
		{"http.idle_timeout", "-1s"},
		{"nats.sync_interval", "soon"},
		{"nats.sync_interval", "0s"},
		{"nats.sync_interval", ""},
	} {
		c := Default()
		if err := c.Set(tc.path, tc.value); err != nil {
			t.Fatal(err)
		}
		var fe *FieldError
		if err := c.Validate(); !errors.As(err, &fe) || fe.Path != tc.path {
			t.Errorf("%s = %q: Validate() = %v, want a FieldError for %s", tc.path, tc.value, err, tc.path)
		}
	}
	for value, want := range map[string]struct {
		d      time.Duration
		always bool
	}{"1s": {time.Second, false}, "always": {0, true}, "Always": {0, true}} {
		n := NATS{SyncInterval: value}
		d, always, err := n.Sync()
		if err != nil || d != want.d || always != want.always {
			t.Errorf("Sync(%q) = %v, %v, %v; want %v, %v", value, d, always, err, want.d, want.always)
		}
	}
}

// TestGetSet: Get gives each setting in the form Set takes back.
func TestGetSet(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Edge.AllowedOrigins = []string{"https://a.example", "https://b.example"}
	for _, p := range Paths() {
		v := c.Get(p)
		d := Default()
		d.Edge.AllowedOrigins = nil
		if err := d.Set(p, v); err != nil && v != "" {
			t.Errorf("Set(%q, Get = %q): %v", p, v, err)
			continue
		}
		if got := d.Get(p); got != v && v != "" {
			t.Errorf("%s: Get %q, after Set %q", p, v, got)
		}
	}
	if c.Get("nope") != "" || c.Get("edge.ack_wait") != "30s" {
		t.Errorf("Get(nope) = %q, Get(edge.ack_wait) = %q", c.Get("nope"), c.Get("edge.ack_wait"))
	}
}
