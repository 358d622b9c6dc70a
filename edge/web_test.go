package edge

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald/edge/token"
	"github.com/herald-push/herald/edge/web"
	"github.com/herald-push/herald/streams"
	"github.com/herald-push/herald/streams/streamstest"
)

// webMux returns a mux with the routes of an edge whose edge.console is
// console.
func webMux(t *testing.T, console bool) *http.ServeMux {
	t.Helper()
	js, err := jetstream.New(streamstest.Connect(t, streamstest.RunServer(t).ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig{Stream: streams.DefaultConfig(), Edge: DefaultConfig()}
	cfg.Edge.Console = console
	eng, err := NewConsumerEngine(js, cfg.Stream, cfg.Edge, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := token.NewWithPEM("web-test-secret-0123456789abcdefghij")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Edge: cfg.Edge, Engine: eng, Tokens: v})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Register(mux)
	return mux
}

func get(mux http.Handler, method, path string, h http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	for k, v := range h {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	return w
}

// TestWebClientScript: GET /v1/herald.js serves the embedded module as
// JavaScript with a strong ETag, a cache lifetime and CORS for pages of
// other origins; a conditional GET with the ETag is 304 without a body.
func TestWebClientScript(t *testing.T) {
	mux := webMux(t, true)
	want, err := web.Files.ReadFile("herald.js")
	if err != nil {
		t.Fatal(err)
	}
	w := get(mux, "GET", "/v1/herald.js", nil)
	if w.Code != http.StatusOK || w.Body.String() != string(want) {
		t.Fatalf("GET /v1/herald.js = %d, %d bytes; want 200 and the %d embedded bytes", w.Code, w.Body.Len(), len(want))
	}
	h := w.Header()
	etag := h.Get("ETag")
	for name, ok := range map[string]bool{
		"Content-Type":                h.Get("Content-Type") == "text/javascript; charset=utf-8",
		"ETag":                        regexp.MustCompile(`^"[A-Za-z0-9_-]{16,}"$`).MatchString(etag),
		"Cache-Control":               h.Get("Cache-Control") == "public, max-age=300",
		"Access-Control-Allow-Origin": h.Get("Access-Control-Allow-Origin") == "*",
		"X-Content-Type-Options":      h.Get("X-Content-Type-Options") == "nosniff",
	} {
		if !ok {
			t.Errorf("%s = %q", name, h.Get(name))
		}
	}
	if !strings.Contains(string(want), "export function connect(") {
		t.Error("herald.js does not export connect")
	}

	w = get(mux, "GET", "/v1/herald.js", http.Header{"If-None-Match": {etag}})
	if w.Code != http.StatusNotModified || w.Body.Len() != 0 {
		t.Errorf("conditional GET = %d with %d bytes, want 304 and none", w.Code, w.Body.Len())
	}
	w = get(mux, "GET", "/v1/herald.js", http.Header{"If-None-Match": {`"stale"`}})
	if w.Code != http.StatusOK {
		t.Errorf("GET with a stale ETag = %d, want 200", w.Code)
	}
	if w := get(mux, "HEAD", "/v1/herald.js", nil); w.Code != http.StatusOK || w.Body.Len() != 0 || w.Header().Get("ETag") != etag {
		t.Errorf("HEAD = %d, %d bytes, ETag %q", w.Code, w.Body.Len(), w.Header().Get("ETag"))
	}
	if w := get(mux, "GET", "/v1/herald.d.ts", nil); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "export declare function connect(") {
		t.Errorf("GET /v1/herald.d.ts = %d", w.Code)
	}
}

// TestWebConsole: GET / serves the console page with a
// Content-Security-Policy that allows only the edge's own scripts, styles
// and connections; the page has no inline script, style or event handler,
// and every file it references, and every module console.js imports, is
// served.
func TestWebConsole(t *testing.T) {
	mux := webMux(t, true)
	w := get(mux, "GET", "/", nil)
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET / = %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	csp := w.Header().Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want+";") && !strings.HasSuffix(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") || strings.Contains(csp, "http") {
		t.Errorf("CSP %q allows inline code or another origin", csp)
	}
	if w.Header().Get("ETag") == "" || w.Header().Get("Cache-Control") != "no-cache" {
		t.Errorf("ETag %q, Cache-Control %q", w.Header().Get("ETag"), w.Header().Get("Cache-Control"))
	}

	page := w.Body.String()
	scripts := regexp.MustCompile(`(?s)<script([^>]*)>(.*?)</script>`).FindAllStringSubmatch(page, -1)
	if len(scripts) == 0 {
		t.Fatal("the page loads no script")
	}
	for _, s := range scripts {
		if !strings.Contains(s[1], `src="`) || strings.TrimSpace(s[2]) != "" {
			t.Errorf("inline script: %s", s[0])
		}
	}
	if m := regexp.MustCompile(`(?i)\s(on[a-z]+|style)=`).FindString(page); m != "" || strings.Contains(page, "<style") {
		t.Errorf("inline handler or style in the page: %q", m)
	}

	base, _ := url.Parse("http://edge.example/")
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page, -1)
	for _, js := range []string{"/v1/console/console.js"} {
		body := get(mux, "GET", js, nil).Body.String()
		for _, m := range regexp.MustCompile(`(?m)^import .* from "([^"]+)";`).FindAllStringSubmatch(body, -1) {
			u, _ := url.Parse("http://edge.example" + js)
			refs = append(refs, []string{"", u.ResolveReference(&url.URL{Path: m[1]}).Path})
		}
	}
	if len(refs) < 3 {
		t.Fatalf("found only %d references in the page and its script", len(refs))
	}
	for _, ref := range refs {
		u, err := base.Parse(ref[1])
		if err != nil {
			t.Fatal(err)
		}
		if u.Scheme == "data" {
			continue
		}
		if u.Host != base.Host {
			t.Errorf("%s is not on the edge", ref[1])
			continue
		}
		if w := get(mux, "GET", u.Path, nil); w.Code != http.StatusOK {
			t.Errorf("GET %s (referenced as %s) = %d", u.Path, ref[1], w.Code)
		}
	}

	// Only the root is the console: any other unmatched path is not.
	if w := get(mux, "GET", "/alice", nil); w.Code != http.StatusNotFound {
		t.Errorf("GET /alice = %d, want 404", w.Code)
	}
}

// TestWebConsoleOff: with edge.console false the console's paths are not
// served and the client still is.
func TestWebConsoleOff(t *testing.T) {
	mux := webMux(t, false)
	for _, path := range []string{"/", "/v1/console/console.js", "/v1/console/console.css"} {
		if w := get(mux, "GET", path, nil); w.Code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, w.Code)
		}
	}
	if w := get(mux, "GET", "/v1/herald.js", nil); w.Code != http.StatusOK {
		t.Errorf("GET /v1/herald.js = %d, want 200", w.Code)
	}
}
