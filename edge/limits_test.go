package edge

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/herald-push/herald"
)

func TestIPLimiter(t *testing.T) {
	t.Parallel()
	l := newIPLimiter(1, 2, 3)
	now := time.Unix(1000, 0)
	for i := range 2 {
		if ok, _ := l.allow("10.0.0.1", now); !ok {
			t.Fatalf("attempt %d within the burst refused", i)
		}
	}
	ok, wait := l.allow("10.0.0.1", now)
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("third attempt: ok %v, wait %v; want refused with a wait ≤ 1s", ok, wait)
	}
	// A refused attempt takes no token: one second later one is back.
	if ok, _ := l.allow("10.0.0.1", now.Add(time.Second)); !ok {
		t.Error("no token after a second")
	}
	// Other addresses have their own bucket; the table keeps at most 3.
	for i := range 10 {
		if ok, _ := l.allow(fmt.Sprintf("10.0.1.%d", i), now); !ok {
			t.Errorf("address %d refused", i)
		}
		if n := l.size(); n > 3 {
			t.Fatalf("table holds %d addresses, bound 3", n)
		}
	}
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{
		"192.0.2.1:5555":             "192.0.2.1",
		"[2001:db8:1:2:3:4:5:6]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:443": "2001:db8:1:2::/64",
		"[::ffff:192.0.2.9]:1":       "192.0.2.9",
		"not an address":             "not an address",
		"[fe80::1%eth0]:80":          "fe80::/64",
	} {
		r := httptest.NewRequest("GET", "/v1/ws", nil)
		r.RemoteAddr = addr
		if got := clientIP(r); got != want {
			t.Errorf("clientIP(%q) = %q, want %q", addr, got, want)
		}
	}
}

func TestOriginPolicy(t *testing.T) {
	t.Parallel()
	p := newOriginPolicy([]string{"https://app.example.com", "HTTP://LOCALHOST:3000/"})
	for _, tc := range []struct {
		origin, host string
		tls, want    bool
	}{
		{"", "edge.example.com", false, true}, // not a browser
		{"https://edge.example.com", "edge.example.com", true, true},
		{"http://edge.example.com", "edge.example.com", false, true},
		{"HTTPS://EDGE.example.com", "edge.example.com", true, true},
		{"http://edge.example.com", "edge.example.com", true, false}, // same host, another scheme
		{"https://edge.example.com", "edge.example.com", false, false},
		{"https://app.example.com", "edge.example.com", false, true},
		{"http://localhost:3000", "edge.example.com", true, true},
		{"https://evil.example.com", "edge.example.com", true, false},
		{"http://app.example.com", "edge.example.com", false, false}, // another scheme is another origin
		{"http://app.example.com", "edge.example.com", true, false},
		{"null", "edge.example.com", false, false},
		{"https://app.example.com.evil.com", "edge.example.com", true, false},
		{"%zz", "edge.example.com", false, false},
	} {
		target := "http://" + tc.host + "/v1/ws"
		if tc.tls {
			target = "https://" + tc.host + "/v1/ws" // sets r.TLS
		}
		r := httptest.NewRequest("GET", target, nil)
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		if got := p.allowed(r); got != tc.want {
			t.Errorf("origin %q on %s (TLS %v): %v, want %v", tc.origin, tc.host, tc.tls, got, tc.want)
		}
	}
	if !newOriginPolicy([]string{"*"}).allowed(httptest.NewRequest("GET", "/", nil)) {
		t.Error(`"*" refused a request`)
	}
}

func TestConnectionSlots(t *testing.T) {
	t.Parallel()
	l := newLimits(Config{MaxConns: 2}, nil)
	if !l.reserve() || !l.reserve() {
		t.Fatal("slots within the limit refused")
	}
	if l.reserve() {
		t.Fatal("a third slot granted with max 2")
	}
	l.active.Add(-1)
	if !l.reserve() {
		t.Fatal("a freed slot not granted")
	}
}

func TestParseConnQuery(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		q      string
		device string
		pos    Position
		code   herald.Code
	}{
		{q: "device=phone", device: "phone"},
		{q: "device=phone&since=0", device: "phone", pos: Position{HasSince: true}},
		{q: "device=phone&since=", device: "phone"},
		{q: "device=phone&since=18446744073709551615", device: "phone", pos: Position{Since: 1<<64 - 1, HasSince: true}},
		{q: "device=phone&since=18446744073709551616", code: herald.InvalidRequest},
		{q: "device=phone&since=-1", code: herald.InvalidRequest},
		{q: "device=phone&since=1e3", code: herald.InvalidRequest},
		{q: "device=phone&since=1&since=2", code: herald.InvalidRequest},
		{q: "device=phone&device=tablet", code: herald.InvalidDevice},
		{q: "", code: herald.InvalidDevice},
		{q: "device=a%2Fb", code: herald.InvalidDevice},
	} {
		q, _ := url.ParseQuery(tc.q)
		device, pos, err := parseConnQuery(q)
		if tc.code != "" {
			var e *herald.Error
			if !errors.As(err, &e) || e.Code != tc.code {
				t.Errorf("%q: err %v, want %s", tc.q, err, tc.code)
			}
			continue
		}
		if err != nil || device != tc.device || pos != tc.pos {
			t.Errorf("%q = %q %+v %v, want %q %+v", tc.q, device, pos, err, tc.device, tc.pos)
		}
	}
}

// FuzzParseConnQuery: the edge's query parsing accepts only a valid device
// and a since that reads back the same, and refuses everything else with a
// 400 of the catalogue.
func FuzzParseConnQuery(f *testing.F) {
	for _, s := range []string{"device=phone&since=5", "device=phone", "since=1", "device=%zz", "device=a&since=-0", "device=a&since=+1", "device=a&since=00", "device=a;since=1", "device=" + string(make([]byte, 200))} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw)
		device, pos, err := parseConnQuery(q)
		if err != nil {
			var e *herald.Error
			if !errors.As(err, &e) || e.Code.Status() != 400 || (e.Code != herald.InvalidDevice && e.Code != herald.InvalidRequest) {
				t.Fatalf("%q: error %v is not a 400 invalid_device or invalid_request", raw, err)
			}
			return
		}
		if device != q.Get("device") || len(q["device"]) != 1 {
			t.Fatalf("%q: device %q", raw, device)
		}
		if v := q.Get("since"); v == "" {
			if pos.HasSince {
				t.Fatalf("%q: a position without since", raw)
			}
		} else if n, err := strconv.ParseUint(v, 10, 64); err != nil || !pos.HasSince || pos.Since != n {
			t.Fatalf("%q: position %+v for since %q", raw, pos, v)
		}
	})
}
