package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/edge/token"
)

// The drop-in endpoints end to end (SPEC §12): serve in-process with its
// embedded NATS, driven with the requests ntfy's and gotify's CLIs send.

const (
	compatKey    = "compat-producer-key-0123456789"
	compatSecret = "compat-jwt-secret-0123456789abcdef0123"
	compatApp    = "AgotifyApp000001"
)

// compatServe starts serve with a producer key, a JWT secret and a gotify
// application of alice.
func compatServe(t *testing.T, extra ...string) *proc {
	t.Helper()
	env := []string{"HERALD_PRODUCER_KEYS=" + compatKey, "HERALD_JWT_SECRET=" + compatSecret, "HERALD_COMPAT_GOTIFY_APPS=" + compatApp + "=alice"}
	args := append([]string{"serve", "--data-dir", filepath.Join(t.TempDir(), "data"), "--listen", "127.0.0.1:0", "--nats-listen", "off"}, extra...)
	return startCmd(t, env, args...)
}

func compatToken(t *testing.T, user string) string {
	t.Helper()
	tok, err := token.Mint(compatSecret, user, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func basicAuth(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func authParam(header string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(header))
}

// decode unmarshals a JSON answer, failing the test on anything else.
func decode[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("answer %q: %v", body, err)
	}
	return v
}

// storedEnvelope is the last message of user, read from the history.
func storedEnvelope(t *testing.T, p *proc, user string) herald.Envelope {
	t.Helper()
	code, body := httpDo(t, "GET", p.url("/v1/users/"+user+"/messages?since=0&limit=1000"), map[string]string{"Authorization": "Bearer " + compatKey}, "")
	if code != http.StatusOK {
		t.Fatalf("history: %d %s", code, body)
	}
	h := decode[struct{ Messages []herald.Envelope }](t, body)
	if len(h.Messages) == 0 {
		t.Fatal("no messages")
	}
	return h.Messages[len(h.Messages)-1]
}

func TestNtfyPublish(t *testing.T) {
	t.Parallel()
	p := compatServe(t)
	bearer := map[string]string{"Authorization": "Bearer " + compatKey}
	with := func(h map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range h {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}

	type want struct {
		title, body string
		priority    int // Herald's
		tags        []string
		data        string // the stored data, as JSON; "" for none
	}
	for _, tc := range []struct {
		name, method, path string
		header             map[string]string
		body               string
		want               want
	}{
		{
			// ntfy publish -t "Backups" -p high --tags=warning,skull --click=… --icon=… --attach=… --filename=… --markdown
			//   --actions='view, Open, https://…' -e phil@example.com --no-cache --no-firebase --token KEY alice "Backups failed"
			name: "ntfy publish with every option", method: "POST", path: "/alice",
			header: with(bearer, "X-Title", "Backups", "X-Priority", "high", "X-Tags", "warning,skull",
				"X-Click", "https://home.example/", "X-Icon", "https://home.example/i.png",
				"X-Actions", "view, Open, https://home.example/", "X-Attach", "https://home.example/f.zip",
				"X-Filename", "f.zip", "X-Markdown", "yes", "X-Email", "phil@example.com", "X-Cache", "no", "X-Firebase", "no"),
			body: "Backups failed",
			want: want{title: "Backups", body: "Backups failed", priority: 8, tags: []string{"warning", "skull"},
				data: `{"actions":"view, Open, https://home.example/","attach":"https://home.example/f.zip","click":"https://home.example/","filename":"f.zip","icon":"https://home.example/i.png","markdown":true}`},
		},
		{
			// ntfy publish -u :KEY alice (no message), and ntfy trigger
			name: "ntfy trigger with basic auth", method: "POST", path: "/alice", header: map[string]string{"Authorization": basicAuth("", compatKey)},
			want: want{body: "triggered", priority: 5},
		},
		{
			name: "curl with short headers", method: "PUT", path: "/alice",
			header: with(bearer, "t", "Short", "p", "5", "ta", "a", "Content-Type", "text/markdown"), body: "**hi**",
			want: want{title: "Short", body: "**hi**", priority: 10, tags: []string{"a"}, data: `{"markdown":true}`},
		},
		{
			name: "RFC 2047 title", method: "POST", path: "/alice", header: with(bearer, "Title", "=?UTF-8?B?4pyUIEJ1aWxk?="), body: "ok",
			want: want{title: "✔ Build", body: "ok", priority: 5},
		},
		{
			name: "query parameters and ?auth=", method: "POST", path: "/alice?title=Q&priority=min&tags=x,y&auth=" + authParam("Bearer "+compatKey), body: "from the query",
			want: want{title: "Q", body: "from the query", priority: 1, tags: []string{"x", "y"}},
		},
		{
			name: "GET /publish", method: "GET", path: "/alice/publish?m=via%20GET&prio=low&auth=" + authParam(basicAuth("phil", compatKey)),
			want: want{body: "via GET", priority: 3},
		},
		{
			name: "GET /send with X-Message", method: "GET", path: "/alice/send", header: with(bearer, "X-Message", `two\nlines`),
			want: want{body: "two\nlines", priority: 5},
		},
		{
			name: "GET /trigger", method: "GET", path: "/alice/trigger?auth=" + authParam("Bearer "+compatKey),
			want: want{body: "triggered", priority: 5},
		},
		{
			name: "JSON form", method: "POST", path: "/", header: bearer,
			body: `{"topic":"alice","message":"json","title":"J","priority":4,"tags":["t"],"click":"https://c.example/","actions":[{"action":"view","label":"Go","url":"https://c.example/"}],"markdown":true,"email":"e@x"}`,
			want: want{title: "J", body: "json", priority: 8, tags: []string{"t"}, data: `{"actions":[{"action":"view","label":"Go","url":"https://c.example/"}],"click":"https://c.example/","markdown":true}`},
		},
		{
			name: "JSON form with PUT", method: "PUT", path: "/", header: bearer, body: `{"topic":"alice"}`,
			want: want{body: "triggered", priority: 5},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := httpDo(t, tc.method, p.url(tc.path), tc.header, tc.body)
			if code != http.StatusOK {
				t.Fatalf("%d %s", code, body)
			}
			m := decode[herald.NtfyMessage](t, body)
			seq, err := strconv.ParseUint(m.ID, 10, 64)
			if err != nil || seq == 0 || m.Event != "message" || m.Topic != "alice" || m.Time == 0 ||
				m.Title != tc.want.title || m.Message != tc.want.body || m.Priority != herald.NtfyPriority(tc.want.priority) {
				t.Fatalf("answer %s", body)
			}
			env := storedEnvelope(t, p, "alice")
			if env.Seq != seq || env.Title != tc.want.title || env.Body != tc.want.body || env.PriorityOrDefault() != tc.want.priority ||
				strings.Join(env.Tags, ",") != strings.Join(tc.want.tags, ",") || string(env.Data) != tc.want.data {
				t.Fatalf("stored %+v (data %s)", env, env.Data)
			}
		})
	}
}

func TestNtfyPublishErrors(t *testing.T) {
	t.Parallel()
	p := compatServe(t)
	bearer := map[string]string{"Authorization": "Bearer " + compatKey}
	for _, tc := range []struct {
		name, method, path string
		header             map[string]string
		body               string
		status, code       int
	}{
		{"no key", "POST", "/alice", nil, "x", 401, herald.NtfyCodeUnauthorized},
		{"unknown key", "POST", "/alice", map[string]string{"Authorization": "Bearer not-a-producer-key-000"}, "x", 401, herald.NtfyCodeUnauthorized},
		{"client token as key", "POST", "/alice", map[string]string{"Authorization": "Bearer " + compatToken(t, "alice")}, "x", 401, herald.NtfyCodeUnauthorized},
		{"unknown key in basic", "POST", "/alice", map[string]string{"Authorization": basicAuth("", "nope")}, "x", 401, herald.NtfyCodeUnauthorized},
		{"bad base64 in ?auth=", "POST", "/alice?auth=%21%21%21", nil, "x", 400, 40000},
		{"?auth= of an unknown scheme", "POST", "/alice?auth=" + authParam("Token x"), nil, "x", 400, 40000},
		{"bad priority", "POST", "/alice", map[string]string{"Authorization": "Bearer " + compatKey, "X-Priority": "7"}, "x", 400, herald.NtfyCodePriorityInvalid},
		{"bad priority name", "POST", "/alice?p=highest", bearer, "x", 400, herald.NtfyCodePriorityInvalid},
		{"unreadable delay", "POST", "/alice", map[string]string{"Authorization": "Bearer " + compatKey, "X-In": "tomorrow, 10am"}, "x", 400, herald.NtfyCodeDelayInvalid},
		{"delay in the past", "POST", "/alice?at=1000000000", bearer, "x", 400, 40000},
		{"file upload", "PUT", "/alice", map[string]string{"Authorization": "Bearer " + compatKey, "Filename": "a.bin"}, "data", 400, herald.NtfyCodeAttachUpload},
		{"binary body", "PUT", "/alice", bearer, "\xff\xfe\x00", 400, herald.NtfyCodeNotUTF8},
		{"attachment not a URL", "POST", "/alice", map[string]string{"Authorization": "Bearer " + compatKey, "Attach": "ftp://x/y"}, "x", 400, herald.NtfyCodeAttachURL},
		{"oversized", "POST", "/alice", bearer, strings.Repeat("a", 200<<10), 413, 41300},
		{"message over max_message_bytes", "POST", "/alice", bearer, strings.Repeat("a", 65<<10), 413, 41300},
		{"topic not ntfy's", "POST", "/a.b", bearer, "x", 400, herald.NtfyCodeTopicInvalid},
		{"topic reserved", "POST", "/healthz", bearer, "x", 400, herald.NtfyCodeTopicInvalid},
		{"topic message", "PUT", "/message", bearer, "x", 400, herald.NtfyCodeTopicInvalid},
		{"JSON form not JSON", "POST", "/", bearer, `{"topic":`, 400, herald.NtfyCodeJSONInvalid},
		{"JSON form without topic", "POST", "/", bearer, `{"message":"x"}`, 400, herald.NtfyCodeTopicInvalid},
		{"JSON form bad priority", "POST", "/", bearer, `{"topic":"alice","priority":9}`, 400, herald.NtfyCodePriorityInvalid},
		{"JSON form reserved topic", "POST", "/", bearer, `{"topic":"v1","message":"x"}`, 400, herald.NtfyCodeTopicInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := httpDo(t, tc.method, p.url(tc.path), tc.header, tc.body)
			e := decode[herald.NtfyErrorBody](t, body)
			if code != tc.status || e.HTTP != tc.status || e.Code != tc.code || e.Error == "" {
				t.Fatalf("%d %s; want %d with code %d", code, body, tc.status, tc.code)
			}
		})
	}
}

