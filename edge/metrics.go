package edge

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the edge's Prometheus series; registered on the injected
// registerer, never on a global one.
type metrics struct {
	connections  *prometheus.GaugeVec
	deliveries   prometheus.Counter
	redeliveries prometheus.Counter
	acks         prometheus.Counter
	closes       *prometheus.CounterVec
	rejects      *prometheus.CounterVec

	// Resolved once, so that a connect does no label lookups.
	conns   map[string]prometheus.Gauge // by transport, for this engine
	closeBy [numCloseReasons]prometheus.Counter
}

// newMetrics makes the edge's series and registers them, and extra (the
// engine's own, when not nil), on reg (nil: no registration).
func newMetrics(reg prometheus.Registerer, engine string, extra ...prometheus.Collector) (*metrics, error) {
	m := &metrics{
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "herald_edge_connections", Help: "Connected devices.",
		}, []string{"engine", "transport"}),
		deliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_edge_deliveries_total", Help: "Messages written to devices, redeliveries included.",
		}),
		redeliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_edge_redeliveries_total", Help: "Messages written again because they were not acked in time.",
		}),
		acks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_edge_acks_total", Help: "Acks received from devices (WebSocket frames, POST /v1/ack, SSE auto-acks).",
		}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_edge_closes_total", Help: "Sessions closed, by reason (slow_consumer counts slow-consumer closes).",
		}, []string{"reason"}),
		rejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_edge_rejected_total", Help: "Connection attempts refused before the upgrade, by error code.",
		}, []string{"code"}),
	}
	// Every close reason is exported from the start (slow_consumer at 0
	// included), so that rate() and alerts see the series before the first close.
	for r := CloseShutdown; r < numCloseReasons; r++ {
		m.closeBy[r] = m.closes.WithLabelValues(r.Text())
	}
	m.conns = map[string]prometheus.Gauge{
		"ws":  m.connections.WithLabelValues(engine, "ws"),
		"sse": m.connections.WithLabelValues(engine, "sse"),
		// The ntfy endpoints (ntfy.go), over any of their transports.
		"ntfy": m.connections.WithLabelValues(engine, "ntfy"),
	}
	if reg != nil {
		for _, c := range append([]prometheus.Collector{m.connections, m.deliveries, m.redeliveries, m.acks, m.closes, m.rejects}, extra...) {
			if c == nil {
				continue
			}
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("edge: register metrics: %w", err)
			}
		}
	}
	return m, nil
}

// closed counts a session closed for r.
func (m *metrics) closed(r CloseReason) {
	if c := m.closeBy[r]; c != nil {
		c.Inc()
		return
	}
	m.closes.WithLabelValues(r.Text()).Inc()
}
