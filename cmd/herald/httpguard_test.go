package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-push/herald/edge/token"
)

const (
	guardKey    = "guard-producer-key-0123456789ab"
	guardSecret = "guard-jwt-secret-0123456789abcdef0123"
	// guardBodyTimeout and guardIdleTimeout are short so that the tests
	// see them act; clientWait is how long a client waits for an answer
	// the server must give well within it.
	guardBodyTimeout = 300 * time.Millisecond
	guardIdleTimeout = 300 * time.Millisecond
	clientWait       = 10 * time.Second
)

// guardServe starts serve with short body and idle timeouts, 4 KiB of
// headers and an admin listener; it returns the process and the admin
// base URL.
func guardServe(t *testing.T) (*proc, string) {
	t.Helper()
	env := []string{"HERALD_PRODUCER_KEYS=" + guardKey, "HERALD_JWT_SECRET=" + guardSecret}
	p := startCmd(t, env, "serve", "--data-dir", filepath.Join(t.TempDir(), "data"), "--listen", "127.0.0.1:0", "--nats-listen", "off",
		"--admin-listen", "127.0.0.1:0",
		"--set", "http.body_timeout="+guardBodyTimeout.String(),
		"--set", "http.idle_timeout="+guardIdleTimeout.String(),
		"--set", "http.max_header_bytes=4096")
	var am []string
	waitFor(t, 10*time.Second, func() error {
		if am = adminRe.FindStringSubmatch(p.stderr.String()); am == nil {
			return errors.New("no admin address in the log yet")
		}
		return nil
	})
	return p, "http://" + am[1]
}

// rawAnswer is a response read off a raw connection.
type rawAnswer struct {
	status int
	header http.Header
	body   string
	closed bool // the server closed the connection after the answer
}

// rawRequest writes req (a whole HTTP/1.1 request head, and whatever part
// of a body the test sends) on a new connection to addr and reads the
// answer, failing if none comes within clientWait.
func rawRequest(t *testing.T, addr, req string) rawAnswer {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(clientWait))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer to %q: %v", strings.SplitN(req, "\r\n", 2)[0], err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("answer body: %v", err)
	}
	_, err = br.ReadByte()
	return rawAnswer{status: resp.StatusCode, header: resp.Header, body: string(b), closed: errors.Is(err, io.EOF)}
}

// checkJSONError fails unless a is a JSON error with status and code.
func checkJSONError(t *testing.T, status int, ct, body string, wantStatus int, wantCode string) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("status %d %s, want %d", status, body, wantStatus)
	}
	if ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code != wantCode || e.Error.Message == "" {
		t.Errorf("body %q, want a JSON error %s", body, wantCode)
	}
}

// TestBodyDeadlineBeforeAuth: a request whose body never arrives, on any
// path and without credentials, is answered and its connection closed
// once http.body_timeout has passed; an authenticated body that stops
// half-way is cut off the same way. Streams opened before are not cut.
func TestBodyDeadlineBeforeAuth(t *testing.T) {
	checkNoLeaks(t)
	p, _ := guardServe(t)

	// A WebSocket and an SSE stream opened first outlive the deadlines.
	tok := mustMintWith(t, guardSecret, "alice", "")
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+p.addr+"/v1/ws?device=phone&since=0", http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	readType(t, ws, "welcome")
	req, err := http.NewRequest("GET", p.url("/v1/sse?device=tablet&since=0"), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	sse, err := http.DefaultClient.Do(req)
	if err != nil || sse.StatusCode != 200 {
		t.Fatalf("SSE: %v %v", sse, err)
	}
	defer sse.Body.Close()
	sseLines := bufio.NewReader(sse.Body)

	for _, tc := range []struct {
		name, head string
		status     int
		code       string
	}{
		{"publish without a key", "POST /v1/users/a/messages HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\n", 401, "unauthorized"},
		{"batch without a key", "POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{", 401, "unauthorized"},
		{"ack without a token", "POST /v1/ack HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n", 401, "unauthorized"},
		{"chunked to an unknown path", "POST /v1/nope HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 404, "not_found"},
		{"publish with a key, body stops half-way", "POST /v1/users/a/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + guardKey + "\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nhalf a bo", 400, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := rawRequest(t, p.addr, tc.head)
			checkJSONError(t, a.status, a.header.Get("Content-Type"), a.body, tc.status, tc.code)
			if !a.closed {
				t.Error("the connection stayed open after a body that never came")
			}
		})
	}

	// The streams are still up: a message published now reaches both.
	if code, body := httpDo(t, "POST", p.url("/v1/users/alice/messages"), map[string]string{"Authorization": "Bearer " + guardKey, "Content-Type": "text/plain"}, "after the deadlines"); code != 201 {
		t.Fatalf("publish: %d %s", code, body)
	}
	if f := readType(t, ws, "message"); f["body"] != "after the deadlines" {
		t.Errorf("WebSocket got %v", f)
	}
	found := make(chan error, 1)
	go func() {
		for {
			line, err := sseLines.ReadString('\n')
			if err != nil {
				found <- err
				return
			}
			if strings.HasPrefix(line, "data:") && strings.Contains(line, "after the deadlines") {
				found <- nil
				return
			}
		}
	}()
	select {
	case err := <-found:
		if err != nil {
			t.Errorf("SSE stream ended: %v", err)
		}
	case <-time.After(clientWait):
		t.Error("the SSE stream did not deliver the message")
	}
	sse.Body.Close()
}

// TestIdleKeepAliveClosed: a keep-alive connection idle after its answer
// is closed after http.idle_timeout.
func TestIdleKeepAliveClosed(t *testing.T) {
	checkNoLeaks(t)
	p, _ := guardServe(t)
	conn, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(clientWait))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Close {
		t.Fatalf("healthz: %d, close %v", resp.StatusCode, resp.Close)
	}
	start := time.Now()
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("idle keep-alive connection: %v after %v, want closed by the server", err, time.Since(start))
	}
}

