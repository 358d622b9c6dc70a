package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/config"
)

// HTTPScheme is the scheme of the HTTP listener: https when
// http.tls_cert is set.
func HTTPScheme(c *config.Config) string {
	if c.HTTP.TLSCert != "" {
		return "https"
	}
	return "http"
}

// WSScheme is the scheme of the WebSocket endpoint.
func WSScheme(c *config.Config) string {
	if c.HTTP.TLSCert != "" {
		return "wss"
	}
	return "ws"
}

// wrapTLS returns ln serving TLS with http.tls_cert and http.tls_key, or ln
// itself when they are not set. A bad pair is an error before anything
// starts.
func (n *Node) wrapTLS(ln net.Listener) (net.Listener, error) {
	if n.cfg.HTTP.TLSCert == "" {
		return ln, nil
	}
	cert, err := tls.LoadX509KeyPair(n.cfg.HTTP.TLSCert, n.cfg.HTTP.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("cmd: http.tls_cert/http.tls_key: %w", err)
	}
	return tls.NewListener(ln, &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		// WebSocket upgrades need HTTP/1.1.
		NextProtos: []string{"http/1.1"},
	}), nil
}

// adminServer is the optional admin listener (http.admin_listen):
// /debug/pprof/ (without cmdline) and /metrics, never the public API.
type adminServer struct {
	ln  net.Listener
	hs  *http.Server
	log *slog.Logger
}

// listenAdmin opens the admin listener; nil when http.admin_listen is off.
func (n *Node) listenAdmin() (*adminServer, error) {
	if n.cfg.HTTP.AdminListen == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", n.cfg.HTTP.AdminListen)
	if err != nil {
		return nil, fmt.Errorf("cmd: admin listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	// The command line is not served: --set and the --nats-* flags can
	// carry secrets.
	mux.HandleFunc("/debug/pprof/cmdline", func(w http.ResponseWriter, r *http.Request) {
		herald.WriteError(w, nil, herald.NewError(herald.NotFound, "the command line is not served: it can hold secrets (--set, --nats-password, --nats-token)"))
	})
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("GET /metrics", n.metrics)
	log := n.log.With("component", "admin")
	log.Info("admin listening", "addr", ln.Addr().String())
	return &adminServer{ln: ln, log: log, hs: newHTTPServer(n.cfg.HTTP, mux, log)}, nil
}

// serve runs the admin listener until close.
func (a *adminServer) serve() error {
	if err := a.hs.Serve(a.ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("cmd: admin serve: %w", err)
	}
	return nil
}

// close stops the admin listener, cutting a profile in progress after a
// second.
func (a *adminServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := a.hs.Shutdown(ctx); err != nil {
		_ = a.hs.Close()
	}
}

// natsCollector exports the state of the process's NATS connection:
// herald_nats_connected (1 or 0), herald_nats_status{status} (1 for the
// current status) and herald_nats_reconnects_total.
type natsCollector struct {
	nc         *nats.Conn
	connected  *prometheus.Desc
	status     *prometheus.Desc
	reconnects *prometheus.Desc
}

var _ prometheus.Collector = (*natsCollector)(nil)

func registerNATSMetrics(reg prometheus.Registerer, nc *nats.Conn) error {
	c := &natsCollector{
		nc:         nc,
		connected:  prometheus.NewDesc("herald_nats_connected", "1 while the NATS connection is up, else 0.", nil, nil),
		status:     prometheus.NewDesc("herald_nats_status", "The NATS connection status (CONNECTED, RECONNECTING, CLOSED, …): 1 for the current one.", []string{"status"}, nil),
		reconnects: prometheus.NewDesc("herald_nats_reconnects_total", "Reconnects of the NATS connection.", nil, nil),
	}
	if err := reg.Register(c); err != nil {
		return fmt.Errorf("cmd: metrics: %w", err)
	}
	return nil
}

func (c *natsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.connected
	ch <- c.status
	ch <- c.reconnects
}

func (c *natsCollector) Collect(ch chan<- prometheus.Metric) {
	up := 0.0
	if c.nc.IsConnected() {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(c.connected, prometheus.GaugeValue, up)
	ch <- prometheus.MustNewConstMetric(c.status, prometheus.GaugeValue, 1, c.nc.Status().String())
	ch <- prometheus.MustNewConstMetric(c.reconnects, prometheus.CounterValue, float64(c.nc.Stats().Reconnects))
}