// TestNtfyLifecycle: ntfy's delay is a scheduled message, its sequence id
// an update, and DELETE /<topic>/<sequence_id> a delete (SPEC §10).
func TestNtfyLifecycle(t *testing.T) {
	t.Parallel()
	p := compatServe(t)
	bearer := map[string]string{"Authorization": "Bearer " + compatKey}

	code, body := httpDo(t, "POST", p.url("/bob"), map[string]string{"Authorization": "Bearer " + compatKey, "X-Sequence-ID": "s1"}, "first")
	if code != http.StatusOK {
		t.Fatalf("sequence id: %d %s", code, body)
	}
	if e := storedEnvelope(t, p, "bob"); e.Ref != "s1" || e.Op != herald.OpUpdate || e.Body != "first" {
		t.Fatalf("stored %+v, want an update of s1", e)
	}
	if code, body := httpDo(t, "PUT", p.url("/bob/s1"), bearer, "second"); code != http.StatusOK {
		t.Fatalf("update by path: %d %s", code, body)
	}
	if e := storedEnvelope(t, p, "bob"); e.Ref != "s1" || e.Op != herald.OpUpdate || e.Body != "second" {
		t.Fatalf("stored %+v, want the second update of s1", e)
	}
	if code, body := httpDo(t, "DELETE", p.url("/bob/s1"), bearer, ""); code != http.StatusOK {
		t.Fatalf("delete by path: %d %s", code, body)
	}
	if e := storedEnvelope(t, p, "bob"); e.Ref != "s1" || e.Op != herald.OpDelete {
		t.Fatalf("stored %+v, want a delete of s1", e)
	}

	// A delay of 1 s: nothing of carol's is stored at once; the message
	// arrives once due.
	before := time.Now()
	if code, body := httpDo(t, "POST", p.url("/carol"), map[string]string{"Authorization": "Bearer " + compatKey, "X-Delay": "1s"}, "later"); code != http.StatusOK {
		t.Fatalf("delay: %d %s", code, body)
	}
	waitFor(t, 20*time.Second, func() error {
		code, body := httpDo(t, "GET", p.url("/v1/users/carol/messages?since=0"), bearer, "")
		if code != http.StatusOK {
			return fmt.Errorf("history: %d %s", code, body)
		}
		h := decode[struct{ Messages []herald.Envelope }](t, body)
		if len(h.Messages) != 1 {
			return fmt.Errorf("%d messages", len(h.Messages))
		}
		if h.Messages[0].Body != "later" || h.Messages[0].Time.Before(before.Add(time.Second).Truncate(time.Second)) {
			return fmt.Errorf("delivered %+v before it was due", h.Messages[0])
		}
		return nil
	})
}

