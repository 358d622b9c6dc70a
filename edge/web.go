package edge

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"time"

	"github.com/herald-push/herald/edge/web"
)

// The browser side of the edge (SPEC §11), from the files embedded in
// package edge/web:
//
//	GET /v1/herald.js            the JavaScript client (an ES module)
//	GET /v1/herald.d.ts          its TypeScript types
//	GET /                        the console, unless edge.console is false
//	GET /v1/console/{file}       the console's script and style
//
// Each answer has a strong ETag (a hash of the file, so a conditional GET
// gets 304) and a Cache-Control. The client may be cached for a few minutes
// and is readable from any origin (a module script from another origin is
// fetched with CORS; it holds no secret). The console is revalidated on
// every load, and its page carries a Content-Security-Policy that allows
// scripts, styles and connections from the edge's own origin only: no
// inline script, nothing from a CDN.

// consoleCSP is the console page's Content-Security-Policy. connect-src
// 'self' covers the same host's ws: and wss: URLs (CSP Level 3).
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// webFile is one embedded file as served.
type webFile struct {
	name  string
	body  []byte
	ctype string
	etag  string
	cache string
	cors  bool // readable from any origin
	page  bool // the console page: security headers
}

// webFiles are the served files by URL path.
type webFiles map[string]*webFile

// newWebFiles reads the embedded files and hashes each once. The console's
// paths are left out when console is false.
func newWebFiles(console bool) (webFiles, error) {
	type spec struct {
		path, name, ctype, cache string
		cors, page, console      bool
	}
	const (
		cacheClient  = "public, max-age=300"
		cacheConsole = "no-cache"
	)
	files := webFiles{}
	for _, sp := range []spec{
		{path: "/v1/herald.js", name: "herald.js", ctype: "text/javascript; charset=utf-8", cache: cacheClient, cors: true},
		{path: "/v1/herald.d.ts", name: "herald.d.ts", ctype: "text/plain; charset=utf-8", cache: cacheClient, cors: true},
		{path: "/", name: "index.html", ctype: "text/html; charset=utf-8", cache: cacheConsole, page: true, console: true},
		{path: "/v1/console/console.js", name: "console.js", ctype: "text/javascript; charset=utf-8", cache: cacheConsole, console: true},
		{path: "/v1/console/console.css", name: "console.css", ctype: "text/css; charset=utf-8", cache: cacheConsole, console: true},
	} {
		if sp.console && !console {
			continue
		}
		b, err := web.Files.ReadFile(sp.name)
		if err != nil {
			return nil, fmt.Errorf("edge: web file %s: %w", sp.name, err)
		}
		sum := sha256.Sum256(b)
		files[sp.path] = &webFile{
			name:  sp.name,
			body:  b,
			ctype: sp.ctype,
			etag:  `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`,
			cache: sp.cache,
			cors:  sp.cors,
			page:  sp.page,
		}
	}
	return files, nil
}

// register adds a route for each file to mux.
func (f webFiles) register(mux *http.ServeMux) {
	for path, file := range f {
		pattern := "GET " + path
		if path == "/" {
			pattern = "GET /{$}" // only the root, not every unmatched path
		}
		mux.Handle(pattern, file)
	}
}

// ServeHTTP answers GET and HEAD, with 304 for a matching If-None-Match.
func (f *webFile) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("ETag", f.etag)
	h.Set("Cache-Control", f.cache)
	h.Set("X-Content-Type-Options", "nosniff")
	if f.cors {
		h.Set("Access-Control-Allow-Origin", "*")
	}
	if f.page {
		h.Set("Content-Security-Policy", consoleCSP)
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
	}
	http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(f.body))
}
