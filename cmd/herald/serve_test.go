package main

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-push/herald/cmd/herald/internal/creds"
	"github.com/herald-push/herald/config"
)

// curlLine is the printed publish line: its headers, body and URL.
type curlLine struct {
	header map[string]string
	body   string
	url    string
}

var (
	curlRe   = regexp.MustCompile(`(?m)^\s*curl -X POST (.*) -d '([^']*)' (http://\S+)$`)
	headerRe = regexp.MustCompile(`-H "([^:"]+): ([^"]*)"`)
	tokenRe  = regexp.MustCompile(`listen --user alice --device laptop(?: --url (\S+))? --token (\S+)`)
	natsRe   = regexp.MustCompile(`NATS  (nats://\S+)`)
	// natsPublishRe is the printed publish --nats line up to --user alice.
	natsPublishRe = regexp.MustCompile(`herald (?:publish --nats --nats-url (\S+) --nats-user producer --nats-password \S+ --user alice)`)
)

func parseCurl(t *testing.T, out string) curlLine {
	t.Helper()
	m := curlRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no curl line in:\n%s", out)
	}
	c := curlLine{header: map[string]string{}, body: m[2], url: m[3]}
	for _, h := range headerRe.FindAllStringSubmatch(m[1], -1) {
		c.header[h[1]] = h[2]
	}
	return c
}

type historyBody struct {
	Messages []struct {
		Seq   uint64 `json:"seq"`
		User  string `json:"user"`
		Title string `json:"title"`
		Body  string `json:"body"`
	} `json:"messages"`
	Next uint64 `json:"next"`
}