// TestCompatNoShadow: Herald's own paths answer as before with the
// compatible endpoints on.
func TestCompatNoShadow(t *testing.T) {
	t.Parallel()
	p := compatServe(t)
	bearer := map[string]string{"Authorization": "Bearer " + compatKey}
	for _, tc := range []struct {
		method, path string
		header       map[string]string
		body         string
		status       int
		herald       herald.Code // Herald's error code; "" for a success
	}{
		{"GET", "/healthz", nil, "", 200, ""},
		{"GET", "/readyz", nil, "", 200, ""},
		{"GET", "/metrics", nil, "", 200, ""},
		{"GET", "/", nil, "", 200, ""},
		{"GET", "/v1/herald.js", nil, "", 200, ""},
		{"POST", "/v1/users/alice/messages", bearer, `{"body":"x"}`, 201, ""},
		{"POST", "/v1/messages", bearer, `{"messages":[{"user":"alice","body":"x"}]}`, 200, ""},
		{"POST", "/v1/nope", bearer, "x", 404, herald.NotFound},
		{"PUT", "/v1/ack", bearer, "x", 405, herald.MethodNotAllowed},
		{"PUT", "/v1/messages", bearer, "x", 405, herald.MethodNotAllowed},
		{"POST", "/v1/ws", bearer, "x", 405, herald.MethodNotAllowed},
		{"GET", "/v1/admin", nil, "", 404, herald.NotFound},
		{"GET", "/v1", nil, "", 404, herald.NotFound},
		{"DELETE", "/v1/anything", bearer, "", 404, herald.NotFound},
		{"POST", "/v1", bearer, "x", 404, herald.NotFound},
		{"GET", "/v1/json", nil, "", 404, herald.NotFound},
		{"GET", "/v1/sse", nil, "", 400, herald.InvalidDevice},
		{"GET", "/v1/ws?device=d", nil, "", 401, herald.Unauthorized},
		{"POST", "/v1/ack", nil, `{}`, 401, herald.Unauthorized},
	} {
		code, body := httpDo(t, tc.method, p.url(tc.path), tc.header, tc.body)
		if code != tc.status {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, code, body)
			continue
		}
		if tc.herald != "" {
			if e := decode[herald.ErrorBody](t, body); e.Error.Code != tc.herald {
				t.Errorf("%s %s: %s", tc.method, tc.path, body)
			}
		}
	}
}

