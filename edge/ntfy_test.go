package edge

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseNtfySince(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want ntfySince
	}{
		{"", ntfySince{kind: sinceStored}},
		{" ", ntfySince{kind: sinceStored}},
		{"all", ntfySince{kind: sinceAll}},
		{"none", ntfySince{kind: sinceNone}},
		{"latest", ntfySince{kind: sinceLatest}},
		{"0", ntfySince{kind: sinceSeq, seq: 0}},
		{"4211", ntfySince{kind: sinceSeq, seq: 4211}},
		{"1795428000", ntfySince{kind: sinceSeq, seq: 1795428000}},
		{"10m", ntfySince{kind: sinceAgo, ago: 10 * time.Minute}},
		{"2 days", ntfySince{kind: sinceAgo, ago: 48 * time.Hour}},
		{"1h30m", ntfySince{kind: sinceAgo, ago: 90 * time.Minute}},
	} {
		if got, err := parseNtfySince(tc.in); err != nil || got != tc.want {
			t.Errorf("parseNtfySince(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"ALL", "-1", "yesterday", "abcdefghijkl", "18446744073709551616", "0m", "1.5"} {
		if got, err := parseNtfySince(bad); !errors.Is(err, errSince) {
			t.Errorf("parseNtfySince(%q) = %+v, %v; want errSince", bad, got, err)
		}
	}
}

// FuzzParseNtfySince: any since parses to one kind, with a positive
// duration for sinceAgo, or fails with errSince.
func FuzzParseNtfySince(f *testing.F) {
	for _, s := range []string{"", "all", "none", "latest", "42", "10m", "2 days", "x", "-1", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseNtfySince(s)
		if err != nil {
			if !errors.Is(err, errSince) {
				t.Fatalf("%q: %v does not wrap errSince", s, err)
			}
			return
		}
		if got.kind == sinceAgo && got.ago <= 0 || got.kind != sinceAgo && got.ago != 0 || got.kind != sinceSeq && got.seq != 0 {
			t.Fatalf("%q: %+v", s, got)
		}
	})
}

func TestNtfyFormats(t *testing.T) {
	t.Parallel()
	frame := []byte(`{"id":"7","event":"message"}`)
	open := []byte(`{"id":"x","event":"open"}`)
	lines := ntfyLines{topic: "alice"}
	if got := string(lines.event(nil, kindMessage, 7, frame)); got != string(frame)+"\n" {
		t.Errorf("lines message %q", got)
	}
	if got := lines.event([]byte("a"), kindSynced, 0, nil); string(got) != "a" {
		t.Errorf("lines nil frame %q", got)
	}
	if p := string(lines.ping()); !strings.HasPrefix(p, `{"id":"`) || !strings.Contains(p, `"event":"keepalive","topic":"alice"}`) || !strings.HasSuffix(p, "}\n") {
		t.Errorf("lines ping %q", p)
	}
	events := ntfyEvents{topic: "alice"}
	if got := string(events.event(nil, kindMessage, 7, frame)); got != "id: 7\ndata: "+string(frame)+"\n\n" {
		t.Errorf("sse message %q", got)
	}
	if got := string(events.event(nil, kindWelcome, 0, open)); got != "event: open\ndata: "+string(open)+"\n\n" {
		t.Errorf("sse open %q", got)
	}
	if p := string(events.ping()); !strings.HasPrefix(p, "event: keepalive\ndata: {") || !strings.HasSuffix(p, "}\n\n") {
		t.Errorf("sse ping %q", p)
	}
	if lines.end(CloseShutdown) != nil || events.end(CloseUnauthorized) != nil {
		t.Error("ntfy streams end with bytes")
	}
	if got := string(ntfyCodec{topic: "alice"}.message(Delivery{Seq: 3, Payload: []byte(`{"body":"hi","priority":10}`), Time: time.Unix(100, 0)})); got != `{"id":"3","time":100,"event":"message","topic":"alice","message":"hi","priority":5}` {
		t.Errorf("codec message %s", got)
	}
	if (ntfyCodec{}).synced(3) != nil {
		t.Error("ntfy has a synced event")
	}
}
