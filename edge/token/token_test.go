package token

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/herald-push/herald/streams"
)

// testNow is the verifiers' clock in the table tests: a fixed instant, so
// exp and nbf rows are exact.
var testNow = time.Unix(1_900_000_000, 0)

const testSecret = "test-secret-0123456789abcdef-0123456789"

// keySet holds the test signing keys. Keys are generated, never committed.
type keySet struct {
	ed    ed25519.PrivateKey
	ec    *ecdsa.PrivateKey
	rs    *rsa.PrivateKey
	rsAlt *rsa.PrivateKey // another RSA key, configured nowhere by default
}

// testKeys generates the keys once per test binary: RSA generation is slow,
// more so under -race. The result is never modified.
var testKeys = sync.OnceValue(func() *keySet {
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	rs, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	rsAlt, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return &keySet{ed: ed, ec: ec, rs: rs, rsAlt: rsAlt}
})

// pemOf encodes a public key as a PKIX "PUBLIC KEY" PEM block.
func pemOf(tb testing.TB, pub crypto.PublicKey) []byte {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// sign signs claims with method and key.
func sign(tb testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	tb.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		tb.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

// maxTTL is the default auth.max_token_ttl the table verifiers use.
var maxTTL = DefaultMaxTTL

// signHeader is sign with extra header fields.
func signHeader(tb testing.TB, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	tb.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

// signRaw signs a payload given as JSON text, with the header of method
// plus header.
func signRaw(tb testing.TB, method jwt.SigningMethod, key any, header map[string]any, payload string) string {
	tb.Helper()
	h := map[string]any{"alg": method.Alg(), "typ": "JWT"}
	for k, v := range header {
		h[k] = v
	}
	signing := seg(h) + "." + seg(payload)
	sig, err := method.Sign(signing, key)
	if err != nil {
		tb.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// claims returns valid claims at testNow with edits applied; a nil value
// deletes the claim.
func claims(edits map[string]any) jwt.MapClaims {
	c := jwt.MapClaims{
		"sub": "alice",
		"exp": testNow.Add(time.Hour).Unix(),
		"aud": Audience,
	}
	for k, v := range edits {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

// seg base64url-encodes a JSON value, or a string as is.
func seg(v any) string {
	if s, ok := v.(string); ok {
		return base64.RawURLEncoding.EncodeToString([]byte(s))
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// flipSig changes one byte of the token's decoded signature.
func flipSig(tb testing.TB, tok string) string {
	tb.Helper()
	i := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil || len(sig) == 0 {
		tb.Fatalf("flipSig: %q: %v", tok, err)
	}
	sig[len(sig)/2] ^= 0x01
	return tok[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
}

// resign keeps tok's header and signature and swaps its payload.
func resign(tok string, payload jwt.MapClaims) string {
	parts := strings.Split(tok, ".")
	return parts[0] + "." + seg(map[string]any(payload)) + "." + parts[2]
}

// newVerifier is NewWithPEM on the fixed test clock.
func newVerifier(tb testing.TB, secret string, pems ...[]byte) *Verifier {
	tb.Helper()
	v, err := NewWithPEM(secret, pems...)
	if err != nil {
		tb.Fatalf("NewWithPEM: %v", err)
	}
	v.now = func() time.Time { return testNow }
	return v
}

// verifiers are the configurations the tables use.
type verifiers struct {
	all, pubOnly, rsaOnly, rsaAltOnly, secretOnly, secretAndRSA *Verifier
}

func newVerifiers(t *testing.T) verifiers {
	k := testKeys()
	ed, ec, rs := pemOf(t, k.ed.Public()), pemOf(t, k.ec.Public()), pemOf(t, k.rs.Public())
	return verifiers{
		all:          newVerifier(t, testSecret, ed, ec, rs),
		pubOnly:      newVerifier(t, "", ed, ec, rs),
		rsaOnly:      newVerifier(t, "", rs),
		rsaAltOnly:   newVerifier(t, "", pemOf(t, k.rsAlt.Public())),
		secretOnly:   newVerifier(t, testSecret),
		secretAndRSA: newVerifier(t, testSecret, rs),
	}
}

func TestVerifyValid(t *testing.T) {
	t.Parallel()
	k := testKeys()
	vs := newVerifiers(t)
	exp := testNow.Add(time.Hour)
	hs := jwt.SigningMethodHS256
	secret := []byte(testSecret)
	cases := []struct {
		name string
		v    *Verifier
		tok  string
		want Verified
	}{
		{"HS256", vs.all, sign(t, hs, secret, claims(nil)), Verified{User: "alice", Expires: exp}},
		{"HS256 secret only", vs.secretOnly, sign(t, hs, secret, claims(nil)), Verified{User: "alice", Expires: exp}},
		{"EdDSA", vs.all, sign(t, jwt.SigningMethodEdDSA, k.ed, claims(nil)), Verified{User: "alice", Expires: exp}},
		{"ES256", vs.all, sign(t, jwt.SigningMethodES256, k.ec, claims(nil)), Verified{User: "alice", Expires: exp}},
		{"RS256", vs.all, sign(t, jwt.SigningMethodRS256, k.rs, claims(nil)), Verified{User: "alice", Expires: exp}},
		{"RS256 public keys only", vs.pubOnly, sign(t, jwt.SigningMethodRS256, k.rs, claims(nil)), Verified{User: "alice", Expires: exp}},
		{"EdDSA with dev", vs.pubOnly, sign(t, jwt.SigningMethodEdDSA, k.ed, claims(map[string]any{"dev": "phone-1"})),
			Verified{User: "alice", Device: "phone-1", Expires: exp}},
		{"dev with all allowed characters", vs.all, sign(t, hs, secret, claims(map[string]any{"dev": "Az09_.:-"})),
			Verified{User: "alice", Device: "Az09_.:-", Expires: exp}},
		{"dev empty means any device", vs.all, sign(t, hs, secret, claims(map[string]any{"dev": ""})),
			Verified{User: "alice", Expires: exp}},
		{"aud absent", vs.all, sign(t, hs, secret, claims(map[string]any{"aud": nil})), Verified{User: "alice", Expires: exp}},
		{"aud herald", vs.all, sign(t, hs, secret, claims(map[string]any{"aud": "herald"})), Verified{User: "alice", Expires: exp}},
		{"aud [herald]", vs.all, sign(t, hs, secret, claims(map[string]any{"aud": []string{"herald"}})), Verified{User: "alice", Expires: exp}},
		{"unicode user", vs.all, sign(t, hs, secret, claims(map[string]any{"sub": "émile@example.com"})),
			Verified{User: "émile@example.com", Expires: exp}},
		{"user of 256 bytes", vs.all, sign(t, hs, secret, claims(map[string]any{"sub": strings.Repeat("u", streams.MaxUserBytes)})),
			Verified{User: strings.Repeat("u", streams.MaxUserBytes), Expires: exp}},
		{"exp one second ahead", vs.all, sign(t, hs, secret, claims(map[string]any{"exp": testNow.Unix() + 1})),
			Verified{User: "alice", Expires: testNow.Add(time.Second)}},
		{"nbf in the past", vs.all, sign(t, hs, secret, claims(map[string]any{"nbf": testNow.Add(-time.Minute).Unix()})),
			Verified{User: "alice", Expires: exp}},
		{"nbf within the leeway", vs.all, sign(t, hs, secret, claims(map[string]any{"nbf": testNow.Add(3 * time.Second).Unix()})),
			Verified{User: "alice", Expires: exp}},
		{"lifetime of auth.max_token_ttl from iat", vs.all, sign(t, hs, secret, claims(map[string]any{"iat": testNow.Add(-time.Hour).Unix(), "exp": testNow.Add(maxTTL - time.Hour).Unix()})),
			Verified{User: "alice", Expires: testNow.Add(maxTTL - time.Hour)}},
		{"lifetime of auth.max_token_ttl without iat", vs.all, sign(t, hs, secret, claims(map[string]any{"exp": testNow.Add(maxTTL).Unix()})),
			Verified{User: "alice", Expires: testNow.Add(maxTTL)}},
		{"unknown claims ignored", vs.all, sign(t, hs, secret, claims(map[string]any{"iss": "acme", "scope": "x"})),
			Verified{User: "alice", Expires: exp}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.v.Verify(tc.tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got.User != tc.want.User || got.Device != tc.want.Device || !got.Expires.Equal(tc.want.Expires) {
				t.Errorf("Verify = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestVerifyInvalid(t *testing.T) {
	t.Parallel()
	k := testKeys()
	vs := newVerifiers(t)
	hs := jwt.SigningMethodHS256
	secret := []byte(testSecret)
	valid := sign(t, hs, secret, claims(nil))
	validParts := strings.Split(valid, ".")
	rsaPEM := pemOf(t, k.rs.Public())
	edPEM := pemOf(t, k.ed.Public())

	hsWith := func(edits map[string]any) string { return sign(t, hs, secret, claims(edits)) }

	// A token that is validly signed but one byte longer than MaxLen.
	long := hsWith(map[string]any{"pad": strings.Repeat("p", MaxLen)})

	cases := []struct {
		name string
		v    *Verifier
		tok  string
		want error
	}{
		// Algorithms.
		{"alg none", vs.all, seg(`{"alg":"none","typ":"JWT"}`) + "." + validParts[1] + ".", ErrInvalid},
		{"alg none with signature", vs.all, seg(`{"alg":"none","typ":"JWT"}`) + "." + validParts[1] + "." + validParts[2], ErrInvalid},
		{"alg None", vs.all, seg(`{"alg":"None"}`) + "." + validParts[1] + ".", ErrInvalid},
		{"alg hs256 lower case", vs.all, seg(`{"alg":"hs256"}`) + "." + validParts[1] + "." + validParts[2], ErrInvalid},
		{"alg missing", vs.all, seg(`{"typ":"JWT"}`) + "." + validParts[1] + "." + validParts[2], ErrInvalid},
		{"alg not a string", vs.all, seg(`{"alg":256}`) + "." + validParts[1] + "." + validParts[2], ErrInvalid},
		{"HS512", vs.all, sign(t, jwt.SigningMethodHS512, secret, claims(nil)), ErrInvalid},
		{"HS384", vs.secretOnly, sign(t, jwt.SigningMethodHS384, secret, claims(nil)), ErrInvalid},
		{"PS256 with a configured RSA key", vs.all, sign(t, jwt.SigningMethodPS256, k.rs, claims(nil)), ErrInvalid},
		{"RS512 with a configured RSA key", vs.all, sign(t, jwt.SigningMethodRS512, k.rs, claims(nil)), ErrInvalid},
		{"ES384 header", vs.all, seg(`{"alg":"ES384"}`) + "." + validParts[1] + "." + seg(strings.Repeat("s", 96)), ErrInvalid},
		{"HS256 with only public keys", vs.pubOnly, valid, ErrInvalid},
		{"EdDSA with only a secret", vs.secretOnly, sign(t, jwt.SigningMethodEdDSA, k.ed, claims(nil)), ErrInvalid},
		{"ES256 with only RSA", vs.rsaOnly, sign(t, jwt.SigningMethodES256, k.ec, claims(nil)), ErrInvalid},
		{"RS256 signed by another RSA key", vs.rsaAltOnly, sign(t, jwt.SigningMethodRS256, k.rs, claims(nil)), ErrInvalid},
		{"RS256 by an unconfigured key, all configured", vs.all, sign(t, jwt.SigningMethodRS256, k.rsAlt, claims(nil)), ErrInvalid},
		{"alg confusion: HS256 keyed with the RSA PEM", vs.rsaOnly, sign(t, hs, rsaPEM, claims(nil)), ErrInvalid},
		{"alg confusion: HS256 keyed with the RSA PEM, secret also set", vs.secretAndRSA, sign(t, hs, rsaPEM, claims(nil)), ErrInvalid},
		{"alg confusion: HS256 keyed with the Ed25519 PEM", vs.pubOnly, sign(t, hs, edPEM, claims(nil)), ErrInvalid},
		{"alg confusion: HS256 keyed with the raw Ed25519 key", vs.pubOnly, sign(t, hs, []byte(k.ed.Public().(ed25519.PublicKey)), claims(nil)), ErrInvalid},
		{"HS256 with an empty key", vs.all, sign(t, hs, []byte{}, claims(nil)), ErrInvalid},

		// Signatures.
		{"HS256 bad signature", vs.all, flipSig(t, valid), ErrInvalid},
		{"EdDSA bad signature", vs.all, flipSig(t, sign(t, jwt.SigningMethodEdDSA, k.ed, claims(nil))), ErrInvalid},
		{"ES256 bad signature", vs.all, flipSig(t, sign(t, jwt.SigningMethodES256, k.ec, claims(nil))), ErrInvalid},
		{"RS256 bad signature", vs.all, flipSig(t, sign(t, jwt.SigningMethodRS256, k.rs, claims(nil))), ErrInvalid},
		{"HS256 tampered sub", vs.all, resign(valid, claims(map[string]any{"sub": "mallory"})), ErrInvalid},
		{"RS256 tampered dev", vs.all, resign(sign(t, jwt.SigningMethodRS256, k.rs, claims(nil)), claims(map[string]any{"dev": "x"})), ErrInvalid},
		{"signature missing", vs.all, validParts[0] + "." + validParts[1] + ".", ErrInvalid},
		{"signature truncated", vs.all, valid[:len(valid)-4], ErrInvalid},
		{"ES256 signature of the wrong length", vs.all, seg(`{"alg":"ES256"}`) + "." + validParts[1] + "." + seg("short"), ErrInvalid},

		// exp and nbf.
		{"expired an hour ago", vs.all, hsWith(map[string]any{"exp": testNow.Add(-time.Hour).Unix()}), ErrInvalid},
		{"expires now", vs.all, hsWith(map[string]any{"exp": testNow.Unix()}), ErrInvalid},
		{"expired a second ago", vs.all, hsWith(map[string]any{"exp": testNow.Unix() - 1}), ErrInvalid},
		{"exp 0", vs.all, hsWith(map[string]any{"exp": 0}), ErrInvalid},
		{"exp negative", vs.all, hsWith(map[string]any{"exp": -1}), ErrInvalid},
		{"exp beyond int64", vs.all, hsWith(map[string]any{"exp": 1e300}), ErrInvalid},
		{"exp without", vs.all, hsWith(map[string]any{"exp": nil}), ErrInvalid},
		{"exp null", vs.all, seg(`{"alg":"HS256"}`) + "." + seg(`{"sub":"alice","exp":null}`) + ".x", ErrInvalid},
		{"exp a string", vs.all, hsWith(map[string]any{"exp": "tomorrow"}), ErrInvalid},
		{"nbf in the future", vs.all, hsWith(map[string]any{"nbf": testNow.Add(time.Minute).Unix()}), ErrInvalid},

		// sub.
		{"sub without", vs.all, hsWith(map[string]any{"sub": nil}), ErrInvalid},
		{"sub empty", vs.all, hsWith(map[string]any{"sub": ""}), ErrInvalid},
		{"sub a number", vs.all, hsWith(map[string]any{"sub": 42}), ErrInvalid},
		{"sub with a control char", vs.all, hsWith(map[string]any{"sub": "ali\x01ce"}), ErrInvalid},
		{"sub with a newline", vs.all, hsWith(map[string]any{"sub": "alice\n"}), ErrInvalid},
		{"sub with DEL", vs.all, hsWith(map[string]any{"sub": "alice\x7f"}), ErrInvalid},
		{"sub with a C1 control", vs.all, hsWith(map[string]any{"sub": "alice\u0085"}), ErrInvalid},
		{"sub too long", vs.all, hsWith(map[string]any{"sub": strings.Repeat("u", streams.MaxUserBytes+1)}), ErrInvalid},

		// aud.
		{"aud other", vs.all, hsWith(map[string]any{"aud": "other"}), ErrInvalid},
		{"aud [herald other]", vs.all, hsWith(map[string]any{"aud": []string{"herald", "other"}}), ErrInvalid},
		{"aud [other herald]", vs.all, hsWith(map[string]any{"aud": []string{"other", "herald"}}), ErrInvalid},
		{"aud empty string", vs.all, hsWith(map[string]any{"aud": ""}), ErrInvalid},
		{"aud Herald", vs.all, hsWith(map[string]any{"aud": "Herald"}), ErrInvalid},
		{"aud a number", vs.all, hsWith(map[string]any{"aud": 1}), ErrInvalid},
		{"aud [herald 1]", vs.all, hsWith(map[string]any{"aud": []any{"herald", 1}}), ErrInvalid},
		{"aud []", vs.all, hsWith(map[string]any{"aud": []string{}}), ErrInvalid},
		{"aud null, signed", vs.all, signRaw(t, hs, secret, nil, `{"sub":"alice","exp":`+strconv.FormatInt(testNow.Add(time.Hour).Unix(), 10)+`,"aud":null}`), ErrInvalid},

		// crit (RFC 7515 §4.1.11): Herald understands no extension.
		{"crit [exp]", vs.all, signHeader(t, hs, secret, map[string]any{"crit": []string{"exp"}}, claims(nil)), ErrInvalid},
		{"crit [x] with x", vs.all, signHeader(t, hs, secret, map[string]any{"crit": []string{"x"}, "x": 1}, claims(nil)), ErrInvalid},
		{"crit [b64]", vs.all, signHeader(t, jwt.SigningMethodEdDSA, k.ed, map[string]any{"crit": []string{"b64"}, "b64": true}, claims(nil)), ErrInvalid},
		{"crit []", vs.all, signHeader(t, hs, secret, map[string]any{"crit": []string{}}, claims(nil)), ErrInvalid},
		{"crit a string", vs.all, signHeader(t, hs, secret, map[string]any{"crit": "x"}, claims(nil)), ErrInvalid},

		// Lifetime over auth.max_token_ttl.
		{"exp - iat over the maximum", vs.all, hsWith(map[string]any{"iat": testNow.Add(-time.Hour).Unix(), "exp": testNow.Add(maxTTL).Unix()}), ErrInvalid},
		{"exp - now over the maximum, no iat", vs.all, hsWith(map[string]any{"exp": testNow.Add(maxTTL + time.Minute).Unix()}), ErrInvalid},
		{"iat in the future shortening the lifetime", vs.all, hsWith(map[string]any{"iat": testNow.Add(maxTTL).Unix(), "exp": testNow.Add(maxTTL + time.Hour).Unix()}), ErrInvalid},
		{"iat long ago, exp soon", vs.all, hsWith(map[string]any{"iat": testNow.Add(-maxTTL).Unix(), "exp": testNow.Add(time.Minute).Unix()}), ErrInvalid},
		{"exp a century ahead", vs.all, hsWith(map[string]any{"exp": testNow.AddDate(100, 0, 0).Unix()}), ErrInvalid},

		// dev.
		{"dev with a space", vs.all, hsWith(map[string]any{"dev": "my phone"}), ErrInvalid},
		{"dev with a slash", vs.all, hsWith(map[string]any{"dev": "a/b"}), ErrInvalid},
		{"dev with a subject wildcard", vs.all, hsWith(map[string]any{"dev": "a.*"}), ErrInvalid},
		{"dev with a control char", vs.all, hsWith(map[string]any{"dev": "a\x00"}), ErrInvalid},
		{"dev non-ASCII", vs.all, hsWith(map[string]any{"dev": "téléphone"}), ErrInvalid},
		{"dev too long", vs.all, hsWith(map[string]any{"dev": strings.Repeat("d", streams.MaxDeviceLen+1)}), ErrInvalid},
		{"dev a number", vs.all, hsWith(map[string]any{"dev": 7}), ErrInvalid},

		// Size and shape.
		{"empty", vs.all, "", ErrMissing},
		{"longer than MaxLen, validly signed", vs.all, long, ErrInvalid},
		{"longer than MaxLen, garbage", vs.all, strings.Repeat("a", MaxLen+1), ErrInvalid},
		{"garbage", vs.all, "garbage", ErrInvalid},
		{"one dot", vs.all, "a.b", ErrInvalid},
		{"three garbage segments", vs.all, "a.b.c", ErrInvalid},
		{"four segments", vs.all, valid + ".x", ErrInvalid},
		{"dots only", vs.all, "..", ErrInvalid},
		{"NUL", vs.all, "\x00", ErrInvalid},
		{"space", vs.all, " ", ErrInvalid},
		{"Bearer prefix left on", vs.all, "Bearer " + valid, ErrInvalid},
		{"trailing newline", vs.all, valid + "\n", ErrInvalid},
		{"header not JSON", vs.all, seg("not json") + "." + validParts[1] + "." + validParts[2], ErrInvalid},
		{"header a JSON array", vs.all, seg(`["HS256"]`) + "." + validParts[1] + "." + validParts[2], ErrInvalid},
		{"payload not JSON", vs.all, validParts[0] + "." + seg("not json") + "." + validParts[2], ErrInvalid},
		{"payload a JSON array", vs.all, validParts[0] + "." + seg(`[1,2]`) + "." + validParts[2], ErrInvalid},
		{"padded base64", vs.all, validParts[0] + "=." + validParts[1] + "." + validParts[2], ErrInvalid},
		{"standard base64 alphabet", vs.all, strings.NewReplacer("-", "+", "_", "/").Replace(valid) + "+/", ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.v.Verify(tc.tok)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify err = %v, want %v", err, tc.want)
			}
			if got != (Verified{}) {
				t.Errorf("Verify = %+v with an error, want the zero Verified", got)
			}
		})
	}
}

// TestMaxLenBoundary checks that a valid token of exactly MaxLen bytes passes
// and is not cut off by the length check.
func TestMaxLenBoundary(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, testSecret)
	var tok string
	// The payload is base64, so n bytes of padding take about 4n/3.
	for n := MaxLen*3/4 - 200; ; n++ {
		next := sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(map[string]any{"pad": strings.Repeat("p", n)}))
		if len(next) > MaxLen {
			break
		}
		tok = next
	}
	if len(tok) < MaxLen-3 {
		t.Fatalf("could not build a token near MaxLen: len %d", len(tok))
	}
	if _, err := v.Verify(tok); err != nil {
		t.Errorf("Verify of a %d-byte token: %v", len(tok), err)
	}
}

// TestZeroVerifier checks that a Verifier not built by New rejects every
// token, including an HS256 one keyed with the (empty) secret it holds.
func TestZeroVerifier(t *testing.T) {
	t.Parallel()
	var v Verifier
	for _, tok := range []string{
		sign(t, jwt.SigningMethodHS256, []byte{}, claims(map[string]any{"exp": time.Now().Add(time.Hour).Unix()})),
		sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(map[string]any{"exp": time.Now().Add(time.Hour).Unix()})),
		"a.b.c",
	} {
		if got, err := v.Verify(tok); !errors.Is(err, ErrInvalid) {
			t.Errorf("zero Verifier: Verify(%.20q…) = %+v, %v; want ErrInvalid", tok, got, err)
		}
	}
}

func TestCheckDevice(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		bound, conn string
		want        error
	}{
		{"unbound, any device", "", "phone-1", nil},
		{"unbound, no device", "", "", nil},
		{"bound, same device", "phone-1", "phone-1", nil},
		{"bound, other device", "phone-1", "tablet", ErrDevice},
		{"bound, no device", "phone-1", "", ErrDevice},
		{"bound, case differs", "phone-1", "Phone-1", ErrDevice},
		{"bound, prefix", "phone-1", "phone-", ErrDevice},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Verified{User: "alice", Device: tc.bound}.CheckDevice(tc.conn)
			if !errors.Is(err, tc.want) {
				t.Errorf("CheckDevice(%q) with dev %q = %v, want %v", tc.conn, tc.bound, err, tc.want)
			}
		})
	}
}

// TestVerifyThenCheckDevice runs the edge's two steps on real tokens.
func TestVerifyThenCheckDevice(t *testing.T) {
	t.Parallel()
	k := testKeys()
	v := newVerifier(t, "", pemOf(t, k.ec.Public()))
	bound, err := v.Verify(sign(t, jwt.SigningMethodES256, k.ec, claims(map[string]any{"dev": "phone-1"})))
	if err != nil {
		t.Fatal(err)
	}
	if err := bound.CheckDevice("phone-1"); err != nil {
		t.Errorf("matching device: %v", err)
	}
	if err := bound.CheckDevice("tablet"); !errors.Is(err, ErrDevice) {
		t.Errorf("contradicting device: err = %v, want ErrDevice", err)
	}
	unbound, err := v.Verify(sign(t, jwt.SigningMethodES256, k.ec, claims(nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := unbound.CheckDevice("tablet"); err != nil {
		t.Errorf("token without dev: %v", err)
	}
}

func TestFromRequest(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		header []string // Authorization values
		query  string
		want   string
	}{
		{"bearer header", []string{"Bearer abc.def.ghi"}, "", "abc.def.ghi"},
		{"bearer header, extra spaces", []string{"Bearer   abc.def.ghi  "}, "", "abc.def.ghi"},
		{"bearer scheme is case-insensitive", []string{"bearer abc.def.ghi"}, "", "abc.def.ghi"},
		{"BEARER", []string{"BEARER abc.def.ghi"}, "", "abc.def.ghi"},
		{"header without Bearer", []string{"abc.def.ghi"}, "", ""},
		{"basic auth", []string{"Basic YWxpY2U6cHc="}, "", ""},
		{"Bearer without a space", []string{"Bearerabc.def.ghi"}, "", ""},
		{"Bearer alone", []string{"Bearer"}, "", ""},
		{"Bearer and spaces", []string{"Bearer    "}, "", ""},
		{"query", nil, "token=abc.def.ghi", "abc.def.ghi"},
		{"query among others", nil, "device=phone-1&token=abc.def.ghi&since=4", "abc.def.ghi"},
		{"query escaped", nil, "token=a%2Bb", "a+b"},
		{"header wins over query", []string{"Bearer from-header"}, "token=from-query", "from-header"},
		{"non-Bearer header wins over query", []string{"Basic YWxpY2U6cHc="}, "token=from-query", ""},
		{"first header counts", []string{"Bearer first", "Bearer second"}, "", "first"},
		{"nothing", nil, "", ""},
		{"other query only", nil, "tok=x", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			target := "/ws"
			if tc.query != "" {
				target += "?" + tc.query
			}
			r := httptest.NewRequest(http.MethodGet, target, nil)
			for _, h := range tc.header {
				r.Header.Add("Authorization", h)
			}
			if got := FromRequest(r); got != tc.want {
				t.Errorf("FromRequest = %q, want %q", got, tc.want)
			}
		})
	}
}

// writeFile writes data to a new file in dir and returns its path.
func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNew(t *testing.T) {
	t.Parallel()
	k := testKeys()
	dir := t.TempDir()
	edFile := writeFile(t, dir, "ed.pem", pemOf(t, k.ed.Public()))
	ecFile := writeFile(t, dir, "ec.pem", pemOf(t, k.ec.Public()))
	rsFile := writeFile(t, dir, "rs.pem", pemOf(t, k.rs.Public()))
	// Two keys in one file, as during a key rotation.
	bothFile := writeFile(t, dir, "both.pem", append(pemOf(t, k.rs.Public()), pemOf(t, k.rsAlt.Public())...))

	t.Run("secret and key files", func(t *testing.T) {
		v, err := New(Config{JWTSecret: testSecret, PublicKeys: []string{edFile, ecFile, rsFile}})
		if err != nil {
			t.Fatal(err)
		}
		v.now = func() time.Time { return testNow }
		for _, tok := range []string{
			sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(nil)),
			sign(t, jwt.SigningMethodEdDSA, k.ed, claims(nil)),
			sign(t, jwt.SigningMethodES256, k.ec, claims(nil)),
			sign(t, jwt.SigningMethodRS256, k.rs, claims(nil)),
		} {
			if _, err := v.Verify(tok); err != nil {
				t.Errorf("Verify: %v", err)
			}
		}
	})
	t.Run("secret only", func(t *testing.T) {
		if _, err := New(Config{JWTSecret: testSecret}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("every key of a file", func(t *testing.T) {
		v, err := New(Config{PublicKeys: []string{bothFile}})
		if err != nil {
			t.Fatal(err)
		}
		v.now = func() time.Time { return testNow }
		for _, key := range []*rsa.PrivateKey{k.rs, k.rsAlt} {
			if _, err := v.Verify(sign(t, jwt.SigningMethodRS256, key, claims(nil))); err != nil {
				t.Errorf("Verify: %v", err)
			}
		}
	})
	t.Run("nothing configured", func(t *testing.T) {
		if _, err := New(Config{}); !errors.Is(err, ErrNoKeys) {
			t.Errorf("New = %v, want ErrNoKeys", err)
		}
	})
	t.Run("missing key file", func(t *testing.T) {
		_, err := New(Config{JWTSecret: testSecret, PublicKeys: []string{filepath.Join(dir, "nope.pem")}})
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("New = %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("key file not PEM", func(t *testing.T) {
		bad := writeFile(t, dir, "bad.pem", []byte("not a key\n"))
		if _, err := New(Config{JWTSecret: testSecret, PublicKeys: []string{bad}}); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("New = %v, want an error naming %s", err, bad)
		}
	})
}

func TestNewWithPEM(t *testing.T) {
	t.Parallel()
	k := testKeys()

	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(k.ed)
	if err != nil {
		t.Fatal(err)
	}
	ecPriv, err := x509.MarshalECPrivateKey(k.ec)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1Pub := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rs.PublicKey)})
	cert := selfSigned(t, k.ed)

	t.Run("ok", func(t *testing.T) {
		for name, pems := range map[string][][]byte{
			"Ed25519":                 {pemOf(t, k.ed.Public())},
			"P-256":                   {pemOf(t, k.ec.Public())},
			"RSA 2048":                {pemOf(t, k.rs.Public())},
			"PKCS #1 RSA public key":  {pkcs1Pub},
			"certificate":             {cert},
			"text around the block":   {append(append([]byte("# herald key\n"), pemOf(t, k.ed.Public())...), "trailer\n"...)},
			"several keys in one PEM": {bytes.Join([][]byte{pemOf(t, k.ed.Public()), pemOf(t, k.ec.Public())}, nil)},
		} {
			if _, err := NewWithPEM("", pems...); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	})
	t.Run("PKCS #1 and certificate keys verify", func(t *testing.T) {
		v := newVerifier(t, "", pkcs1Pub, cert)
		for _, tok := range []string{
			sign(t, jwt.SigningMethodRS256, k.rs, claims(nil)),
			sign(t, jwt.SigningMethodEdDSA, k.ed, claims(nil)),
		} {
			if _, err := v.Verify(tok); err != nil {
				t.Errorf("Verify: %v", err)
			}
		}
	})
	t.Run("no keys", func(t *testing.T) {
		if _, err := NewWithPEM(""); !errors.Is(err, ErrNoKeys) {
			t.Errorf("NewWithPEM() = %v, want ErrNoKeys", err)
		}
	})
	t.Run("secret only", func(t *testing.T) {
		if _, err := NewWithPEM(testSecret); err != nil {
			t.Error(err)
		}
	})
	bad := map[string][]byte{
		"P-384":                pemOf(t, p384.Public()),
		"P-224":                pemOf(t, p224.Public()),
		"RSA 1024":             pemOf(t, rsa1024.Public()),
		"PKCS #8 private key":  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
		"EC private key":       pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecPriv}),
		"not PEM":              []byte("hello"),
		"empty":                nil,
		"PEM of garbage":       pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("garbage")}),
		"good key then P-384":  append(pemOf(t, k.ed.Public()), pemOf(t, p384.Public())...),
		"raw Ed25519 key":      []byte(k.ed.Public().(ed25519.PublicKey)),
		"unknown block type":   pem.EncodeToMemory(&pem.Block{Type: "OPENSSH PRIVATE KEY", Bytes: []byte("x")}),
		"RSA 1024 certificate": selfSigned(t, rsa1024),
	}
	for name, p := range bad {
		t.Run("rejects "+name, func(t *testing.T) {
			v, err := NewWithPEM(testSecret, p)
			if err == nil {
				t.Fatalf("NewWithPEM = %v, nil; want an error", v)
			}
			if errors.Is(err, ErrNoKeys) {
				t.Errorf("err = %v; a bad key is not ErrNoKeys", err)
			}
		})
	}
}

// selfSigned returns a PEM certificate for key's public key.
func selfSigned(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "herald test"},
		NotBefore:    testNow.Add(-time.Hour),
		NotAfter:     testNow.Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestMint(t *testing.T) {
	t.Parallel()
	v, err := NewWithPEM(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().Truncate(time.Second)
	raw, err := Mint(testSecret, "alice", "phone-1", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	got, err := v.Verify(raw)
	if err != nil {
		t.Fatalf("Verify(Mint) = %v", err)
	}
	if got.User != "alice" || got.Device != "phone-1" {
		t.Errorf("Verify(Mint) = %+v, want alice on phone-1", got)
	}
	if lo, hi := before.Add(24*time.Hour), after.Add(24*time.Hour); got.Expires.Before(lo) || got.Expires.After(hi) {
		t.Errorf("Expires = %v, want within [%v, %v]", got.Expires, lo, hi)
	}

	// The claims are the ones SPEC §5 names, plus iat.
	var c jwt.MapClaims
	tok, _, err := jwt.NewParser().ParseUnverified(raw, &c)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Method.Alg() != "HS256" {
		t.Errorf("alg = %s, want HS256", tok.Method.Alg())
	}
	if c["aud"] == nil || c["iat"] == nil || c["dev"] != "phone-1" || c["sub"] != "alice" {
		t.Errorf("claims = %v", c)
	}

	// No dev claim when no device is given.
	raw, err = Mint(testSecret, "bob", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := v.Verify(raw); err != nil || got.Device != "" || got.User != "bob" {
		t.Errorf("Verify(Mint without device) = %+v, %v", got, err)
	}
	var c2 jwt.MapClaims
	if _, _, err := jwt.NewParser().ParseUnverified(raw, &c2); err != nil {
		t.Fatal(err)
	}
	if _, ok := c2["dev"]; ok {
		t.Errorf("dev claim present without a device: %v", c2)
	}

	// Another secret does not verify it.
	other, err := NewWithPEM("another secret, also 32 bytes or more")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Verify(raw); !errors.Is(err, ErrInvalid) {
		t.Errorf("Verify with another secret = %v, want ErrInvalid", err)
	}
}

func TestMintErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name                 string
		secret, user, device string
		ttl                  time.Duration
		want                 error
	}{
		{"no secret", "", "alice", "", time.Hour, ErrNoKeys},
		{"secret of 31 bytes", strings.Repeat("s", 31), "alice", "", time.Hour, ErrWeakSecret},
		{"no user", testSecret, "", "", time.Hour, streams.ErrInvalidUser},
		{"user with a control char", testSecret, "a\x00", "", time.Hour, streams.ErrInvalidUser},
		{"bad device", testSecret, "alice", "my phone", time.Hour, streams.ErrInvalidDevice},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := Mint(tc.secret, tc.user, tc.device, tc.ttl)
			if !errors.Is(err, tc.want) {
				t.Errorf("Mint = %q, %v; want error %v", raw, err, tc.want)
			}
			if raw != "" {
				t.Errorf("Mint returned a token with an error: %q", raw)
			}
		})
	}
}

// TestWeakSecret: an HS256 secret shorter than 256 bits is refused by
// every constructor (RFC 7518 §3.2); 32 bytes is enough.
func TestWeakSecret(t *testing.T) {
	t.Parallel()
	for _, secret := range []string{"a", strings.Repeat("s", MinSecretBytes-1)} {
		if _, err := New(Config{JWTSecret: secret}); !errors.Is(err, ErrWeakSecret) {
			t.Errorf("New(%d-byte secret) = %v, want ErrWeakSecret", len(secret), err)
		}
		if _, err := NewWithPEM(secret); !errors.Is(err, ErrWeakSecret) {
			t.Errorf("NewWithPEM(%d-byte secret) = %v, want ErrWeakSecret", len(secret), err)
		}
	}
	if !strings.Contains(ErrWeakSecret.Error(), "auth.jwt_secret") {
		t.Errorf("ErrWeakSecret = %q, want it to name auth.jwt_secret", ErrWeakSecret)
	}
	ok := strings.Repeat("s", MinSecretBytes)
	if _, err := New(Config{JWTSecret: ok}); err != nil {
		t.Errorf("New(32-byte secret) = %v", err)
	}
}

// TestMaxTokenTTL: auth.max_token_ttl bounds the lifetime of an accepted
// token; 0 removes the bound.
func TestMaxTokenTTL(t *testing.T) {
	t.Parallel()
	hour := sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(map[string]any{"iat": testNow.Unix(), "exp": testNow.Add(time.Hour).Unix()}))
	twoHours := sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(map[string]any{"exp": testNow.Add(2 * time.Hour).Unix()}))
	decade := sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(map[string]any{"iat": testNow.Unix(), "exp": testNow.AddDate(10, 0, 0).Unix()}))
	for _, tc := range []struct {
		max            time.Duration
		hour, two, dec bool // accepted
	}{
		{time.Hour, true, false, false},
		{0, true, true, true},
	} {
		v, err := New(Config{JWTSecret: testSecret, MaxTokenTTL: tc.max})
		if err != nil {
			t.Fatal(err)
		}
		v.now = func() time.Time { return testNow }
		for _, c := range []struct {
			name string
			tok  string
			ok   bool
		}{{"1h", hour, tc.hour}, {"2h", twoHours, tc.two}, {"10y", decade, tc.dec}} {
			_, err := v.Verify(c.tok)
			if c.ok && err != nil {
				t.Errorf("max %v: %s token refused: %v", tc.max, c.name, err)
			}
			if !c.ok && !errors.Is(err, ErrInvalid) {
				t.Errorf("max %v: %s token: err = %v, want ErrInvalid", tc.max, c.name, err)
			}
		}
	}
	if _, err := New(Config{JWTSecret: testSecret, MaxTokenTTL: -time.Second}); err == nil {
		t.Error("New with a negative max_token_ttl succeeded")
	}
}

