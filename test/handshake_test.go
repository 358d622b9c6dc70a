package test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/herald-push/herald/config"
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