// TestHeraldFormPublish: Herald's own publish takes curl -d's default
// content type, as a form or as text.
func TestHeraldFormPublish(t *testing.T) {
	t.Parallel()
	p := compatServe(t)
	form := map[string]string{"Authorization": "Bearer " + compatKey, "Content-Type": "application/x-www-form-urlencoded"}
	if code, body := httpDo(t, "POST", p.url("/v1/users/bob/messages"), form, "disk at 90%"); code != http.StatusCreated {
		t.Fatalf("text: %d %s", code, body)
	}
	if env := storedEnvelope(t, p, "bob"); env.Body != "disk at 90%" {
		t.Fatalf("text stored as %+v", env)
	}
	if code, body := httpDo(t, "POST", p.url("/v1/users/bob/messages"), form, "title=CI&message=main+is+red&priority=8&tags=ci,red"); code != http.StatusCreated {
		t.Fatalf("form: %d %s", code, body)
	}
	if env := storedEnvelope(t, p, "bob"); env.Title != "CI" || env.Body != "main is red" || env.PriorityOrDefault() != 8 || strings.Join(env.Tags, ",") != "ci,red" {
		t.Fatalf("form stored as %+v", env)
	}
}

func TestGotify(t *testing.T) {
	t.Parallel()
	p := compatServe(t)
	type gotifyMsg struct {
		ID       uint64          `json:"id"`
		AppID    uint64          `json:"appid"`
		Message  string          `json:"message"`
		Title    string          `json:"title"`
		Priority int             `json:"priority"`
		Extras   json.RawMessage `json:"extras"`
		Date     time.Time       `json:"date"`
	}
	for _, tc := range []struct {
		name, path string
		header     map[string]string
		body       string
		want       gotifyMsg
		data       string
	}{
		{
			// gotify push -t t -p 0 "m": the CLI's JSON, with the token as X-Gotify-Key.
			name: "gotify CLI", path: "/message",
			header: map[string]string{"X-Gotify-Key": compatApp, "Content-Type": "application/json"},
			body:   `{"id":0,"appid":0,"message":"m","title":"t","priority":0,"date":"0001-01-01T00:00:00.000Z"}`,
			want:   gotifyMsg{Message: "m", Title: "t", Priority: 0},
		},
		{
			name: "gotify CLI with a content type", path: "/message",
			header: map[string]string{"X-Gotify-Key": compatApp, "Content-Type": "application/json"},
			body:   `{"message":"**m**","priority":7,"extras":{"client::display":{"contentType":"text/markdown"}}}`,
			want:   gotifyMsg{Message: "**m**", Priority: 7, Extras: json.RawMessage(`{"client::display":{"contentType":"text/markdown"}}`)},
			data:   `{"extras":{"client::display":{"contentType":"text/markdown"}}}`,
		},
		{
			name: "curl form with ?token=", path: "/message?token=" + compatApp,
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, body: "title=T&message=form&priority=5",
			want: gotifyMsg{Message: "form", Title: "T", Priority: 5},
		},
		{
			name: "bearer and no priority", path: "/message",
			header: map[string]string{"Authorization": "Bearer " + compatApp, "Content-Type": "application/json"}, body: `{"message":"b"}`,
			want: gotifyMsg{Message: "b", Priority: 5},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := httpDo(t, "POST", p.url(tc.path), tc.header, tc.body)
			if code != http.StatusOK {
				t.Fatalf("%d %s", code, body)
			}
			got := decode[gotifyMsg](t, body)
			if got.ID == 0 || got.Date.IsZero() || got.Message != tc.want.Message || got.Title != tc.want.Title || got.Priority != tc.want.Priority || string(got.Extras) != string(tc.want.Extras) {
				t.Fatalf("answer %s", body)
			}
			env := storedEnvelope(t, p, "alice")
			if env.Seq != got.ID || env.Body != tc.want.Message || env.PriorityOrDefault() != tc.want.Priority || string(env.Data) != tc.data {
				t.Fatalf("stored %+v (data %s)", env, env.Data)
			}
		})
	}
	type gotifyErr struct {
		Error            string `json:"error"`
		ErrorCode        int    `json:"errorCode"`
		ErrorDescription string `json:"errorDescription"`
	}
	jsonH := func(kv ...string) map[string]string {
		h := map[string]string{"Content-Type": "application/json"}
		for i := 0; i < len(kv); i += 2 {
			h[kv[i]] = kv[i+1]
		}
		return h
	}
	for _, tc := range []struct {
		name, path string
		header     map[string]string
		body       string
		status     int
	}{
		{"unknown token", "/message?token=AnotherApp00001", jsonH(), `{"message":"x"}`, 401},
		{"no token", "/message", jsonH(), `{"message":"x"}`, 401},
		{"producer key is not an app token", "/message", jsonH("Authorization", "Bearer "+compatKey), `{"message":"x"}`, 401},
		{"no message", "/message", jsonH("X-Gotify-Key", compatApp), `{"title":"x"}`, 400},
		{"bad JSON", "/message", jsonH("X-Gotify-Key", compatApp), `{"message":`, 400},
		{"priority out of range", "/message", jsonH("X-Gotify-Key", compatApp), `{"message":"x","priority":11}`, 400},
		{"extras not an object", "/message", jsonH("X-Gotify-Key", compatApp), `{"message":"x","extras":"e"}`, 400},
		{"oversized", "/message", jsonH("X-Gotify-Key", compatApp), `{"message":"` + strings.Repeat("a", 200<<10) + `"}`, 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := httpDo(t, "POST", p.url(tc.path), tc.header, tc.body)
			e := decode[gotifyErr](t, body)
			if code != tc.status || e.ErrorCode != tc.status || e.Error != http.StatusText(tc.status) || e.ErrorDescription == "" {
				t.Fatalf("%d %s; want %d", code, body, tc.status)
			}
		})
	}
}

