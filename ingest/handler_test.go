package ingest_test

import (
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/ingest"
	"github.com/herald-push/herald/streams/streamstest"
)

func TestNewValidates(t *testing.T) {
	t.Parallel()
	srv := streamstest.RunServer(t)
	nc := streamstest.Connect(t, srv.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	good := func() ingest.Options {
		c := config.Default()
		c.Ingest.ProducerKeys = []string{producerKey}
		return ingest.Options{Ingest: c.Ingest, Stream: c.Stream, MaxBodyBytes: c.HTTP.MaxBodyBytes}
	}
	if _, err := ingest.New(good(), js); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	cases := map[string]func(*ingest.Options){
		"no keys":         func(o *ingest.Options) { o.Ingest.ProducerKeys = nil },
		"empty key":       func(o *ingest.Options) { o.Ingest.ProducerKeys = []string{""} },
		"no stream":       func(o *ingest.Options) { o.Stream.Name = "" },
		"bad stream":      func(o *ingest.Options) { o.Stream.Name = "a.b" },
		"bad prefix":      func(o *ingest.Options) { o.Stream.Prefix = "a.*" },
		"no max message":  func(o *ingest.Options) { o.Ingest.MaxMessageBytes = 0 },
		"no max batch":    func(o *ingest.Options) { o.Ingest.MaxBatch = 0 },
		"no timeout":      func(o *ingest.Options) { o.Ingest.PublishTimeout = 0 },
		"no retry after":  func(o *ingest.Options) { o.Ingest.RetryAfter = 0 },
		"no body limit":   func(o *ingest.Options) { o.MaxBodyBytes = 0 },
		"registered once": func(o *ingest.Options) { o.Registerer = registered(t) },
	}
	for name, mod := range cases {
		o := good()
		mod(&o)
		_, err := ingest.New(o, js)
		if err == nil || !strings.HasPrefix(err.Error(), "ingest: new: ") {
			t.Errorf("%s: err = %v, want an ingest: new: error", name, err)
		}
	}
	if _, err := ingest.New(good(), nil); err == nil {
		t.Error("nil JetStream accepted")
	}
}

// registered returns a registry that already holds the ingest metrics.
func registered(t *testing.T) prometheus.Registerer {
	reg := prometheus.NewRegistry()
	c := config.Default()
	c.Ingest.ProducerKeys = []string{producerKey}
	srv := streamstest.RunServer(t)
	js, err := jetstream.New(streamstest.Connect(t, srv.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ingest.New(ingest.Options{Ingest: c.Ingest, Stream: c.Stream, MaxBodyBytes: 1 << 20, Registerer: reg}, js); err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	// Methods the routes do not serve are the mux's business (405).
	if res := f.do(http.MethodDelete, userPath("alice"), nil); res.status != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %v", res)
	}
	if res := f.do(http.MethodGet, "/v1/messages", nil); res.status != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/messages: %v", res)
	}
}

// BenchmarkPublish sends sequential single publishes through the HTTP
// handler to embedded NATS and reports the latency percentiles.
func BenchmarkPublish(b *testing.B) {
	f := newFixture(b, fixtureOpts{})
	body := `{"title":"Build failed","body":"main is red","priority":8,"tags":["ci"]}`
	req := func() *http.Request {
		r, _ := http.NewRequest(http.MethodPost, f.url+userPath("alice"), strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+producerKey)
		r.Header.Set("Content-Type", "application/json")
		return r
	}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		res, err := f.client.Do(req())
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusCreated {
			b.Fatalf("status %d", res.StatusCode)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds())
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}
