package streams

import (
	"crypto/sha256"
	"encoding/hex"
)

// LogUser returns the form of a user id that logs at info level and above
// carry: "u:" and the first 12 hex digits of the id's SHA-256. It is stable
// across processes and versions, so the lines of one user can be found
// (compute LogUser of the id) without logs holding the id itself.
func LogUser(user string) string {
	sum := sha256.Sum256([]byte(user))
	return "u:" + hex.EncodeToString(sum[:6])
}