// TestCompatOff: with both protocols off, their paths are not served.
func TestCompatOff(t *testing.T) {
	t.Parallel()
	p := compatServe(t, "--set", "compat.ntfy.enabled=false", "--set", "compat.gotify.enabled=false")
	bearer := map[string]string{"Authorization": "Bearer " + compatKey}
	for _, r := range [][2]string{{"POST", "/alice"}, {"POST", "/"}, {"POST", "/message"}, {"GET", "/alice/json"}, {"GET", "/alice/publish"}} {
		code, body := httpDo(t, r[0], p.url(r[1]), bearer, "x")
		if code != http.StatusNotFound && code != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: %d %s", r[0], r[1], code, body)
		}
	}
}

// lines reads the lines of a streamed body on a goroutine of its own,
// which ends when the body is closed (the test's cleanup at the latest).
func lines(t *testing.T, resp *http.Response) <-chan string {
	t.Helper()
	t.Cleanup(func() { _ = resp.Body.Close() })
	ch := make(chan string, 64)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	return ch
}

// next returns the next line, failing after 10 s.
func next(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case l, ok := <-ch:
		if !ok {
			t.Fatal("the stream ended")
		}
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("no line within 10s")
	}
	return ""
}

// nextMessage skips events other than messages (keepalives) and returns
// the next message.
func nextMessage(t *testing.T, ch <-chan string) herald.NtfyMessage {
	t.Helper()
	for {
		m := decode[herald.NtfyMessage](t, next(t, ch))
		if m.Event == herald.NtfyEventMessage {
			return m
		}
	}
}

