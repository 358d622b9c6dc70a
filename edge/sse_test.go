package edge

import (
	"errors"
	"testing"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/streams"
)

func TestAppendEvent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		kind frameKind
		id   uint64
		data string
		want string
	}{
		{"message", kindMessage, 42, `{"type":"message","seq":42}`, "id: 42\ndata: {\"type\":\"message\",\"seq\":42}\n\n"},
		{"named", kindSynced, 0, `{"type":"synced","seq":0}`, "event: synced\ndata: {\"type\":\"synced\",\"seq\":0}\n\n"},
		{"newlines split data lines", kindError, 0, "a\nb\r\nc", "event: error\ndata: a\ndata: b\ndata: c\n\n"},
		{"empty data", kindWelcome, 0, "", "event: welcome\ndata: \n\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(appendEvent(nil, tc.kind.event(), tc.id, []byte(tc.data))); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseAck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		body string
		want ackRequest
		code herald.Code
	}{
		{`{"device":"phone","seq":7}`, ackRequest{Device: "phone", Seq: 7}, ""},
		{` {"seq":18446744073709551615,"device":"a:b.c-d_e","extra":true}`, ackRequest{Device: "a:b.c-d_e", Seq: 18446744073709551615}, ""},
		{``, ackRequest{}, herald.InvalidJSON},
		{`{"device":"phone","seq":7`, ackRequest{}, herald.InvalidJSON},
		{`"phone"`, ackRequest{}, herald.InvalidJSON},
		{`{"seq":7}`, ackRequest{}, herald.InvalidDevice},
		{`{"device":"","seq":7}`, ackRequest{}, herald.InvalidDevice},
		{`{"device":"a b","seq":7}`, ackRequest{}, herald.InvalidDevice},
		{`{"device":7,"seq":7}`, ackRequest{}, herald.InvalidJSON},
		{`{"device":"phone"}`, ackRequest{}, herald.InvalidRequest},
		{`{"device":"phone","seq":0}`, ackRequest{}, herald.InvalidRequest},
		{`{"device":"phone","seq":-1}`, ackRequest{}, herald.InvalidRequest},
		{`{"device":"phone","seq":1.5}`, ackRequest{}, herald.InvalidRequest},
		{`{"device":"phone","seq":"7"}`, ackRequest{}, herald.InvalidRequest},
		{`{"device":"phone","seq":18446744073709551616}`, ackRequest{}, herald.InvalidRequest},
	} {
		t.Run(tc.body, func(t *testing.T) {
			got, err := parseAck([]byte(tc.body))
			if tc.code == "" {
				if err != nil || got != tc.want {
					t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
				}
				return
			}
			var e *herald.Error
			if !errors.As(err, &e) || e.Code != tc.code {
				t.Fatalf("got %+v, %v; want code %s", got, err, tc.code)
			}
		})
	}
}

// FuzzParseAck: any body either parses to a valid device and a positive
// seq that survive a round trip, or is an *herald.Error with a 4xx code.
func FuzzParseAck(f *testing.F) {
	for _, s := range []string{`{"device":"phone","seq":7}`, `{"device":"a:b","seq":1,"x":[1]}`, `{"seq":0}`, `{`, `null`, `{"device":"\u0000","seq":1e3}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseAck(b)
		if err != nil {
			var e *herald.Error
			if !errors.As(err, &e) || e.Code.Status() != 400 {
				t.Fatalf("error %v is not a 400 API error", err)
			}
			return
		}
		if got.Seq == 0 || streams.ValidateDevice(got.Device) != nil {
			t.Fatalf("accepted %+v", got)
		}
		again, err := parseAck(mustJSON(map[string]any{"device": got.Device, "seq": got.Seq}))
		if err != nil || again != got {
			t.Fatalf("round trip of %+v: %+v, %v", got, again, err)
		}
	})
}
