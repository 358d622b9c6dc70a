package herald

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

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
