package edge

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/herald-push/herald/streams"
)

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
	if w := string(encodeWelcome(Device{"alice", "phone"}, Start{}, 0)); w != `{"type":"welcome","user":"alice","device":"phone","from":null,"gap":false}` {
		t.Errorf("welcome = %s", w)
	}
	if w := string(encodeWelcome(Device{"alice", "phone"}, Start{From: 7}, 5)); w != `{"type":"welcome","user":"alice","device":"phone","from":7,"gap":false,"read":5}` {
		t.Errorf("welcome with a read position = %s", w)
	}
	if r := string(encodeRead(5, "laptop")); r != `{"type":"read","seq":5,"device":"laptop"}` {
		t.Errorf("read frame = %s", r)
	}
}

// spliceCase encodes an envelope as ingest stores it; ok is false when
// ingest would refuse it.
func spliceCase(env streams.Envelope) ([]byte, bool) {
	if env.Time.IsZero() || env.Validate() != nil {
		return nil, false
	}
	payload, err := env.Encode()
	return payload, err == nil
}

// checkSplice fails when the spliced frame of payload differs from the
// decoded one.
func checkSplice(t *testing.T, payload []byte, seq uint64, at time.Time) {
	t.Helper()
	d := Delivery{Seq: seq, Payload: payload, Time: at, encoded: true}
	fast, ok := spliceMessage(payload, seq)
	if seq == 0 {
		if ok {
			t.Fatalf("spliceMessage took seq 0")
		}
		return
	}
	if !ok {
		t.Fatalf("spliceMessage refused %s", payload)
	}
	if slow := decodeMessage(d); string(fast) != string(slow) {
		t.Fatalf("payload %s\nspliced %s\ndecoded %s", payload, fast, slow)
	}
	if got := encodeMessage(d); string(got) != string(fast) {
		t.Fatalf("encodeMessage took the slow path: %s", got)
	}
}

func TestSpliceMatchesDecode(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 23, 10, 0, 0, 123e6, time.UTC)
	exp := at.Add(time.Hour)
	p0, p10 := 0, 10
	for _, env := range []streams.Envelope{
		{ID: "01J", User: "alice", Time: at, Body: "hi"},
		{ID: "01J", User: "alice", Time: at, Title: "Build failed", Body: "main is red", Priority: &p10, Tags: []string{"ci", "é"}, Data: json.RawMessage(`{ "a" : [1, 2.50, "<&>"], "b": {"c": null} }`)},
		{ID: "x", User: "bob", Time: at.In(time.FixedZone("CET", 3600)), Body: "a\xffb <script> \u2028 \ufffd", Priority: &p0, Expires: &exp},
		{ID: "y", User: "bob", Time: at, Title: "\x00\t\"\\", Ref: "01J", Op: "delete"},
		{ID: "z", User: "carol", Time: at, Body: "b", Data: json.RawMessage(`null`)},
	} {
		payload, ok := spliceCase(env)
		if !ok {
			t.Fatalf("case refused: %+v", env)
		}
		checkSplice(t, payload, 4211, at.Add(time.Second))
	}
}

func TestSpliceFallsBack(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	// A forged mark on what ingest never writes: broken JSON, or a key of
	// the frame's own ("type", "seq") or of nothing Herald stores.
	for _, p := range []string{"", "{}", "plain text", `["a"]`, `{"body":"x"`, `{"body":"x"}}`,
		`{"body":"x","type":"welcome"}`, `{"seq":1,"body":"x"}`, `{"body":"x","from":3}`, `{"b\u006fdy":"x"}`} {
		d := Delivery{Seq: 7, Payload: []byte(p), Time: at, encoded: true}
		if got, want := string(encodeMessage(d)), string(decodeMessage(d)); got != want {
			t.Errorf("payload %q: got %s, want %s", p, got, want)
		}
	}
	// Without the mark a stored envelope is decoded, never spliced.
	payload, _ := spliceCase(streams.Envelope{ID: "a", User: "u", Time: at, Body: "b"})
	if got, want := string(encodeMessage(Delivery{Seq: 7, Payload: payload, Time: at})), string(decodeMessage(Delivery{Seq: 7, Payload: payload, Time: at})); got != want {
		t.Errorf("unmarked payload: got %s, want %s", got, want)
	}
}

func FuzzSpliceMessage(f *testing.F) {
	f.Add("Build failed", "main is red", "ci", `{"a":1}`, 5, int64(123e6), uint64(4211))
	f.Add("", "a\xffb<>&\u2028", "é", `{ "b" : [ 1 , "\u00e9" ] }`, 0, int64(0), uint64(1))
	f.Add("t", "", "", "null", 10, int64(999999999), uint64(1<<63))
	f.Fuzz(func(t *testing.T, title, body, tag, data string, prio int, nanos int64, seq uint64) {
		at := time.Unix(1_700_000_000, nanos%1e9).UTC()
		env := streams.Envelope{ID: "01J", User: "alice", Time: at, Title: title, Body: body, Priority: &prio}
		if tag != "" {
			env.Tags = []string{tag}
		}
		if data != "" {
			env.Data = json.RawMessage(data)
		}
		payload, ok := spliceCase(env)
		if !ok {
			t.Skip()
		}
		checkSplice(t, payload, seq, at)
	})
}

// FuzzSpliceForged: a payload with a forged mark is spliced only when the
// frame is valid JSON whose keys are the frame's type and seq plus
// envelope fields; anything else gives the decoded frame.
func FuzzSpliceForged(f *testing.F) {
	for _, s := range []string{`{"body":"x"}`, `{"body":"x","type":"welcome"}`, `{"data":{"type":1},"body":"\""}`, `{"body":"x"`, `{,}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		frame, ok := spliceMessage(payload, 7)
		if !ok {
			return
		}
		var top map[string]json.RawMessage
		if err := json.Unmarshal(frame, &top); err != nil {
			t.Fatalf("spliced %q into invalid JSON %q: %v", payload, frame, err)
		}
		if string(top["type"]) != `"message"` || string(top["seq"]) != "7" {
			t.Fatalf("spliced %q: type %s, seq %s", payload, top["type"], top["seq"])
		}
		for k := range top {
			if k != "type" && k != "seq" && !envelopeFields[k] {
				t.Fatalf("spliced %q with key %q", payload, k)
			}
		}
	})
}

func BenchmarkMessageFrame(b *testing.B) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 123e6, time.UTC)
	payload, _ := spliceCase(streams.Envelope{ID: "01JABCDEFGHJKMNPQRSTVWXYZ0", User: "alice", Time: at, Body: string(make([]byte, 128))})
	for _, bc := range []struct {
		name    string
		encoded bool
	}{{"splice", true}, {"decode", false}} {
		b.Run(bc.name, func(b *testing.B) {
			d := Delivery{Seq: 4211, Payload: payload, Time: at, encoded: bc.encoded}
			b.ReportAllocs()
			for b.Loop() {
				encodeMessageNow(d)
			}
		})
	}
}
