package herald

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

// TestFrameShapes pins the bytes of every frame: the field names and order
// of SPEC §6 and §10, "type" first.
func TestFrameShapes(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 123e6, time.UTC)
	p := 8
	from := uint64(4211)
	cases := []struct {
		v    any
		want string
	}{
		{WelcomeFrame{User: "alice", Device: "phone"}, `{"type":"welcome","user":"alice","device":"phone","from":null,"gap":false}`},
		{WelcomeFrame{User: "alice", Device: "phone", From: &from, Gap: true, Read: 4200}, `{"type":"welcome","user":"alice","device":"phone","from":4211,"gap":true,"read":4200}`},
		{MessageFrame{Envelope{ID: "01J", User: "alice", Time: at, Title: "Build failed", Body: "main is red", Priority: &p, Tags: []string{"ci"}, Data: json.RawMessage(`{"any":"json object"}`), Seq: 4211}},
			`{"type":"message","id":"01J","user":"alice","time":"2026-11-23T10:00:00.123Z","title":"Build failed","body":"main is red","priority":8,"tags":["ci"],"data":{"any":"json object"},"seq":4211}`},
		{SyncedFrame{Seq: 7}, `{"type":"synced","seq":7}`},
		{ErrorFrame{Code: InvalidFrame, Message: "frame is not a JSON object"}, `{"type":"error","code":"invalid_frame","message":"frame is not a JSON object"}`},
		{ReadFrame{Seq: 9}, `{"type":"read","seq":9}`},
		{ReadFrame{Seq: 9, Device: "laptop"}, `{"type":"read","seq":9,"device":"laptop"}`},
		{AckFrame{Seq: 12}, `{"type":"ack","seq":12}`},
		{&AckFrame{Seq: 12}, `{"type":"ack","seq":12}`},
	}
	for _, tc := range cases {
		b, err := json.Marshal(tc.v)
		if err != nil || string(b) != tc.want {
			t.Errorf("%T:\n got %s (%v)\nwant %s", tc.v, b, err, tc.want)
		}
	}
}

// TestServerFrameRoundTrip: what the typed frames encode, ParseServerFrame
// decodes back into the same fields.
func TestServerFrameRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	from := uint64(3)
	env := Envelope{ID: "x", User: "alice", Time: at, Body: "hi", Data: json.RawMessage(`{"a":1}`), Seq: 3}
	cases := []struct {
		frame any
		want  ServerFrame
	}{
		{WelcomeFrame{User: "alice", Device: "phone", From: &from, Gap: true, Read: 2}, ServerFrame{Type: TypeWelcome, Envelope: Envelope{User: "alice"}, Device: "phone", From: &from, Gap: true, Read: 2}},
		{MessageFrame{env}, ServerFrame{Type: TypeMessage, Envelope: env}},
		{SyncedFrame{Seq: 3}, ServerFrame{Type: TypeSynced, Envelope: Envelope{Seq: 3}}},
		{ErrorFrame{Code: TokenExpired, Message: "the token expired"}, ServerFrame{Type: TypeError, Code: TokenExpired, Message: "the token expired"}},
		{ReadFrame{Seq: 3, Device: "laptop"}, ServerFrame{Type: TypeRead, Envelope: Envelope{Seq: 3}, Device: "laptop"}},
	}
	for _, tc := range cases {
		b, err := json.Marshal(tc.frame)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseServerFrame(b)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseServerFrame(%s) =\n%+v, %v\nwant %+v", b, got, err, tc.want)
		}
	}
}

func TestParseServerFrameErrors(t *testing.T) {
	cases := []struct {
		in   string
		want error
	}{
		{``, ErrFrameJSON},
		{`hello`, ErrFrameJSON},
		{`[1]`, ErrFrameJSON},
		{`null`, ErrFrameJSON},
		{`{"type":1}`, ErrFrameJSON},
		{`{"seq":1}`, ErrFrameNoType},
	}
	for _, tc := range cases {
		if _, err := ParseServerFrame([]byte(tc.in)); !errors.Is(err, tc.want) {
			t.Errorf("ParseServerFrame(%q) = %v, want %v", tc.in, err, tc.want)
		}
	}
	f, err := ParseServerFrame([]byte(`{"type":"future","seq":5}`))
	if err != nil || f.Type != "future" || f.Seq != 5 {
		t.Errorf("a frame of an unknown type = %+v, %v; want it returned", f, err)
	}
}