// TestMintExpired checks that a ttl of zero or less mints a token Verify
// rejects, as tests elsewhere rely on.
func TestMintExpired(t *testing.T) {
	t.Parallel()
	v, err := NewWithPEM(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	for _, ttl := range []time.Duration{0, -time.Minute} {
		raw, err := Mint(testSecret, "alice", "", ttl)
		if err != nil {
			t.Fatalf("Mint(ttl %v): %v", ttl, err)
		}
		if got, err := v.Verify(raw); !errors.Is(err, ErrInvalid) {
			t.Errorf("Verify(Mint(ttl %v)) = %+v, %v; want ErrInvalid", ttl, got, err)
		}
	}
}

// TestVerifyConcurrent shares one Verifier between goroutines (run with -race).
func TestVerifyConcurrent(t *testing.T) {
	t.Parallel()
	k := testKeys()
	v := newVerifier(t, testSecret, pemOf(t, k.ed.Public()), pemOf(t, k.rs.Public()))
	toks := []string{
		sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(nil)),
		sign(t, jwt.SigningMethodEdDSA, k.ed, claims(nil)),
		sign(t, jwt.SigningMethodRS256, k.rs, claims(nil)),
	}
	errs := make(chan error, 8*len(toks))
	var wg sync.WaitGroup
	for range 8 {
		for _, tok := range toks {
			wg.Go(func() {
				_, err := v.Verify(tok)
				errs <- err
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// fuzzSecret and the fixed seeds below give every fuzz worker process the
// same HS256, EdDSA and ES256 keys, so seeded valid tokens stay valid in the
// workers. The RSA key is generated per process.
const fuzzSecret = "fuzz-secret-0123456789abcdef-0123456789"

func fuzzKeys(tb testing.TB) (ed25519.PrivateKey, *ecdsa.PrivateKey) {
	ed := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x42}, ed25519.SeedSize))
	ec, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), bytes.Repeat([]byte{0x42}, 32))
	if err != nil {
		tb.Fatal(err)
	}
	return ed, ec
}

