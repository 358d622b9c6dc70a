package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-push/herald/cmd/herald/internal/creds"
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
	// The file holds the embedded NATS server's passwords; the producer
	// key and JWT secret are the configured ones, not generated.
	if b, err := os.ReadFile(filepath.Join(dir, creds.File)); err == nil {
		var c struct {
			ProducerKey string `json:"producer_key"`
			JWTSecret   string `json:"jwt_secret"`
		}
		if err := json.Unmarshal(b, &c); err != nil || c.ProducerKey != "" || c.JWTSecret != "" {
			t.Errorf("serve wrote a producer key or JWT secret although auth is configured: %s (%v)", b, err)
		}
	}
	if err := p.stop(15 * time.Second); err != nil {
		t.Fatal(err)
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
	gen := creds.Generated{Path: filepath.Join(cfg.DataDir, creds.File), Key: "the-producer-key-0123456789", JWTSecret: "the-jwt-secret-0123456789abcdefghijklmn"}
	var reused, created strings.Builder
	if err := printBanner(&reused, &cfg, addr, "nats://x", gen); err != nil {
		t.Fatal(err)
	}
	gen.Created = true
	if err := printBanner(&created, &cfg, addr, "nats://x", gen); err != nil {
		t.Fatal(err)
	}
	out := reused.String()
	for _, secret := range []string{gen.Key, gen.JWTSecret} {
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
	if !strings.Contains(out, gen.Path) || !strings.Contains(out, "listen --user alice --device laptop --data-dir herald-data") {
		t.Errorf("reused banner does not say where the credentials are:\n%s", out)
	}
}
