package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// spawnStartTimeout bounds the start of a spawned herald serve.
const spawnStartTimeout = 30 * time.Second

// spawnStopTimeout bounds the stop of a spawned herald serve after
// SIGTERM; then it is killed.
const spawnStopTimeout = 2 * time.Minute

// SpawnOptions say how Spawn runs herald serve.
type SpawnOptions struct {
	Exe    string   // the herald binary
	Args   []string // appended to serve's own (--config, --set, …)
	Env    []string // the child's environment
	Stderr io.Writer
	Logger *slog.Logger
}

// Spawned is a herald serve that Spawn runs as a child process, on
// loopback ports with a temporary data dir that holds its credentials.
type Spawned struct {
	HTTPURL string
	NATSURL string
	DataDir string // holds credentials.json
	PID     int

	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd.Wait returned
	log    *slog.Logger
}

// spawnReady is the file serve --ready-file writes once it listens.
type spawnReady struct {
	HTTP string `json:"http"`
	NATS string `json:"nats"`
}

// Spawn runs `herald serve` with --ready-file and waits until that file
// appears, the child exits, or ctx ends. The caller stops the child with
// Stop.
func Spawn(ctx context.Context, o SpawnOptions) (_ *Spawned, err error) {
	dir, err := os.MkdirTemp("", "herald-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: spawn: %w", err)
	}
	readyPath := filepath.Join(dir, "ready.json")
	args := append([]string{"serve", "--data-dir", filepath.Join(dir, "data"), "--ready-file", readyPath,
		"--listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0"}, o.Args...)
	s := &Spawned{DataDir: filepath.Join(dir, "data"), exited: make(chan struct{}), log: o.Logger}
	s.cmd = exec.Command(o.Exe, args...)
	s.cmd.Env = o.Env
	s.cmd.Stderr = o.Stderr // its stdout (the banner) is discarded
	if err := s.cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("bench: spawn: %w", err)
	}
	s.PID = s.cmd.Process.Pid
	// The waiter goroutine ends when the child exits; Stop waits for it.
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	timeout := time.NewTimer(spawnStartTimeout)
	defer timeout.Stop()
	for {
		b, err := os.ReadFile(readyPath)
		switch {
		case err == nil:
			var r spawnReady
			if err := json.Unmarshal(b, &r); err != nil {
				return nil, fmt.Errorf("bench: spawn: ready file: %w", err)
			}
			s.HTTPURL, s.NATSURL = r.HTTP, r.NATS
			return s, nil
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("bench: spawn: %w", err)
		}
		select {
		case <-tick.C:
		case <-s.exited:
			return nil, errors.New("bench: spawn: serve exited before it was ready")
		case <-timeout.C:
			return nil, fmt.Errorf("bench: spawn: serve not ready within %v", spawnStartTimeout)
		case <-ctx.Done():
			return nil, fmt.Errorf("bench: spawn: %w", ctx.Err())
		}
	}
}

// Stop sends the child SIGTERM, kills it if it has not exited within
// spawnStopTimeout, and removes its data dir.
func (s *Spawned) Stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(spawnStopTimeout)
	defer t.Stop()
	select {
	case <-s.exited:
	case <-t.C:
		if s.log != nil {
			s.log.Warn("spawned serve did not stop; killing it", "pid", s.PID)
		}
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	_ = os.RemoveAll(filepath.Dir(s.DataDir))
}
