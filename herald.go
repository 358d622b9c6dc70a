// Package herald is the wire contract of Herald, a push broker: the message
// envelope (SPEC §3), the frames of the WebSocket protocol (SPEC §6 and the
// read frames of §10), the WebSocket close codes, the error codes of the
// HTTP APIs with their statuses and their JSON rendering (SPEC §4), the
// message lifecycle of SPEC §10 (lifecycle.go: how a ttl, a delay and a
// deliver_at are written, and the bodies of read state and device status),
// and the shapes of the ntfy-compatible endpoints (SPEC §12, ntfy.go).
//
// It is plain data and pure functions on the standard library alone. Every
// other package of the module may import it; it imports none of them.
// The edge and ingest encode and decode with these types, and answer with
// this error catalogue; clients (the Go client in edge/client, herald
// listen, the bench and the end-to-end tests) decode what they receive with
// them, so that each field and code is named in one place.
//
// Everything here is safe for concurrent use: there is no state.
package herald

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Envelope limits and defaults (SPEC §3).
const (
	DefaultPriority = 5
	MaxPriority     = 10
	MaxIDLen        = 128
	MaxTags         = 32
	MaxTagLen       = 128
	// MaxDataDepth is how deeply data may nest objects and arrays; data
	// itself is level 1, so {"a":{"b":[1]}} has depth 3. Deeper data is
	// refused, so that every stored message (and a history page of them)
	// stays within the depth limits of common JSON parsers.
	MaxDataDepth = 32
)

// ErrInvalidMessage is wrapped by every envelope validation error.
var ErrInvalidMessage = errors.New("invalid message")

// The values of Envelope.Op (SPEC §10).
const (
	// OpUpdate: this message replaces the one Ref names.
	OpUpdate = "update"
	// OpDelete: the message Ref names is retracted; this one needs no
	// title, body or data.
	OpDelete = "delete"
)

// Envelope is a message as stored in the stream and, with Seq set, as
// delivered to clients:
//
//	{"id":"01J…","user":"alice","time":"2026-11-23T10:00:00.123Z",
//	 "title":"Build failed","body":"main is red","priority":8,
//	 "tags":["ci"],"data":{"any":"json object"},"seq":4211}
type Envelope struct {
	// ID is the producer's idempotency key, else one ingest generated.
	ID   string `json:"id,omitempty"`
	User string `json:"user,omitempty"`
	// Time is set by ingest, or is the stored time of a payload published
	// straight to NATS.
	Time  time.Time `json:"time"`
	Title string    `json:"title,omitempty"`
	Body  string    `json:"body,omitempty"`
	// Priority is 0–MaxPriority; nil means DefaultPriority.
	Priority *int     `json:"priority,omitempty"`
	Tags     []string `json:"tags,omitempty"`
	// Data is a JSON object, kept as its bytes.
	Data json.RawMessage `json:"data,omitempty"`
	// Ref names, by its id, an earlier message of the same user that this
	// one replaces or retracts (SPEC §10); Op says which. Both or neither.
	Ref string `json:"ref,omitempty"`
	Op  string `json:"op,omitempty"`
	// Expires is when the stream removes the message (its ttl): it is
	// never delivered after that, and a client may hide it then. Nil: it
	// stays until the stream's limits remove it.
	Expires *time.Time `json:"expires,omitempty"`
	// Seq is the stream sequence of the stored message: 0 in the stored
	// form, set on delivery.
	Seq uint64 `json:"seq,omitempty"`
}