// subscribe opens GET path with header, failing on anything but 200.
func subscribe(t *testing.T, url string, header map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return resp
}

var ntfyConnsRe = regexp.MustCompile(`(?m)^herald_edge_connections\{[^}]*transport="ntfy"[^}]*\} (\d+)$`)

// closeStream closes a subscription and waits until the edge has ended its
// session, so that the device's position is stored before it reconnects,
// as it is when an ntfy client reconnects after its connection broke.
func closeStream(t *testing.T, p *proc, resp *http.Response) {
	t.Helper()
	_ = resp.Body.Close()
	waitFor(t, 10*time.Second, func() error {
		_, body := httpDo(t, "GET", p.url("/metrics"), nil, "")
		if m := ntfyConnsRe.FindStringSubmatch(body); m == nil || m[1] != "0" {
			return fmt.Errorf("ntfy connections: %v", m)
		}
		return nil
	})
}

// ntfyPublish publishes body to alice the way `ntfy publish` does and
// returns the message's id.
func ntfyPublish(t *testing.T, p *proc, body string) string {
	t.Helper()
	code, out := httpDo(t, "POST", p.url("/alice"), map[string]string{"Authorization": "Bearer " + compatKey}, body)
	if code != http.StatusOK {
		t.Fatalf("publish: %d %s", code, out)
	}
	return decode[herald.NtfyMessage](t, out).ID
}

