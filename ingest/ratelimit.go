package ingest

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"time"

	"golang.org/x/time/rate"

	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/ingest/apierr"
)

// rateLimiter is a token bucket per producer key (ingest.rate_limit
// messages per second, ingest.rate_burst deep). Its table is indexed like
// the keyring, so its size is the number of configured keys. Every
// authenticated publish request costs one token; a batch of n messages
// costs n, at most the burst. Safe for concurrent use.
type rateLimiter struct {
	buckets []*rate.Limiter
	burst   int
}

// newRateLimiter returns nil when the rate is unlimited.
func newRateLimiter(c config.Ingest, keys int) *rateLimiter {
	if c.RateLimit <= 0 {
		return nil
	}
	rl := &rateLimiter{buckets: make([]*rate.Limiter, keys), burst: max(c.RateBurst, 1)}
	for i := range rl.buckets {
		rl.buckets[i] = rate.NewLimiter(rate.Limit(c.RateLimit), rl.burst)
	}
	return rl
}

// index returns the position of key in the keyring, -1 if it is none. Like
// match it compares against every key in constant time.
func (kr keyring) index(key string) int {
	d := sha256.Sum256([]byte(key))
	idx := -1
	for i := range kr {
		idx = subtle.ConstantTimeSelect(subtle.ConstantTimeCompare(d[:], kr[i][:]), i, idx)
	}
	return idx
}

// rateLimit takes n tokens (at most the burst) from the bucket of the
// request's producer key, which authProducer accepted. Without a token it
// returns 429 rate_limited with the time until there will be enough.
func (h *Handler) rateLimit(r *http.Request, n int) error {
	if h.limiter == nil || n < 1 {
		return nil
	}
	key, _ := bearer(r)
	i := h.keys.index(key)
	if i < 0 {
		return nil // not a producer key; authProducer refuses it
	}
	now := time.Now()
	res := h.limiter.buckets[i].ReserveN(now, min(n, h.limiter.burst))
	wait := time.Second
	if res.OK() {
		d := res.DelayFrom(now)
		if d == 0 {
			return nil
		}
		res.CancelAt(now)
		wait = max(d, time.Second)
	}
	return &apierr.Error{Code: apierr.RateLimited, Message: "this producer key is over its rate limit (ingest.rate_limit); retry later", RetryAfter: wait}
}
