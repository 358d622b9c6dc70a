package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/herald-push/herald/config"
)

// credsFile is the name of the generated credentials inside the data dir.
const credsFile = "credentials.json"

// credentials are what serve generates in a data dir on first use: one
// producer key and one JWT secret, kept in <data-dir>/credentials.json so
// that a restart reuses them. serve uses whichever is not configured.
type credentials struct {
	ProducerKey string    `json:"producer_key"`
	JWTSecret   string    `json:"jwt_secret"`
	Created     time.Time `json:"created"`
}

// randomSecret returns 32 random bytes, base64url without padding.
func randomSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("cmd: random secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// readCredentials reads <dir>/credentials.json; fs.ErrNotExist (wrapped)
// when there is none.
func readCredentials(dir string) (credentials, error) {
	var c credentials
	b, err := os.ReadFile(filepath.Join(dir, credsFile))
	if err != nil {
		return c, fmt.Errorf("cmd: read credentials: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("cmd: read credentials %s: %w", filepath.Join(dir, credsFile), err)
	}
	if c.ProducerKey == "" || c.JWTSecret == "" {
		return c, fmt.Errorf("cmd: read credentials %s: producer_key or jwt_secret is empty", filepath.Join(dir, credsFile))
	}
	return c, nil
}

// loadOrCreateCredentials returns the credentials in dir, creating them
// (directory 0700, file 0600) when there are none. created says whether
// they are new.
func loadOrCreateCredentials(dir string) (c credentials, created bool, err error) {
	c, err = readCredentials(dir)
	if err == nil {
		return c, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return c, false, err
	}
	if c.ProducerKey, err = randomSecret(); err != nil {
		return c, false, err
	}
	if c.JWTSecret, err = randomSecret(); err != nil {
		return c, false, err
	}
	c.Created = time.Now().UTC().Truncate(time.Second)
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return c, false, fmt.Errorf("cmd: write credentials: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return c, false, fmt.Errorf("cmd: write credentials: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, credsFile), append(b, '\n'), 0o600); err != nil {
		return c, false, fmt.Errorf("cmd: write credentials: %w", err)
	}
	return c, true, nil
}

// writeFileAtomic writes data to a temporary file next to path and renames
// it over path, so that a reader sees the old or the new content, never a
// torn one.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
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

// jwtSecret returns the configured JWT secret, else the one serve generated
// in the data dir, else an error naming auth.jwt_secret.
func jwtSecret(cfg *config.Config) (string, error) {
	if cfg.Auth.JWTSecret != "" {
		return cfg.Auth.JWTSecret, nil
	}
	c, err := generatedCredentials(cfg.DataDir, "cmd: no JWT secret: set auth.jwt_secret (HERALD_JWT_SECRET)")
	return c.JWTSecret, err
}

// producerKey returns the first configured producer key, else the one serve
// generated in the data dir, else an error naming ingest.producer_keys.
func producerKey(cfg *config.Config) (string, error) {
	if len(cfg.Ingest.ProducerKeys) > 0 {
		return cfg.Ingest.ProducerKeys[0], nil
	}
	c, err := generatedCredentials(cfg.DataDir, "cmd: no producer key: pass --key, set ingest.producer_keys (HERALD_PRODUCER_KEYS)")
	return c.ProducerKey, err
}

// generatedCredentials returns the credentials serve generated in dir for
// the client commands that fall back on them. When dir holds none, the
// error is missing (what to configure instead) plus the hint to point
// --data-dir at a serve data dir.
func generatedCredentials(dir, missing string) (credentials, error) {
	c, err := readCredentials(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return credentials{}, fmt.Errorf("%s or point --data-dir at a serve data dir holding %s", missing, credsFile)
	case err != nil:
		return credentials{}, err
	}
	return c, nil
}
