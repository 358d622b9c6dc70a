package herald

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
)

// Frame types: the "type" field of every frame.
const (
	TypeWelcome = "welcome" // server → client, once, right after the upgrade
	TypeMessage = "message" // server → client, each message in seq order
	TypeSynced  = "synced"  // server → client, once the backlog at connect time is out
	TypeError   = "error"   // server → client, before a close the client caused
	TypeRead    = "read"    // both ways: the user has seen everything up to seq
	TypeAck     = "ack"     // client → server: delivered up to seq, cumulative
)

// Server → client frames. Each marshals to one JSON object whose first
// field is "type"; each also unmarshals from its frame (the type is then
// ignored). ParseServerFrame decodes a frame of any type.

// WelcomeFrame is the first frame of a connection:
//
//	{"type":"welcome","user":"alice","device":"phone","from":4211,"gap":false}
type WelcomeFrame struct {
	User   string `json:"user"`
	Device string `json:"device"`
	// From is the first seq the edge will deliver, nil when there is
	// nothing to deliver yet.
	From *uint64 `json:"from"`
	// Gap is true when messages after the requested position were already
	// removed by retention: the client should refresh from its backend.
	Gap bool `json:"gap"`
	// Read is the user's read position (SPEC §10), 0 when none; omitted
	// when 0.
	Read uint64 `json:"read,omitempty"`
}

// MessageFrame is a delivered message: the envelope with its seq.
//
//	{"type":"message","id":"01J…","user":"alice","time":…,"body":"main is red","priority":5,"seq":4211}
type MessageFrame struct {
	Envelope
}

// SyncedFrame says that the backlog at connect time has been sent; Seq is
// its last seq.
type SyncedFrame struct {
	Seq uint64 `json:"seq"`
}

// ErrorFrame precedes a close the client caused, or answers a malformed
// client frame (InvalidFrame, and the connection stays open).
type ErrorFrame struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// ReadFrame is a read position (SPEC §10). A device sends
// {"type":"read","seq":N}; the edge sends {"type":"read","seq":N,"device":D}
// to the user's other devices, D being the one that read.
type ReadFrame struct {
	Seq    uint64 `json:"seq"`
	Device string `json:"device,omitempty"`
}

// AckFrame acknowledges Seq and every earlier message of the device:
// {"type":"ack","seq":N}. AppendAck writes the same bytes without
// reflection.
type AckFrame struct {
	Seq uint64 `json:"seq"`
}

// The MarshalJSON methods embed a local copy of their type, which has no
// MarshalJSON method, so that its fields follow "type" without recursion.

// MarshalJSON encodes f with "type":"welcome".
func (f WelcomeFrame) MarshalJSON() ([]byte, error) {
	type fields WelcomeFrame
	return json.Marshal(struct {
		Type string `json:"type"`
		fields
	}{TypeWelcome, fields(f)})
}

// MarshalJSON encodes f with "type":"message".
func (f MessageFrame) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Type string `json:"type"`
		Envelope
	}{TypeMessage, f.Envelope})
}

// MarshalJSON encodes f with "type":"synced".
func (f SyncedFrame) MarshalJSON() ([]byte, error) {
	type fields SyncedFrame
	return json.Marshal(struct {
		Type string `json:"type"`
		fields
	}{TypeSynced, fields(f)})
}

// MarshalJSON encodes f with "type":"error".
func (f ErrorFrame) MarshalJSON() ([]byte, error) {
	type fields ErrorFrame
	return json.Marshal(struct {
		Type string `json:"type"`
		fields
	}{TypeError, fields(f)})
}

// MarshalJSON encodes f with "type":"read".
func (f ReadFrame) MarshalJSON() ([]byte, error) {
	type fields ReadFrame
	return json.Marshal(struct {
		Type string `json:"type"`
		fields
	}{TypeRead, fields(f)})
}

// MarshalJSON encodes f with "type":"ack", as AppendAck does.
func (f AckFrame) MarshalJSON() ([]byte, error) {
	return AppendAck(nil, f.Seq), nil
}

// ServerFrame is any server → client frame, decoded by ParseServerFrame.
// Type says which fields the frame has:
//
//	welcome: User, Device, From, Gap, Read
//	message: the Envelope, Seq included
//	synced:  Seq
//	error:   Code, Message
//	read:    Seq, Device
//
// A client ignores a frame whose Type it does not know: later versions of
// the protocol may add some.
type ServerFrame struct {
	Type string `json:"type"`
	Envelope
	Device  string  `json:"device,omitempty"`
	From    *uint64 `json:"from,omitempty"`
	Gap     bool    `json:"gap,omitempty"`
	Read    uint64  `json:"read,omitempty"`
	Code    Code    `json:"code,omitempty"`
	Message string  `json:"message,omitempty"`
}

