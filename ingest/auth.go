package ingest

import (
	"net/http"
	"strings"

	"github.com/herald-push/herald"
)

// bearer returns the credentials of an "Authorization: Bearer <x>" header
// (the scheme is case-insensitive), and whether the header was present.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false
	}
	scheme, cred, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", true
	}
	return strings.TrimSpace(cred), true
}

var (
	errNoCredentials = herald.NewError(herald.Unauthorized, "missing Authorization: Bearer <producer key>")
	errBadKey        = herald.NewError(herald.Unauthorized, "unknown producer key")
)

// producer is a producer admitted by its key.
type producer struct {
	key int // the key's position in the keyring, which indexes its rate limit
}

// authProducer admits a request that carries a producer key.
func (h *Handler) authProducer(r *http.Request) (producer, error) {
	key, present := bearer(r)
	if !present || key == "" {
		return producer{}, errNoCredentials
	}
	return h.producer(key)
}

func (h *Handler) producer(key string) (producer, error) {
	i := h.keys.index(key)
	if i < 0 {
		return producer{}, errBadKey
	}
	return producer{key: i}, nil
}

// Admit checks a producer key that came some other way than the
// Authorization: Bearer header (the drop-in endpoints of package
// ingest/compat read it from Basic credentials or a query parameter), and
// takes one token of the key's rate limit, as a single publish does before
// it reads its body. Errors are *herald.Error: 401 for an unknown key, 429
// over the rate limit.
func (h *Handler) Admit(key string) error {
	if key == "" {
		return errBadKey
	}
	p, err := h.producer(key)
	if err != nil {
		return err
	}
	return h.rateLimit(p, 1)
}

// grant is what authenticated a history request.
type grant struct {
	producer bool
	user     string // the token's user when !producer
}

// authReader admits a history request that carries a producer key (header)
// or a client token (header or ?token=). It does not check which user the
// token is for; see grant.allows.
func (h *Handler) authReader(r *http.Request) (grant, error) {
	cred, present := bearer(r)
	if !present {
		cred = r.URL.Query().Get("token")
	} else if h.keys.Match(cred) {
		return grant{producer: true}, nil
	}
	if cred == "" {
		return grant{}, herald.NewError(herald.Unauthorized, "missing Authorization: Bearer <producer key or client token>")
	}
	if h.tokens == nil {
		return grant{}, errBadKey
	}
	user, err := h.tokens.User(cred)
	if err != nil {
		return grant{}, herald.WrapError(herald.Unauthorized, err, "unknown producer key or invalid client token")
	}
	return grant{user: user}, nil
}

// allows reports whether the grant may read user's messages.
func (g grant) allows(user string) error {
	if g.producer || g.user == user {
		return nil
	}
	return herald.NewError(herald.Forbidden, "the token does not grant access to this user")
}