// TestNtfySubscribe: ntfy's CLI follows a Herald user over /<topic>/json as
// a device: it resumes with since=<last id>, and without since from its
// acked position; SSE, WebSocket and poll give the same messages. On both
// engines.
func TestNtfySubscribe(t *testing.T) {
	t.Parallel()
	for _, engine := range []string{config.DeliveryLive, config.DeliveryConsumer} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			p := compatServe(t, "--set", "edge.delivery="+engine)
			tok := compatToken(t, "alice")
			// ntfy subscribe -u :TOKEN alice: Basic auth, as the CLI sends a token.
			auth := map[string]string{"Authorization": basicAuth("", tok)}

			ids := []string{ntfyPublish(t, p, "one"), ntfyPublish(t, p, "two"), ntfyPublish(t, p, "three")}

			// ntfy subscribe --since=all alice
			resp := subscribe(t, p.url("/alice/json?since=all&device=cli"), auth)
			ch := lines(t, resp)
			if open := decode[herald.NtfyMessage](t, next(t, ch)); open.Event != herald.NtfyEventOpen || open.Topic != "alice" {
				t.Fatalf("first event %+v", open)
			}
			for i, want := range []string{"one", "two", "three"} {
				if m := nextMessage(t, ch); m.ID != ids[i] || m.Message != want || m.Topic != "alice" || m.Priority != 3 {
					t.Fatalf("message %d: %+v", i, m)
				}
			}
			live := ntfyPublish(t, p, "four")
			if m := nextMessage(t, ch); m.ID != live || m.Message != "four" {
				t.Fatalf("live message %+v", m)
			}
			ids = append(ids, live, ntfyPublish(t, p, "five"))
			if m := nextMessage(t, ch); m.ID != ids[4] {
				t.Fatalf("fifth %+v", m)
			}

			// The CLI reconnects with since=<the last id it saw>.
			closeStream(t, p, resp)
			resp = subscribe(t, p.url("/alice/json?since="+ids[2]+"&device=cli"), auth)
			ch = lines(t, resp)
			next(t, ch) // open
			for _, id := range ids[3:] {
				if m := nextMessage(t, ch); m.ID != id {
					t.Fatalf("resumed at %+v, want id %s", m, id)
				}
			}

			// Without since the device resumes after what it was sent
			// (acked as written): only the next message comes.
			closeStream(t, p, resp)
			resp = subscribe(t, p.url("/alice/json?device=cli"), auth)
			ch = lines(t, resp)
			next(t, ch) // open
			six := ntfyPublish(t, p, "six")
			if m := nextMessage(t, ch); m.ID != six {
				t.Fatalf("stored position gave %+v, want id %s", m, six)
			}

			closeStream(t, p, resp)

			// ntfy subscribe --poll --since=<id> alice: the backlog, then the end.
			resp = subscribe(t, p.url("/alice/json?poll=1&since="+ids[3]), auth)
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Split(strings.TrimSpace(string(body)), "\n")
			if len(got) != 3 || decode[herald.NtfyMessage](t, got[1]).ID != ids[4] || decode[herald.NtfyMessage](t, got[2]).ID != six {
				t.Fatalf("poll:\n%s", body)
			}

			// SSE with ?auth=, as ntfy's web app sends it.
			ch = lines(t, subscribe(t, p.url("/alice/sse?poll=1&since="+ids[4]+"&auth="+authParam("Bearer "+tok)), nil))
			want := []string{"event: open", "data: ", "", "id: " + six, `data: {"id":"` + six + `"`, ""}
			for _, w := range want {
				if l := next(t, ch); !strings.HasPrefix(l, w) {
					t.Fatalf("SSE line %q, want %q", l, w)
				}
			}

			// WebSocket with ?token=.
			ws, _, err := websocket.DefaultDialer.Dial("ws://"+p.addr+"/alice/ws?device=web&since="+ids[4]+"&token="+tok, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
			for _, wantEvent := range []string{herald.NtfyEventOpen, herald.NtfyEventMessage} {
				var m herald.NtfyMessage
				if err := ws.ReadJSON(&m); err != nil || m.Event != wantEvent || (wantEvent == herald.NtfyEventMessage && m.ID != six) {
					t.Fatalf("ws event %+v, %v; want %s", m, err, wantEvent)
				}
			}
		})
	}
}

