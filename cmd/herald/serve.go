package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/herald-push/herald/cmd/herald/internal/creds"
	"github.com/herald-push/herald/cmd/herald/internal/node"
	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/edge/token"
	"github.com/herald-push/herald/streams/embedded"
)

// bannerTokenTTL is the lifetime of the token in serve's listen line.
const bannerTokenTTL = 24 * time.Hour

func newServeCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
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
			readyFile, _ := cmd.Flags().GetString("ready-file")
			return a.serve(cmd.Context(), cfg, readyFile)
		},
	}
	cmd.Flags().String("ready-file", "", "once listening, write {\"http\": URL, \"nats\": URL} as JSON to `file` (removed on exit)")
	return cmd
}

func newIngestCmd(a *app) *cobra.Command {
	return newRoleCmd(a, "ingest", "Run the producer HTTP API against an external NATS (--nats-url)", node.Roles{Ingest: true})
}

func newEdgeCmd(a *app) *cobra.Command {
	return newRoleCmd(a, "edge", "Run the device endpoints (WebSocket, SSE, ack) against an external NATS (--nats-url)", node.Roles{Edge: true})
}

// newRoleCmd builds herald ingest or herald edge: the roles against an
// external NATS (runRole).
func newRoleCmd(a *app, use, short string, roles node.Roles) *cobra.Command {
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

// serve runs herald serve until ctx ends: embedded NATS, the stream, and
// ingest plus edge on one listener (node.StartEmbedded). On ctx's end it
// stops accepting, closes sockets with 1001, drains NATS and shuts the
// embedded server down.
func (a *app) serve(ctx context.Context, cfg config.Config, readyFile string) error {
	log := newLogger(cfg.Log, a.stderr).With("role", "serve")
	if err := creds.PrepareDataDir(cfg.DataDir); err != nil {
		return err
	}
	gen, err := creds.Fill(&cfg)
	if err != nil {
		return err
	}
	producer, err := creds.FillNATSUsers(&cfg)
	if err != nil {
		return err
	}
	e, err := node.StartEmbedded(ctx, cfg, producer, log, node.NewRegistry("serve", versionString()))
	if err != nil {
		return err
	}
	addr := e.Listener.Addr()
	log.Info("listening", "addr", addr.String(), "nats", e.NATSURL, "delivery", cfg.Edge.Delivery, "data_dir", cfg.DataDir)
	err = printBanner(a.stdout, &cfg, addr, e.NATSURL, gen)
	if err == nil {
		err = printNATSProducer(a.stdout, e.NATSURL, producer)
	}
	if err == nil && readyFile != "" {
		err = writeReadyFile(readyFile, node.BaseURL(node.HTTPScheme(&cfg), addr), e.NATSURL)
		defer os.Remove(readyFile)
	}
	if err != nil {
		e.Close()
		return err
	}
	if a.ready != nil {
		a.ready(addr.String())
	}
	return e.Run(ctx)
}

// readyFile is what serve --ready-file writes once it listens: the URLs a
// client reaches it at (the NATS one is a note when it has no port).
type readyFile struct {
	HTTP string `json:"http"`
	NATS string `json:"nats"`
}

// writeReadyFile writes the ready file atomically, so that a reader polling
// for it never sees a torn one.
func writeReadyFile(path, httpURL, natsURL string) error {
	b, err := json.Marshal(readyFile{HTTP: httpURL, NATS: natsURL})
	if err != nil {
		return fmt.Errorf("cmd: ready file: %w", err)
	}
	if err := creds.WriteFileAtomic(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("cmd: ready file: %w", err)
	}
	return nil
}

// printBanner prints where serve listens and a ready curl and herald
// listen line. Generated credentials are printed only on the start that
// created them; a later start names the file that holds them.
func printBanner(w io.Writer, cfg *config.Config, addr net.Addr, natsURL string, gen creds.Generated) error {
	httpURL := node.BaseURL(node.HTTPScheme(cfg), addr)
	wsURL := node.BaseURL(node.WSScheme(cfg), addr)
	var b strings.Builder
	fmt.Fprintf(&b, "Herald is running.\n")
	fmt.Fprintf(&b, "  HTTP  %s  (ingest /v1/users/{user}/messages, edge /v1/ws and /v1/sse, /healthz, /readyz, /metrics)\n", httpURL)
	fmt.Fprintf(&b, "  NATS  %s  (embedded JetStream, store %s)\n", natsURL, filepath.Join(cfg.DataDir, "nats"))
	// shown are the generated credentials this banner may print.
	shown := creds.Generated{}
	if gen.Key != "" || gen.JWTSecret != "" {
		if gen.Created {
			shown = gen
			fmt.Fprintf(&b, "\nCredentials generated in %s (printed this once; later starts reuse them without printing them):\n", gen.Path)
		} else {
			fmt.Fprintf(&b, "\nCredentials reused from %s (not printed; read them from that file):\n", gen.Path)
		}
		if gen.Key != "" {
			fmt.Fprintf(&b, "  producer key  %s\n", orRedacted(shown.Key))
		}
		if gen.JWTSecret != "" {
			fmt.Fprintf(&b, "  JWT secret    %s\n", orRedacted(shown.JWTSecret))
		}
	}
	key := shown.Key
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
	case shown.JWTSecret != "":
		tok, err := token.Mint(shown.JWTSecret, "alice", "laptop", bannerTokenTTL)
		if err != nil {
			return fmt.Errorf("cmd: serve: %w", err)
		}
		fmt.Fprintf(&b, "  go run ./cmd/herald listen --user alice --device laptop%s --token %s\n", urlFlag, tok)
		fmt.Fprintf(&b, "  (token valid %v; or mint one per run: HERALD_JWT_SECRET=%s go run ./cmd/herald listen --user alice --device laptop%s)\n", bannerTokenTTL, shown.JWTSecret, urlFlag)
	case gen.JWTSecret != "":
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

// runRole is herald ingest and herald edge (node.RunRoles), printing
// where it listens.
func (a *app) runRole(ctx context.Context, cfg config.Config, roles node.Roles) error {
	log := newLogger(cfg.Log, a.stderr).With("role", roles.String())
	return node.RunRoles(ctx, cfg, roles, versionString(), log, func(ln net.Addr, url string) {
		fmt.Fprintf(a.stdout, "herald %s listening on %s\n", roles, url)
		if a.ready != nil {
			a.ready(ln.String())
		}
	})
}

// printNATSProducer prints the producer user of serve's embedded NATS
// server with a ready publish line.
func printNATSProducer(w io.Writer, natsURL string, producer embedded.User) error {
	if producer.Name == "" || !strings.HasPrefix(natsURL, "nats://") {
		return nil
	}
	_, err := fmt.Fprintf(w, "\nPublish straight to NATS (user %s may only publish to users' subjects):\n  go run ./cmd/herald publish --nats --nats-url %s --nats-user %s --nats-password %s --user alice 'hello'\n",
		producer.Name, natsURL, producer.Name, producer.Password)
	return err
}
