package node

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/herald-push/herald/cmd/herald/internal/creds"
	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/streams"
)

// Reconnect pacing of connectOptions: a fixed wait plus a random jitter, so
// that a fleet of edges does not reconnect in lockstep after an outage.
const (
	reconnectWait      = time.Second
	reconnectJitter    = 500 * time.Millisecond
	reconnectJitterTLS = 2 * time.Second
)

// connectOptions returns the nats.go options of a client connection named
// name: the credentials (token, user and password, or a creds file), TLS
// (CA, client certificate and key), the connect timeout, the ping interval
// and outstanding pings that declare a silent server dead, and reconnects that
// never give up, paced by reconnectWait with jitter. The TLS files are read
// when the options are applied (by nats.Connect), not here.
func connectOptions(n config.NATS, name string) []nats.Option {
	opts := []nats.Option{
		nats.Name(name),
		nats.Timeout(n.Timeout),
		nats.PingInterval(n.PingInterval),
		nats.MaxPingsOutstanding(n.MaxPingsOut),
		// A write to a server that stopped reading holds the connection's
		// lock; nats.go's default (1 min) would stall every caller, pings
		// included, that long. A write that times out drops the connection
		// (what was buffered is lost, as with any write error; JetStream
		// publishes and requests then time out and are retried).
		nats.FlusherTimeout(n.Timeout),
		nats.ReconnectOnFlusherError(),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(reconnectWait),
		nats.ReconnectJitter(reconnectJitter, reconnectJitterTLS),
	}
	switch {
	case n.Token != "":
		opts = append(opts, nats.Token(n.Token))
	case n.User != "":
		opts = append(opts, nats.UserInfo(n.User, n.Password))
	}
	if n.Creds != "" {
		opts = append(opts, nats.UserCredentials(n.Creds))
	}
	if n.TLSCA != "" {
		opts = append(opts, nats.RootCAs(n.TLSCA))
	}
	if n.TLSCert != "" {
		opts = append(opts, nats.ClientCert(n.TLSCert, n.TLSKey))
	}
	return opts
}

// Conn is a client connection plus what its callbacks learned: when it
// closed and why the last (re)connect failed.
type Conn struct {
	NC     *nats.Conn
	closed chan struct{} // closed by the ClosedHandler
	log    *slog.Logger

	mu   sync.Mutex // guards last; held only to read or swap it
	last error
}

// Connect connects to cfg.NATS as name (with the service user serve
// generated in the data dir when no NATS credentials are configured), or
// in-process to srv when it is not nil, logging connection changes (a failing reconnect once per
// distinct error). extra options come last (nats.RetryOnFailedConnect).
func Connect(cfg *config.Config, name string, log *slog.Logger, srv *server.Server, extra ...nats.Option) (*Conn, error) {
	c := &Conn{closed: make(chan struct{}), log: log.With("component", "nats")}
	var once sync.Once
	where := func(nc *nats.Conn) string {
		if srv != nil {
			return "in-process"
		}
		return nc.ConnectedUrlRedacted()
	}
	if srv == nil {
		c := *cfg
		creds.NATSAuthFromDataDir(&c, false)
		cfg = &c
	}
	opts := append(connectOptions(cfg.NATS, name),
		nats.ConnectHandler(func(nc *nats.Conn) { c.setLast(nil); c.log.Info("connected", "url", where(nc)) }),
		nats.ReconnectHandler(func(nc *nats.Conn) { c.setLast(nil); c.log.Info("reconnected", "url", where(nc)) }),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			if c.setLast(err) {
				c.log.Warn("cannot connect; retrying", "url", cfg.NATS.ServerURL(), "err", err)
			}
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				c.log.Warn("disconnected", "err", err)
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			// A user's live subject holds the user's token: log its
			// hash (the error text names the subject too).
			subjects := streams.Subjects{Prefix: cfg.Stream.Prefix}
			c.log.Warn("async error", "subject", subjects.LogSubjects(subj), "err", subjects.LogSubjects(err.Error()))
		}),
		nats.ClosedHandler(func(*nats.Conn) { once.Do(func() { close(c.closed) }) }),
	)
	if srv != nil {
		opts = append(opts, nats.InProcessServer(srv))
	}
	opts = append(opts, extra...)
	nc, err := nats.Connect(cfg.NATS.ServerURL(), opts...)
	if err != nil {
		return nil, fmt.Errorf("cmd: connect nats %s: %w", cfg.NATS.ServerURL(), err)
	}
	c.NC = nc
	return c, nil
}

// setLast records the last connect error and reports whether it differs
// from the previous one.
func (c *Conn) setLast(err error) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	changed := fmt.Sprint(err) != fmt.Sprint(c.last)
	c.last = err
	return changed
}

// LastError is why the last connect attempt failed, nil once connected.
func (c *Conn) LastError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// Drain drains the connection (pending publishes and subscriptions finish)
// and waits until it is closed or timeout passes, then closes it.
func (c *Conn) Drain(timeout time.Duration) {
	if c.NC.IsClosed() {
		return
	}
	if err := c.NC.Drain(); err != nil {
		c.NC.Close()
		return
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-c.closed:
	case <-t.C:
		c.log.Warn("drain timed out; closing", "timeout", timeout)
		c.NC.Close()
	}
}
