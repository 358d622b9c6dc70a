package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald/cmd/herald/internal/creds"
	"github.com/herald-push/herald/edge/token"
)

const (
	hostileKey   = "hostile-producer-key-0123456789"
	hostileKey2  = "hostile-producer-key-second-abc"
	hostileJWT   = "hostile-jwt-secret-0123456789abcdef"
	hostileBatch = 5
)

// hostileServe starts serve with every limit tight enough to test: two
// producer keys, a producer rate limit, a per-IP connect rate, an origin
// allow-list, small header and batch limits and a short read header
// timeout. It returns the process and a JetStream handle on its embedded
// NATS server.
func hostileServe(t *testing.T, extra ...string) (*proc, jetstream.Stream) {
	t.Helper()
	env := []string{"HERALD_PRODUCER_KEYS=" + hostileKey + "," + hostileKey2, "HERALD_JWT_SECRET=" + hostileJWT}
	dir := filepath.Join(t.TempDir(), "data")
	args := []string{"serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0",
		"--set", "ingest.rate_limit=1", "--set", "ingest.rate_burst=200",
		"--set", "edge.ip_connect_rate=1", "--set", "edge.ip_connect_burst=200",
		"--set", "edge.allowed_origins=https://app.example.com",
		"--set", "ingest.max_batch=" + strconv.Itoa(hostileBatch),
		"--set", "http.max_header_bytes=4096",
		"--set", "http.read_header_timeout=1s",
	}
	p := startCmd(t, env, append(args, extra...)...)
	m := natsRe.FindStringSubmatch(p.stdout.String())
	if m == nil {
		t.Fatalf("no NATS URL in:\n%s", p.stdout.String())
	}
	cr, err := creds.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(m[1], nats.UserInfo(creds.ServiceUser, cr.NATSPassword))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, "HERALD")
	if err != nil {
		t.Fatal(err)
	}
	return p, s
}

func streamMsgs(t *testing.T, s jetstream.Stream) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func signHS(t *testing.T, method jwt.SigningMethod, claims jwt.MapClaims, secret string) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// hostileReq is one malformed or hostile HTTP request and the documented
// answer: status and (for JSON errors) code.
type hostileReq struct {
	name   string
	method string
	path   string
	header map[string]string
	body   string
	ws     bool // a WebSocket upgrade (Connection/Upgrade/Sec-WebSocket-* headers added)
	status int
	code   string // "" when the answer is not a JSON error
}

