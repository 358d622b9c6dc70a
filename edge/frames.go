package edge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"

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
	}
	return ""
}

type welcomeFrame struct {
	Type   string  `json:"type"`
	User   string  `json:"user"`
	Device string  `json:"device"`
	From   *uint64 `json:"from"`
	Gap    bool    `json:"gap"`
}

type messageFrame struct {
	Type string `json:"type"`
	streams.Envelope
}

type syncedFrame struct {
	Type string `json:"type"`
	Seq  uint64 `json:"seq"`
}

type errorFrame struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func encodeWelcome(d Device, st Start) []byte {
	f := welcomeFrame{Type: "welcome", User: d.User, Device: d.Device, Gap: st.Gap}
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
	return mustJSON(messageFrame{Type: "message", Envelope: streams.Decode(del.Payload, del.Seq, del.Time)})
}

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
	return mustJSON(syncedFrame{Type: "synced", Seq: seq})
}

func encodeError(code, msg string) []byte {
	return mustJSON(errorFrame{Type: "error", Code: code, Message: msg})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Every frame type above is plain data; this cannot fail.
		panic(fmt.Sprintf("edge: encode frame: %v", err))
	}
	return b
}

// ClientFrame is a parsed client → server frame.
type ClientFrame struct {
	Type string
	Seq  uint64
}

// Errors of ParseClientFrame; the message is shown to the client.
var (
	ErrFrameJSON    = errors.New("frame is not a JSON object")
	ErrFrameType    = errors.New(`unknown frame type (want "ack")`)
	ErrFrameBadSeq  = errors.New("ack needs a positive integer seq")
	errFrameMissing = errors.New("frame has no type")
)

// ParseClientFrame parses one client frame: {"type":"ack","seq":N}.
func ParseClientFrame(b []byte) (ClientFrame, error) {
	if seq, ok := parseCanonicalAck(b); ok {
		return ClientFrame{Type: "ack", Seq: seq}, nil
	}
	return parseClientFrameJSON(b)
}

// canonicalAck is how clients (herald listen, the bench, the SDK examples)
// write an ack; it is parsed without reflection.
const canonicalAck = `{"type":"ack","seq":`

// parseCanonicalAck parses exactly {"type":"ack","seq":N} with N a
// positive decimal without leading zeros that fits a uint64; ok is false
// for anything else, which the JSON parser then decides on (with the same
// result for every input this accepts).
func parseCanonicalAck(b []byte) (uint64, bool) {
	if len(b) < len(canonicalAck)+2 || string(b[:len(canonicalAck)]) != canonicalAck || b[len(b)-1] != '}' {
		return 0, false
	}
	digits := b[len(canonicalAck) : len(b)-1]
	if len(digits) == 0 || digits[0] < '1' || digits[0] > '9' {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	seq, err := strconv.ParseUint(string(digits), 10, 64)
	if err != nil {
		return 0, false
	}
	return seq, true
}

func parseClientFrameJSON(b []byte) (ClientFrame, error) {
	var raw struct {
		Type *string         `json:"type"`
		Seq  json.RawMessage `json:"seq"`
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return ClientFrame{}, ErrFrameJSON
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return ClientFrame{}, ErrFrameJSON
	}
	if raw.Type == nil {
		return ClientFrame{}, errFrameMissing
	}
	switch *raw.Type {
	case "ack":
		var seq uint64
		if len(raw.Seq) == 0 || json.Unmarshal(raw.Seq, &seq) != nil || seq == 0 {
			return ClientFrame{}, ErrFrameBadSeq
		}
		return ClientFrame{Type: "ack", Seq: seq}, nil
	default:
		return ClientFrame{}, ErrFrameType
	}
}
