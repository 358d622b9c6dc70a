// Package token verifies and mints Herald client tokens (SPEC §5): JWTs
// signed with HS256 (a shared secret) or EdDSA, ES256 or RS256 (public keys
// from config). Claims: sub = user id (required), exp (required), aud must be
// "herald" when present (an empty aud is refused), optional dev = device id.
// A token with a crit header is refused: Herald understands no JWS
// extension (RFC 7515 §4.1.11). A token whose lifetime, exp minus iat (or
// minus now when iat is absent or later), exceeds auth.max_token_ttl is
// refused. An HS256 secret must be at least MinSecretBytes long.
//
// A token is rejected once its exp has passed: there is no leeway on exp, so
// a Verified always expires in the future, and the edge can close the
// session when it does. nbf gets a 5 second leeway for issuer clock skew.
//
// A Verifier is immutable after New and safe for concurrent use. Only a
// Verifier built by New or NewWithPEM accepts tokens.
package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

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
	// ErrWeakSecret is a JWT secret shorter than MinSecretBytes.
	ErrWeakSecret = fmt.Errorf("token: auth.jwt_secret is shorter than %d bytes (HS256 needs a 256-bit key, RFC 7518 §3.2)", MinSecretBytes)
)

// leeway is the allowance for issuer clock skew on nbf and on the token
// lifetime.
const leeway = 5 * time.Second

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
	maxTTL time.Duration // 0: no maximum
	now    func() time.Time
}

// New builds a Verifier from the auth config, reading public key files.
func New(c Config) (*Verifier, error) {
	if c.MaxTokenTTL < 0 {
		return nil, fmt.Errorf("token: auth.max_token_ttl %v: must not be negative", c.MaxTokenTTL)
	}
	v := &Verifier{now: time.Now, maxTTL: c.MaxTokenTTL}
	if c.JWTSecret != "" {
		if len(c.JWTSecret) < MinSecretBytes {
			return nil, ErrWeakSecret
		}
		v.secret = []byte(c.JWTSecret)
	}
	for _, path := range c.PublicKeys {
		pem, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("token: public key: %w", err)
		}
		if err := v.addKeys(pem); err != nil {
			return nil, fmt.Errorf("token: public key %s: %w", path, err)
		}
	}
	if v.secret == nil && len(v.ed)+len(v.ec)+len(v.rs) == 0 {
		return nil, ErrNoKeys
	}
	return v, nil
}

// NewWithPEM builds a Verifier from a secret and PEM-encoded public keys,
// with the default auth.max_token_ttl.
func NewWithPEM(secret string, pems ...[]byte) (*Verifier, error) {
	v := &Verifier{now: time.Now, maxTTL: DefaultMaxTTL}
	if secret != "" {
		if len(secret) < MinSecretBytes {
			return nil, ErrWeakSecret
		}
		v.secret = []byte(secret)
	}
	for _, p := range pems {
		if err := v.addKeys(p); err != nil {
			return nil, fmt.Errorf("token: public key: %w", err)
		}
	}
	if v.secret == nil && len(v.ed)+len(v.ec)+len(v.rs) == 0 {
		return nil, ErrNoKeys
	}
	return v, nil
}

// addKeys adds every public key of a PEM file: "PUBLIC KEY" (PKIX),
// "RSA PUBLIC KEY" (PKCS #1) or "CERTIFICATE" blocks holding an Ed25519,
// P-256 or RSA (at least 2048 bits) key. Any other block, a private key
// included, is an error, and so is a file without a PEM block.
func (v *Verifier) addKeys(data []byte) error {
	n := 0
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		n++
		k, err := parsePublicKey(b)
		if err != nil {
			return fmt.Errorf("PEM block %d (%s): %w", n, b.Type, err)
		}
		switch k := k.(type) {
		case ed25519.PublicKey:
			v.ed = append(v.ed, k)
		case *ecdsa.PublicKey:
			if k.Curve != elliptic.P256() {
				return fmt.Errorf("PEM block %d: EC key on %s: only P-256 (ES256) EC keys are supported", n, k.Curve.Params().Name)
			}
			v.ec = append(v.ec, k)
		case *rsa.PublicKey:
			if k.N.BitLen() < 2048 {
				return fmt.Errorf("PEM block %d: RSA key of %d bits: RSA keys must be at least 2048 bits", n, k.N.BitLen())
			}
			v.rs = append(v.rs, k)
		default:
			return fmt.Errorf("PEM block %d: %T is not an Ed25519, P-256 or RSA public key", n, k)
		}
	}
	if n == 0 {
		return errors.New("no PEM block: want an Ed25519, P-256 or RSA public key")
	}
	return nil
}

