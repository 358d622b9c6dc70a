package config

import (
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Reconnect pacing of ConnectOptions: a fixed wait plus a random jitter, so
// that a fleet of edges does not reconnect in lockstep after an outage.
const (
	ReconnectWait      = time.Second
	ReconnectJitter    = 500 * time.Millisecond
	ReconnectJitterTLS = 2 * time.Second
)

// ServerURL is the URL list in the form nats.Connect takes it: the
// configured URLs joined by commas, spaces removed.
func (n *NATS) ServerURL() string {
	return strings.Join(n.URLs(), ",")
}

// ConnectOptions returns the nats.go options of a client connection named
// name: the credentials (token, user and password, or a creds file), TLS
// (CA, client certificate and key), the connect timeout, the ping interval
// and outstanding pings that declare a silent server dead, and reconnects
// that never give up, paced by ReconnectWait with jitter. The TLS files are read
// when the options are applied (by nats.Connect), not here.
func (n *NATS) ConnectOptions(name string) []nats.Option {
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
		nats.ReconnectWait(ReconnectWait),
		nats.ReconnectJitter(ReconnectJitter, ReconnectJitterTLS),
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