// Errors of ParseServerFrame and ParseClientFrame. The edge shows a client
// the message of the one its frame caused.
var (
	ErrFrameJSON   = errors.New("frame is not a JSON object")
	ErrFrameNoType = errors.New("frame has no type")
	ErrFrameType   = errors.New(`unknown frame type (want "ack" or "read")`)
	ErrFrameSeq    = errors.New("seq must be a positive integer")
)

// ParseServerFrame decodes a server → client frame. It fails only on a
// frame that is not a JSON object (ErrFrameJSON) or has no string type
// (ErrFrameNoType); a frame of an unknown type is returned as it is.
func ParseServerFrame(b []byte) (ServerFrame, error) {
	var f struct {
		ServerFrame
		Type *string `json:"type"` // shadows ServerFrame.Type, to tell a missing type
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' || json.Unmarshal(b, &f) != nil {
		return ServerFrame{}, ErrFrameJSON
	}
	if f.Type == nil {
		return ServerFrame{}, ErrFrameNoType
	}
	f.ServerFrame.Type = *f.Type
	return f.ServerFrame, nil
}

// ClientFrame is a parsed client → server frame: an ack or a read.
type ClientFrame struct {
	Type string // TypeAck or TypeRead
	Seq  uint64 // > 0
}

// The canonical forms of the client frames, which AppendAck and AppendRead
// write and ParseAck and ParseClientFrame read without reflection.
const (
	canonicalAck  = `{"type":"ack","seq":`
	canonicalRead = `{"type":"read","seq":`
)

// AppendAck appends the ack frame of seq, {"type":"ack","seq":N}, to dst.
func AppendAck(dst []byte, seq uint64) []byte {
	dst = append(dst, canonicalAck...)
	dst = strconv.AppendUint(dst, seq, 10)
	return append(dst, '}')
}

// AppendRead appends the read frame a device sends, {"type":"read","seq":N},
// to dst.
func AppendRead(dst []byte, seq uint64) []byte {
	dst = append(dst, canonicalRead...)
	dst = strconv.AppendUint(dst, seq, 10)
	return append(dst, '}')
}

// ParseAck parses exactly the bytes AppendAck writes for a seq > 0. ok is
// false for anything else, which ParseClientFrame's JSON parser then
// decides on, with the same result for every input ParseAck accepts.
func ParseAck(b []byte) (seq uint64, ok bool) {
	return parseCanonical(b, canonicalAck)
}

// parseCanonical parses prefix N } with N a positive decimal without
// leading zeros that fits a uint64.
func parseCanonical(b []byte, prefix string) (uint64, bool) {
	if len(b) < len(prefix)+2 || string(b[:len(prefix)]) != prefix || b[len(b)-1] != '}' {
		return 0, false
	}
	digits := b[len(prefix) : len(b)-1]
	if digits[0] < '1' || digits[0] > '9' {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	seq, err := strconv.ParseUint(string(digits), 10, 64)
	return seq, err == nil
}

// ParseClientFrame parses a client → server frame: {"type":"ack","seq":N}
// or {"type":"read","seq":N}, N > 0, in any JSON layout (other fields are
// ignored). Errors: ErrFrameJSON, ErrFrameNoType, ErrFrameType,
// ErrFrameSeq.
func ParseClientFrame(b []byte) (ClientFrame, error) {
	if seq, ok := parseCanonical(b, canonicalAck); ok {
		return ClientFrame{Type: TypeAck, Seq: seq}, nil
	}
	if seq, ok := parseCanonical(b, canonicalRead); ok {
		return ClientFrame{Type: TypeRead, Seq: seq}, nil
	}
	return parseClientFrameJSON(b)
}

func parseClientFrameJSON(b []byte) (ClientFrame, error) {
	var raw struct {
		Type *string         `json:"type"`
		Seq  json.RawMessage `json:"seq"`
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' || json.Unmarshal(b, &raw) != nil {
		return ClientFrame{}, ErrFrameJSON
	}
	if raw.Type == nil {
		return ClientFrame{}, ErrFrameNoType
	}
	if *raw.Type != TypeAck && *raw.Type != TypeRead {
		return ClientFrame{}, ErrFrameType
	}
	var seq uint64
	if len(raw.Seq) == 0 || json.Unmarshal(raw.Seq, &seq) != nil || seq == 0 {
		return ClientFrame{}, ErrFrameSeq
	}
	return ClientFrame{Type: *raw.Type, Seq: seq}, nil
}
