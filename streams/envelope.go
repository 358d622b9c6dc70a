package streams

import (
	"time"

	"github.com/nats-io/nats.go"

	"github.com/herald-push/herald"
)

// Envelope is the message as stored in the stream: the wire type of the
// root package (SPEC §3), named here too because the stream stores it.
type Envelope = herald.Envelope

// Envelope limits (SPEC §3), as the root package defines them.
const (
	DefaultPriority = herald.DefaultPriority
	MaxPriority     = herald.MaxPriority
	MaxIDLen        = herald.MaxIDLen
	MaxTags         = herald.MaxTags
	MaxTagLen       = herald.MaxTagLen
	MaxDataDepth    = herald.MaxDataDepth
)

// ErrInvalidMessage is wrapped by every envelope validation error.
var ErrInvalidMessage = herald.ErrInvalidMessage

// ValidateID checks an idempotency key (an Idempotency-Key header or id field).
func ValidateID(id string) error { return herald.ValidateID(id) }

// MsgID returns the Nats-Msg-Id of a message with idempotency key id for
// user: the user's subject token, ":" and id. JetStream's duplicate window
// is stream-wide; scoping the header by user means one user's id can
// neither block nor reveal another user's. No token contains ":", so
// distinct (user, id) pairs never share a MsgID. The envelope keeps id as
// given. Every writer of Herald messages sets the header with this function.
func MsgID(user, id string) string {
	return Token(user) + ":" + id
}

// Decode turns a stored payload into the envelope delivered to clients
// (herald.DecodeEnvelope): a payload that is not a valid envelope is never
// dropped, it becomes a message whose body is the payload as text.
func Decode(payload []byte, seq uint64, stored time.Time) Envelope {
	return herald.DecodeEnvelope(payload, seq, stored)
}

// HeaderEnvelope marks a stored payload as Envelope.Encode's output
// (EnvelopeEncoded), which the edge turns into a message frame by adding
// "type" and "seq" without decoding it. Every Herald writer sets it
// (Subjects.NewMsg); a payload without it, such as one published straight
// to NATS, is decoded and re-encoded (Decode).
const HeaderEnvelope = "Herald-Envelope"

// EnvelopeEncoded is HeaderEnvelope's value: the version of the stored
// form.
const EnvelopeEncoded = "1"

// Encoded reports whether h marks its payload as Envelope.Encode's output.
func Encoded(h nats.Header) bool {
	return h != nil && LastHeader(h, HeaderEnvelope) == EnvelopeEncoded
}
