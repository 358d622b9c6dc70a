package streams

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"
)

// idLen is the length of a generated id: 128 bits in Crockford base32.
const idLen = 26

// crockford is the Crockford base32 alphabet (no I, L, O, U); its order is
// the ASCII order, so ids sort like the numbers they encode.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// IDGen makes ULID-shaped ids: a 48-bit Unix millisecond timestamp followed
// by 80 random bits, 26 characters. Ids from one generator are strictly
// increasing: within a millisecond (or if the clock steps back) the random
// part is incremented instead of drawn again. Safe for concurrent use.
type IDGen struct {
	mu     sync.Mutex
	lastMS uint64
	hi     uint16 // top 16 of the 80 random bits
	lo     uint64 // low 64 of the 80 random bits
}

// NewIDGen returns a generator: ingest's, for the ids it assigns, and
// herald publish --nats's, so that a message has the same kind of id
// whichever way it came in.
func NewIDGen() *IDGen { return &IDGen{} }

// Next returns a new id for time t.
func (g *IDGen) Next(t time.Time) string {
	ms := uint64(t.UnixMilli()) & (1<<48 - 1)
	g.mu.Lock()
	if ms <= g.lastMS {
		ms = g.lastMS
		g.lo++
		if g.lo == 0 {
			g.hi++
			if g.hi == 0 {
				// 2^80 ids in one millisecond: borrow the next one.
				ms++
			}
		}
	} else {
		var b [10]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
		g.hi = binary.BigEndian.Uint16(b[:2])
		g.lo = binary.BigEndian.Uint64(b[2:])
	}
	g.lastMS = ms
	hi, lo := g.hi, g.lo
	g.mu.Unlock()
	return encodeID(ms, hi, lo)
}

// encodeID writes the 128-bit value ms(48) | hi(16) | lo(64) as 26 base32
// digits, most significant first (the first digit holds the top 3 bits).
func encodeID(ms uint64, hi uint16, lo uint64) string {
	// upper 64 bits: ms(48) and hi(16); lower 64 bits: lo.
	u := ms<<16 | uint64(hi)
	var out [idLen]byte
	for i := idLen - 1; i >= 0; i-- {
		out[i] = crockford[lo&31]
		// shift the 128-bit value (u, lo) right by 5
		lo = lo>>5 | u<<59
		u >>= 5
	}
	return string(out[:])
}
