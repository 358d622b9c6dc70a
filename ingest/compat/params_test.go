package compat

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/herald-push/herald"
)

// TestNtfyAliases: every name of every parameter, as a header and as a
// query parameter, reaches its field.
func TestNtfyAliases(t *testing.T) {
	t.Parallel()
	type field struct {
		names []string
		value string
		check func(n ntfyPublish) bool
	}
	fields := map[string]field{
		"title":    {paramTitle, "Hello", func(n ntfyPublish) bool { return n.title == "Hello" }},
		"message":  {paramMessage, `a\nb`, func(n ntfyPublish) bool { return n.message == "a\nb" }},
		"priority": {paramPriority, "high", func(n ntfyPublish) bool { return n.priority == 4 }},
		"tags":     {paramTags, "a, b,,c", func(n ntfyPublish) bool { return reflect.DeepEqual(n.tags, []string{"a", "b", "c"}) }},
		"click":    {paramClick, "https://c", func(n ntfyPublish) bool { return n.click == "https://c" }},
		"icon":     {paramIcon, "https://i", func(n ntfyPublish) bool { return n.icon == "https://i" }},
		"attach":   {paramAttach, "https://a", func(n ntfyPublish) bool { return n.attach == "https://a" }},
		"filename": {paramFilename, "f.txt", func(n ntfyPublish) bool { return n.filename == "f.txt" }},
		"actions":  {paramActions, "view, Open, https://x", func(n ntfyPublish) bool { return string(n.actions) == `"view, Open, https://x"` }},
		"markdown": {paramMarkdown, "yes", func(n ntfyPublish) bool { return n.markdown }},
		"delay":    {paramDelay, "10m", func(n ntfyPublish) bool { return n.delay == "10m" }},
		"sequence": {paramSequenceID, "s1", func(n ntfyPublish) bool { return n.sequenceID == "s1" }},
	}
	for fname, f := range fields {
		for _, name := range f.names {
			for _, where := range []string{"header", "query"} {
				t.Run(fname+"/"+where+"/"+name, func(t *testing.T) {
					r := httptest.NewRequest("POST", "/alice", nil)
					if where == "header" {
						r.Header.Set(name, f.value)
					} else {
						r.URL.RawQuery = url.Values{strings.ToLower(name): {f.value}}.Encode()
					}
					n, err := fromParams(r, "alice", nil)
					if err != nil || !f.check(n) {
						t.Fatalf("got %+v, %v", n, err)
					}
				})
			}
		}
	}
}

func TestNtfyParams(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		header map[string]string
		query  string
		body   string
		check  func(n ntfyPublish) bool
		code   int // ntfy code of the error; 0: none
	}{
		{name: "headers win over the query", header: map[string]string{"Title": "h"}, query: "title=q", check: func(n ntfyPublish) bool { return n.title == "h" }},
		{name: "X- name wins over the short one", header: map[string]string{"X-Title": "x", "t": "short"}, check: func(n ntfyPublish) bool { return n.title == "x" }},
		{name: "RFC 2047 base64", header: map[string]string{"Title": "=?UTF-8?B?4pyUIEJ1aWxk?="}, check: func(n ntfyPublish) bool { return n.title == "✔ Build" }},
		{name: "RFC 2047 quoted-printable", header: map[string]string{"X-Message": "=?utf-8?q?Caf=C3=A9_ouvert?="}, check: func(n ntfyPublish) bool { return n.message == "Café ouvert" }},
		{name: "RFC 2047 latin-1 tags", header: map[string]string{"Tags": "=?ISO-8859-1?Q?caf=E9?=,b"}, check: func(n ntfyPublish) bool { return reflect.DeepEqual(n.tags, []string{"café", "b"}) }},
		{name: "RFC 2047 unknown charset kept", header: map[string]string{"Title": "=?x-unknown?B?AAA=?="}, check: func(n ntfyPublish) bool { return n.title == "=?x-unknown?B?AAA=?=" }},
		{name: "RFC 9218 priority ignored", header: map[string]string{"Priority": "u=3, i"}, query: "p=5", check: func(n ntfyPublish) bool { return n.priority == 5 }},
		{name: "RFC 9218 priority alone", header: map[string]string{"Priority": "u=1"}, check: func(n ntfyPublish) bool { return n.priority == 0 }},
		{name: "body wins over X-Message", header: map[string]string{"X-Message": "header"}, body: "  body\n", check: func(n ntfyPublish) bool { return n.message == "body" }},
		{name: "markdown content type", header: map[string]string{"Content-Type": "text/markdown; charset=utf-8"}, check: func(n ntfyPublish) bool { return n.markdown }},
		{name: "markdown false", header: map[string]string{"X-Markdown": "no"}, check: func(n ntfyPublish) bool { return !n.markdown }},
		{name: "actions as JSON", header: map[string]string{"Actions": `[{"action":"view","label":"L","url":"https://x"}]`}, check: func(n ntfyPublish) bool { return strings.HasPrefix(string(n.actions), "[") }},
		{name: "idempotency key", header: map[string]string{"Idempotency-Key": "k1"}, check: func(n ntfyPublish) bool { return n.id == "k1" }},
		{name: "bad priority", header: map[string]string{"X-Priority": "9"}, code: herald.NtfyCodePriorityInvalid},
		{name: "bad priority name", query: "prio=highest", code: herald.NtfyCodePriorityInvalid},
		{name: "file upload", header: map[string]string{"Filename": "a.bin"}, body: "data", code: herald.NtfyCodeAttachUpload},
		{name: "binary body", body: "\xff\xfe", code: herald.NtfyCodeNotUTF8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/alice?"+tc.query, nil)
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			n, err := fromParams(r, "alice", []byte(tc.body))
			if tc.code != 0 {
				var ne *herald.NtfyError
				if !errors.As(err, &ne) || ne.Code != tc.code {
					t.Fatalf("got %+v, %v; want ntfy code %d", n, err, tc.code)
				}
				return
			}
			if err != nil || !tc.check(n) {
				t.Fatalf("got %+v, %v", n, err)
			}
		})
	}
}

