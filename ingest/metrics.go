package ingest

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the package's Prometheus collectors. They always exist; they
// are registered only when a Registerer is given.
type metrics struct {
	// publish observes, per request, the time from the first publish to the
	// last PubAck (a batch counts once).
	publish prometheus.Histogram
	// requests counts requests by outcome: an error code, "ok" or
	// "duplicate".
	requests *prometheus.CounterVec
	// messages counts messages newly stored (duplicates excluded).
	messages prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		publish: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "herald_ingest_publish_seconds",
			Help:    "Time from publishing to JetStream to the last PubAck of a request.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_ingest_requests_total",
			Help: "Producer API requests by outcome: an error code, ok or duplicate.",
		}, []string{"code"}),
		messages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_ingest_messages_total",
			Help: "Messages stored through the producer API (duplicates excluded).",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.publish, m.requests, m.messages} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return m, nil
}
