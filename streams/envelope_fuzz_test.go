package streams

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"
)

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
		d := Decode(enc, 7, at.Add(time.Hour))
		if d.Seq != 7 || d.ID != e.ID || d.PriorityOrDefault() != e.PriorityOrDefault() || len(d.Tags) != len(e.Tags) || !d.Time.Equal(at) {
			t.Fatalf("round trip of %s: %+v, want %+v", enc, d, e)
		}
		again, err := d.Encode()
		if err != nil || !bytes.Equal(again, enc) {
			t.Fatalf("encode is not a fixed point:\n%s\n%s (%v)", enc, again, err)
		}
	})
}

// FuzzValidateDevice: an accepted device id is 1–128 bytes of the allowed
// characters.
func FuzzValidateDevice(f *testing.F) {
	for _, s := range []string{"laptop", "a:b.c-d_e", "", " ", "a/b", "é", string(bytes.Repeat([]byte("x"), 129))} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, d string) {
		if ValidateDevice(d) != nil {
			return
		}
		if len(d) < 1 || len(d) > 128 {
			t.Fatalf("accepted %q of %d bytes", d, len(d))
		}
		for _, c := range []byte(d) {
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == ':' || c == '-'
			if !ok {
				t.Fatalf("accepted %q with %q", d, c)
			}
		}
	})
}

// FuzzDataDepth: on valid JSON, depth agrees with a walk of the decoder's
// tokens (capped at limit+1), and Validate refuses data exactly when it
// nests deeper than MaxDataDepth. On any input it does not panic.
func FuzzDataDepth(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":[1,{"b":[]}]}`, `{"a":"[{["}`, `{"a":"\"{"}`, `{"a\\":"{"}`, `"[[["`,
		`[[[[`, `]]]}`, `{"a":"\\\\"}`, `{"s":"\u005b"}`,
		strings.Repeat(`{"a":`, MaxDataDepth) + `1` + strings.Repeat(`}`, MaxDataDepth),
		strings.Repeat(`{"a":`, MaxDataDepth+1) + `1` + strings.Repeat(`}`, MaxDataDepth+1),
		`{"a":` + strings.Repeat(`[`, MaxDataDepth) + strings.Repeat(`]`, MaxDataDepth) + `}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := depth(b, MaxDataDepth)
		if !json.Valid(b) {
			return
		}
		want := tokenDepth(t, b)
		if min(want, MaxDataDepth+1) != got {
			t.Fatalf("depth(%s) = %d, decoder says %d", b, got, want)
		}
		if b[0] != '{' {
			return
		}
		e := Envelope{Data: b}
		err := e.Validate()
		if deep := want > MaxDataDepth; deep != (err != nil) {
			t.Fatalf("Validate of data at depth %d: %v", want, err)
		}
	})
}

// tokenDepth is the nesting depth of valid JSON b by json.Decoder tokens.
func tokenDepth(t *testing.T, b []byte) int {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // valid numbers may overflow a float64
	level, deepest := 0, 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return deepest
		}
		if err != nil {
			t.Fatalf("token of valid %s: %v", b, err)
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			level++
			deepest = max(deepest, level)
		case json.Delim('}'), json.Delim(']'):
			level--
		}
	}
}
