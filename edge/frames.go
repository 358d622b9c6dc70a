package edge

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/streams"
)

// Server → client frames (SPEC §6).

// frameKind is the kind of a server frame, given to the transport with the
// encoded frame, so that SSE names its event without parsing the frame.
type frameKind uint8

const (
	kindWelcome frameKind = iota
	kindMessage
	kindSynced
	kindError
	kindRead
)

// event is the SSE event name of k; message events have none (the
// EventSource default, "message").
func (k frameKind) event() string {
	switch k {
	case kindWelcome:
		return "welcome"
	case kindSynced:
		return "synced"
	case kindError:
		return "error"
	case kindRead:
		return "read"
	}
	return ""
}

// codec encodes the server frames of one wire format: Herald's (heraldCodec,
// SPEC §6) or ntfy's (ntfy.go). A nil frame is a frame the format does not
// have; the transport is still told of it (ntfy's poll ends at synced).
type codec interface {
	welcome(d Device, st Start, read uint64) []byte
	message(d Delivery) []byte
	synced(seq uint64) []byte
}

// heraldCodec encodes Herald's frames, the root package's types.
type heraldCodec struct{}

var _ codec = heraldCodec{}

func (heraldCodec) welcome(d Device, st Start, read uint64) []byte {
	return encodeWelcome(d, st, read)
}
func (heraldCodec) message(d Delivery) []byte { return encodeMessage(d) }
func (heraldCodec) synced(seq uint64) []byte  { return encodeSynced(seq) }

// The frames are the root package's types (SPEC §6); these encode them.

func encodeWelcome(d Device, st Start, read uint64) []byte {
	f := herald.WelcomeFrame{User: d.User, Device: d.Device, Gap: st.Gap, Read: read}
	if st.From != 0 {
		from := st.From
		f.From = &from
	}
	return mustJSON(f)
}

func encodeMessage(del Delivery) []byte {
	if del.frame != nil {
		return del.frame.get(del)
	}
	return encodeMessageNow(del)
}

func encodeMessageNow(del Delivery) []byte {
	if del.encoded {
		if f, ok := spliceMessage(del.Payload, del.Seq); ok {
			return f
		}
	}
	return decodeMessage(del)
}

// decodeMessage encodes the frame of any payload, by decoding it
// (streams.Decode) and encoding the envelope.
func decodeMessage(del Delivery) []byte {
	return mustJSON(herald.MessageFrame{Envelope: streams.Decode(del.Payload, del.Seq, del.Time)})
}

// spliceMessage makes the frame of a payload that Envelope.Encode wrote
// without decoding it: "type" goes before its fields and "seq" after them,
// where encoding the decoded envelope puts them. Encode's output is
// canonical (herald.Envelope.Encode), so the frame is the one
// decodeMessage makes, byte for byte (TestSpliceMatchesDecode,
// FuzzSpliceMessage). false when payload is not a JSON object with fields,
// or seq is 0 (which the envelope omits; no stored message has it).
//
// The header that marks a payload as Encode's can be forged by a producer
// that publishes straight to NATS, so the payload must also be valid JSON
// whose top-level keys are envelope fields: a frame never carries a "type"
// or "seq" of the producer's, nor broken JSON. Anything else is decoded.
func spliceMessage(payload []byte, seq uint64) ([]byte, bool) {
	n := len(payload)
	if seq == 0 || n < 3 || payload[0] != '{' || payload[n-1] != '}' || !envelopeKeys(payload) || !json.Valid(payload) {
		return nil, false
	}
	b := make([]byte, 0, len(messagePrefix)+n+len(`,"seq":}`)+20)
	b = append(b, messagePrefix...)
	b = append(b, payload[1:n-1]...)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	return append(b, '}'), true
}

// envelopeFields are the top-level keys of a stored envelope.
var envelopeFields = map[string]bool{
	"id": true, "user": true, "time": true, "title": true, "body": true, "priority": true,
	"tags": true, "data": true, "ref": true, "op": true, "expires": true,
}

// envelopeKeys reports whether the JSON object b has keys and every
// top-level one is an envelope field (a key with an escape is not). It reads
// each byte once and does not validate b; the caller does.
func envelopeKeys(b []byte) bool {
	depth, inString := 0, false
	expectKey, keys := false, 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			if depth == 1 && expectKey {
				end := i + 1
				for end < len(b) && b[end] != '"' && b[end] != '\\' {
					end++
				}
				if end >= len(b) || b[end] != '"' || !envelopeFields[string(b[i+1:end])] {
					return false
				}
				i, expectKey = end, false
				keys++
				continue
			}
			inString = true
		case '{', '[':
			depth++
			expectKey = depth == 1 && c == '{'
		case '}', ']':
			depth--
		case ',':
			expectKey = depth == 1
		}
	}
	return keys > 0
}

// messagePrefix opens a message frame, before the envelope's fields.
const messagePrefix = `{"type":"` + herald.TypeMessage + `",`

// sharedFrame is the message frame of one live message, encoded once for
// every device of the user that it is delivered to on this edge.
type sharedFrame struct {
	once  sync.Once
	frame []byte
}

func (f *sharedFrame) get(del Delivery) []byte {
	f.once.Do(func() { f.frame = encodeMessageNow(del) })
	return f.frame
}

func encodeSynced(seq uint64) []byte {
	return mustJSON(herald.SyncedFrame{Seq: seq})
}

func encodeRead(seq uint64, device string) []byte {
	return mustJSON(herald.ReadFrame{Seq: seq, Device: device})
}

func encodeError(code herald.Code, msg string) []byte {
	return mustJSON(herald.ErrorFrame{Code: code, Message: msg})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Every frame type above is plain data; this cannot fail.
		panic(fmt.Sprintf("edge: encode frame: %v", err))
	}
	return b
}
