package streams

import (
	"bytes"
	"encoding/json"
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