func TestParseClientFrame(t *testing.T) {
	cases := []struct {
		in   string
		want ClientFrame
		err  error
	}{
		{`{"type":"ack","seq":7}`, ClientFrame{TypeAck, 7}, nil},
		{`{"type":"read","seq":7}`, ClientFrame{TypeRead, 7}, nil},
		{` {"seq":18446744073709551615,"type":"ack"} `, ClientFrame{TypeAck, 18446744073709551615}, nil},
		{`{"type":"ack","seq":1,"extra":true}`, ClientFrame{TypeAck, 1}, nil},
		{`{"type":"read","seq":2,"device":"ignored"}`, ClientFrame{TypeRead, 2}, nil},
		{`hello`, ClientFrame{}, ErrFrameJSON},
		{``, ClientFrame{}, ErrFrameJSON},
		{`[1]`, ClientFrame{}, ErrFrameJSON},
		{`{"type":"ack","seq":7`, ClientFrame{}, ErrFrameJSON},
		{`{"type":1}`, ClientFrame{}, ErrFrameJSON},
		{`{}`, ClientFrame{}, ErrFrameNoType},
		{`{"type":"nope"}`, ClientFrame{}, ErrFrameType},
		{`{"type":"welcome","seq":1}`, ClientFrame{}, ErrFrameType},
		{`{"type":"ack"}`, ClientFrame{}, ErrFrameSeq},
		{`{"type":"ack","seq":0}`, ClientFrame{}, ErrFrameSeq},
		{`{"type":"read","seq":0}`, ClientFrame{}, ErrFrameSeq},
		{`{"type":"ack","seq":-1}`, ClientFrame{}, ErrFrameSeq},
		{`{"type":"ack","seq":1.5}`, ClientFrame{}, ErrFrameSeq},
		{`{"type":"ack","seq":"3"}`, ClientFrame{}, ErrFrameSeq},
		{`{"type":"ack","seq":18446744073709551616}`, ClientFrame{}, ErrFrameSeq},
	}
	for _, tc := range cases {
		f, err := ParseClientFrame([]byte(tc.in))
		if !errors.Is(err, tc.err) || f != tc.want {
			t.Errorf("ParseClientFrame(%q) = %+v, %v; want %+v, %v", tc.in, f, err, tc.want, tc.err)
		}
	}
}

// FuzzParseClientFrame: ParseClientFrame accepts only acks and reads of a
// positive seq; the fast paths agree with the JSON parser wherever they
// answer; and what AppendAck and AppendRead write parses back, on the fast
// path.
func FuzzParseClientFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"ack","seq":7}`, `{"type":"read","seq":7}`, `{}`, `{"type":"ack","seq":-1}`, "\xff", `{"type":"ack","seq":1e3}`,
		`{"type":"ack","seq":18446744073709551615}`, `{"type":"ack","seq":18446744073709551616}`,
		`{"type":"ack","seq":01}`, `{"type":"ack","seq":0}`, `{"type":"ack","seq":}`, `{"type":"ack","seq":7}}`,
		`{"type":"read","seq":7 }`,
	} {
		f.Add([]byte(s), uint64(7))
	}
	f.Fuzz(func(t *testing.T, b []byte, seq uint64) {
		fr, err := ParseClientFrame(b)
		if err == nil && (fr.Type != TypeAck && fr.Type != TypeRead || fr.Seq == 0) {
			t.Fatalf("accepted %q as %+v", b, fr)
		}
		for _, prefix := range []string{canonicalAck, canonicalRead} {
			if fast, ok := parseCanonical(b, prefix); ok {
				slow, err := parseClientFrameJSON(b)
				if err != nil || slow.Seq != fast || slow != fr {
					t.Fatalf("%q: fast path %d (%+v), JSON parser %+v, %v", b, fast, fr, slow, err)
				}
			}
		}
		if seq == 0 {
			return
		}
		ack := AppendAck(nil, seq)
		if got, ok := ParseAck(ack); !ok || got != seq {
			t.Fatalf("ParseAck(%s) = %d, %v", ack, got, ok)
		}
		read := AppendRead([]byte("x"), seq)[1:]
		if got, err := ParseClientFrame(read); err != nil || got != (ClientFrame{TypeRead, seq}) {
			t.Fatalf("ParseClientFrame(%s) = %+v, %v", read, got, err)
		}
	})
}

// FuzzParseServerFrame: ParseServerFrame never panics, and a frame it
// accepts re-encodes to JSON that it accepts again with the same type.
func FuzzParseServerFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"welcome","user":"alice","device":"phone","from":null,"gap":false}`,
		`{"type":"message","id":"01J","user":"alice","time":"2026-11-23T10:00:00.123Z","body":"b","seq":4211}`,
		`{"type":"synced","seq":7}`, `{"type":"error","code":"invalid_frame","message":"m"}`,
		`{"type":"read","seq":9,"device":"laptop"}`, `{"type":"message","data":null}`, `{"type":"x","time":"bad"}`, "\xff", `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := ParseServerFrame(b)
		if err != nil {
			return
		}
		again, err := json.Marshal(fr)
		if err != nil {
			t.Fatalf("%q decoded as %+v, which does not encode: %v", b, fr, err)
		}
		fr2, err := ParseServerFrame(again)
		if err != nil || fr2.Type != fr.Type || fr2.Seq != fr.Seq {
			t.Fatalf("%q → %s → %+v, %v", b, again, fr2, err)
		}
	})
}
