package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
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
	if err := printStreamConfig(a.stdout, &info.Config); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, "  note: message TTLs and message schedules (and the roll-ups schedules need) are on;\n"+
		"  JetStream cannot turn them off for an existing stream: only deleting and\n"+
		"  recreating it, which loses its messages, does")
	fmt.Fprintf(a.stdout, "device positions bucket %s applied (device positions and read positions; TTL = edge.device_ttl %v)\n", bucket, cfg.Edge.DeviceTTL)
	return nil
}

func printStreamConfig(w io.Writer, c *jetstream.StreamConfig) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  subjects\t%s\n", strings.Join(c.Subjects, ", "))
	fmt.Fprintf(tw, "  replicas\t%d\n", c.Replicas)
	fmt.Fprintf(tw, "  storage\t%s\n", c.Storage)
	fmt.Fprintf(tw, "  max age\t%s\n", unlimited(int64(c.MaxAge), c.MaxAge.String()))
	fmt.Fprintf(tw, "  max msgs per user\t%s\n", unlimited(c.MaxMsgsPerSubject, fmt.Sprint(c.MaxMsgsPerSubject)))
	fmt.Fprintf(tw, "  max bytes\t%s\n", unlimited(c.MaxBytes, fmt.Sprint(c.MaxBytes)))
	fmt.Fprintf(tw, "  duplicate window\t%s\n", c.Duplicates)
	fmt.Fprintf(tw, "  max consumers\t%s\n", unlimited(int64(c.MaxConsumers), fmt.Sprint(c.MaxConsumers)))
	fmt.Fprintf(tw, "  direct get\t%v\n", c.AllowDirect)
	fmt.Fprintf(tw, "  message TTLs\t%v\n", c.AllowMsgTTL)
	fmt.Fprintf(tw, "  message schedules\t%v\n", c.AllowMsgSchedules)
	if c.RePublish != nil {
		fmt.Fprintf(tw, "  republish\t%s -> %s\n", c.RePublish.Source, c.RePublish.Destination)
	}
	return tw.Flush()
}

func unlimited(n int64, s string) string {
	if n <= 0 {
		return "unlimited"
	}
	return s
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
	return printStreamInfo(a.stdout, info)
}

// writeJSON writes v to w as indented JSON: the --json output of streams
// info and doctor.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printStreamInfo(w io.Writer, info *jetstream.StreamInfo) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	st := info.State
	fmt.Fprintf(tw, "stream\t%s\n", info.Config.Name)
	fmt.Fprintf(tw, "subjects\t%s\n", strings.Join(info.Config.Subjects, ", "))
	fmt.Fprintf(tw, "replicas\t%d\n", info.Config.Replicas)
	if c := info.Cluster; c != nil {
		name := c.Name
		if name == "" {
			name = "(standalone)"
		}
		fmt.Fprintf(tw, "cluster\t%s\n", name)
		fmt.Fprintf(tw, "leader\t%s\n", orNone(c.Leader))
		for _, p := range c.Replicas {
			state := "current"
			switch {
			case p.Offline:
				state = "offline"
			case !p.Current:
				state = "catching up"
			}
			fmt.Fprintf(tw, "replica\t%s: %s, lag %d, active %v ago\n", p.Name, state, p.Lag, p.Active.Round(time.Millisecond))
		}
	}
	fmt.Fprintf(tw, "messages\t%d\n", st.Msgs)
	fmt.Fprintf(tw, "bytes\t%d\n", st.Bytes)
	fmt.Fprintf(tw, "first seq\t%d%s\n", st.FirstSeq, at(st.FirstTime, st.Msgs))
	fmt.Fprintf(tw, "last seq\t%d%s\n", st.LastSeq, at(st.LastTime, st.Msgs))
	fmt.Fprintf(tw, "users\t%d\n", st.NumSubjects)
	fmt.Fprintf(tw, "consumers\t%d\n", st.Consumers)
	return tw.Flush()
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func at(t time.Time, msgs uint64) string {
	if msgs == 0 || t.IsZero() {
		return ""
	}
	return " at " + t.UTC().Format(time.RFC3339)
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
