package herald_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/herald-push/herald"
)

func TestParseNtfyPriority(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want int // ntfy's
		her  int // Herald's
	}{
		{"1", 1, 1}, {"min", 1, 1}, {"MIN", 1, 1},
		{"2", 2, 3}, {"low", 2, 3},
		{"3", 3, 5}, {"default", 3, 5}, {" Default ", 3, 5},
		{"4", 4, 8}, {"high", 4, 8}, {"High", 4, 8},
		{"5", 5, 10}, {"max", 5, 10}, {"urgent", 5, 10}, {"URGENT", 5, 10},
	} {
		got, err := herald.ParseNtfyPriority(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseNtfyPriority(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
		if h := herald.PriorityFromNtfy(got); h != tc.her {
			t.Errorf("PriorityFromNtfy(%d) = %d, want %d", got, h, tc.her)
		}
		if back := herald.NtfyPriority(tc.her); back != tc.want {
			t.Errorf("NtfyPriority(%d) = %d, want %d", tc.her, back, tc.want)
		}
	}
	for _, bad := range []string{"", "0", "6", "9", "-1", "highest", "u=3", "1.0", "３"} {
		if _, err := herald.ParseNtfyPriority(bad); !errors.Is(err, herald.ErrNtfyPriority) {
			t.Errorf("ParseNtfyPriority(%q): %v, want ErrNtfyPriority", bad, err)
		}
	}
	// Every Herald priority maps into ntfy's scale, monotonically.
	last := 0
	for p := 0; p <= herald.MaxPriority; p++ {
		n := herald.NtfyPriority(p)
		if n < 1 || n > 5 || n < last {
			t.Fatalf("NtfyPriority(%d) = %d after %d", p, n, last)
		}
		last = n
	}
}

// FuzzParseNtfyPriority: any input is a priority 1–5 that maps to Herald's
// scale and back, or ErrNtfyPriority.
func FuzzParseNtfyPriority(f *testing.F) {
	for _, s := range []string{"1", "min", "urgent", " high ", "6", "", "u=1, i", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := herald.ParseNtfyPriority(s)
		if err != nil {
			if !errors.Is(err, herald.ErrNtfyPriority) {
				t.Fatalf("error %v does not wrap ErrNtfyPriority", err)
			}
			return
		}
		if p < 1 || p > 5 || herald.NtfyPriority(herald.PriorityFromNtfy(p)) != p {
			t.Fatalf("%q: priority %d does not round-trip", s, p)
		}
	})
}

func TestParseNtfyDuration(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"10m", 10 * time.Minute}, {"10 min", 10 * time.Minute}, {"90 minutes", 90 * time.Minute},
		{"2h", 2 * time.Hour}, {"1 hour", time.Hour}, {"1d", 24 * time.Hour}, {"3 days", 72 * time.Hour},
		{"30s", 30 * time.Second}, {"45 secs", 45 * time.Second}, {"1h30m", 90 * time.Minute},
	} {
		if got, err := herald.ParseNtfyDuration(tc.in); err != nil || got != tc.want {
			t.Errorf("ParseNtfyDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "0m", "-5m", "tomorrow", "10", "m", "1y", "0s", "9999999999d"} {
		if d, err := herald.ParseNtfyDuration(bad); err == nil {
			t.Errorf("ParseNtfyDuration(%q) = %v, want an error", bad, d)
		}
	}
}

// FuzzParseNtfyDuration: an accepted duration is positive.
func FuzzParseNtfyDuration(f *testing.F) {
	for _, s := range []string{"10m", "2 days", "1h30m", "0s", "-1h", "999999999d", "1e3h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := herald.ParseNtfyDuration(s); err == nil && d <= 0 {
			t.Fatalf("%q: accepted %v", s, d)
		}
	})
}

func TestNtfyTopic(t *testing.T) {
	t.Parallel()
	for topic, want := range map[string]bool{
		"alice": true, "a-b_C9": true, strings.Repeat("x", 64): true,
		"": false, strings.Repeat("x", 65): false, "a.b": false, "a b": false, "a,b": false, "é": false, "~x": false,
	} {
		if got := herald.NtfyTopicValid(topic); got != want {
			t.Errorf("NtfyTopicValid(%q) = %v", topic, got)
		}
	}
	for _, r := range []string{"v1", "healthz", "readyz", "metrics", "message"} {
		if !herald.NtfyTopicReserved(r) {
			t.Errorf("%q is not reserved", r)
		}
	}
	if herald.NtfyTopicReserved("alice") {
		t.Error("alice is reserved")
	}
}