func FuzzVerify(f *testing.F) {
	ed, ec := fuzzKeys(f)
	rs, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	v, err := NewWithPEM(fuzzSecret, pemOf(f, ed.Public()), pemOf(f, ec.Public()), pemOf(f, rs.Public()))
	if err != nil {
		f.Fatal(err)
	}
	v.now = func() time.Time { return now }

	c := func(edits map[string]any) jwt.MapClaims {
		m := jwt.MapClaims{"sub": "alice", "exp": now.Add(time.Hour).Unix(), "aud": Audience}
		for k, val := range edits {
			if val == nil {
				delete(m, k)
				continue
			}
			m[k] = val
		}
		return m
	}
	hs := func(edits map[string]any) string {
		return sign(f, jwt.SigningMethodHS256, []byte(fuzzSecret), c(edits))
	}
	valid := hs(nil)
	parts := strings.Split(valid, ".")
	for _, s := range []string{
		valid,
		hs(map[string]any{"dev": "phone-1"}),
		hs(map[string]any{"aud": []string{"herald"}}),
		hs(map[string]any{"aud": nil, "nbf": now.Unix()}),
		hs(map[string]any{"exp": now.Unix() + 1}),
		hs(map[string]any{"exp": float64(now.Unix()) + 0.5}),
		hs(map[string]any{"sub": "émile@example.com"}),
		sign(f, jwt.SigningMethodEdDSA, ed, c(nil)),
		sign(f, jwt.SigningMethodES256, ec, c(map[string]any{"dev": "a:b.c_d-e"})),
		sign(f, jwt.SigningMethodRS256, rs, c(nil)),
		// Invalid.
		seg(`{"alg":"none"}`) + "." + parts[1] + ".",
		sign(f, jwt.SigningMethodHS512, []byte(fuzzSecret), c(nil)),
		sign(f, jwt.SigningMethodPS256, rs, c(nil)),
		sign(f, jwt.SigningMethodHS256, pemOf(f, rs.Public()), c(nil)),
		hs(map[string]any{"exp": now.Unix() - 1}),
		hs(map[string]any{"exp": nil}),
		hs(map[string]any{"exp": 1e300}),
		hs(map[string]any{"sub": nil}),
		hs(map[string]any{"sub": "a\x01"}),
		hs(map[string]any{"aud": "other"}),
		hs(map[string]any{"aud": []string{"herald", "other"}}),
		hs(map[string]any{"dev": "a b"}),
		flipSig(f, valid),
		"",
		"a.b.c",
		"..",
		"garbage",
		seg(`{"alg":"HS256"}`) + "." + seg(`{"sub":"alice","exp":null}`) + ".",
		seg(`{"alg":"ES256"}`) + "." + parts[1] + "." + seg("x"),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := v.Verify(raw)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrMissing) {
				t.Fatalf("Verify(%q) err = %v, want ErrInvalid or ErrMissing", raw, err)
			}
			if got != (Verified{}) {
				t.Fatalf("Verify(%q) = %+v with error %v", raw, got, err)
			}
			return
		}
		if len(raw) > MaxLen {
			t.Fatalf("Verify accepted a %d-byte token", len(raw))
		}
		if err := streams.ValidateUser(got.User); err != nil {
			t.Fatalf("Verify(%q) accepted user %q: %v", raw, got.User, err)
		}
		if got.Device != "" {
			if err := streams.ValidateDevice(got.Device); err != nil {
				t.Fatalf("Verify(%q) accepted device %q: %v", raw, got.Device, err)
			}
		}
		if got.Expires.IsZero() || !got.Expires.After(now) {
			t.Fatalf("Verify(%q) accepted Expires %v at %v", raw, got.Expires, now)
		}
	})
}

func FuzzFromRequest(f *testing.F) {
	f.Add("Bearer abc.def.ghi", "")
	f.Add("", "token=abc.def.ghi")
	f.Add("Bearer  x ", "token=y")
	f.Add("bearer x", "")
	f.Add("Basic x", "token=y")
	f.Add("", "token=%zz&token=a")
	f.Add("", "a=1;token=2")
	f.Fuzz(func(t *testing.T, header, query string) {
		r := &http.Request{Header: http.Header{}, URL: &url.URL{Path: "/ws", RawQuery: query}}
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		got := FromRequest(r)
		if got != strings.TrimSpace(got) && header != "" {
			t.Fatalf("FromRequest(%q) = %q, not trimmed", header, got)
		}
		if header != "" {
			if !strings.Contains(header, got) {
				t.Fatalf("FromRequest(%q) = %q, not from the header", header, got)
			}
			return
		}
		want, _ := url.ParseQuery(query)
		if got != want.Get("token") {
			t.Fatalf("FromRequest(query %q) = %q, want %q", query, got, want.Get("token"))
		}
	})
}
