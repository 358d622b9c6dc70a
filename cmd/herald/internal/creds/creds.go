// Package creds keeps the credentials herald serve generates in its data
// dir (credentials.json) and the fallbacks of the client commands on them:
// the producer key, the JWT secret and the passwords of the embedded NATS
// server's users. Writes are atomic (a rename), so a reader never sees a
// torn file.
package creds

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
	"github.com/herald-push/herald/streams/embedded"
)

// File is the name of the generated credentials inside the data dir.
const File = "credentials.json"

// Credentials are what serve generates in a data dir on first use: one
// producer key, one JWT secret and the passwords of the embedded NATS
// server's two users, kept in <data-dir>/credentials.json so that a restart
// reuses them. serve uses whichever is not configured.
type Credentials struct {
	ProducerKey string `json:"producer_key"`
	JWTSecret   string `json:"jwt_secret"`
	// NATSPassword is the service user's (ServiceUser): Herald's own
	// roles and tools. ProducerNATSPassword is the publish-only user's
	// (ProducerUser). Files written before these existed lack them;
	// LoadOrCreate adds them.
	NATSPassword         string    `json:"nats_password,omitempty"`
	ProducerNATSPassword string    `json:"producer_nats_password,omitempty"`
	Created              time.Time `json:"created"`
}

// The users of serve's embedded NATS server (SPEC §9): the service user
// may do anything; the producer user may only publish to users' subjects
// and read its own reply inbox (streams.ProducerInbox).
const (
	ServiceUser  = "herald"
	ProducerUser = "producer"
)

