package edge

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/herald-push/herald/streams"
)

func TestParseClientFrame(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		seq  uint64
		want error
	}{
		{`{"type":"ack","seq":7}`, 7, nil},
		{` {"seq":18446744073709551615,"type":"ack"} `, 18446744073709551615, nil},
		{`{"type":"ack","seq":1,"extra":true}`, 1, nil},
		{`hello`, 0, ErrFrameJSON},
		{``, 0, ErrFrameJSON},
		{`[1]`, 0, ErrFrameJSON},
		{`{"type":"ack","seq":7`, 0, ErrFrameJSON},
		{`{}`, 0, errFrameMissing},
		{`{"type":"nope"}`, 0, ErrFrameType},
		{`{"type":1}`, 0, ErrFrameJSON},
		{`{"type":"ack"}`, 0, ErrFrameBadSeq},
		{`{"type":"ack","seq":0}`, 0, ErrFrameBadSeq},
		{`{"type":"ack","seq":-1}`, 0, ErrFrameBadSeq},
		{`{"type":"ack","seq":1.5}`, 0, ErrFrameBadSeq},
		{`{"type":"ack","seq":"3"}`, 0, ErrFrameBadSeq},
		{`{"type":"ack","seq":18446744073709551616}`, 0, ErrFrameBadSeq},
	}
	for _, tc := range cases {
		f, err := ParseClientFrame([]byte(tc.in))
		if !errors.Is(err, tc.want) || (tc.want == nil && f.Seq != tc.seq) {
			t.Errorf("ParseClientFrame(%q) = %+v, %v; want seq %d, %v", tc.in, f, err, tc.seq, tc.want)
		}
	}
}

func FuzzParseClientFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"ack","seq":7}`, `{}`, `{"type":"ack","seq":-1}`, "\xff", `{"type":"ack","seq":1e3}`,
		`{"type":"ack","seq":18446744073709551615}`, `{"type":"ack","seq":18446744073709551616}`,
		`{"type":"ack","seq":01}`, `{"type":"ack","seq":0}`, `{"type":"ack","seq":}`, `{"type":"ack","seq":7}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := ParseClientFrame(b)
		if err == nil && (fr.Type != "ack" || fr.Seq == 0) {
			t.Fatalf("accepted %q as %+v", b, fr)
		}
		// The fast path agrees with the JSON parser wherever it answers.
		if seq, ok := parseCanonicalAck(b); ok {
			slow, err := parseClientFrameJSON(b)
			if err != nil || slow.Seq != seq || slow.Type != "ack" {
				t.Fatalf("%q: fast path %d, JSON parser %+v, %v", b, seq, slow, err)
			}
		}
	})
}

func TestMessageFrameShape(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 23, 10, 0, 0, 123e6, time.UTC)
	p := 8
	env := streams.Envelope{ID: "01J", User: "alice", Time: at, Title: "Build failed", Body: "main is red", Priority: &p, Tags: []string{"ci"}, Data: json.RawMessage(`{"any":"json object"}`)}
	payload, err := env.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got := string(encodeMessage(Delivery{Seq: 4211, Payload: payload, Time: at}))
	want := `{"type":"message","id":"01J","user":"alice","time":"2026-11-23T10:00:00.123Z","title":"Build failed","body":"main is red","priority":8,"tags":["ci"],"data":{"any":"json object"},"seq":4211}`
	if got != want {
		t.Errorf("message frame\n got %s\nwant %s", got, want)
	}
	if w := string(encodeWelcome(Device{"alice", "phone"}, Start{})); w != `{"type":"welcome","user":"alice","device":"phone","from":null,"gap":false}` {
		t.Errorf("welcome = %s", w)
	}
}
