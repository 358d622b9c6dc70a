// Package token verifies and mints Herald client tokens (SPEC §5): JWTs
// signed with HS256 (a shared secret) or EdDSA, ES256 or RS256 (public keys
// from config). Claims: sub = user id (required), exp (required), aud must be
// "herald" when present, optional dev = device id.
//
// A Verifier is immutable after New and safe for concurrent use.
package token

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/streams"
)

// Audience is the only accepted aud claim.
const Audience = "herald"

// MaxLen bounds the raw token; longer tokens are rejected before parsing.
const MaxLen = 8 << 10

// Sentinel errors.
var (
	ErrMissing = errors.New("token: missing")
	ErrInvalid = errors.New("token: invalid")
	ErrDevice  = errors.New("token: device does not match the token's dev claim")
	ErrNoKeys  = errors.New("token: no JWT secret or public key configured")
)

// Claims are the claims Herald reads.
type Claims struct {
	Device string `json:"dev,omitempty"`
	jwt.RegisteredClaims
}

// Verified is what a valid token grants.
type Verified struct {
	User    string
	Device  string // empty: any device
	Expires time.Time
}

// Verifier checks client tokens.
type Verifier struct {
	secret []byte
	ed     []jwt.VerificationKey
	ec     []jwt.VerificationKey
	rs     []jwt.VerificationKey
	now    func() time.Time
}

// New builds a Verifier from the auth config, reading public key files.
func New(c config.Auth) (*Verifier, error) {
	v := &Verifier{now: time.Now}
	if c.JWTSecret != "" {
		v.secret = []byte(c.JWTSecret)
	}
	for _, path := range c.PublicKeys {
		pem, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("token: public key: %w", err)
		}
		if err := v.addKey(pem); err != nil {
			return nil, fmt.Errorf("token: public key %s: %w", path, err)
		}
	}
	if v.secret == nil && len(v.ed)+len(v.ec)+len(v.rs) == 0 {
		return nil, ErrNoKeys
	}
	return v, nil
}

// NewWithPEM builds a Verifier from a secret and PEM-encoded public keys.
func NewWithPEM(secret string, pems ...[]byte) (*Verifier, error) {
	v := &Verifier{now: time.Now}
	if secret != "" {
		v.secret = []byte(secret)
	}
	for _, p := range pems {
		if err := v.addKey(p); err != nil {
			return nil, fmt.Errorf("token: public key: %w", err)
		}
	}
	if v.secret == nil && len(v.ed)+len(v.ec)+len(v.rs) == 0 {
		return nil, ErrNoKeys
	}
	return v, nil
}

func (v *Verifier) addKey(pem []byte) error {
	if k, err := jwt.ParseEdPublicKeyFromPEM(pem); err == nil {
		if _, ok := k.(ed25519.PublicKey); ok {
			v.ed = append(v.ed, k)
			return nil
		}
	}
	if k, err := jwt.ParseECPublicKeyFromPEM(pem); err == nil {
		if k.Curve.Params().BitSize != 256 {
			return errors.New("only P-256 (ES256) EC keys are supported")
		}
		v.ec = append(v.ec, k)
		return nil
	}
	if k, err := jwt.ParseRSAPublicKeyFromPEM(pem); err == nil {
		if k.N.BitLen() < 2048 {
			return errors.New("RSA keys must be at least 2048 bits")
		}
		v.rs = append(v.rs, k)
		return nil
	}
	return errors.New("not a PEM Ed25519, P-256 or RSA public key")
}

func (v *Verifier) methods() []string {
	var m []string
	if v.secret != nil {
		m = append(m, "HS256")
	}
	if len(v.ed) > 0 {
		m = append(m, "EdDSA")
	}
	if len(v.ec) > 0 {
		m = append(m, "ES256")
	}
	if len(v.rs) > 0 {
		m = append(m, "RS256")
	}
	return m
}

func (v *Verifier) keyFunc(t *jwt.Token) (any, error) {
	switch t.Method.Alg() {
	case "HS256":
		return v.secret, nil
	case "EdDSA":
		return jwt.VerificationKeySet{Keys: v.ed}, nil
	case "ES256":
		return jwt.VerificationKeySet{Keys: v.ec}, nil
	case "RS256":
		return jwt.VerificationKeySet{Keys: v.rs}, nil
	}
	return nil, fmt.Errorf("unsupported alg %q", t.Method.Alg())
}

// Verify checks raw and returns what it grants. Every failure wraps
// ErrInvalid (or ErrMissing for an empty token).
func (v *Verifier) Verify(raw string) (Verified, error) {
	if raw == "" {
		return Verified{}, ErrMissing
	}
	if len(raw) > MaxLen {
		return Verified{}, fmt.Errorf("%w: token longer than %d bytes", ErrInvalid, MaxLen)
	}
	p := jwt.NewParser(
		jwt.WithValidMethods(v.methods()),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(v.now),
		jwt.WithLeeway(5*time.Second),
		jwt.WithStrictDecoding(),
	)
	var c Claims
	if _, err := p.ParseWithClaims(raw, &c, v.keyFunc); err != nil {
		return Verified{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if len(c.Audience) > 0 {
		for _, a := range c.Audience {
			if a != Audience {
				return Verified{}, fmt.Errorf("%w: audience %q is not %q", ErrInvalid, a, Audience)
			}
		}
	}
	if err := streams.ValidateUser(c.Subject); err != nil {
		return Verified{}, fmt.Errorf("%w: sub: %v", ErrInvalid, err)
	}
	if c.Device != "" {
		if err := streams.ValidateDevice(c.Device); err != nil {
			return Verified{}, fmt.Errorf("%w: dev: %v", ErrInvalid, err)
		}
	}
	return Verified{User: c.Subject, Device: c.Device, Expires: c.ExpiresAt.Time}, nil
}

// CheckDevice returns ErrDevice when the token is bound to another device.
func (g Verified) CheckDevice(device string) error {
	if g.Device != "" && g.Device != device {
		return ErrDevice
	}
	return nil
}

// FromRequest extracts the raw token from an Authorization: Bearer header or,
// for browsers that cannot set headers on a WebSocket, a token query
// parameter.
func FromRequest(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if t, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(t)
		}
		return ""
	}
	return r.URL.Query().Get("token")
}

// Mint signs an HS256 token for user (and optionally one device) valid for
// ttl, as `herald token` does.
func Mint(secret, user, device string, ttl time.Duration) (string, error) {
	if secret == "" {
		return "", ErrNoKeys
	}
	if err := streams.ValidateUser(user); err != nil {
		return "", fmt.Errorf("token: mint: %w", err)
	}
	if device != "" {
		if err := streams.ValidateDevice(device); err != nil {
			return "", fmt.Errorf("token: mint: %w", err)
		}
	}
	now := time.Now()
	c := Claims{
		Device: device,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   user,
			Audience:  jwt.ClaimStrings{Audience},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
	if err != nil {
		return "", fmt.Errorf("token: mint: %w", err)
	}
	return s, nil
}
