package main

import (
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-push/herald/config"
)

// TestServeDataDirMode: serve sets a data dir that already exists to mode
// 0700, also when it generates nothing in it (auth configured).
func TestServeDataDirMode(t *testing.T) {
	checkNoLeaks(t)
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	env := []string{"HERALD_PRODUCER_KEYS=" + guardKey, "HERALD_JWT_SECRET=" + guardSecret}
	p := startCmd(t, env, "serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--nats-listen", "off")
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode %v, want 0700", st.Mode().Perm())
	}
	if _, err := os.Stat(filepath.Join(dir, credsFile)); err == nil {
		t.Error("serve wrote credentials although auth is configured")
	}
	if err := p.stop(15 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestEmbeddedSyncInterval: nats.sync_interval reaches the embedded
// server's JetStream: a duration as the sync interval, "always" as a sync
// of every write.
func TestEmbeddedSyncInterval(t *testing.T) {
	for _, tc := range []struct {
		value    string
		interval time.Duration // 0: not checked
		always   bool
	}{
		{"2m", 2 * time.Minute, false},
		{"10s", 10 * time.Second, false},
		{"always", 0, true},
		{"ALWAYS", 0, true},
	} {
		t.Run(tc.value, func(t *testing.T) {
			t.Parallel()
			cfg := config.Default()
			cfg.DataDir = t.TempDir()
			cfg.NATS.Embedded = "off"
			if err := cfg.Set("nats.sync_interval", tc.value); err != nil {
				t.Fatal(err)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			srv, err := startEmbedded(&cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
			js := srv.JetStreamConfig()
			if js == nil {
				t.Fatal("no JetStream config")
			}
			if js.SyncAlways != tc.always {
				t.Errorf("SyncAlways = %v, want %v", js.SyncAlways, tc.always)
			}
			if tc.interval != 0 && js.SyncInterval != tc.interval {
				t.Errorf("SyncInterval = %v, want %v", js.SyncInterval, tc.interval)
			}
		})
	}
}

// TestBannerReusedCredentials: a banner for credentials reused from the
// data dir prints neither them nor a token minted with them; it names the
// file.
func TestBannerReusedCredentials(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.DataDir = "herald-data"
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	gen := generated{path: filepath.Join(cfg.DataDir, credsFile), key: "the-producer-key-0123456789", jwtSecret: "the-jwt-secret-0123456789abcdefghijklmn"}
	var reused, created strings.Builder
	if err := printBanner(&reused, &cfg, addr, "nats://x", gen); err != nil {
		t.Fatal(err)
	}
	gen.created = true
	if err := printBanner(&created, &cfg, addr, "nats://x", gen); err != nil {
		t.Fatal(err)
	}
	out := reused.String()
	for _, secret := range []string{gen.key, gen.jwtSecret} {
		if strings.Contains(out, secret) {
			t.Errorf("reused banner prints %q:\n%s", secret, out)
		}
		if !strings.Contains(created.String(), secret) {
			t.Errorf("banner on creation lacks %q:\n%s", secret, created.String())
		}
	}
	if tokenRe.MatchString(out) {
		t.Errorf("reused banner prints a client token:\n%s", out)
	}
	if !strings.Contains(out, gen.path) || !strings.Contains(out, "listen --user alice --device laptop --data-dir herald-data") {
		t.Errorf("reused banner does not say where the credentials are:\n%s", out)
	}
}
