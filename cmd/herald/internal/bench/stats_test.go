package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	var lat []time.Duration
	for i := 100; i >= 1; i-- {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	got := summarize(lat)
	want := Latency{Count: 100, P50: 50, P90: 90, P99: 99, Max: 100}
	if got != want {
		t.Errorf("summarize = %+v, want %+v", got, want)
	}
	if (summarize(nil) != Latency{}) {
		t.Error("summarize(nil) is not zero")
	}
}

func TestScrape(t *testing.T) {
	page := `# HELP herald_edge_connections Connected devices.
# TYPE herald_edge_connections gauge
herald_edge_connections{engine="live",transport="ws"} 7
herald_edge_connections{engine="live",transport="sse"} 2
herald_edge_closes_total{reason="slow_consumer"} 3
go_goroutines 42
go_memstats_heap_inuse_bytes 1.5e+06
`
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, page) }))
	defer hs.Close()
	m, err := scrape(context.Background(), hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]float64{
		"herald_edge_connections":      9,
		slowCloses:                     3,
		"go_goroutines":                42,
		"go_memstats_heap_inuse_bytes": 1.5e6,
	} {
		if m[k] != want {
			t.Errorf("%s = %v, want %v", k, m[k], want)
		}
	}
}

func TestRetryBackoff(t *testing.T) {
	for attempt := range 10 {
		d := retryBackoff(attempt)
		if d < 50*time.Millisecond || d > 2*time.Second {
			t.Errorf("retryBackoff(%d) = %v", attempt, d)
		}
	}
}

func TestProcCPU(t *testing.T) {
	t.Parallel()
	before, err := ProcCPU(os.Getpid())
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	// Burn CPU until the process's own counter moves: a counter that never
	// moves would fail the test by its timeout.
	for {
		x := 0
		for i := range 10_000_000 {
			x += i
		}
		_ = x
		after, err := ProcCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if after < before {
			t.Fatalf("cpu went back from %v to %v", before, after)
		}
		if after > before {
			return
		}
	}
}