func history(t *testing.T, p *proc, key, user string) historyBody {
	t.Helper()
	code, body := httpDo(t, "GET", p.url("/v1/users/"+user+"/messages?since=0"), map[string]string{"Authorization": "Bearer " + key}, "")
	if code != http.StatusOK {
		t.Fatalf("history: %d %s", code, body)
	}
	var h historyBody
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestServeEndToEnd(t *testing.T) {
	checkNoLeaks(t)
	dir := filepath.Join(t.TempDir(), "data")
	args := []string{"serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--log-level", "debug"}
	p := startCmd(t, nil, args...)
	out := p.stdout.String()

	// The printed curl line works as printed.
	c := parseCurl(t, out)
	if !strings.HasPrefix(c.url, "http://"+p.addr+"/") {
		t.Errorf("curl URL %s does not point at %s", c.url, p.addr)
	}
	code, body := httpDo(t, "POST", c.url, c.header, c.body)
	if code != http.StatusCreated {
		t.Fatalf("curl line: %d %s", code, body)
	}
	var pub struct {
		ID  string `json:"id"`
		Seq uint64 `json:"seq"`
	}
	if err := json.Unmarshal([]byte(body), &pub); err != nil || pub.Seq == 0 {
		t.Fatalf("publish answer %s: %v", body, err)
	}
	key := strings.TrimPrefix(c.header["Authorization"], "Bearer ")
	h := history(t, p, key, "alice")
	if len(h.Messages) != 1 || h.Messages[0].Seq != pub.Seq || h.Messages[0].Body != "hello" {
		t.Fatalf("history = %+v, want the one message seq %d", h, pub.Seq)
	}

	// Operations endpoints.
	if code, body := httpDo(t, "GET", p.url("/healthz"), nil, ""); code != 200 || !strings.Contains(body, `"status":"ok"`) {
		t.Errorf("/healthz = %d %s", code, body)
	}
	if code, body := httpDo(t, "GET", p.url("/readyz"), nil, ""); code != 200 {
		t.Errorf("/readyz = %d %s", code, body)
	}
	if code, body := httpDo(t, "GET", p.url("/metrics"), nil, ""); code != 200 || !strings.Contains(body, "herald_ingest_") || !strings.Contains(body, "herald_edge_") || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics = %d, herald_ingest_/herald_edge_/go_ series missing", code)
	}
	if code, body := httpDo(t, "GET", p.url("/nope"), nil, ""); code != 404 || !strings.Contains(body, `"code":"not_found"`) {
		t.Errorf("/nope = %d %s, want JSON 404", code, body)
	}

	// The printed listen token opens the WebSocket as alice's laptop.
	m := tokenRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no listen line in:\n%s", out)
	}
	if want := "ws://" + p.addr; m[1] != want {
		t.Errorf("listen --url %q, want %q", m[1], want)
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+p.addr+"/v1/ws?device=laptop&since=0", http.Header{"Authorization": {"Bearer " + m[2]}})
	if err != nil {
		t.Fatalf("dial with the printed token: %v", err)
	}
	var welcome struct {
		Type string `json:"type"`
		User string `json:"user"`
	}
	if err := ws.ReadJSON(&welcome); err != nil || welcome.Type != "welcome" || welcome.User != "alice" {
		t.Fatalf("first frame = %+v, %v", welcome, err)
	}
	_ = ws.Close()

	// publish over HTTP (key from the data dir) and straight to NATS.
	stdout, _, err := runCmd(t, nil, "publish", "--data-dir", dir, "--url", "http://"+p.addr, "--user", "bob", "--title", "T1", "body one")
	if err != nil || !strings.Contains(stdout, `"seq"`) {
		t.Fatalf("publish: %v %s", err, stdout)
	}
	nm := natsRe.FindStringSubmatch(out)
	if nm == nil {
		t.Fatalf("no NATS URL in:\n%s", out)
	}
	// The printed publish --nats line (the producer user) works as printed.
	pm := natsPublishRe.FindStringSubmatch(out)
	if pm == nil || pm[1] != nm[1] {
		t.Fatalf("no publish --nats line for %s in:\n%s", nm[1], out)
	}
	natsArgs := strings.Fields(pm[0])[1:]
	natsArgs[len(natsArgs)-1] = "bob"
	stdout, _, err = runCmd(t, nil, append(natsArgs, "--id", "k-1", "body two")...)
	if err != nil || !strings.Contains(stdout, `"id":"k-1"`) {
		t.Fatalf("publish --nats: %v %s", err, stdout)
	}
	// Without credentials on the command line: the producer user from
	// the data dir.
	stdout, _, err = runCmd(t, nil, "publish", "--data-dir", dir, "--nats", "--nats-url", nm[1], "--user", "bob", "--id", "k-1", "body two")
	if err != nil || !strings.Contains(stdout, `"duplicate":true`) {
		t.Fatalf("publish --nats duplicate: %v %s", err, stdout)
	}
	hb := history(t, p, key, "bob")
	if len(hb.Messages) != 2 || hb.Messages[0].Title != "T1" || hb.Messages[1].Body != "body two" {
		t.Fatalf("bob's history = %+v", hb)
	}
	stdout, _, err = runCmd(t, nil, "streams", "info", "--data-dir", dir, "--nats-url", nm[1])
	if err != nil || !strings.Contains(stdout, "HERALD") || !regexp.MustCompile(`messages\s+3\b`).MatchString(stdout) {
		t.Fatalf("streams info: %v\n%s", err, stdout)
	}

	// SIGTERM (ctx cancel) returns nil promptly.
	start := time.Now()
	if err := p.stop(15 * time.Second); err != nil {
		t.Fatalf("serve returned %v", err)
	}
	t.Logf("serve stopped in %v", time.Since(start))

	st, err := os.Stat(filepath.Join(dir, creds.File))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("credentials file: %v, mode %v", err, st.Mode())
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("data dir: %v, mode %v", err, st.Mode())
	}

	// A restart on the same data dir, NATS in-process only, reuses the
	// credentials without printing them, names their file, and still has
	// the message.
	p2 := startCmd(t, nil, "serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--nats-listen", "off")
	out2 := p2.stdout.String()
	cr, err := creds.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cr.ProducerKey != key {
		t.Errorf("credentials file key %q, the first start printed %q", cr.ProducerKey, key)
	}
	for name, secret := range map[string]string{"producer key": cr.ProducerKey, "JWT secret": cr.JWTSecret} {
		if strings.Contains(out2, secret) {
			t.Errorf("restart banner prints the %s:\n%s", name, out2)
		}
	}
	if tokenRe.MatchString(out2) {
		t.Errorf("restart banner prints a client token:\n%s", out2)
	}
	if !strings.Contains(out2, "reused from "+filepath.Join(dir, creds.File)) || !strings.Contains(out2, "(redacted)") || !strings.Contains(out2, "in-process only") {
		t.Errorf("restart banner:\n%s", out2)
	}
	h = history(t, p2, key, "alice")
	if len(h.Messages) != 1 || h.Messages[0].Seq != pub.Seq {
		t.Fatalf("history after restart = %+v", h)
	}
	if err := p2.stop(15 * time.Second); err != nil {
		t.Fatalf("second serve returned %v", err)
	}
}