func TestNtfySubscribeErrors(t *testing.T) {
	t.Parallel()
	p := compatServe(t)
	tok := compatToken(t, "alice")
	bearer := map[string]string{"Authorization": "Bearer " + tok}
	for _, tc := range []struct {
		name, path   string
		header       map[string]string
		status, code int
	}{
		{"no token", "/alice/json", nil, 401, herald.NtfyCodeUnauthorized},
		{"bad token", "/alice/json", map[string]string{"Authorization": "Bearer x.y.z"}, 401, herald.NtfyCodeUnauthorized},
		{"producer key as token", "/alice/json", map[string]string{"Authorization": basicAuth("", compatKey)}, 401, herald.NtfyCodeUnauthorized},
		{"bad ?auth=", "/alice/sse?auth=%25%25", nil, 400, 40000},
		{"another user's topic", "/bob/json", bearer, 403, herald.NtfyCodeForbidden},
		{"several topics", "/alice,bob/json", bearer, 400, herald.NtfyCodeTopicInvalid},
		{"topic not ntfy's", "/a~b/json", bearer, 400, herald.NtfyCodeTopicInvalid},
		{"reserved topic", "/healthz/json", bearer, 400, herald.NtfyCodeTopicInvalid},
		{"bad since", "/alice/json?since=yesterday", bearer, 400, herald.NtfyCodeSinceInvalid},
		{"bad Last-Event-ID", "/alice/sse", map[string]string{"Authorization": "Bearer " + tok, "Last-Event-ID": "x"}, 400, herald.NtfyCodeSinceInvalid},
		{"filter", "/alice/json?priority=5", bearer, 400, 40000},
		{"bad device", "/alice/json?device=a%20b", bearer, 400, 40000},
		{"ws without upgrade", "/alice/ws", bearer, 400, 40000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := httpDo(t, "GET", p.url(tc.path), tc.header, "")
			e := decode[herald.NtfyErrorBody](t, body)
			if code != tc.status || e.Code != tc.code || e.HTTP != tc.status {
				t.Fatalf("%d %s; want %d with code %d", code, body, tc.status, tc.code)
			}
		})
	}
}
