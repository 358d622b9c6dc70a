package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"
)

// tokenCache holds the token of the next dial and asks the source for a
// new one when it is missing, refused or near its exp.
type tokenCache struct {
	source TokenSource

	mu      sync.Mutex
	tok     string
	exp     time.Time // zero: not a JWT with an exp
	renewAt time.Time // when to ask for a new one; zero: never before a refusal
}

// get returns the token to dial with; fresh reports that the source has
// just returned it (so a refusal is not the cache's fault).
func (tc *tokenCache) get(ctx context.Context) (tok string, fresh bool, err error) {
	tc.mu.Lock()
	if tc.tok != "" && (tc.renewAt.IsZero() || time.Now().Before(tc.renewAt)) {
		defer tc.mu.Unlock()
		return tc.tok, false, nil
	}
	tc.mu.Unlock()
	tok, exp, err := tc.fetch(ctx)
	if err != nil {
		return "", false, err
	}
	tc.set(tok, exp)
	return tok, true, nil
}

// fetch calls the source; an expired token is an error.
func (tc *tokenCache) fetch(ctx context.Context) (string, time.Time, error) {
	tok, err := tc.source(ctx)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("client: token source: %w", err)
	}
	exp, _ := jwtExpiry(tok)
	if !exp.IsZero() && !time.Now().Before(exp) {
		return "", time.Time{}, fmt.Errorf("client: token source: %w at %s", ErrTokenExpired, exp.UTC().Format(time.RFC3339))
	}
	return tok, exp, nil
}

// set caches tok. A token with an exp is renewed a fifth of its remaining
// life, at most a minute, before it.
func (tc *tokenCache) set(tok string, exp time.Time) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	tc.tok, tc.exp, tc.renewAt = tok, exp, time.Time{}
	if !exp.IsZero() {
		tc.renewAt = exp.Add(-min(time.Minute, time.Until(exp)/5))
	}
}

// invalidate drops the token: the edge refused it.
func (tc *tokenCache) invalidate() {
	tc.mu.Lock()
	tc.tok = ""
	tc.mu.Unlock()
}

// refreshAt is when the current token should be replaced; zero for never.
func (tc *tokenCache) refreshAt() time.Time {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.renewAt
}

// renew asks the source for a token that outlives the current one and
// reports whether it got one. A failure is logged: the connection stays
// until the edge closes it with 4001, and the next dial asks again.
func (tc *tokenCache) renew(ctx context.Context, log *slog.Logger) bool {
	tok, exp, err := tc.fetch(ctx)
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("token refresh failed; keeping the connection until the token expires", "err", err)
		}
		return false
	}
	tc.mu.Lock()
	later := !exp.IsZero() && exp.After(tc.exp)
	tc.mu.Unlock()
	if !later {
		return false
	}
	tc.set(tok, exp)
	return true
}

// jwtExpiry reads the exp claim of a JWT without verifying anything; ok is
// false when tok is not a JWT with a numeric exp.
func jwtExpiry(tok string) (exp time.Time, ok bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp json.Number `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == "" {
		return time.Time{}, false
	}
	f, err := claims.Exp.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 || f > math.MaxInt64/2 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}
