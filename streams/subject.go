package streams

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DefaultPrefix is the subject prefix used when none is configured.
const DefaultPrefix = "herald"

// ProducerInbox is the reply inbox prefix of producers that publish straight
// to NATS (nats.CustomInboxPrefix): JetStream sends the publish
// acknowledgement there. The producer user may subscribe to
// ProducerInbox+".>" and nothing else, so it reads no other client's replies
// (those go to _INBOX.>) and no user's messages.
const ProducerInbox = "_INBOX_producer"

// MaxUserBytes and MaxDeviceLen bound user and device ids (SPEC §2).
const (
	MaxUserBytes = 256
	MaxDeviceLen = 128
)

// Sentinel errors for ids; wrap-checked with errors.Is.
var (
	ErrInvalidUser   = errors.New("invalid user id")
	ErrInvalidDevice = errors.New("invalid device id")
	ErrInvalidToken  = errors.New("invalid subject token")
	ErrNotUserSubj   = errors.New("not a user subject")
)

// ValidateUser checks a user id: 1–256 bytes of valid UTF-8 without control
// characters. The returned error wraps ErrInvalidUser and says what is wrong.
func ValidateUser(user string) error {
	switch {
	case user == "":
		return fmt.Errorf("%w: user id is empty", ErrInvalidUser)
	case len(user) > MaxUserBytes:
		return fmt.Errorf("%w: user id is %d bytes, the maximum is %d", ErrInvalidUser, len(user), MaxUserBytes)
	case !utf8.ValidString(user):
		return fmt.Errorf("%w: user id is not valid UTF-8", ErrInvalidUser)
	}
	for _, r := range user {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: user id has a control character", ErrInvalidUser)
		}
	}
	return nil
}

// ValidateDevice checks a device id: 1–128 characters of [A-Za-z0-9_.:-].
func ValidateDevice(device string) error {
	if device == "" {
		return fmt.Errorf("%w: device id is empty", ErrInvalidDevice)
	}
	if len(device) > MaxDeviceLen {
		return fmt.Errorf("%w: device id is longer than %d characters", ErrInvalidDevice, MaxDeviceLen)
	}
	for i := 0; i < len(device); i++ {
		c := device[i]
		if !isPlain(c) && c != '.' && c != ':' {
			return fmt.Errorf("%w: device id may only contain A-Z a-z 0-9 _ . : -", ErrInvalidDevice)
		}
	}
	return nil
}

func isPlain(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

func plain(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isPlain(s[i]) {
			return false
		}
	}
	return true
}

// Token maps a user id to its subject token: the id itself when it matches
// ^[A-Za-z0-9_-]+$, else "~" followed by the unpadded base64url of its bytes.
// The mapping is reversible and collision-free because "~" never appears in a
// plain id. Token does not validate; call ValidateUser first.
func Token(user string) string {
	if plain(user) {
		return user
	}
	return "~" + base64.RawURLEncoding.EncodeToString([]byte(user))
}

// UserFromToken is the inverse of Token. It rejects any token that Token
// would not have produced, so that each user has exactly one token.
func UserFromToken(token string) (string, error) {
	if plain(token) {
		return token, nil
	}
	enc, ok := strings.CutPrefix(token, "~")
	if !ok || enc == "" {
		return "", fmt.Errorf("%w: %q", ErrInvalidToken, token)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(enc)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrInvalidToken, token, err)
	}
	user := string(raw)
	if plain(user) || ValidateUser(user) != nil {
		return "", fmt.Errorf("%w: %q is not canonical", ErrInvalidToken, token)
	}
	return user, nil
}

// Subjects is the subject scheme for one prefix. The zero value uses
// DefaultPrefix.
type Subjects struct {
	Prefix string
}

func (s Subjects) prefix() string {
	if s.Prefix == "" {
		return DefaultPrefix
	}
	return s.Prefix
}

// User returns the subject that holds a user's messages: <prefix>.user.<token>.
func (s Subjects) User(user string) string {
	return s.prefix() + ".user." + Token(user)
}

// AllUsers returns the wildcard subject the stream listens on.
func (s Subjects) AllUsers() string {
	return s.prefix() + ".user.*"
}

// Live returns the subject a stored message of a user is republished to.
func (s Subjects) Live(user string) string {
	return s.prefix() + ".live." + Token(user)
}

// LiveTemplate is the RePublish destination of the stream.
func (s Subjects) LiveTemplate() string {
	return s.prefix() + ".live.{{wildcard(1)}}"
}

// Ctl returns the core NATS subject on which the edges that hold streams
// of a user tell each other of its acks and reads: <prefix>.ctl.<token>.
func (s Subjects) Ctl(user string) string {
	return s.prefix() + ".ctl." + Token(user)
}

// Schedule returns the subject of a scheduled message (SPEC §10):
// <prefix>.sched.<user token>.<id token>, the id mapped as Token maps a
// user id. A message id is unique per user only (MsgID), so the user is
// part of the subject. JetStream keeps one schedule per subject: a second
// schedule on it replaces the first.
func (s Subjects) Schedule(user, id string) string {
	return s.prefix() + ".sched." + Token(user) + "." + Token(id)
}

// AllSchedules is the wildcard of every schedule subject, which the
// stream holds besides the user subjects.
func (s Subjects) AllSchedules() string {
	return s.prefix() + ".sched.*.*"
}

// UserFromSubject is the inverse of User.
func (s Subjects) UserFromSubject(subject string) (string, error) {
	return s.userAfter(subject, ".user.")
}

// Control returns the core NATS subject of the control messages about a
// user's devices that edges send each other (an ack reaches the device's
// streams on every edge, SPEC §9): <prefix>.ctl.<token>. It is not in the
// stream.
func (s Subjects) Control(user string) string {
	return s.prefix() + ".ctl." + Token(user)
}

// UserFromControl is the inverse of Control.
func (s Subjects) UserFromControl(subject string) (string, error) {
	return s.userAfter(subject, ".ctl.")
}

// userAfter decodes the user of <prefix><kind><token>.
func (s Subjects) userAfter(subject, kind string) (string, error) {
	tok, ok := strings.CutPrefix(subject, s.prefix()+kind)
	if !ok || tok == "" || strings.Contains(tok, ".") {
		return "", fmt.Errorf("%w: %q", ErrNotUserSubj, subject)
	}
	return UserFromToken(tok)
}

// ValidatePrefix checks that a prefix is usable as the first tokens of a
// subject: non-empty dot-separated tokens without wildcards or spaces.
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return errors.New("prefix is empty")
	}
	for _, part := range strings.Split(prefix, ".") {
		if part == "" {
			return fmt.Errorf("prefix %q has an empty token", prefix)
		}
		if strings.ContainsAny(part, "*> \t\r\n") {
			return fmt.Errorf("prefix %q has a wildcard or white space", prefix)
		}
	}
	return nil
}
