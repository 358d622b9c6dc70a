package herald

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestEnvelopeValidate(t *testing.T) {
	p := func(n int) *int { return &n }
	cases := []struct {
		e   Envelope
		err error
	}{
		{Envelope{Body: "b"}, nil},
		{Envelope{Data: json.RawMessage(` {"a":1} `)}, nil},
		{Envelope{Title: "t", Priority: p(10), Tags: []string{"a"}, ID: "k-1"}, nil},
		{Envelope{}, ErrInvalidMessage},
		{Envelope{Body: "b", Data: json.RawMessage(`null`)}, nil},
		{Envelope{Data: json.RawMessage(`null`)}, ErrInvalidMessage},
		{Envelope{Body: "b", Data: json.RawMessage(`[1]`)}, ErrInvalidMessage},
		{Envelope{Body: "b", Priority: p(11)}, ErrInvalidMessage},
		{Envelope{Body: "b", Priority: p(-1)}, ErrInvalidMessage},
		{Envelope{Body: "b", Tags: []string{""}}, ErrInvalidMessage},
		{Envelope{Body: "b", ID: "has space"}, ErrInvalidMessage},
		{Envelope{Body: "b", Ref: "m-1", Op: OpUpdate}, nil},
		{Envelope{Ref: "m-1", Op: OpDelete}, nil},
		{Envelope{Ref: "m-1", Op: OpUpdate}, ErrInvalidMessage},
		{Envelope{Body: "b", Op: OpUpdate}, ErrInvalidMessage},
		{Envelope{Body: "b", Ref: "m-1"}, ErrInvalidMessage},
		{Envelope{Body: "b", Ref: "m-1", Op: "patch"}, ErrInvalidMessage},
		{Envelope{Ref: "has space", Op: OpDelete}, ErrInvalidMessage},
	}
	for _, tc := range cases {
		if err := tc.e.Validate(); !errors.Is(err, tc.err) {
			t.Errorf("Validate(%+v) = %v, want %v", tc.e, err, tc.err)
		}
	}
	if err := ValidateID(""); !errors.Is(err, ErrInvalidMessage) {
		t.Errorf("ValidateID(\"\") = %v", err)
	}
}

func TestDecodeEnvelopeFallback(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	e := DecodeEnvelope([]byte("plain \xff text"), 9, at)
	if e.Seq != 9 || !e.Time.Equal(at) || e.Body != "plain \uFFFD text" || e.ID != "" {
		t.Errorf("DecodeEnvelope of plain text = %+v", e)
	}
	e = DecodeEnvelope([]byte(`{"body":"b"}`), 9, at)
	if e.Seq != 9 || !e.Time.Equal(at) || e.Body != "b" {
		t.Errorf("DecodeEnvelope of an envelope without time = %+v", e)
	}
}

// FuzzEnvelopeValidate: any envelope Validate accepts encodes, decodes back
// as an envelope (never the plain-text fallback) with the same id, priority
// and tags, and encoding is then a fixed point.
func FuzzEnvelopeValidate(f *testing.F) {
	for _, s := range []string{
		`{"id":"01J","user":"alice","title":"Build failed","body":"main is red","priority":8,"tags":["ci"],"data":{"any":"json object"}}`,
		`{"body":"x","data":null}`,
		`{"data":{}}`,
		`{"title":"\ud800"}`,
		`{"body":"b","priority":10,"tags":["a","b"]}`,
		`{"body":"b","id":"has space"}`,
		`{"body":"b","data":[1,2]}`,
		`{"body":"b","data":" {\"a\":1} "}`,
		`{"title":"t","priority":-1}`,
		"{\"body\":\"\xff\xfe\"}",
	} {
		f.Add([]byte(s))
	}
	at := time.Date(2026, 11, 23, 10, 0, 0, 123e6, time.UTC)
	f.Fuzz(func(t *testing.T, payload []byte) {
		var e Envelope
		if json.Unmarshal(payload, &e) != nil || e.Validate() != nil {
			return
		}
		e.Time = at
		enc, err := e.Encode()
		if err != nil {
			t.Fatalf("valid envelope %+v does not encode: %v", e, err)
		}
		d := DecodeEnvelope(enc, 7, at.Add(time.Hour))
		if d.Seq != 7 || d.ID != e.ID || d.PriorityOrDefault() != e.PriorityOrDefault() || len(d.Tags) != len(e.Tags) || !d.Time.Equal(at) {
			t.Fatalf("round trip of %s: %+v, want %+v", enc, d, e)
		}
		again, err := d.Encode()
		if err != nil || !bytes.Equal(again, enc) {
			t.Fatalf("encode is not a fixed point:\n%s\n%s (%v)", enc, again, err)
		}
	})
}
