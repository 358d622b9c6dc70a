package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
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