func parsePublicKey(b *pem.Block) (crypto.PublicKey, error) {
	switch {
	case b.Type == "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(b.Bytes)
	case b.Type == "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(b.Bytes)
	case b.Type == "CERTIFICATE":
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		return c.PublicKey, nil
	case strings.Contains(b.Type, "PRIVATE KEY"):
		return nil, errors.New("a private key; configure the public key only")
	}
	return nil, errors.New(`not a "PUBLIC KEY", "RSA PUBLIC KEY" or "CERTIFICATE" block`)
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
	// The base64 decoder skips CR and LF; reject them and anything else
	// outside the compact serialization so that a token has one spelling.
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; !isTokenChar(c) {
			return Verified{}, fmt.Errorf("%w: byte %q at %d is not base64url or '.'", ErrInvalid, c, i)
		}
	}
	methods := v.methods()
	if len(methods) == 0 {
		// A Verifier not built by New: jwt treats no methods as any method.
		return Verified{}, fmt.Errorf("%w: %w", ErrInvalid, ErrNoKeys)
	}
	now := time.Now
	if v.now != nil {
		now = v.now
	}
	p := jwt.NewParser(
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(now),
		jwt.WithLeeway(leeway),
		jwt.WithStrictDecoding(),
	)
	var c verifyClaims
	tok, err := p.ParseWithClaims(raw, &c, v.keyFunc)
	if err != nil {
		return Verified{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	// RFC 7515 §4.1.11: extensions listed in crit must be understood, and
	// Herald understands none.
	if _, ok := tok.Header["crit"]; ok {
		return Verified{}, fmt.Errorf("%w: crit header: no JWS extension is supported", ErrInvalid)
	}
	// The leeway applies to exp too; a grant must not be expired already.
	t := now()
	if !c.ExpiresAt.After(t) {
		return Verified{}, fmt.Errorf("%w: token expired at %s", ErrInvalid, c.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if v.maxTTL > 0 {
		// The lifetime counts from iat, or from now when iat is absent or
		// later (an iat in the future must not shorten it).
		from := t
		if c.IssuedAt != nil && c.IssuedAt.Before(t) {
			from = c.IssuedAt.Time
		}
		if life := c.ExpiresAt.Sub(from); life > v.maxTTL+leeway {
			return Verified{}, fmt.Errorf("%w: lifetime %v exceeds auth.max_token_ttl %v", ErrInvalid, life.Round(time.Second), v.maxTTL)
		}
	}
	if err := c.checkAudience(); err != nil {
		return Verified{}, err
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

// verifyClaims are the claims Verify decodes. Aud shadows the embedded
// RegisteredClaims.Audience: jwt.ClaimStrings decodes an empty aud ([] or
// null) to nil, the same as no aud, and an aud that is present must name
// Herald.
type verifyClaims struct {
	Claims
	Aud json.RawMessage `json:"aud,omitempty"`
}

// checkAudience accepts no aud, or an aud whose every value is Audience.
func (c *verifyClaims) checkAudience() error {
	if c.Aud == nil {
		return nil
	}
	var aud jwt.ClaimStrings
	if err := json.Unmarshal(c.Aud, &aud); err != nil {
		return fmt.Errorf("%w: aud: %v", ErrInvalid, err)
	}
	if len(aud) == 0 {
		return fmt.Errorf("%w: aud is present but names no audience; want %q", ErrInvalid, Audience)
	}
	for _, a := range aud {
		if a != Audience {
			return fmt.Errorf("%w: audience %q is not %q", ErrInvalid, a, Audience)
		}
	}
	return nil
}

func isTokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}

// CheckDevice returns ErrDevice when the token is bound to another device.
func (g Verified) CheckDevice(device string) error {
	if g.Device != "" && g.Device != device {
		return ErrDevice
	}
	return nil
}

// User verifies raw and returns the user it was issued for: the check
// ingest's history endpoint needs (ingest.TokenVerifier).
func (v *Verifier) User(raw string) (string, error) {
	g, err := v.Verify(raw)
	if err != nil {
		return "", err
	}
	return g.User, nil
}

// FromRequest extracts the raw token from an Authorization: Bearer header or,
// for browsers that cannot set headers on a WebSocket, a token query
// parameter. The scheme is case-insensitive (RFC 7235). When an Authorization
// header is present it wins: a header with another scheme yields "".
func FromRequest(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, t, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return ""
		}
		return strings.TrimSpace(t)
	}
	return r.URL.Query().Get("token")
}

// Mint signs an HS256 token for user (and optionally one device) valid for
// ttl, as `herald token` does. A ttl of zero or less mints a token that is
// already expired, which tests use; callers taking a ttl from a user should
// reject it first.
func Mint(secret, user, device string, ttl time.Duration) (string, error) {
	if secret == "" {
		return "", ErrNoKeys
	}
	if len(secret) < MinSecretBytes {
		return "", ErrWeakSecret
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
