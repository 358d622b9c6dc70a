package compat

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/herald-push/herald/streams"
)

// Config configures the drop-in endpoints that let tools written for ntfy
// and gotify publish to and subscribe from Herald unchanged (SPEC §12). It
// is the `compat:` section of Herald's configuration; package config names
// it and calls Check.
type Config struct {
	// NTFY serves ntfy's publish and subscribe endpoints.
	NTFY NTFYConfig `yaml:"ntfy"`
	// Gotify serves gotify's publish endpoint.
	Gotify GotifyConfig `yaml:"gotify"`
}

// NTFYConfig configures the ntfy-compatible endpoints: PUT|POST /<topic>
// and the JSON form POST / on ingest nodes, GET /<topic>/json, /sse and /ws
// on edges. The topic is the user id.
type NTFYConfig struct {
	// Enabled serves the endpoints; they never shadow /v1/…, /healthz,
	// /readyz, /metrics or the console at /.
	Enabled bool `yaml:"enabled"`
}

// GotifyConfig configures the gotify-compatible endpoint POST /message on
// ingest nodes.
type GotifyConfig struct {
	// Enabled serves POST /message.
	Enabled bool `yaml:"enabled"`
	// Apps maps each gotify application token to the user its messages
	// go to. The tokens are secrets, like producer keys. As an environment
	// variable or flag: comma-separated token=user pairs.
	Apps map[string]string `yaml:"apps"`
}

// MinGotifyTokenLen is the shortest compat.gotify.apps token accepted:
// gotify's own application tokens are 15 characters.
const MinGotifyTokenLen = 12

// DefaultConfig is the compat section's default: both protocols on, no
// gotify application.
func DefaultConfig() Config {
	return Config{NTFY: NTFYConfig{Enabled: true}, Gotify: GotifyConfig{Enabled: true}}
}

// Check calls bad for each invalid field, with its YAML key. Neither the
// tokens nor the users are shown.
func (c *Config) Check(bad func(key string, value any, msg string)) {
	var badToken, badUser bool
	for tok, user := range c.Gotify.Apps {
		if !badToken && (len(tok) < MinGotifyTokenLen || strings.ContainsFunc(tok, unicode.IsSpace)) {
			badToken = true
			bad("gotify.apps", "***", fmt.Sprintf("each application token must be at least %d characters without spaces", MinGotifyTokenLen))
		}
		if err := streams.ValidateUser(user); !badUser && err != nil {
			badUser = true
			bad("gotify.apps", "(a user id, not shown)", "each user must be a valid user id: "+err.Error())
		}
	}
}
