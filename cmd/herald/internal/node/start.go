package node

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/streams"
	"github.com/herald-push/herald/streams/embedded"
)

// Embedded is Herald running in this process: the embedded NATS server,
// Herald's connection to it, and ingest plus edge on a listener.
type Embedded struct {
	Node     *Node
	Server   *server.Server
	Conn     *Conn
	Listener net.Listener
	// NATSURL is the embedded server's client URL, or a note that it has
	// no port (nats.embedded_listen off).
	NATSURL string

	cfg config.Config
	log *slog.Logger
}

// StartEmbedded starts Herald in this process, as serve runs it: the
// embedded NATS server of cfg (its clients authenticate with nats.token or
// nats.user; producer, when it has a name, is its publish-only user), a
// connection to it, the stream and bucket applied, and the node with ingest
// plus edge on a listener at cfg.Listen. cfg must hold the auth both roles
// need (Preflight). The caller owns the result: Run it, or Close it.
func StartEmbedded(ctx context.Context, cfg config.Config, producer embedded.User, log *slog.Logger, reg *prometheus.Registry) (_ *Embedded, err error) {
	if err := Preflight(&cfg, Roles{Ingest: true, Edge: true}); err != nil {
		return nil, err
	}
	e := &Embedded{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if e.Listener, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("cmd: listen: %w", err)
	}
	if e.Server, err = StartNATS(&cfg, producer, log); err != nil {
		return nil, err
	}
	if e.Conn, err = Connect(&cfg, "herald-serve", log, e.Server); err != nil {
		return nil, err
	}
	js, err := jetstream.New(e.Conn.NC)
	if err != nil {
		return nil, fmt.Errorf("cmd: jetstream: %w", err)
	}
	actx, cancel := context.WithTimeout(ctx, cfg.NATS.Timeout)
	_, _, err = streams.ApplyAll(actx, js, cfg.Stream, cfg.Edge.DeviceTTL)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("cmd: serve: %w", err)
	}
	if e.Node, err = New(cfg, e.Conn.NC, Roles{Ingest: true, Edge: true}, log, reg); err != nil {
		return nil, err
	}
	e.NATSURL = "in-process only (nats.embedded_listen off)"
	if cfg.NATS.Embedded != "off" {
		e.NATSURL = e.Server.ClientURL()
	}
	return e, nil
}

// Run serves until ctx ends (Node.Run), then closes e.
func (e *Embedded) Run(ctx context.Context) error {
	defer e.Close()
	return e.Node.Run(ctx, e.Listener)
}

// Close drains the connection, shuts the embedded server down and closes
// the listener: what Run does on return, for an Embedded never run.
func (e *Embedded) Close() {
	if e.Conn != nil {
		e.Conn.Drain(e.cfg.Edge.ShutdownTimeout)
	}
	if e.Server != nil {
		e.Server.Shutdown()
		e.Server.WaitForShutdown()
		e.log.Info("embedded NATS stopped")
	}
	if e.Listener != nil {
		_ = e.Listener.Close()
	}
}

// StartNATS starts the embedded NATS server of cfg (streams/embedded):
// its store in <data-dir>/nats, its client port at nats.embedded_listen,
// JetStream's fsync policy from nats.sync_interval. The caller owns it:
// Shutdown and WaitForShutdown.
func StartNATS(cfg *config.Config, producer embedded.User, log *slog.Logger) (*server.Server, error) {
	syncInterval, syncAlways, err := cfg.NATS.Sync()
	if err != nil {
		return nil, fmt.Errorf("cmd: nats.sync_interval: %w", err)
	}
	srv, err := embedded.Start(embedded.Options{
		StoreDir:        filepath.Join(cfg.DataDir, "nats"),
		Listen:          cfg.NATS.Embedded,
		SyncInterval:    syncInterval,
		SyncAlways:      syncAlways,
		MaxMessageBytes: cfg.Ingest.MaxMessageBytes,
		Token:           cfg.NATS.Token,
		Service:         embedded.User{Name: cfg.NATS.User, Password: cfg.NATS.Password},
		Producer:        producer,
		Subjects:        streams.Subjects{Prefix: cfg.Stream.Prefix},
		Logger:          log,
	})
	if err != nil {
		return nil, fmt.Errorf("cmd: nats.embedded_listen %s: %w", cfg.NATS.Embedded, err)
	}
	return srv, nil
}

// RunRoles runs one or both roles (herald ingest, herald edge) against an
// external NATS, connecting (and reconnecting) forever, until ctx ends.
// It does not create the stream: /readyz answers 503 until `herald streams
// apply` has run. listening is called once it accepts requests, with the
// bound address and its URL.
func RunRoles(ctx context.Context, cfg config.Config, roles Roles, version string, log *slog.Logger, listening func(addr net.Addr, url string)) error {
	if err := Preflight(&cfg, roles); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("node: listen: %w", err)
	}
	defer ln.Close()
	conn, err := Connect(&cfg, "herald-"+roles.String(), log, nil, nats.RetryOnFailedConnect(true))
	if err != nil {
		return err
	}
	defer conn.Drain(cfg.Edge.ShutdownTimeout)
	n, err := New(cfg, conn.NC, roles, log, NewRegistry(roles.String(), version))
	if err != nil {
		return err
	}
	if conn.NC.IsConnected() {
		problem := ""
		if err := n.CheckReady(ctx); err != nil {
			problem = err.Error()
		}
		n.NoteReady(problem)
	} else {
		log.Warn("NATS is not reachable yet; retrying", "url", cfg.NATS.ServerURL())
	}
	url := BaseURL(HTTPScheme(&cfg), ln.Addr())
	log.Info("listening", "addr", url, "delivery", cfg.Edge.Delivery)
	listening(ln.Addr(), url)
	return n.Run(ctx, ln)
}