// Validate checks the fields a producer controls. It does not check User,
// whose rules (SPEC §2) the caller applies.
func (e *Envelope) Validate() error {
	if e.ID != "" {
		if err := validateID(e.ID); err != nil {
			return err
		}
	}
	if e.Priority != nil && (*e.Priority < 0 || *e.Priority > MaxPriority) {
		return fmt.Errorf("%w: priority %d is outside 0–%d", ErrInvalidMessage, *e.Priority, MaxPriority)
	}
	if len(e.Tags) > MaxTags {
		return fmt.Errorf("%w: %d tags, at most %d", ErrInvalidMessage, len(e.Tags), MaxTags)
	}
	for _, t := range e.Tags {
		if t == "" || len(t) > MaxTagLen || !utf8.ValidString(t) {
			return fmt.Errorf("%w: a tag must be 1–%d bytes of UTF-8", ErrInvalidMessage, MaxTagLen)
		}
	}
	if len(e.Data) > 0 {
		d := bytes.TrimSpace(e.Data)
		if bytes.Equal(d, []byte("null")) {
			e.Data = nil
		} else if len(d) == 0 || d[0] != '{' {
			return fmt.Errorf("%w: data must be a JSON object", ErrInvalidMessage)
		} else if depth(d, MaxDataDepth) > MaxDataDepth {
			// Checked before json.Valid, which accepts 10 000 levels.
			return fmt.Errorf("%w: data nests deeper than %d levels", ErrInvalidMessage, MaxDataDepth)
		} else if !json.Valid(d) {
			return fmt.Errorf("%w: data must be a JSON object", ErrInvalidMessage)
		}
	}
	switch {
	case e.Op != "" && e.Op != OpUpdate && e.Op != OpDelete:
		return fmt.Errorf("%w: op must be %q or %q", ErrInvalidMessage, OpUpdate, OpDelete)
	case e.Op != "" && e.Ref == "":
		return fmt.Errorf("%w: op %q needs ref, the id of the message it applies to", ErrInvalidMessage, e.Op)
	case e.Ref != "" && e.Op == "":
		return fmt.Errorf("%w: ref needs op (%q or %q)", ErrInvalidMessage, OpUpdate, OpDelete)
	case e.Ref != "":
		if validateID(e.Ref) != nil {
			return fmt.Errorf("%w: ref must be an id: 1–%d printable ASCII characters without spaces", ErrInvalidMessage, MaxIDLen)
		}
	}
	if e.Op != OpDelete && e.Title == "" && e.Body == "" && len(e.Data) == 0 {
		return fmt.Errorf("%w: a message needs a title, a body or data", ErrInvalidMessage)
	}
	return nil
}

// depth returns how deeply the JSON text b nests objects and arrays,
// counting '{' and '[' outside strings; it stops counting once the depth
// exceeds limit. It does not validate b, so it is only exact for valid
// JSON, and it reads each byte once without allocating.
func depth(b []byte, limit int) int {
	level, deepest := 0, 0
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++ // the escaped byte cannot end the string
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			level++
			if level > deepest {
				deepest = level
				if deepest > limit {
					return deepest
				}
			}
		case '}', ']':
			level--
		}
	}
	return deepest
}

// ValidateID checks an idempotency key (an Idempotency-Key header or id
// field): 1–MaxIDLen printable ASCII characters without spaces, so that it
// can travel as the Nats-Msg-Id header.
func ValidateID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: id is empty", ErrInvalidMessage)
	}
	return validateID(id)
}

func validateID(id string) error {
	if len(id) > MaxIDLen {
		return fmt.Errorf("%w: id is longer than %d characters", ErrInvalidMessage, MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] >= 0x7f {
			return fmt.Errorf("%w: id must be printable ASCII without spaces", ErrInvalidMessage)
		}
	}
	return nil
}

// PriorityOrDefault returns the message priority, DefaultPriority when unset.
func (e *Envelope) PriorityOrDefault() int {
	if e.Priority == nil {
		return DefaultPriority
	}
	return *e.Priority
}

// Encode returns the stored JSON form of the envelope: without seq, with
// the priority set, and with invalid UTF-8 in the title and body replaced
// by U+FFFD as DecodeEnvelope would. It is canonical: DecodeEnvelope and
// Encode again give the same bytes, so that a message frame can be made
// from them without decoding (the edge's fast path).
func (e Envelope) Encode() ([]byte, error) {
	e.Seq = 0
	p := e.PriorityOrDefault()
	e.Priority = &p
	// encoding/json writes invalid UTF-8 as the escape \ufffd but a valid
	// U+FFFD as itself: replacing it first keeps one form.
	e.Title = strings.ToValidUTF8(e.Title, "\uFFFD")
	e.Body = strings.ToValidUTF8(e.Body, "\uFFFD")
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("herald: encode envelope: %w", err)
	}
	return b, nil
}

// DecodeEnvelope turns a stored payload into the envelope delivered to
// clients, with seq set. A payload that is not a valid envelope (for
// example one published straight to NATS) is never dropped: it becomes
// {"seq","time","body":<payload as text>}, with invalid UTF-8 replaced.
// The stored time is used when the payload has none.
func DecodeEnvelope(payload []byte, seq uint64, stored time.Time) Envelope {
	var e Envelope
	if len(payload) > 0 && payload[0] == '{' && json.Unmarshal(payload, &e) == nil && e.Validate() == nil {
		e.Seq = seq
		if e.Time.IsZero() {
			e.Time = stored.UTC()
		}
		return e
	}
	return Envelope{Seq: seq, Time: stored.UTC(), Body: strings.ToValidUTF8(string(payload), "\uFFFD")}
}
