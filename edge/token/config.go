package token

import (
	"fmt"
	"time"
)

// MinSecretBytes is the shortest HS256 secret accepted: HS256 needs a key of
// at least the hash size, 256 bits (RFC 7518 §3.2).
const MinSecretBytes = 32

// DefaultMaxTTL is the default of Config.MaxTokenTTL.
const DefaultMaxTTL = 30 * 24 * time.Hour

// Config configures client tokens (SPEC §5). It is the `auth:` section of
// Herald's configuration; package config names it and calls Check.
type Config struct {
	// JWTSecret verifies HS256 tokens and signs `herald token`; at least
	// MinSecretBytes bytes.
	JWTSecret string `yaml:"jwt_secret"`
	// PublicKeys are PEM files of EdDSA, ES256 or RS256 public keys.
	PublicKeys []string `yaml:"public_keys"`
	// MaxTokenTTL is the longest lifetime a client token may have: exp
	// minus iat (or minus now when it has no iat). Longer tokens are
	// refused. 0: no maximum.
	MaxTokenTTL time.Duration `yaml:"max_token_ttl"`
}

// DefaultConfig is the auth section's default.
func DefaultConfig() Config { return Config{MaxTokenTTL: DefaultMaxTTL} }

// Check calls bad for each invalid field, with its YAML key.
func (c *Config) Check(bad func(key string, value any, msg string)) {
	if c.JWTSecret != "" && len(c.JWTSecret) < MinSecretBytes {
		bad("jwt_secret", "***", fmt.Sprintf("must be at least %d bytes (HS256 needs a 256-bit key, RFC 7518 §3.2); generate one with `openssl rand -hex 32`", MinSecretBytes))
	}
	if c.MaxTokenTTL < 0 {
		bad("max_token_ttl", c.MaxTokenTTL, "must not be negative (0: no maximum)")
	}
}
