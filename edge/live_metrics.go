package edge

import "github.com/prometheus/client_golang/prometheus"

// Collector returns the engine's own series, for the caller to register on
// its registry: herald_edge_gap_fills_total counts the messages a feed read
// from the store because the live subject revealed a gap before a message
// (a lost republish, a full device queue, or a backlog still being read).
func (e *LiveEngine) Collector() prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "herald_edge_gap_fills_total",
		Help: "Messages read from the store to fill a gap before a live message (live engine).",
	}, func() float64 { return float64(e.gapFills.Load()) })
}
