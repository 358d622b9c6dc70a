package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/edge/token"
	"github.com/herald-push/herald/streams"
)

// bannerTokenTTL is the lifetime of the token in serve's listen line.
const bannerTokenTTL = 24 * time.Hour

func newServeCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run ingest and edge with an embedded NATS JetStream server",
		Long: `Run everything in one process: an embedded NATS server with JetStream (data in
--data-dir), the stream, and ingest plus edge on --listen.

Whatever auth is not configured, serve takes from <data-dir>/credentials.json
(created on first use, reused on restart): the producer key when no
producer key is configured, the JWT secret when neither a JWT secret nor
public keys are. It prints them, with a ready curl and herald listen line,
only on the start that generates them; later starts name the file instead.
The data dir is created with mode 0700, or set to 0700 if it exists.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.loadConfig(cmd)
			if err != nil {
				return err
			}
			return a.serve(cmd.Context(), cfg)
		},
	}
}

func newIngestCmd(a *app) *cobra.Command {
	return newRoleCmd(a, "ingest", "Run the producer HTTP API against an external NATS (--nats-url)", roleSet{ingest: true})
}

func newEdgeCmd(a *app) *cobra.Command {
	return newRoleCmd(a, "edge", "Run the device endpoints (WebSocket, SSE, ack) against an external NATS (--nats-url)", roleSet{edge: true})
}

// newRoleCmd builds herald ingest or herald edge: the roles against an
// external NATS (runRole).
func newRoleCmd(a *app, use, short string, roles roleSet) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.loadConfig(cmd)
			if err != nil {
				return err
			}
			return a.runRole(cmd.Context(), cfg, roles)
		},
	}
}

// generated is what serve filled in from <data-dir>/credentials.json.
type generated struct {
	path      string
	created   bool
	key       string // "" when producer keys were configured
	jwtSecret string // "" when a secret or public keys were configured
}

// fillCredentials gives serve whatever auth is not configured from the data
// dir's credentials (created on first use): a producer key when there is
// none, a JWT secret when there is neither a secret nor a public key.
func fillCredentials(cfg *config.Config) (generated, error) {
	needKey := len(cfg.Ingest.ProducerKeys) == 0
	needSecret := cfg.Auth.JWTSecret == "" && len(cfg.Auth.PublicKeys) == 0
	g := generated{path: filepath.Join(cfg.DataDir, credsFile)}
	if !needKey && !needSecret {
		return g, nil
	}
	c, created, err := loadOrCreateCredentials(cfg.DataDir, need{key: needKey, secret: needSecret})
	if err != nil {
		return g, err
	}
	g.created = created
	if needKey {
		g.key = c.ProducerKey
		cfg.Ingest.ProducerKeys = []string{c.ProducerKey}
	}
	if needSecret {
		g.jwtSecret = c.JWTSecret
		cfg.Auth.JWTSecret = c.JWTSecret
	}
	return g, nil
}

// serve runs herald serve until ctx ends: embedded NATS, the stream, and
// ingest plus edge on one listener. On ctx's end it stops accepting, closes
// sockets with 1001, drains NATS and shuts the embedded server down.
func (a *app) serve(ctx context.Context, cfg config.Config) error {
	log := newLogger(cfg.Log, a.stderr).With("role", "serve")
	if err := prepareDataDir(cfg.DataDir); err != nil {
		return err
	}
	gen, err := fillCredentials(&cfg)
	if err != nil {
		return err
	}
	producer, err := fillNATSUsers(&cfg)
	if err != nil {
		return err
	}
	if err := preflight(&cfg, roleSet{ingest: true, edge: true}); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("cmd: listen: %w", err)
	}
	defer ln.Close()

	srv, err := startEmbedded(&cfg, producer, log)
	if err != nil {
		return err
	}
	defer func() {
		srv.Shutdown()
		srv.WaitForShutdown()
		log.Info("embedded NATS stopped")
	}()
	conn, err := connectNATS(&cfg, "herald-serve", log, srv)
	if err != nil {
		return err
	}
	defer conn.drain(cfg.Edge.ShutdownTimeout)
	nc := conn.nc

	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("cmd: jetstream: %w", err)
	}
	actx, cancel := context.WithTimeout(ctx, cfg.NATS.Timeout)
	_, _, err = streams.ApplyAll(actx, js, cfg.Stream, cfg.Edge.DeviceTTL)
	cancel()
	if err != nil {
		return fmt.Errorf("cmd: serve: %w", err)
	}
	n, err := newNode(cfg, nc, roleSet{ingest: true, edge: true}, log, newRegistry("serve"))
	if err != nil {
		return err
	}
	natsURL := "in-process only (nats.embedded_listen off)"
	if cfg.NATS.Embedded != "off" {
		natsURL = srv.ClientURL()
	}
	log.Info("listening", "addr", ln.Addr().String(), "nats", natsURL, "delivery", cfg.Edge.Delivery, "data_dir", cfg.DataDir)
	if err := printBanner(a.stdout, &cfg, ln.Addr(), natsURL, gen); err != nil {
		return err
	}
	if err := printNATSProducer(a.stdout, natsURL, producer); err != nil {
		return err
	}
	if a.ready != nil {
		a.ready(ln.Addr().String())
	}
	return n.run(ctx, ln)
}

// prepareDataDir creates serve's data dir with mode 0700, or sets an
// existing one to 0700: it holds the credentials and the message store.
func prepareDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cmd: data_dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("cmd: data_dir: set mode 0700: %w", err)
	}
	return nil
}

// printBanner prints where serve listens and a ready curl and herald
// listen line. Generated credentials are printed only on the start that
// created them; a later start names the file that holds them.
func printBanner(w io.Writer, cfg *config.Config, addr net.Addr, natsURL string, gen generated) error {
	httpURL := baseURL(httpScheme(cfg), addr)
	wsURL := baseURL(wsScheme(cfg), addr)
	var b strings.Builder
	fmt.Fprintf(&b, "Herald is running.\n")
	fmt.Fprintf(&b, "  HTTP  %s  (ingest /v1/users/{user}/messages, edge /v1/ws and /v1/sse, /healthz, /readyz, /metrics)\n", httpURL)
	fmt.Fprintf(&b, "  NATS  %s  (embedded JetStream, store %s)\n", natsURL, filepath.Join(cfg.DataDir, "nats"))
	// shown are the generated credentials this banner may print.
	shown := generated{}
	if gen.key != "" || gen.jwtSecret != "" {
		if gen.created {
			shown = gen
			fmt.Fprintf(&b, "\nCredentials generated in %s (printed this once; later starts reuse them without printing them):\n", gen.path)
		} else {
			fmt.Fprintf(&b, "\nCredentials reused from %s (not printed; read them from that file):\n", gen.path)
		}
		if gen.key != "" {
			fmt.Fprintf(&b, "  producer key  %s\n", orRedacted(shown.key))
		}
		if gen.jwtSecret != "" {
			fmt.Fprintf(&b, "  JWT secret    %s\n", orRedacted(shown.jwtSecret))
		}
	}
	key := shown.key
	if key == "" {
		key = "<producer key>"
	}
	fmt.Fprintf(&b, "\nPublish:\n  curl -X POST -H \"Authorization: Bearer %s\" -H \"Content-Type: text/plain\" -d 'hello' %s/v1/users/alice/messages\n", key, httpURL)
	urlFlag := ""
	if wsURL != defaultListenURL {
		urlFlag = " --url " + wsURL
	}
	fmt.Fprintf(&b, "\nListen (in another terminal):\n")
	switch {
	case shown.jwtSecret != "":
		tok, err := token.Mint(shown.jwtSecret, "alice", "laptop", bannerTokenTTL)
		if err != nil {
			return fmt.Errorf("cmd: serve: %w", err)
		}
		fmt.Fprintf(&b, "  go run ./cmd/herald listen --user alice --device laptop%s --token %s\n", urlFlag, tok)
		fmt.Fprintf(&b, "  (token valid %v; or mint one per run: HERALD_JWT_SECRET=%s go run ./cmd/herald listen --user alice --device laptop%s)\n", bannerTokenTTL, shown.jwtSecret, urlFlag)
	case gen.jwtSecret != "":
		// The listen command mints its tokens with the secret in the file.
		fmt.Fprintf(&b, "  go run ./cmd/herald listen --user alice --device laptop%s --data-dir %s\n", urlFlag, cfg.DataDir)
	default:
		fmt.Fprintf(&b, "  go run ./cmd/herald listen --user alice --device laptop%s --token <client JWT>\n", urlFlag)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// orRedacted is secret, or a placeholder when it is not to be printed.
func orRedacted(secret string) string {
	if secret == "" {
		return "(redacted)"
	}
	return secret
}
