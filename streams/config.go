package streams

import (
	"strings"
	"time"
)

// Config defines the HERALD stream (SPEC §9). It is the `stream:` section
// of Herald's configuration; package config names it and calls Check.
type Config struct {
	// Name is the JetStream stream that holds every user's messages.
	Name string `yaml:"name"`
	// Prefix starts every subject: <prefix>.user.<token>, <prefix>.live.<token>.
	Prefix string `yaml:"prefix"`
	// MaxAge is how long a message is kept. 0: unlimited.
	MaxAge time.Duration `yaml:"max_age"`
	// MaxMsgsPerUser is how many messages of one user are kept; older ones
	// are removed first. 0: unlimited.
	MaxMsgsPerUser int64 `yaml:"max_msgs_per_user"`
	// MaxBytes bounds the stream's size; the oldest messages are removed
	// first. 0: unlimited.
	MaxBytes int64 `yaml:"max_bytes"`
	// DuplicateWindow is how long a message id (Idempotency-Key) is
	// remembered: a retry within it is stored once.
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
	// Replicas is the stream's replication factor, 1 to 5 (3 in a cluster).
	Replicas int `yaml:"replicas"`
	// MaxConsumers caps the stream's consumers: with the consumer engine,
	// one per device.
	MaxConsumers int `yaml:"max_consumers"`
}

// DefaultConfig is the stream section's default.
func DefaultConfig() Config {
	return Config{
		Name:            "HERALD",
		Prefix:          DefaultPrefix,
		MaxAge:          7 * 24 * time.Hour,
		MaxMsgsPerUser:  10000,
		DuplicateWindow: 2 * time.Minute,
		Replicas:        1,
		MaxConsumers:    100000,
	}
}

// Check calls bad for each invalid field, with its YAML key.
func (c *Config) Check(bad func(key string, value any, msg string)) {
	if c.Name == "" || strings.ContainsAny(c.Name, ".*> \t") {
		bad("name", c.Name, "must be a non-empty name without . * > or spaces")
	}
	if err := ValidatePrefix(c.Prefix); err != nil {
		bad("prefix", c.Prefix, "must be dot-separated tokens without wildcards")
	}
	if c.MaxAge < 0 {
		bad("max_age", c.MaxAge, "must not be negative (0: unlimited)")
	}
	if c.MaxMsgsPerUser < 0 {
		bad("max_msgs_per_user", c.MaxMsgsPerUser, "must not be negative (0: unlimited)")
	}
	if c.MaxBytes < 0 {
		bad("max_bytes", c.MaxBytes, "must not be negative (0: unlimited)")
	}
	if c.DuplicateWindow <= 0 {
		bad("duplicate_window", c.DuplicateWindow, "must be positive")
	}
	if c.MaxAge > 0 && c.DuplicateWindow > c.MaxAge {
		bad("duplicate_window", c.DuplicateWindow, "must not exceed stream.max_age")
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		bad("replicas", c.Replicas, "must be 1 to 5")
	}
	if c.MaxConsumers < 1 {
		bad("max_consumers", c.MaxConsumers, "must be positive")
	}
}