// TestHeaderLimitJSON: a request line and headers over
// http.max_header_bytes get a JSON 431 on the API and admin listeners, up
// to the backstop where net/http answers itself; a request within the
// limit is served.
func TestHeaderLimitJSON(t *testing.T) {
	checkNoLeaks(t)
	p, admin := guardServe(t)
	adminAddr := strings.TrimPrefix(admin, "http://")
	for _, tc := range []struct {
		name, addr, path string
		junk             int
		status           int
	}{
		{"within the limit", p.addr, "/healthz", 3000, 200},
		{"over the limit", p.addr, "/healthz", 5000, 431},
		{"over the limit, body unread", p.addr, "/v1/users/a/messages", 12000, 431},
		{"admin over the limit", adminAddr, "/metrics", 5000, 431},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			head := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: x\r\nX-Junk: %s\r\n\r\n", tc.path, strings.Repeat("j", tc.junk))
			if strings.Contains(tc.path, "messages") {
				head = fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nX-Junk: %s\r\n\r\n", tc.path, strings.Repeat("j", tc.junk))
			}
			a := rawRequest(t, tc.addr, head)
			if tc.status == 200 {
				if a.status != 200 {
					t.Fatalf("status %d %s", a.status, a.body)
				}
				return
			}
			checkJSONError(t, a.status, a.header.Get("Content-Type"), a.body, tc.status, "too_large")
			if !a.closed {
				t.Error("connection kept open after a 431")
			}
		})
	}
}

// TestNoRedirectOnAPIPaths: a path the router would clean ("..", ".",
// "//") is a JSON 404, never a redirect, and reaches no other user.
func TestNoRedirectOnAPIPaths(t *testing.T) {
	checkNoLeaks(t)
	p, _ := guardServe(t)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	auth := map[string]string{"Authorization": "Bearer " + guardKey, "Content-Type": "text/plain"}
	for _, tc := range []struct{ method, path string }{
		{"GET", "/v1/users/alice/../bob/messages"},
		{"POST", "/v1/users/alice/../bob/messages"},
		{"GET", "/v1/users/alice/./messages"},
		{"GET", "//v1/users/bob/messages"},
		{"GET", "/v1//users/bob/messages"},
		{"GET", "/v1/../healthz"},
		{"POST", "/v1/ack/.."},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequest(tc.method, "http://"+p.addr+tc.path, strings.NewReader("x"))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range auth {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if loc := resp.Header.Get("Location"); loc != "" {
				t.Errorf("redirect to %s", loc)
			}
			checkJSONError(t, resp.StatusCode, resp.Header.Get("Content-Type"), string(b), 404, "not_found")
		})
	}
	t.Cleanup(func() {
		if h := history(t, p, guardKey, "bob"); len(h.Messages) != 0 {
			t.Errorf("bob has %d messages: a non-canonical path reached him", len(h.Messages))
		}
	})
}

// TestAdminCmdlineNotServed: the admin listener does not serve the
// command line, which can hold secrets given with --set.
func TestAdminCmdlineNotServed(t *testing.T) {
	checkNoLeaks(t)
	_, admin := guardServe(t)
	resp, err := http.Get(admin + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	checkJSONError(t, resp.StatusCode, resp.Header.Get("Content-Type"), string(b), 404, "not_found")
	if code, _ := httpDo(t, "GET", admin+"/debug/pprof/goroutine?debug=1", nil, ""); code != 200 {
		t.Errorf("admin goroutine profile = %d, want the rest of pprof served", code)
	}
}

func mustMintWith(t *testing.T, secret, user, device string) string {
	t.Helper()
	tok, err := token.Mint(secret, user, device, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
