package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/herald-push/herald/cmd/herald/internal/node"
	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/streams"
)

func newStreamsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "streams",
		Short: "Create, update and inspect the HERALD stream (--nats-url)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	cmd.PersistentFlags().Duration("wait", 30*time.Second, "how long to wait for NATS and JetStream to answer (a cluster that is still starting)")
	apply := &cobra.Command{
		Use:   "apply",
		Short: "Create the stream or update it to the configuration (idempotent)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.loadConfig(cmd)
			if err != nil {
				return err
			}
			wait, _ := cmd.Flags().GetDuration("wait")
			return a.streamsApply(cmd.Context(), cfg, wait)
		},
	}
	info := &cobra.Command{
		Use:   "info",
		Short: "Show the stream's configuration, cluster state and contents",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.loadConfig(cmd)
			if err != nil {
				return err
			}
			wait, _ := cmd.Flags().GetDuration("wait")
			asJSON, _ := cmd.Flags().GetBool("json")
			return a.streamsInfo(cmd.Context(), cfg, wait, asJSON)
		},
	}
	info.Flags().Bool("json", false, "print the raw stream info as JSON")
	cmd.AddCommand(apply, info)
	return cmd
}

// withJetStream connects to cfg.NATS, waiting up to wait for the first
// connection, and runs op under streams.Retry until it succeeds, fails
// permanently, or wait has passed. The connection is closed on return.
func withJetStream(ctx context.Context, cfg *config.Config, wait time.Duration, log *slog.Logger, op func(context.Context, jetstream.JetStream) error) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	conn, err := node.Connect(cfg, "herald-cli", log, nil, nats.RetryOnFailedConnect(true))
	if err != nil {
		return err
	}
	defer conn.NC.Close()
	js, err := jetstream.New(conn.NC)
	if err != nil {
		return fmt.Errorf("cmd: jetstream: %w", err)
	}
	err = streams.Retry(ctx, js, streams.RetryOptions{Timeout: cfg.NATS.Timeout, NotConnected: conn.LastError, Logger: log},
		func(ctx context.Context) error { return op(ctx, js) })
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("cmd: after --wait %v: %w", wait, err)
	}
	return err
}

func (a *app) streamsApply(ctx context.Context, cfg config.Config, wait time.Duration) error {
	log := newLogger(cfg.Log, a.stderr)
	var (
		info   *jetstream.StreamInfo
		bucket string
	)
	err := withJetStream(ctx, &cfg, wait, log, func(ctx context.Context, js jetstream.JetStream) error {
		s, kv, err := streams.ApplyAll(ctx, js, cfg.Stream, cfg.Edge.DeviceTTL)
		if err != nil {
			return err
		}
		if info, err = streams.CachedInfo(ctx, s); err != nil {
			return err
		}
		bucket = kv.Bucket()
		return nil
	})
	if err != nil {
		return fmt.Errorf("cmd: streams apply: %w", err)
	}
	fmt.Fprintf(a.stdout, "stream %s applied\n", info.Config.Name)
	if err := streams.WriteConfigText(a.stdout, &info.Config); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, "  note: message TTLs and message schedules (and the roll-ups schedules need) are on;\n"+
		"  JetStream cannot turn them off for an existing stream: only deleting and\n"+
		"  recreating it, which loses its messages, does")
	fmt.Fprintf(a.stdout, "device positions bucket %s applied (device positions and read positions; TTL = edge.device_ttl %v)\n", bucket, cfg.Edge.DeviceTTL)
	return nil
}

func (a *app) streamsInfo(ctx context.Context, cfg config.Config, wait time.Duration, asJSON bool) error {
	log := newLogger(cfg.Log, a.stderr)
	var info *jetstream.StreamInfo
	err := withJetStream(ctx, &cfg, wait, log, func(ctx context.Context, js jetstream.JetStream) error {
		s, err := streams.Lookup(ctx, js, cfg.Stream.Name)
		if errors.Is(err, streams.ErrStreamMissing) {
			return streams.Permanent(err)
		}
		if err != nil {
			return err
		}
		info, err = streams.CachedInfo(ctx, s)
		return err
	})
	if err != nil {
		return fmt.Errorf("cmd: streams info: %w", err)
	}
	if asJSON {
		if err := writeJSON(a.stdout, info); err != nil {
			return fmt.Errorf("cmd: streams info: %w", err)
		}
		return nil
	}
	return streams.WriteInfoText(a.stdout, info)
}

// writeJSON writes v to w as indented JSON: the --json output of streams
// info and doctor.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newSubjectCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "subject USER",
		Short: "Print the NATS subject that holds a user's messages",
		Long: `Print <prefix>.user.<token>, the subject producers publishing straight to NATS
use for a user. The token is the user id itself when it matches
^[A-Za-z0-9_-]+$, else "~" and the unpadded base64url of its bytes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.loadConfig(cmd)
			if err != nil {
				return err
			}
			user := args[0]
			if err := streams.ValidateUser(user); err != nil {
				return fmt.Errorf("cmd: subject: %w", err)
			}
			out := streams.Subjects{Prefix: cfg.Stream.Prefix}.User(user)
			if only, _ := cmd.Flags().GetBool("token-only"); only {
				out = streams.Token(user)
			}
			_, err = fmt.Fprintln(a.stdout, out)
			return err
		},
	}
	cmd.Flags().Bool("token-only", false, "print only the subject token of the user")
	return cmd
}