// TestServeDeliversWithEachEngine runs serve with each delivery engine and
// has a device receive, over a real WebSocket, a message published with
// the banner's credentials.
func TestServeDeliversWithEachEngine(t *testing.T) {
	t.Parallel()
	for _, engine := range []string{config.DeliveryLive, config.DeliveryConsumer} {
		t.Run(engine, func(t *testing.T) {
			dir := t.TempDir()
			p := startCmd(t, nil, "serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--nats-listen", "off", "--delivery", engine)
			out := p.stdout.String()
			c := parseCurl(t, out)
			m := tokenRe.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("banner has no client token:\n%s", out)
			}
			ws, _, err := websocket.DefaultDialer.Dial("ws://"+p.addr+"/v1/ws?device=laptop&token="+m[2], nil)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer ws.Close()
			readFrame := func(want string) map[string]any {
				t.Helper()
				_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
				var f map[string]any
				if err := ws.ReadJSON(&f); err != nil {
					t.Fatalf("read %s frame: %v", want, err)
				}
				if f["type"] != want {
					t.Fatalf("frame = %v, want type %s", f, want)
				}
				return f
			}
			readFrame("welcome")
			readFrame("synced")
			code, body := httpDo(t, "POST", p.url("/v1/users/alice/messages"), c.header, "hello from "+engine)
			if code != http.StatusCreated {
				t.Fatalf("publish = %d %s", code, body)
			}
			msg := readFrame("message")
			if msg["body"] != "hello from "+engine {
				t.Fatalf("delivered %v", msg)
			}
			if err := p.stop(15 * time.Second); err != nil {
				t.Fatalf("serve returned %v", err)
			}
		})
	}
}

func TestServeListenError(t *testing.T) {
	t.Parallel()
	p := startCmd(t, nil, "serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--nats-listen", "off")
	_, _, err := runCmd(t, nil, "serve", "--data-dir", t.TempDir(), "--listen", p.addr, "--nats-listen", "off")
	if err == nil || !strings.Contains(err.Error(), "cmd: listen") {
		t.Fatalf("second serve on %s: %v", p.addr, err)
	}
}

func TestBanner(t *testing.T) {
	t.Parallel()
	cases := []struct{ listen, want string }{
		{":8080", "http://127.0.0.1:8080/v1/users/alice/messages"},
		{"0.0.0.0:9000", "http://127.0.0.1:9000/"},
		{"[::1]:8080", "http://[::1]:8080/"},
	}
	for _, tc := range cases {
		t.Run(tc.listen, func(t *testing.T) {
			addr, err := net.ResolveTCPAddr("tcp", tc.listen)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			cfg := config.Default()
			if err := printBanner(&b, &cfg, addr, "nats://x", creds.Generated{Key: "k", JWTSecret: "banner-test-secret-0123456789abcdef", Created: true}); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(b.String(), tc.want) {
				t.Errorf("banner for %s lacks %s:\n%s", tc.listen, tc.want, b.String())
			}
			wantURLFlag := tc.listen != ":8080"
			if got := strings.Contains(b.String(), "--url ws://"); got != wantURLFlag {
				t.Errorf("banner for %s: --url present %v, want %v", tc.listen, got, wantURLFlag)
			}
		})
	}
}