// TestHostileRequests sends malformed and hostile requests to ingest and
// edge: each gets its documented status and error code, nothing is stored,
// and the server stays up.
func TestHostileRequests(t *testing.T) {
	checkNoLeaks(t)
	p, stream := hostileServe(t)
	base := "http://" + p.addr
	auth := "Bearer " + hostileKey
	jsonH := map[string]string{"Authorization": auth, "Content-Type": "application/json"}
	exp := time.Now().Add(time.Hour).Unix()
	good := mustMint(t, "alice", "")
	bobTok := mustMint(t, "bob", "")
	algNone := "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSIsImV4cCI6OTk5OTk5OTk5OX0."
	with := func(h map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range h {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(out, kv[i])
				continue
			}
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	msgs := func(n int) string {
		items := make([]string, n)
		for i := range items {
			items[i] = `{"user":"alice","body":"x"}`
		}
		return `{"messages":[` + strings.Join(items, ",") + `]}`
	}
	wsH := func(tok string) map[string]string {
		if tok == "" {
			return map[string]string{}
		}
		return map[string]string{"Authorization": "Bearer " + tok}
	}
	alice := "/v1/users/alice/messages"
	cases := []hostileReq{
		// Ingest: bodies.
		{name: "bad JSON", method: "POST", path: alice, header: jsonH, body: `{"body":`, status: 400, code: "invalid_json"},
		{name: "JSON not an object", method: "POST", path: alice, header: jsonH, body: `["body"]`, status: 400, code: "invalid_message"},
		{name: "wrong type", method: "POST", path: alice, header: jsonH, body: `{"title":5}`, status: 400, code: "invalid_message"},
		{name: "priority out of range", method: "POST", path: alice, header: jsonH, body: `{"body":"x","priority":11}`, status: 400, code: "invalid_message"},
		{name: "negative priority", method: "POST", path: alice, header: jsonH, body: `{"body":"x","priority":-1}`, status: 400, code: "invalid_message"},
		{name: "empty message", method: "POST", path: alice, header: jsonH, body: `{}`, status: 400, code: "invalid_message"},
		{name: "data not an object", method: "POST", path: alice, header: jsonH, body: `{"data":[1,2]}`, status: 400, code: "invalid_message"},
		{name: "too many tags", method: "POST", path: alice, header: jsonH, body: `{"body":"x","tags":[` + strings.TrimSuffix(strings.Repeat(`"t",`, 33), ",") + `]}`, status: 400, code: "invalid_message"},
		{name: "user in body differs", method: "POST", path: alice, header: jsonH, body: `{"user":"bob","body":"x"}`, status: 400, code: "invalid_message"},
		{name: "bad idempotency key", method: "POST", path: alice, header: with(jsonH, "Idempotency-Key", "has space"), body: `{"body":"x"}`, status: 400, code: "invalid_message"},
		{name: "text not UTF-8", method: "POST", path: alice, header: with(jsonH, "Content-Type", "text/plain"), body: "\xff\xfe", status: 400, code: "invalid_message"},
		{name: "message over max_message_bytes", method: "POST", path: alice, header: with(jsonH, "Content-Type", "text/plain"), body: strings.Repeat("a", 65<<10), status: 413, code: "too_large"},
		{name: "huge body", method: "POST", path: alice, header: jsonH, body: `{"body":"` + strings.Repeat("a", 1<<20) + `"}`, status: 413, code: "too_large"},
		{name: "form with a bad priority", method: "POST", path: alice, header: with(jsonH, "Content-Type", "application/x-www-form-urlencoded"), body: "body=x&priority=high", status: 400, code: "invalid_message"},
		{name: "multipart form", method: "POST", path: alice, header: with(jsonH, "Content-Type", "multipart/form-data; boundary=x"), body: "--x--", status: 415, code: "unsupported_media_type"},
		// Ingest: users and auth.
		{name: "user with a control character", method: "POST", path: "/v1/users/a%00b/messages", header: jsonH, body: `{"body":"x"}`, status: 400, code: "invalid_user"},
		{name: "user over 256 bytes", method: "POST", path: "/v1/users/" + strings.Repeat("u", 257) + "/messages", header: jsonH, body: `{"body":"x"}`, status: 400, code: "invalid_user"},
		{name: "user not UTF-8", method: "POST", path: "/v1/users/%ff/messages", header: jsonH, body: `{"body":"x"}`, status: 400, code: "invalid_user"},
		{name: "no key", method: "POST", path: alice, header: with(jsonH, "Authorization", ""), body: `{"body":"x"}`, status: 401, code: "unauthorized"},
		{name: "unknown key", method: "POST", path: alice, header: with(jsonH, "Authorization", "Bearer not-a-producer-key-000000"), body: `{"body":"x"}`, status: 401, code: "unauthorized"},
		{name: "basic auth", method: "POST", path: alice, header: with(jsonH, "Authorization", "Basic "+hostileKey), body: `{"body":"x"}`, status: 401, code: "unauthorized"},
		{name: "client token as producer key", method: "POST", path: alice, header: with(jsonH, "Authorization", "Bearer "+good), body: `{"body":"x"}`, status: 401, code: "unauthorized"},
		// Ingest: batch.
		{name: "batch not an object", method: "POST", path: "/v1/messages", header: jsonH, body: `[1]`, status: 400, code: "invalid_message"},
		{name: "batch without messages", method: "POST", path: "/v1/messages", header: jsonH, body: `{}`, status: 400, code: "invalid_request"},
		{name: "batch over max_batch", method: "POST", path: "/v1/messages", header: jsonH, body: msgs(hostileBatch + 1), status: 413, code: "too_large"},
		{name: "batch with Idempotency-Key", method: "POST", path: "/v1/messages", header: with(jsonH, "Idempotency-Key", "k1"), body: msgs(1), status: 400, code: "invalid_request"},
		// Ingest: history.
		{name: "history negative since", method: "GET", path: alice + "?since=-1", header: jsonH, status: 400, code: "invalid_request"},
		{name: "history since not a number", method: "GET", path: alice + "?since=1e3", header: jsonH, status: 400, code: "invalid_request"},
		{name: "history limit 0", method: "GET", path: alice + "?limit=0", header: jsonH, status: 400, code: "invalid_request"},
		{name: "history limit over 1000", method: "GET", path: alice + "?limit=1001", header: jsonH, status: 400, code: "invalid_request"},
		{name: "history malformed query", method: "GET", path: alice + "?since=%zz", header: jsonH, status: 400, code: "invalid_request"},
		{name: "history with another user's token", method: "GET", path: alice, header: map[string]string{"Authorization": "Bearer " + bobTok}, status: 403, code: "forbidden"},
		{name: "history with an alg none token", method: "GET", path: alice + "?token=" + algNone, status: 401, code: "unauthorized"},
		// Routing.
		{name: "wrong method", method: "DELETE", path: alice, header: jsonH, status: 405, code: "method_not_allowed"},
		{name: "PUT on the batch endpoint", method: "PUT", path: "/v1/messages", header: jsonH, body: msgs(1), status: 405, code: "method_not_allowed"},
		{name: "unknown path", method: "GET", path: "/v1/admin", header: jsonH, status: 404, code: "not_found"},
		{name: "path traversal", method: "GET", path: "/v1/users/../../etc/passwd", header: jsonH, status: 404, code: "not_found"},
		{name: "oversized headers", method: "POST", path: alice, header: with(jsonH, "X-Junk", strings.Repeat("j", 16<<10)), body: `{"body":"x"}`, status: 431, code: "too_large"},
		// Edge, before the upgrade.
		{name: "ws without token", method: "GET", path: "/v1/ws?device=phone", header: wsH(""), ws: true, status: 401, code: "unauthorized"},
		{name: "ws alg none token", method: "GET", path: "/v1/ws?device=phone", header: wsH(algNone), ws: true, status: 401, code: "unauthorized"},
		{name: "ws HS512 token", method: "GET", path: "/v1/ws?device=phone", header: wsH(signHS(t, jwt.SigningMethodHS512, jwt.MapClaims{"sub": "alice", "exp": exp}, hostileJWT)), ws: true, status: 401, code: "unauthorized"},
		{name: "ws token with a bad signature", method: "GET", path: "/v1/ws?device=phone", header: wsH(signHS(t, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "exp": exp}, "another-secret-0123456789abcdef")), ws: true, status: 401, code: "unauthorized"},
		{name: "ws expired token", method: "GET", path: "/v1/ws?device=phone", header: wsH(signHS(t, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(-time.Hour).Unix()}, hostileJWT)), ws: true, status: 401, code: "unauthorized"},
		{name: "ws token for another audience", method: "GET", path: "/v1/ws?device=phone", header: wsH(signHS(t, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "exp": exp, "aud": "other"}, hostileJWT)), ws: true, status: 401, code: "unauthorized"},
		{name: "ws token bound to another device", method: "GET", path: "/v1/ws?device=phone", header: wsH(mustMint(t, "alice", "tablet")), ws: true, status: 401, code: "unauthorized"},
		{name: "ws garbage token in the query", method: "GET", path: "/v1/ws?device=phone&token=garbage", ws: true, status: 401, code: "unauthorized"},
		{name: "ws bad device id", method: "GET", path: "/v1/ws?device=" + url.QueryEscape("my phone"), header: wsH(good), ws: true, status: 400, code: "invalid_device"},
		{name: "ws device over 128 chars", method: "GET", path: "/v1/ws?device=" + strings.Repeat("d", 129), header: wsH(good), ws: true, status: 400, code: "invalid_device"},
		{name: "ws negative since", method: "GET", path: "/v1/ws?device=phone&since=-1", header: wsH(good), ws: true, status: 400, code: "invalid_request"},
		{name: "ws since over uint64", method: "GET", path: "/v1/ws?device=phone&since=18446744073709551616", header: wsH(good), ws: true, status: 400, code: "invalid_request"},
		{name: "ws not an upgrade", method: "GET", path: "/v1/ws?device=phone", header: wsH(good), status: 400, code: "invalid_request"},
		{name: "ws foreign origin", method: "GET", path: "/v1/ws?device=phone", header: with(wsH(good), "Origin", "https://evil.example.com"), ws: true, status: 403, code: "forbidden"},
		{name: "ws POST", method: "POST", path: "/v1/ws?device=phone", header: wsH(good), status: 405, code: "method_not_allowed"},
	}
	if len(cases) < 30 {
		t.Fatalf("only %d cases", len(cases))
	}
	before := streamMsgs(t, stream)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, hdr, body := hostileDo(t, base, tc)
			if status != tc.status {
				t.Fatalf("status %d %s, want %d", status, body, tc.status)
			}
			if tc.code == "" {
				return
			}
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code != tc.code || e.Error.Message == "" {
				t.Fatalf("body %q, want a JSON error %s", body, tc.code)
			}
			if ct := hdr.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}

	// A batch of invalid items: 200 with each item's error, nothing stored.
	code, body := httpDo(t, "POST", base+"/v1/messages", jsonH, `{"messages":[{"user":"","body":"x"},{"user":"alice"},{"user":"alice","body":"x","priority":"high"},7]}`)
	var br struct {
		Results []struct {
			Seq   uint64 `json:"seq"`
			Error *struct {
				Code string `json:"code"`
			} `json:"error"`
		} `json:"results"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &br) != nil || len(br.Results) != 4 {
		t.Fatalf("invalid batch: %d %s", code, body)
	}
	for i, want := range []string{"invalid_user", "invalid_message", "invalid_message", "invalid_message"} {
		if r := br.Results[i]; r.Error == nil || r.Error.Code != want || r.Seq != 0 {
			t.Errorf("batch item %d = %+v, want %s", i, r, want)
		}
	}

	// Slowloris: a request whose headers never end is cut off by the read
	// header timeout.
	conn, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, "POST /v1/messages HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	if _, err := conn.Read(make([]byte, 1)); err == nil || time.Since(start) > 8*time.Second {
		t.Errorf("a slow header was not cut off: %v after %v", err, time.Since(start))
	}
	conn.Close()

	// Junk on an open WebSocket: error frames, the connection stays up; a
	// frame over 4 KiB closes it with 1009.
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+p.addr+"/v1/ws?device=phone&since=0", http.Header{"Authorization": {"Bearer " + good}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	readType(t, ws, "welcome")
	for _, junk := range []string{"junk", `{"type":"ack"}`, `{"type":"ack","seq":-1}`, `{"type":"ack","seq":"1"}`, `{"type":"subscribe","user":"bob"}`, "\x00\xff", `{"type":"ack","seq":1e400}`} {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(junk)); err != nil {
			t.Fatal(err)
		}
		if f := readType(t, ws, "error"); f["code"] != "invalid_frame" {
			t.Errorf("junk %q: %v", junk, f)
		}
	}
	if err := ws.WriteMessage(websocket.BinaryMessage, make([]byte, 5000)); err != nil {
		t.Fatal(err)
	}
	for {
		_, _, err := ws.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
				t.Errorf("after an oversized frame: %v, want close 1009", err)
			}
			break
		}
	}

	// Rate limits, last: the second producer key is over its bucket
	// after its burst; the other key is not affected.
	limited := false
	for i := 0; i < 400 && !limited; i++ {
		status, hdr, body := hostileDo(t, base, hostileReq{method: "POST", path: alice, header: with(jsonH, "Authorization", "Bearer "+hostileKey2), body: `{"body":`})
		switch {
		case status == 429:
			limited = true
			if !strings.Contains(body, `"rate_limited"`) || hdr.Get("Retry-After") == "" {
				t.Errorf("429 %s, Retry-After %q", body, hdr.Get("Retry-After"))
			}
		case status != 400:
			t.Fatalf("status %d %s", status, body)
		}
	}
	if !limited {
		t.Error("the producer rate limit never answered 429")
	}
	limited = false
	for i := 0; i < 400 && !limited; i++ {
		status, hdr, body := hostileDo(t, base, hostileReq{method: "GET", path: "/v1/ws?device=phone", header: wsH("bad"), ws: true})
		switch {
		case status == 429:
			limited = true
			if !strings.Contains(body, `"rate_limited"`) || hdr.Get("Retry-After") == "" {
				t.Errorf("429 %s, Retry-After %q", body, hdr.Get("Retry-After"))
			}
		case status != 401:
			t.Fatalf("status %d %s", status, body)
		}
	}
	if !limited {
		t.Error("the per-IP connect rate never answered 429")
	}

	// Still up, nothing stored.
	if code, body := httpDo(t, "GET", base+"/healthz", nil, ""); code != 200 {
		t.Fatalf("/healthz after the hostile requests: %d %s", code, body)
	}
	if after := streamMsgs(t, stream); after != before {
		t.Errorf("stream holds %d messages, had %d: a hostile request stored something", after, before)
	}
	// The first key still publishes.
	if code, body := httpDo(t, "POST", base+alice, jsonH, `{"body":"fine"}`); code != 201 {
		t.Errorf("a good publish after the hostile requests: %d %s", code, body)
	}
}

func mustMint(t *testing.T, user, device string) string {
	t.Helper()
	tok, err := token.Mint(hostileJWT, user, device, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// hostileDo sends one request over a fresh connection (an oversized
// request may leave a connection unusable) and returns status, headers and
// body.
func hostileDo(t *testing.T, base string, tc hostileReq) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range tc.header {
		req.Header.Set(k, v)
	}
	if tc.ws {
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	}
	req.Close = true
	client := http.DefaultClient
	if len(tc.body) > 64<<10 {
		// A server that refuses a body by its Content-Length answers
		// without reading it and closes the connection; a client still
		// writing the body can then see a reset instead of the answer.
		// Expect: 100-continue makes it wait for the answer first, as
		// curl does for large bodies.
		req.Header.Set("Expect", "100-continue")
		client = &http.Client{Transport: &http.Transport{ExpectContinueTimeout: 5 * time.Second}}
		defer client.CloseIdleConnections()
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", tc.method, tc.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(bufio.NewReader(resp.Body))
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// readType reads frames until one of type typ (skipping synced) and
// returns it.
func readType(t *testing.T, ws *websocket.Conn, typ string) map[string]any {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for a %s frame: %v", typ, err)
		}
		var f map[string]any
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatalf("frame %q: %v", b, err)
		}
		if f["type"] == typ {
			return f
		}
		if f["type"] != "synced" {
			t.Fatalf("got %s, want a %s frame", b, typ)
		}
	}
}