func TestNtfyToMessage(t *testing.T) {
	t.Parallel()
	now := time.Now()
	n := ntfyPublish{topic: "alice", title: "T", priority: 2, tags: []string{"x"}, click: "https://c", icon: "https://i",
		attach: "https://a/f.zip", filename: "f.zip", actions: json.RawMessage(`[{"action":"view"}]`), markdown: true}
	m, err := n.toMessage(now)
	if err != nil {
		t.Fatal(err)
	}
	if m.Body != emptyMessage || m.Title != "T" || m.Priority == nil || *m.Priority != 3 {
		t.Fatalf("message %+v", m)
	}
	var data map[string]any
	if err := json.Unmarshal(m.Data, &data); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"click": "https://c", "icon": "https://i", "attach": "https://a/f.zip", "filename": "f.zip",
		"actions": []any{map[string]any{"action": "view"}}, "markdown": true}
	if !reflect.DeepEqual(data, want) {
		t.Fatalf("data %v", data)
	}
	if m, _ := (ntfyPublish{message: "x"}).toMessage(now); m.Data != nil || m.Priority != nil {
		t.Fatalf("a plain message has data or a priority: %+v", m)
	}
	for _, tc := range []struct {
		n    ntfyPublish
		code int
	}{
		{ntfyPublish{attach: "ftp://x"}, herald.NtfyCodeAttachURL},
		{ntfyPublish{icon: "file:///etc/passwd"}, herald.NtfyCodeIconURL},
		{ntfyPublish{filename: "x"}, herald.NtfyCodeAttachUpload},
		{ntfyPublish{delay: "tomorrow, 10am"}, herald.NtfyCodeDelayInvalid},
	} {
		_, err := tc.n.toMessage(now)
		var e *herald.Error
		if !errors.As(err, &e) || e.Code.Status() != 400 {
			t.Errorf("%+v: %v, want a 400", tc.n, err)
			continue
		}
		var ne *herald.NtfyError
		if tc.code != 0 && (!errors.As(err, &ne) || ne.Code != tc.code) {
			t.Errorf("%+v: %v, want ntfy code %d", tc.n, err, tc.code)
		}
	}
}

// TestNtfyLifecycle: a delay becomes deliver_at, a sequence id an update
// of the messages that carried it (SPEC §10).
func TestNtfyLifecycle(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	m, err := (ntfyPublish{message: "x", delay: "10m", sequenceID: "s1"}).toMessage(now)
	if err != nil {
		t.Fatal(err)
	}
	if !m.DeliverAt.Equal(now.Add(10*time.Minute)) || m.Ref != "s1" || m.Op != herald.OpUpdate {
		t.Fatalf("got deliver_at %v, ref %q, op %q", m.DeliverAt, m.Ref, m.Op)
	}
	if m, err := (ntfyPublish{message: "x"}).toMessage(now); err != nil || !m.DeliverAt.IsZero() || m.Ref != "" || m.Op != "" {
		t.Fatalf("a plain message: %+v, %v", m, err)
	}
}

func TestFromJSON(t *testing.T) {
	t.Parallel()
	n, err := fromJSON([]byte(`{"topic":"alice","message":"m","title":"t","priority":5,"tags":["a"],"click":"https://c",`+
		`"actions":[{"action":"view","label":"L","url":"https://x"}],"attach":"https://a","filename":"f","markdown":true,"email":"e@x","call":"yes","cache":"no"}`), "k")
	if err != nil || n.topic != "alice" || n.priority != 5 || !n.markdown || n.id != "k" || len(n.actions) == 0 {
		t.Fatalf("got %+v, %v", n, err)
	}
	for body, code := range map[string]int{
		`{"topic":`:                            herald.NtfyCodeJSONInvalid,
		`{"topic":"a","priority":6}`:           herald.NtfyCodePriorityInvalid,
		`{"topic":"a","priority":"high"}`:      herald.NtfyCodeJSONInvalid,
		`{"topic":"a","actions":"view, x, y"}`: herald.NtfyCodeJSONInvalid,
		`[]`:                                   herald.NtfyCodeJSONInvalid,
	} {
		_, err := fromJSON([]byte(body), "")
		var ne *herald.NtfyError
		if !errors.As(err, &ne) || ne.Code != code {
			t.Errorf("%s: %v, want ntfy code %d", body, err, code)
		}
	}
}

