package ingest

import (
	"fmt"
	"time"

	"golang.org/x/time/rate"

	"github.com/herald-push/herald"
)

// rateLimiter is a token bucket per producer key (ingest.rate_limit
// messages per second, ingest.rate_burst deep). Its table is indexed like
// the keyring, so its size is the number of configured keys. A single
// publish costs one token, a batch one per item (at least one); a batch of
// more items than the burst can never be admitted, so it is refused as too
// large. Safe for concurrent use.
type rateLimiter struct {
	buckets []*rate.Limiter
	burst   int
}

// newRateLimiter returns nil when the rate is unlimited.
func newRateLimiter(c Config, keys int) *rateLimiter {
	if c.RateLimit <= 0 {
		return nil
	}
	rl := &rateLimiter{buckets: make([]*rate.Limiter, keys), burst: max(c.RateBurst, 1)}
	for i := range rl.buckets {
		rl.buckets[i] = rate.NewLimiter(rate.Limit(c.RateLimit), rl.burst)
	}
	return rl
}

// rateLimit takes n tokens from the bucket of p's producer key. When the
// bucket holds fewer it takes none and returns 429 rate_limited with
// Retry-After set to when it will hold n (rounded up to whole seconds).
// More than the burst can never be taken: 413 too_large naming
// ingest.rate_burst, without a Retry-After.
func (h *Handler) rateLimit(p producer, n int) error {
	if h.limiter == nil || n < 1 {
		return nil
	}
	i := p.key
	if n > h.limiter.burst {
		return h.overBurst()
	}
	now := time.Now()
	res := h.limiter.buckets[i].ReserveN(now, n)
	if !res.OK() {
		return h.overBurst()
	}
	d := res.DelayFrom(now)
	if d == 0 {
		return nil
	}
	res.CancelAt(now)
	secs := (d + time.Second - 1) / time.Second
	return &herald.Error{
		Code:       herald.RateLimited,
		Message:    fmt.Sprintf("this producer key is over its rate limit (ingest.rate_limit): %d messages can be published in %d s", n, secs),
		RetryAfter: d,
	}
}

// overBurst is the 413 of a request with more messages than the bucket
// holds when full.
func (h *Handler) overBurst() error {
	return herald.NewError(herald.TooLarge, "more than %d messages in one request can never pass this producer key's rate limit (ingest.rate_burst); split the batch", h.limiter.burst)
}
