package ingest

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
)

// Keyring holds the producer keys (ingest.producer_keys) as SHA-256
// digests, so that every comparison takes the same time whatever the
// length of the presented key. Ingest admits producers with it; cmd hands
// it to the edge too, which admits producers to device status. It is
// immutable and safe for concurrent use.
type Keyring struct {
	digests [][sha256.Size]byte
}

// NewKeyring returns the keyring of keys: at least one, none empty.
func NewKeyring(keys []string) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("no producer keys configured")
	}
	kr := &Keyring{digests: make([][sha256.Size]byte, 0, len(keys))}
	for _, k := range keys {
		if k == "" {
			return nil, errors.New("a producer key is empty")
		}
		kr.digests = append(kr.digests, sha256.Sum256([]byte(k)))
	}
	return kr, nil
}

// Match reports whether key is one of the producer keys. It compares
// against every key, in constant time each, and does not stop at the first
// match.
func (kr *Keyring) Match(key string) bool {
	return kr.index(key) >= 0
}

// index returns the position of key in the keyring, -1 if it is none,
// compared as Match compares.
func (kr *Keyring) index(key string) int {
	d := sha256.Sum256([]byte(key))
	idx := -1
	for i := range kr.digests {
		idx = subtle.ConstantTimeSelect(subtle.ConstantTimeCompare(d[:], kr.digests[i][:]), i, idx)
	}
	return idx
}

// len is the number of keys.
func (kr *Keyring) len() int { return len(kr.digests) }
