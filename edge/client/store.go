package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// PositionStore keeps a device's processed position: the seq it resumes
// after. Load returns 0 when there is none yet. The client calls Load once
// per Run and Save from one goroutine at a time, with positions that only
// grow.
type PositionStore interface {
	Load(ctx context.Context) (uint64, error)
	Save(ctx context.Context, seq uint64) error
}

var (
	_ PositionStore = (*MemoryStore)(nil)
	_ PositionStore = (*FileStore)(nil)
)

// MemoryStore keeps the position in memory: across reconnects, and across
// clients of one process that share it. The zero value is ready to use.
type MemoryStore struct {
	mu  sync.Mutex
	seq uint64
}

// Load returns the last saved position.
func (s *MemoryStore) Load(context.Context) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq, nil
}

// Save records seq.
func (s *MemoryStore) Save(_ context.Context, seq uint64) error {
	s.mu.Lock()
	s.seq = seq
	s.mu.Unlock()
	return nil
}

// ErrStoreOwner is returned by FileStore.Load for a file saved for another
// user or device.
var ErrStoreOwner = errors.New("the position file belongs to another device")

// FileStore keeps the position in a JSON file, {"user":…,"device":…,"seq":N},
// replaced atomically (written to a temporary file, synced, renamed) on
// each Save. User and Device, when set, are written with the position and
// checked by Load, so that two devices never share a file by mistake.
type FileStore struct {
	Path   string
	User   string
	Device string
}

type fileState struct {
	User   string `json:"user,omitempty"`
	Device string `json:"device,omitempty"`
	Seq    uint64 `json:"seq"`
}

// Load reads the position; a missing file is position 0.
func (s *FileStore) Load(context.Context) (uint64, error) {
	b, err := os.ReadFile(s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("client: file store: %w", err)
	}
	var st fileState
	if err := json.Unmarshal(b, &st); err != nil {
		return 0, fmt.Errorf("client: file store %s: %w", s.Path, err)
	}
	if s.User != "" && st.User != s.User || s.Device != "" && st.Device != s.Device {
		return 0, fmt.Errorf("client: file store %s: %w: user %q device %q", s.Path, ErrStoreOwner, st.User, st.Device)
	}
	return st.Seq, nil
}

// Save replaces the file with one holding seq.
func (s *FileStore) Save(_ context.Context, seq uint64) error {
	b, err := json.Marshal(fileState{User: s.User, Device: s.Device, Seq: seq})
	if err != nil {
		return fmt.Errorf("client: file store: %w", err)
	}
	if err := writeFileAtomic(s.Path, append(b, '\n')); err != nil {
		return fmt.Errorf("client: file store: %w", err)
	}
	return nil
}

// writeFileAtomic writes data to a synced temporary file next to path,
// readable by its owner only, and renames it over path.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}