func TestParseDelay(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"1795430000":           time.Unix(1795430000, 0),
		"30m":                  now.Add(30 * time.Minute),
		"2 hours":              now.Add(2 * time.Hour),
		"1d":                   now.Add(24 * time.Hour),
		"2026-11-24T08:00:00Z": time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC),
	} {
		if got, err := parseDelay(in, now); err != nil || !got.Equal(want) {
			t.Errorf("parseDelay(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "tomorrow, 10am", "0", "-5", "soon"} {
		if _, err := parseDelay(bad, now); !errors.Is(err, errDelay) {
			t.Errorf("parseDelay(%q): %v", bad, err)
		}
	}
}

// FuzzParseDelay: an accepted delay is a time; a refused one wraps errDelay.
func FuzzParseDelay(f *testing.F) {
	for _, s := range []string{"10m", "1795430000", "2026-11-24T08:00:00Z", "tomorrow", "-1", "99999999999999999999"} {
		f.Add(s)
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, s string) {
		if got, err := parseDelay(s, now); err != nil && !errors.Is(err, errDelay) {
			t.Fatalf("%q: %v", s, err)
		} else if err == nil && got.IsZero() {
			t.Fatalf("%q: zero time", s)
		}
	})
}

// FuzzDecodeHeader: decoding never fails; a value without "=?" is kept as
// it is, and a decoded value is valid UTF-8 whenever the input is.
func FuzzDecodeHeader(f *testing.F) {
	for _, s := range []string{"plain", "=?UTF-8?B?4pyU?=", "=?utf-8?q?a_b?= c", "=?ISO-8859-1?Q?caf=E9?=", "=?x?B?@@?=", "=?UTF-8?B?/w==?="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := decodeHeader(s)
		if !strings.Contains(s, "=?") && got != s {
			t.Fatalf("%q changed to %q", s, got)
		}
	})
}

func TestGotifyToken(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		query, key, auth, want string
	}{
		{query: "token=q", key: "k", auth: "Bearer b", want: "q"},
		{key: "k", auth: "Bearer b", want: "k"},
		{auth: "Bearer b", want: "b"},
		{auth: "bearer b", want: "b"},
		{auth: "Basic Yjo=", want: ""},
		{want: ""},
	} {
		r := httptest.NewRequest("POST", "/message?"+tc.query, nil)
		if tc.key != "" {
			r.Header.Set("X-Gotify-Key", tc.key)
		}
		if tc.auth != "" {
			r.Header.Set("Authorization", tc.auth)
		}
		if got := gotifyToken(r); got != tc.want {
			t.Errorf("%+v: %q", tc, got)
		}
	}
}

func TestDecodeGotify(t *testing.T) {
	t.Parallel()
	multipart := "--b\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\nmp\r\n--b\r\nContent-Disposition: form-data; name=\"priority\"\r\n\r\n7\r\n--b--\r\n"
	for _, tc := range []struct {
		name, ct, query, body string
		want                  gotifyMessage
		code                  herald.Code
	}{
		{name: "json", ct: "application/json", body: `{"message":"m","title":"t","priority":0,"extras":{"a::b":{"c":1}}}`,
			want: gotifyMessage{Message: "m", Title: "t", Priority: ptr(0), Extras: json.RawMessage(`{"a::b":{"c":1}}`)}},
		{name: "json null extras", ct: "application/json; charset=utf-8", body: `{"message":"m","extras":null}`, want: gotifyMessage{Message: "m"}},
		{name: "urlencoded", ct: "application/x-www-form-urlencoded", body: "message=m&title=t&priority=3", want: gotifyMessage{Message: "m", Title: "t", Priority: ptr(3)}},
		{name: "query only", query: "message=q&priority=1", want: gotifyMessage{Message: "q", Priority: ptr(1)}},
		{name: "multipart", ct: "multipart/form-data; boundary=b", body: multipart, want: gotifyMessage{Message: "mp", Priority: ptr(7)}},
		{name: "no message", ct: "application/json", body: `{"title":"t"}`, code: herald.InvalidMessage},
		{name: "bad json", ct: "application/json", body: `{"message":`, code: herald.InvalidJSON},
		{name: "extras not an object", ct: "application/json", body: `{"message":"m","extras":[1]}`, code: herald.InvalidMessage},
		{name: "bad form priority", ct: "application/x-www-form-urlencoded", body: "message=m&priority=high", code: herald.InvalidMessage},
		{name: "bad multipart", ct: "multipart/form-data; boundary=b", body: "--b\r\nnope", code: herald.InvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, _ := url.ParseQuery(tc.query)
			got, err := decodeGotify(tc.ct, q, []byte(tc.body))
			if tc.code != "" {
				var e *herald.Error
				if !errors.As(err, &e) || e.Code != tc.code {
					t.Fatalf("got %+v, %v; want %s", got, err, tc.code)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func ptr(n int) *int { return &n }
