package test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/streams/streamstest"
)

// TestMalformedHandshakeIsJSON: a WebSocket handshake the upgrader
// refuses, with a valid token, gets the JSON error and is counted in
// herald_edge_rejected_total like any other refusal.
func TestMalformedHandshakeIsJSON(t *testing.T) {
	c := newCluster(t, config.DeliveryLive, nil)
	e := newEdge(t, c)
	tok := mint(t, "alice", "")
	cases := []struct {
		name   string
		header map[string]string
	}{
		{"no key", map[string]string{"Sec-WebSocket-Key": ""}},
		{"key not 16 bytes", map[string]string{"Sec-WebSocket-Key": "c2hvcnQ="}},
		{"key not base64", map[string]string{"Sec-WebSocket-Key": "!!!!!!!!!!!!!!!!!!!!!!!="}},
		{"version 8", map[string]string{"Sec-WebSocket-Version": "8"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest("GET", e.url+"/v1/ws?device=phone", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
			req.Header.Set("Sec-WebSocket-Version", "13")
			req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			for k, v := range tc.header {
				if v == "" {
					req.Header.Del(k)
					continue
				}
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d %s, want 400", resp.StatusCode, b)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			var body struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(b, &body); err != nil || body.Error.Code != "invalid_request" || !strings.Contains(body.Error.Message, "Sec-W") {
				t.Errorf("body %s, want a JSON invalid_request naming the header", b)
			}
		})
	}
	if got := counterValue(t, e.reg, "herald_edge_rejected_total", "invalid_request"); got != float64(len(cases)) {
		t.Errorf("rejected invalid_request = %v, want %d", got, len(cases))
	}
}

// TestSameOriginNeedsSameScheme: the edge's own origin is its host with
// the scheme the request came in with; a listed origin matches only with
// its scheme.
func TestSameOriginNeedsSameScheme(t *testing.T) {
	c := newCluster(t, config.DeliveryLive, func(cfg *config.Config) {
		cfg.Edge.AllowedOrigins = []string{"https://app.example"}
	})
	tok := mint(t, "alice", "")

	// Over plain HTTP.
	plain := newEdge(t, c)
	plainHost := strings.TrimPrefix(plain.url, "http://")
	// Over TLS: the same edge code on a TLS listener.
	es, _, mux, stopEngine := buildEdge(t, streamstest.Connect(t, c.srv.ClientURL()), c.cfg)
	ts := httptest.NewTLSServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := es.Shutdown(ctx); err != nil {
			t.Errorf("TLS edge shutdown: %v", err)
		}
		ts.Close()
		stopEngine(t)
	})
	tlsHost := strings.TrimPrefix(ts.URL, "https://")
	tlsDialer := &websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: ts.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}}

	for _, tc := range []struct {
		name   string
		dialer *websocket.Dialer
		url    string
		origin string
		want   int
	}{
		{"http page, http edge", websocket.DefaultDialer, "ws://" + plainHost, "http://" + plainHost, http.StatusSwitchingProtocols},
		{"https page, http edge", websocket.DefaultDialer, "ws://" + plainHost, "https://" + plainHost, http.StatusForbidden},
		{"https page, https edge", tlsDialer, "wss://" + tlsHost, "https://" + tlsHost, http.StatusSwitchingProtocols},
		{"http page, https edge", tlsDialer, "wss://" + tlsHost, "http://" + tlsHost, http.StatusForbidden},
		{"listed origin", websocket.DefaultDialer, "ws://" + plainHost, "https://app.example", http.StatusSwitchingProtocols},
		{"listed host, another scheme", websocket.DefaultDialer, "ws://" + plainHost, "http://app.example", http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{"Authorization": {"Bearer " + tok}, "Origin": {tc.origin}}
			conn, resp, err := tc.dialer.Dial(tc.url+"/v1/ws?device=phone&"+url.Values{"since": {"0"}}.Encode(), h)
			if conn != nil {
				conn.Close()
			}
			if resp == nil {
				t.Fatalf("dial: %v", err)
			}
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d (%v), want %d", resp.StatusCode, err, tc.want)
			}
			if tc.want == http.StatusForbidden {
				b, _ := io.ReadAll(resp.Body)
				if ct := resp.Header.Get("Content-Type"); ct != "application/json" || !strings.Contains(string(b), `"code":"forbidden"`) {
					t.Errorf("refusal %q %s, want a JSON forbidden", ct, b)
				}
			}
		})
	}
}
