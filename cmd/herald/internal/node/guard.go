package node

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/config"
)

// headerBackstop is the factor between http.max_header_bytes and the
// limit net/http enforces itself. Requests up to http.max_header_bytes are
// served, larger ones up to the backstop get guardHTTP's JSON 431, and only
// beyond it does net/http answer with its own plain-text 431 (it does so
// before any handler runs).
const headerBackstop = 4

// newHTTPServer returns the http.Server of a listener: read header, idle
// and header-size limits from http.*, handler wrapped in guardHTTP.
func newHTTPServer(c config.HTTP, h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           guardHTTP(h, c, log),
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		// Keep-alive connections idle between requests are closed; a
		// WebSocket (hijacked) or an SSE stream (in a request) is not idle.
		IdleTimeout:    c.IdleTimeout,
		MaxHeaderBytes: headerBackstop * c.MaxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// guardHTTP runs before routing and authentication, on every path:
//
//   - a request line and headers over http.max_header_bytes are 431
//     too_large (JSON), and the connection is closed without reading a
//     body;
//   - a request with a body must send it within http.body_timeout of the
//     handler's start, or the connection's read fails and is closed. The
//     deadline is lifted once the body is read to its end, so it never
//     applies to writing the response. A request without a body (every
//     WebSocket handshake and SSE stream) gets no read deadline: nothing
//     is read from it but net/http's watch for the client going away,
//     which must not time out.
func guardHTTP(next http.Handler, c config.HTTP, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n := headerBytes(r); n > c.MaxHeaderBytes {
			// The body, if any, is not read: close the connection right
			// after the answer rather than drain it.
			w.Header().Set("Connection", "close")
			if r.ContentLength != 0 {
				_ = http.NewResponseController(w).SetReadDeadline(time.Now())
			}
			herald.WriteError(w, log, &herald.Error{
				Code:    herald.TooLarge,
				Status:  http.StatusRequestHeaderFieldsTooLarge,
				Message: fmt.Sprintf("request line and headers exceed %d bytes (http.max_header_bytes)", c.MaxHeaderBytes),
			})
			return
		}
		if r.ContentLength != 0 { // -1: chunked, length unknown
			rc := http.NewResponseController(w)
			// A writer without a connection (a test recorder) has no
			// deadlines: nothing to bound then.
			if err := rc.SetReadDeadline(time.Now().Add(c.BodyTimeout)); err == nil {
				// A shallow copy, as http.StripPrefix makes: net/http keeps
				// the original to drain or close the body after the handler.
				r2 := new(http.Request)
				*r2 = *r
				r2.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
				r = r2
			}
		}
		next.ServeHTTP(w, r)
	})
}

// headerBytes is the size of the request line and headers as sent, up to
// whitespace around the values.
func headerBytes(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + len("  \r\n")
	n += len("Host: \r\n") + len(r.Host)
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(": \r\n") + len(v)
		}
	}
	return n
}

// deadlineBody lifts the connection's read deadline once the body has been
// read to its end. Only the handler's goroutine reads it.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// canonicalPath reports whether the mux would serve r's path as it is,
// rather than redirect to a cleaned form (no "." or ".." segments, no
// "//"). CONNECT requests are not cleaned by the mux.
func canonicalPath(r *http.Request) bool {
	if r.Method == http.MethodConnect {
		return true
	}
	p := r.URL.EscapedPath()
	if p == "" || p[0] != '/' {
		return false
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	return clean == p
}