func TestNtfyMessageOf(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	p := 8
	env := herald.Envelope{
		Seq: 4211, Time: at, Title: "Build failed", Body: "main is red", Priority: &p, Tags: []string{"ci"},
		Data: json.RawMessage(`{"click":"https://ci.example/1","icon":"https://ci.example/i.png","attach":"https://ci.example/log.txt",` +
			`"filename":"log.txt","actions":[{"action":"view","label":"Open","url":"https://ci.example"}],"markdown":true,"other":1}`),
	}
	got, err := json.Marshal(herald.NtfyMessageOf(env, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"4211","time":1795428000,"event":"message","topic":"alice","title":"Build failed","message":"main is red","priority":4,"tags":["ci"],` +
		`"click":"https://ci.example/1","icon":"https://ci.example/i.png","actions":[{"action":"view","label":"Open","url":"https://ci.example"}],` +
		`"attachment":{"name":"log.txt","url":"https://ci.example/log.txt"},"content_type":"text/markdown"}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	// Fields of the wrong type and the text form of actions are left out;
	// an attachment without a filename is named "attachment".
	env.Data = json.RawMessage(`{"click":5,"actions":"view, Open, https://x","markdown":"yes","attach":"https://x/y"}`)
	m := herald.NtfyMessageOf(env, "alice")
	if m.Click != "" || m.Actions != nil || m.ContentType != "" || m.Attachment == nil || m.Attachment.Name != "attachment" {
		t.Fatalf("lenient data: %+v", m)
	}
	// No priority is Herald's default, ntfy's 3.
	if m := herald.NtfyMessageOf(herald.Envelope{Seq: 1, Body: "x"}, "alice"); m.Priority != 3 || m.Event != herald.NtfyEventMessage || m.ID != "1" {
		t.Fatalf("defaults: %+v", m)
	}
}

func b64url(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestNtfyCredentials(t *testing.T) {
	t.Parallel()
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	for _, tc := range []struct {
		name   string
		header string
		query  string
		want   string
		found  bool
		err    bool
	}{
		{name: "bearer", header: "Bearer k1", want: "k1", found: true},
		{name: "bearer lower case", header: "bearer k1", want: "k1", found: true},
		{name: "basic, empty user", header: basic("", "k2"), want: "k2", found: true},
		{name: "basic, any user", header: basic("phil", "k2"), want: "k2", found: true},
		{name: "auth param", query: "auth=" + b64url("Bearer k3"), want: "k3", found: true},
		{name: "auth param, basic", query: "auth=" + b64url(basic("", "k4")), want: "k4", found: true},
		{name: "auth param, padded std", query: "auth=" + base64.StdEncoding.EncodeToString([]byte("Bearer k5?")), want: "k5?", found: true},
		{name: "authorization param", query: "authorization=" + b64url("Bearer k6"), want: "k6", found: true},
		{name: "auth param wins", header: "Bearer header", query: "auth=" + b64url("Bearer param"), want: "param", found: true},
		{name: "none"},
		{name: "bad base64", query: "auth=!!!", found: true, err: true},
		{name: "unknown scheme", header: "Token k", found: true, err: true},
		{name: "basic without password", header: basic("phil", ""), found: true, err: true},
		{name: "basic not base64", header: "Basic ***", found: true, err: true},
		{name: "bearer empty", header: "Bearer ", found: true, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/alice/json?"+tc.query, nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			got, found, err := herald.NtfyRequestCredential(r)
			if (err != nil) != tc.err || found != tc.found || got != tc.want {
				t.Fatalf("got %q, %v, %v", got, found, err)
			}
			if err != nil && !errors.Is(err, herald.ErrNtfyAuth) {
				t.Fatalf("error %v does not wrap ErrNtfyAuth", err)
			}
		})
	}
}

// FuzzDecodeNtfyAuth: a parameter either decodes (and the credential of
// the decoded header, if any, is non-empty) or fails with ErrNtfyAuth;
// what ntfy's clients encode always decodes back.
func FuzzDecodeNtfyAuth(f *testing.F) {
	for _, s := range []string{b64url("Bearer tok"), b64url("Basic OnRvaw"), "", "!!!", "QmVhcmVy=", "a", "a===="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := herald.DecodeNtfyAuth(s)
		if err != nil {
			if !errors.Is(err, herald.ErrNtfyAuth) {
				t.Fatalf("error %v does not wrap ErrNtfyAuth", err)
			}
			return
		}
		if secret, ok := herald.NtfyCredential(h); ok && secret == "" {
			t.Fatalf("%q: an empty secret", s)
		}
		if again, err := herald.DecodeNtfyAuth(b64url(h)); err != nil || again != h {
			t.Fatalf("%q: re-encoding %q gives %q, %v", s, h, again, err)
		}
	})
}

func TestWriteNtfyError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err    error
		status int
		body   string
	}{
		{&herald.NtfyError{Code: herald.NtfyCodePriorityInvalid, Err: herald.NewError(herald.InvalidMessage, "bad priority")}, 400, `{"code":40007,"http":400,"error":"bad priority"}`},
		{herald.NewError(herald.Unauthorized, "who?"), 401, `{"code":40101,"http":401,"error":"who?"}`},
		{herald.NewError(herald.TooLarge, "big"), 413, `{"code":41300,"http":413,"error":"big"}`},
		{&herald.Error{Code: herald.Unavailable, Message: "later", RetryAfter: 1500 * time.Millisecond}, 503, `{"code":50300,"http":503,"error":"later"}`},
		{errors.New("secret detail"), 500, `{"code":50000,"http":500,"error":"internal error"}`},
	} {
		rec := httptest.NewRecorder()
		herald.WriteNtfyError(rec, nil, tc.err)
		if rec.Code != tc.status || strings.TrimSpace(rec.Body.String()) != tc.body {
			t.Errorf("%v: %d %s", tc.err, rec.Code, rec.Body.String())
		}
		if tc.status == http.StatusServiceUnavailable && rec.Header().Get("Retry-After") != "2" {
			t.Errorf("Retry-After %q", rec.Header().Get("Retry-After"))
		}
	}
}
