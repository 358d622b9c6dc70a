// Package streamstest starts real embedded NATS JetStream servers for tests:
// a random loopback port, a store in t.TempDir(), and shutdown registered
// with t.Cleanup. It never mocks NATS.
package streamstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald/streams"
)

// Options returns server options for a JetStream server on a random
// loopback port storing in dir.
func Options(dir string) *server.Options {
	return &server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  dir,
		NoLog:     true,
		NoSigs:    true,
	}
}

// Start starts a server with opts, waits until it is ready for clients and
// registers its shutdown with t.Cleanup.
func Start(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	s, err := start(t, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// start is Start that returns its failure (and the server, if it was
// created, for the caller to shut down sooner than the cleanup).
func start(t testing.TB, opts *server.Options) (*server.Server, error) {
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("streamstest: new server: %w", err)
	}
	s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(10 * time.Second) {
		return s, errors.New("streamstest: server not ready within 10s")
	}
	return s, nil
}

// RunServer starts a single JetStream server with its store in t.TempDir().
func RunServer(t testing.TB) *server.Server {
	t.Helper()
	return Start(t, Options(t.TempDir()))
}

// Restart starts a new server with the options (store dir and port) of a
// stopped one, so clients reconnect to the same URL.
func Restart(t testing.TB, old *server.Server, opts *server.Options) *server.Server {
	t.Helper()
	o := opts.Clone()
	// A stopped server has no listener; its options keep the port it
	// listened on.
	u, err := url.Parse(old.ClientURL())
	if err != nil {
		t.Fatalf("streamstest: restart: %v", err)
	}
	if o.Port, err = strconv.Atoi(u.Port()); err != nil {
		t.Fatalf("streamstest: restart: port of %s: %v", u, err)
	}
	return Start(t, o)
}

// Connect opens a client connection that retries reconnects forever, closed
// with t.Cleanup.
func Connect(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.RetryOnFailedConnect(true))
	if err != nil {
		t.Fatalf("streamstest: connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// StreamConfig is the default stream configuration (streams.DefaultConfig).
func StreamConfig() streams.Config {
	return streams.DefaultConfig()
}

// Apply creates the HERALD stream on nc with c, and the device-position
// bucket the live engine needs (default device TTL), and fails the test on
// error.
func Apply(t testing.TB, nc *nats.Conn, c streams.Config) jetstream.Stream {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, _, err := streams.ApplyAll(ctx, js, c, 30*24*time.Hour)
	if err != nil {
		t.Fatalf("streamstest: %v", err)
	}
	return s
}

// StartCluster starts n clustered JetStream servers named S-1…S-n on
// random loopback ports, waits until the meta leader is elected, and
// returns each server's options, for Restart (same name, ports, routes
// and store).
func StartCluster(t testing.TB, n int) ([]*server.Server, []*server.Options) {
	t.Helper()
	// The route ports are picked before the servers listen on them, so
	// another socket of a busy test machine can take one in between; then
	// the cluster starts again on fresh ports.
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var (
			servers []*server.Server
			opts    []*server.Options
		)
		if servers, opts, err = startCluster(t, n); err == nil {
			return servers, opts
		}
		for _, s := range servers {
			s.Shutdown()
		}
	}
	t.Fatal(err)
	return nil, nil
}

func startCluster(t testing.TB, n int) ([]*server.Server, []*server.Options, error) {
	ports := make([]int, n)
	for i := range ports {
		ports[i] = freePort(t)
	}
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	servers := make([]*server.Server, 0, n)
	opts := make([]*server.Options, n)
	for i := range opts {
		o := Options(t.TempDir())
		o.ServerName = "S-" + strconv.Itoa(i+1)
		o.Cluster.Name = "HERALD-TEST"
		o.Cluster.Host = "127.0.0.1"
		o.Cluster.Port = ports[i]
		o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		opts[i] = o.Clone()
		s, err := start(t, o)
		if s != nil {
			servers = append(servers, s)
		}
		if err != nil {
			return servers, nil, fmt.Errorf("%s on route port %d: %w", o.ServerName, ports[i], err)
		}
	}
	WaitFor(t, 20*time.Second, func() error {
		for _, s := range servers {
			if s.JetStreamIsLeader() {
				return nil
			}
		}
		return fmt.Errorf("no JetStream meta leader")
	})
	return servers, opts, nil
}

// ClusterURL is a comma-separated client URL list of servers.
func ClusterURL(servers []*server.Server) string {
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.ClientURL())
	}
	return strings.Join(urls, ",")
}

// WaitFor polls f until it returns nil or the deadline passes.
func WaitFor(t testing.TB, d time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("streamstest: condition not met within %v: %v", d, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
