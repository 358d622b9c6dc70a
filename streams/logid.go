package streams

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// LogUser returns the form of a user id that Herald's logs, at every level,
// carry: "u:" and the first 12 hex digits of the id's SHA-256. It is stable
// across processes and versions, so the lines of one user can be found
// (compute LogUser of the id) without logs holding the id itself.
func LogUser(user string) string {
	sum := sha256.Sum256([]byte(user))
	return "u:" + hex.EncodeToString(sum[:6])
}

// logKinds are the subject kinds whose first token after the kind is a
// user token.
var logKinds = []string{"user", "live", "ctl", "sched"}

// LogSubjects returns text with the user token of each subject of this
// scheme in it (<prefix>.user.<token>, <prefix>.live.<token>,
// <prefix>.ctl.<token> or <prefix>.sched.<token>.<id>) replaced by LogUser
// of its user, so that text Herald does not compose, such as a NATS error
// naming a subscription, can be logged. A token that does not decode is replaced by LogUser of the token;
// wildcards are kept.
func (s Subjects) LogSubjects(text string) string {
	for _, kind := range logKinds {
		marker := s.prefix() + "." + kind + "."
		if !strings.Contains(text, marker) {
			continue
		}
		var b strings.Builder
		for {
			i := strings.Index(text, marker)
			if i < 0 {
				break
			}
			i += len(marker)
			b.WriteString(text[:i])
			j := i
			for j < len(text) && (isPlain(text[j]) || text[j] == '~') {
				j++
			}
			if tok := text[i:j]; tok != "" {
				user, err := UserFromToken(tok)
				if err != nil {
					user = tok
				}
				b.WriteString(LogUser(user))
			}
			text = text[j:]
		}
		b.WriteString(text)
		text = b.String()
	}
	return text
}
