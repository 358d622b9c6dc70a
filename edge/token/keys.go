package token

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
)

// Keyring holds producer keys (ingest.producer_keys) as SHA-256 digests,
// so that every comparison takes the same time whatever the length of the
// presented key. Ingest admits producers with it, and the edge admits them
// to device status. It is immutable and safe for concurrent use.
type Keyring struct {
	digests [][sha256.Size]byte
}

// NewKeyring returns the keyring of keys; an empty key is an error. No
// keys is a keyring that matches nothing.
func NewKeyring(keys []string) (*Keyring, error) {
	kr := &Keyring{digests: make([][sha256.Size]byte, 0, len(keys))}
	for _, k := range keys {
		if k == "" {
			return nil, errors.New("token: a producer key is empty")
		}
		kr.digests = append(kr.digests, sha256.Sum256([]byte(k)))
	}
	return kr, nil
}

// Len is the number of keys.
func (kr *Keyring) Len() int { return len(kr.digests) }

// Match reports whether key is one of the keys. It compares against every
// key, in constant time each, and does not stop at the first match.
func (kr *Keyring) Match(key string) bool {
	return kr.Index(key) >= 0
}

// Index returns the position of key among the keys (the order they were
// given in), -1 if it is none; compared as Match compares.
func (kr *Keyring) Index(key string) int {
	d := sha256.Sum256([]byte(key))
	idx := -1
	for i := range kr.digests {
		idx = subtle.ConstantTimeSelect(subtle.ConstantTimeCompare(d[:], kr.digests[i][:]), i, idx)
	}
	return idx
}