// Random returns 32 random bytes, base64url without padding.
func Random() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("creds: random secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Read reads <dir>/credentials.json; fs.ErrNotExist (wrapped)
// when there is none. A field serve did not need is empty.
func Read(dir string) (Credentials, error) {
	var c Credentials
	b, err := os.ReadFile(filepath.Join(dir, File))
	if err != nil {
		return c, fmt.Errorf("creds: read credentials: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("creds: read credentials %s: %w", filepath.Join(dir, File), err)
	}
	return c, nil
}

// Need says which secrets of the credentials file serve uses: only those
// are generated, so that the file never holds a producer key or JWT secret
// that the configuration replaces (a client command falling back on the
// file would use it and fail).
type Need struct {
	Key, Secret, NATS bool
}

// LoadOrCreate returns the credentials in dir, generating the
// needed ones that are missing and writing the file (directory 0700, file
// 0600). created says whether a needed secret was generated now.
func LoadOrCreate(dir string, n Need) (c Credentials, created bool, err error) {
	c, err = Read(dir)
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
	}{{n.Key, &c.ProducerKey}, {n.Secret, &c.JWTSecret}, {n.NATS, &c.NATSPassword}, {n.NATS, &c.ProducerNATSPassword}} {
		if f.want && *f.v == "" {
			if *f.v, err = Random(); err != nil {
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
		return c, false, fmt.Errorf("creds: write credentials: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return c, false, fmt.Errorf("creds: write credentials: %w", err)
	}
	if err := WriteFileAtomic(filepath.Join(dir, File), append(b, '\n'), 0o600); err != nil {
		return c, false, fmt.Errorf("creds: write credentials: %w", err)
	}
	return c, true, nil
}

// FillNATSUsers gives serve the users of its embedded NATS server (SPEC §9:
// no anonymous clients). Unless nats.token is configured (then the server
// takes that token and nothing else), Herald's own connection is nats.user
// (else the service user with the generated password), and the publish-only
// producer user it returns gets the generated producer password.
func FillNATSUsers(cfg *config.Config) (producer embedded.User, err error) {
	if cfg.NATS.Token != "" {
		return embedded.User{}, nil
	}
	c, _, err := LoadOrCreate(cfg.DataDir, Need{NATS: true})
	if err != nil {
		return embedded.User{}, err
	}
	if cfg.NATS.User == "" {
		cfg.NATS.User, cfg.NATS.Password = ServiceUser, c.NATSPassword
	}
	return embedded.User{Name: ProducerUser, Password: c.ProducerNATSPassword}, nil
}

// NATSAuthFromDataDir gives a client command with no NATS credentials
// configured the ones serve generated in the data dir, if there are any:
// the producer user for producer, else the service user.
func NATSAuthFromDataDir(cfg *config.Config, producer bool) {
	n := &cfg.NATS
	if n.Token != "" || n.User != "" || n.Creds != "" {
		return
	}
	c, err := Read(cfg.DataDir)
	if err != nil || c.NATSPassword == "" {
		return
	}
	n.User, n.Password = ServiceUser, c.NATSPassword
	if producer {
		n.User, n.Password = ProducerUser, c.ProducerNATSPassword
	}
}

// WriteFileAtomic writes data to a temporary file next to path and renames
// it over path, so that a reader sees the old or the new content, never a
// torn one.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
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

// JWTSecret returns the configured JWT secret, else the one serve generated
// in the data dir, else an error naming auth.jwt_secret.
func JWTSecret(cfg *config.Config) (string, error) {
	if cfg.Auth.JWTSecret != "" {
		return cfg.Auth.JWTSecret, nil
	}
	c, err := generated(cfg.DataDir, "creds: no JWT secret: set auth.jwt_secret (HERALD_JWT_SECRET)")
	if err == nil && c.JWTSecret == "" {
		err = fmt.Errorf("creds: no JWT secret: set auth.jwt_secret (HERALD_JWT_SECRET); serve in %s uses a configured one", cfg.DataDir)
	}
	return c.JWTSecret, err
}

// ProducerKey returns the first configured producer key, else the one serve
// generated in the data dir, else an error naming ingest.producer_keys.
func ProducerKey(cfg *config.Config) (string, error) {
	if len(cfg.Ingest.ProducerKeys) > 0 {
		return cfg.Ingest.ProducerKeys[0], nil
	}
	c, err := generated(cfg.DataDir, "creds: no producer key: pass --key, set ingest.producer_keys (HERALD_PRODUCER_KEYS)")
	if err == nil && c.ProducerKey == "" {
		err = fmt.Errorf("creds: no producer key: pass --key, set ingest.producer_keys (HERALD_PRODUCER_KEYS); serve in %s uses a configured one", cfg.DataDir)
	}
	return c.ProducerKey, err
}

// generated returns the credentials serve generated in dir for
// the client commands that fall back on them. When dir holds none, the
// error is missing (what to configure instead) plus the hint to point
// --data-dir at a serve data dir.
func generated(dir, missing string) (Credentials, error) {
	c, err := Read(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Credentials{}, fmt.Errorf("%s or point --data-dir at a serve data dir holding %s", missing, File)
	case err != nil:
		return Credentials{}, err
	}
	return c, nil
}

// Generated is what Fill took from <data-dir>/credentials.json.
type Generated struct {
	Path      string
	Created   bool   // a secret was generated by this call
	Key       string // "" when producer keys were configured
	JWTSecret string // "" when a secret or public keys were configured
}

// Fill gives serve whatever auth cfg does not configure from the data
// dir's credentials (created on first use): a producer key when there is
// none, a JWT secret when there is neither a secret nor a public key.
func Fill(cfg *config.Config) (Generated, error) {
	needKey := len(cfg.Ingest.ProducerKeys) == 0
	needSecret := cfg.Auth.JWTSecret == "" && len(cfg.Auth.PublicKeys) == 0
	g := Generated{Path: filepath.Join(cfg.DataDir, File)}
	if !needKey && !needSecret {
		return g, nil
	}
	c, created, err := LoadOrCreate(cfg.DataDir, Need{Key: needKey, Secret: needSecret})
	if err != nil {
		return g, err
	}
	g.Created = created
	if needKey {
		g.Key = c.ProducerKey
		cfg.Ingest.ProducerKeys = []string{c.ProducerKey}
	}
	if needSecret {
		g.JWTSecret = c.JWTSecret
		cfg.Auth.JWTSecret = c.JWTSecret
	}
	return g, nil
}

// PrepareDataDir creates serve's data dir with mode 0700, or sets an
// existing one to 0700: it holds the credentials and the message store.
func PrepareDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creds: data_dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("creds: data_dir: set mode 0700: %w", err)
	}
	return nil
}
