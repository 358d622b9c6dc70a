package ingest

import "time"

// Config configures the producer API (SPEC §4). It is the `ingest:` section
// of Herald's configuration; package config names it and calls Check.
type Config struct {
	// ProducerKeys are the keys a producer presents as Authorization:
	// Bearer; each at least 16 characters.
	ProducerKeys []string `yaml:"producer_keys"`
	// MaxMessageBytes bounds a stored envelope (413 too_large beyond it);
	// at most the NATS max payload.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// MaxBatch is the most messages one batch request may carry (413
	// too_large beyond it).
	MaxBatch int `yaml:"max_batch"`
	// PublishTimeout bounds a publish's wait for JetStream's ack; past it
	// the answer is 503 with Retry-After, never a 2xx.
	PublishTimeout time.Duration `yaml:"publish_timeout"`
	// RetryAfter is the Retry-After of a 503.
	RetryAfter time.Duration `yaml:"retry_after"`
	// RateLimit is the messages per second each producer key may publish
	// (a token bucket; a batch takes one token per message). 0: unlimited.
	RateLimit int `yaml:"rate_limit"`
	// RateBurst is the bucket size of RateLimit, and so the largest batch
	// a rate-limited key can send.
	RateBurst int `yaml:"rate_burst"`
	// MaxConcurrentBatches bounds the batch requests one ingest node
	// decodes and publishes at once; a batch beyond it waits up to
	// PublishTimeout for a slot, then gets 503. 0: unlimited.
	MaxConcurrentBatches int `yaml:"max_concurrent_batches"`
}

// DefaultConfig is the ingest section's default.
func DefaultConfig() Config {
	return Config{
		MaxMessageBytes: 64 << 10,
		MaxBatch:        1000,
		PublishTimeout:  5 * time.Second,
		RetryAfter:      time.Second,
		RateBurst:       1000,
		// A batch in progress holds its encoded messages, about the size
		// of its body, until JetStream acks them: 8 bound that to about
		// 8 × http.max_body_bytes per node.
		MaxConcurrentBatches: 8,
	}
}

// Check calls bad for each invalid field, with its YAML key.
func (c *Config) Check(bad func(key string, value any, msg string)) {
	for _, k := range c.ProducerKeys {
		if len(k) < 16 {
			bad("producer_keys", "***", "each key must be at least 16 characters")
			break
		}
	}
	if c.MaxMessageBytes < 256 || c.MaxMessageBytes > 64<<20 {
		bad("max_message_bytes", c.MaxMessageBytes, "must be 256 B to 64 MiB (and at most the NATS max payload)")
	}
	if c.MaxBatch < 1 || c.MaxBatch > 100000 {
		bad("max_batch", c.MaxBatch, "must be 1 to 100000")
	}
	if c.PublishTimeout <= 0 {
		bad("publish_timeout", c.PublishTimeout, "must be positive")
	}
	if c.RetryAfter < time.Second {
		bad("retry_after", c.RetryAfter, "must be at least 1s")
	}
	if c.RateLimit < 0 {
		bad("rate_limit", c.RateLimit, "must not be negative (0: unlimited)")
	}
	if c.RateLimit > 0 && c.RateBurst < 1 {
		bad("rate_burst", c.RateBurst, "must be positive when ingest.rate_limit is set")
	}
	if c.MaxConcurrentBatches < 0 {
		bad("max_concurrent_batches", c.MaxConcurrentBatches, "must not be negative (0: unlimited)")
	}
}
