package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/herald-push/herald/config"
)

// credsFile is the name of the generated credentials inside the data dir.
const credsFile = "credentials.json"

// credentials are what serve generates in a data dir on first use: one
// producer key, one JWT secret and the passwords of the embedded NATS
// server's two users, kept in <data-dir>/credentials.json so that a restart
// reuses them. serve uses whichever is not configured.
type credentials struct {
	ProducerKey string `json:"producer_key"`
	JWTSecret   string `json:"jwt_secret"`
	// NATSPassword is the service user's (natsServiceUser): Herald's own
	// roles and tools. ProducerNATSPassword is the publish-only user's
	// (natsProducerUser). Files written before these existed lack them;
	// loadOrCreateCredentials adds them.
	NATSPassword         string    `json:"nats_password,omitempty"`
	ProducerNATSPassword string    `json:"producer_nats_password,omitempty"`
	Created              time.Time `json:"created"`
}

// The users of serve's embedded NATS server (SPEC §9): the service user
// may do anything; the producer user may only publish to users' subjects
// and read its own reply inbox (streams.ProducerInbox).
const (
	natsServiceUser  = "herald"
	natsProducerUser = "producer"
)

// randomSecret returns 32 random bytes, base64url without padding.
func randomSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("cmd: random secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// readCredentials reads <dir>/credentials.json; fs.ErrNotExist (wrapped)
// when there is none. A field serve did not need is empty.
func readCredentials(dir string) (credentials, error) {
	var c credentials
	b, err := os.ReadFile(filepath.Join(dir, credsFile))
	if err != nil {
		return c, fmt.Errorf("cmd: read credentials: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("cmd: read credentials %s: %w", filepath.Join(dir, credsFile), err)
	}
	return c, nil
}

// need says which secrets of the credentials file serve uses: only those
// are generated, so that the file never holds a producer key or JWT secret
// that the configuration replaces (a client command falling back on the
// file would use it and fail).
type need struct {
	key, secret, nats bool
}

// loadOrCreateCredentials returns the credentials in dir, generating the
// needed ones that are missing and writing the file (directory 0700, file
// 0600). created says whether a needed secret was generated now.
func loadOrCreateCredentials(dir string, n need) (c credentials, created bool, err error) {
	c, err = readCredentials(dir)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
		c.Created = time.Now().UTC().Truncate(time.Second)
	default:
		return c, false, err
	}
	for _, f := range []struct {
		want bool
		v    *string
	}{{n.key, &c.ProducerKey}, {n.secret, &c.JWTSecret}, {n.nats, &c.NATSPassword}, {n.nats, &c.ProducerNATSPassword}} {
		if f.want && *f.v == "" {
			if *f.v, err = randomSecret(); err != nil {
				return c, false, err
			}
			created = true
		}
	}
	if !created {
		return c, false, nil
	}
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

// natsUser is a user of the embedded NATS server.
type natsUser struct {
	name, password string
}

// fillNATSUsers gives serve the users of its embedded NATS server (SPEC §9:
// no anonymous clients). Unless nats.token is configured (then the server
// takes that token and nothing else), Herald's own connection is nats.user
// (else the service user with the generated password), and the publish-only
// producer user it returns gets the generated producer password.
func fillNATSUsers(cfg *config.Config) (producer natsUser, err error) {
	if cfg.NATS.Token != "" {
		return natsUser{}, nil
	}
	c, _, err := loadOrCreateCredentials(cfg.DataDir, need{nats: true})
	if err != nil {
		return natsUser{}, err
	}
	if cfg.NATS.User == "" {
		cfg.NATS.User, cfg.NATS.Password = natsServiceUser, c.NATSPassword
	}
	return natsUser{name: natsProducerUser, password: c.ProducerNATSPassword}, nil
}

// natsAuthFromDataDir gives a client command with no NATS credentials
// configured the ones serve generated in the data dir, if there are any:
// the producer user for producer, else the service user.
func natsAuthFromDataDir(cfg *config.Config, producer bool) {
	n := &cfg.NATS
	if n.Token != "" || n.User != "" || n.Creds != "" {
		return
	}
	c, err := readCredentials(cfg.DataDir)
	if err != nil || c.NATSPassword == "" {
		return
	}
	n.User, n.Password = natsServiceUser, c.NATSPassword
	if producer {
		n.User, n.Password = natsProducerUser, c.ProducerNATSPassword
	}
}

// printNATSProducer prints the producer user of serve's embedded NATS
// server with a ready publish line.
func printNATSProducer(w io.Writer, natsURL string, producer natsUser) error {
	if producer.name == "" || !strings.HasPrefix(natsURL, "nats://") {
		return nil
	}
	_, err := fmt.Fprintf(w, "\nPublish straight to NATS (user %s may only publish to users' subjects):\n  go run ./cmd/herald publish --nats --nats-url %s --nats-user %s --nats-password %s --user alice 'hello'\n",
		producer.name, natsURL, producer.name, producer.password)
	return err
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
	if err == nil && c.JWTSecret == "" {
		err = fmt.Errorf("cmd: no JWT secret: set auth.jwt_secret (HERALD_JWT_SECRET); serve in %s uses a configured one", cfg.DataDir)
	}
	return c.JWTSecret, err
}

// producerKey returns the first configured producer key, else the one serve
// generated in the data dir, else an error naming ingest.producer_keys.
func producerKey(cfg *config.Config) (string, error) {
	if len(cfg.Ingest.ProducerKeys) > 0 {
		return cfg.Ingest.ProducerKeys[0], nil
	}
	c, err := generatedCredentials(cfg.DataDir, "cmd: no producer key: pass --key, set ingest.producer_keys (HERALD_PRODUCER_KEYS)")
	if err == nil && c.ProducerKey == "" {
		err = fmt.Errorf("cmd: no producer key: pass --key, set ingest.producer_keys (HERALD_PRODUCER_KEYS); serve in %s uses a configured one", cfg.DataDir)
	}
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
