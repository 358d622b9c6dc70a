package main

import (
	"bufio"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// scrape reads a Prometheus text exposition into series → value, a series
// being the metric name with its labels as exposed.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	code, body := httpDo(t, "GET", url, nil, "")
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d", url, code)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// series returns the value of a series, failing when it is not exposed.
func series(t *testing.T, m map[string]float64, name string) float64 {
	t.Helper()
	v, ok := m[name]
	if !ok {
		var near []string
		prefix, _, _ := strings.Cut(name, "{")
		for k := range m {
			if strings.HasPrefix(k, prefix) {
				near = append(near, k)
			}
		}
		t.Fatalf("series %s is not exposed (have %v)", name, near)
	}
	return v
}

var adminRe = regexp.MustCompile(`msg="admin listening".* addr=(\S+)`)

// TestMetricsAfterTraffic scrapes /metrics (on the API listener and on the
// admin listener) after some traffic: every documented series is there and
// the counters moved.
func TestMetricsAfterTraffic(t *testing.T) {
	checkNoLeaks(t)
	env := []string{"HERALD_PRODUCER_KEYS=" + hostileKey, "HERALD_JWT_SECRET=" + hostileJWT}
	p := startCmd(t, env, "serve", "--data-dir", filepath.Join(t.TempDir(), "data"), "--listen", "127.0.0.1:0", "--nats-listen", "off", "--admin-listen", "127.0.0.1:0")
	var am []string
	waitFor(t, 10*time.Second, func() error {
		if am = adminRe.FindStringSubmatch(p.stderr.String()); am == nil {
			return fmt.Errorf("no admin address in the log:\n%s", p.stderr.String())
		}
		return nil
	})
	admin := "http://" + am[1]
	jsonH := map[string]string{"Authorization": "Bearer " + hostileKey, "Content-Type": "application/json"}

	before := scrape(t, p.url("/metrics"))
	for _, name := range []string{
		`herald_edge_closes_total{reason="slow_consumer"}`, `herald_edge_gap_fills_total`, `herald_edge_deliveries_total`,
		`herald_edge_redeliveries_total`, `herald_edge_acks_total`, `herald_nats_connected`, `herald_nats_status{status="CONNECTED"}`,
		`herald_nats_reconnects_total`, `herald_ingest_publish_seconds_count`,
	} {
		series(t, before, name)
	}

	tok := mustMint(t, "alice", "")
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+p.addr+"/v1/ws?device=phone&since=0", http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	readType(t, ws, "welcome")
	var last float64
	for i := range 3 {
		if code, body := httpDo(t, "POST", p.url("/v1/users/alice/messages"), jsonH, fmt.Sprintf(`{"body":"m%d"}`, i)); code != 201 {
			t.Fatalf("publish: %d %s", code, body)
		}
		last = readType(t, ws, "message")["seq"].(float64)
	}
	if err := ws.WriteJSON(map[string]any{"type": "ack", "seq": last}); err != nil {
		t.Fatal(err)
	}
	if code, _ := httpDo(t, "POST", p.url("/v1/users/alice/messages"), jsonH, `{"body":`); code != 400 {
		t.Fatalf("bad JSON: %d", code)
	}
	if code, _ := httpDo(t, "GET", p.url("/v1/ws?device=phone"), nil, ""); code != 401 {
		t.Fatalf("ws without token: %d", code)
	}

	var after map[string]float64
	waitFor(t, 10*time.Second, func() error {
		after = scrape(t, p.url("/metrics"))
		// The edge counts a delivery once the write returned, which can
		// be just after the client read it.
		if v := after["herald_edge_acks_total"]; v < 1 {
			return fmt.Errorf("acks %v", v)
		}
		if v := after["herald_edge_deliveries_total"]; v < 3 {
			return fmt.Errorf("deliveries %v", v)
		}
		return nil
	})
	for name, min := range map[string]float64{
		`herald_edge_connections{engine="live",transport="ws"}`:             1,
		`herald_edge_deliveries_total`:                                      3,
		`herald_edge_acks_total`:                                            1,
		`herald_edge_rejected_total{code="unauthorized"}`:                   1,
		`herald_ingest_publish_seconds_count`:                               3,
		`herald_ingest_requests_total{code="ok"}`:                           3,
		`herald_ingest_requests_total{code="invalid_json"}`:                 1,
		`herald_ingest_messages_total`:                                      3,
		`herald_nats_connected`:                                             1,
		`herald_nats_status{status="CONNECTED"}`:                            1,
		`herald_build_info{role="serve",version="` + versionString() + `"}`: 1,
	} {
		if v := series(t, after, name); v < min {
			t.Errorf("%s = %v, want ≥ %v", name, v, min)
		}
	}
	if after[`herald_ingest_publish_seconds_count`] <= before[`herald_ingest_publish_seconds_count`] {
		t.Error("the publish latency histogram did not move")
	}
	for _, name := range []string{`herald_edge_redeliveries_total`, `herald_edge_gap_fills_total`, `herald_edge_closes_total{reason="slow_consumer"}`, `herald_nats_reconnects_total`, `go_goroutines`, `process_open_fds`} {
		series(t, after, name)
	}
	if _, ok := after[`herald_ingest_publish_seconds_bucket{le="0.005"}`]; !ok {
		t.Error("no histogram buckets")
	}

	// The admin listener serves the same registry and pprof; the API
	// listener does not serve pprof.
	series(t, scrape(t, admin+"/metrics"), `herald_edge_acks_total`)
	if code, body := httpDo(t, "GET", admin+"/debug/pprof/", nil, ""); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("admin /debug/pprof/ = %d", code)
	}
	if code, _ := httpDo(t, "GET", admin+"/debug/pprof/goroutine?debug=1", nil, ""); code != 200 {
		t.Errorf("admin goroutine profile = %d", code)
	}
	if code, _ := httpDo(t, "GET", p.url("/debug/pprof/"), nil, ""); code != 404 {
		t.Errorf("API listener /debug/pprof/ = %d, want 404", code)
	}
}
