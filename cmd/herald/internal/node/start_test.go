package node

import (
	"log/slog"
	"testing"
	"time"

	"github.com/herald-push/herald/cmd/herald/internal/creds"
	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/streams/embedded"
)

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
			cfg.NATS.User, cfg.NATS.Password = creds.ServiceUser, "sync-test-password-0123456789"
			if err := cfg.Set("nats.sync_interval", tc.value); err != nil {
				t.Fatal(err)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			srv, err := StartNATS(&cfg, embedded.User{}, slog.New(slog.DiscardHandler))
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
