package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/streams"
)

// herald doctor: the health of the NATS side as an operator needs it, from
// what a client may ask (no $SYS account): the connection, the JetStream
// account, and for the stream and the devices bucket their replicas, leader
// and each replica's state; then one line per server named by those, and a
// list of problems. It exits non-zero when there is a problem.

func newDoctorCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the NATS cluster, the stream and the devices bucket (--nats-url)",
		Long: `Connect to --nats-url and report the connected server and cluster, the
JetStream account usage, and for the stream and the devices bucket:
replicas, leader, and each replica's state (current, lag, last
seen). A per-server summary follows. Exits with an error listing the
problems found (no leader, a replica offline or behind, fewer peers than
replicas, a missing stream or bucket). A replica the leader has not heard
from for 5 s counts as offline. A report with problems is taken again, up
to 3 times 1 s apart, and the last one is printed: a replica catching up or
an election in progress is not reported.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.loadConfig(cmd)
			if err != nil {
				return err
			}
			wait, _ := cmd.Flags().GetDuration("wait")
			asJSON, _ := cmd.Flags().GetBool("json")
			return a.doctor(cmd.Context(), cfg, wait, asJSON)
		},
	}
	cmd.Flags().Duration("wait", 10*time.Second, "how long to wait for NATS and JetStream to answer")
	cmd.Flags().Bool("json", false, "print the report as JSON")
	return cmd
}

func (a *app) doctor(ctx context.Context, cfg config.Config, wait time.Duration, asJSON bool) error {
	log := newLogger(cfg.Log, a.stderr)
	var rep *streams.Health
	// The live engine keeps positions in the devices bucket; either engine
	// counts devices there when edge.max_devices_per_user is set.
	opts := streams.HealthOptions{
		Stream:          cfg.Stream.Name,
		DevicesRequired: cfg.Edge.Delivery == config.DeliveryLive || cfg.Edge.MaxDevicesPerUser > 0,
	}
	err := withJetStream(ctx, &cfg, wait, log, func(ctx context.Context, js jetstream.JetStream) error {
		r, err := streams.CheckHealth(ctx, js, opts)
		if err != nil {
			return err
		}
		rep = r
		return nil
	})
	if err != nil {
		return fmt.Errorf("cmd: doctor: %w", err)
	}
	if asJSON {
		if err := writeJSON(a.stdout, rep); err != nil {
			return fmt.Errorf("cmd: doctor: %w", err)
		}
	} else if err := rep.WriteText(a.stdout); err != nil {
		return fmt.Errorf("cmd: doctor: %w", err)
	}
	if n := len(rep.Problems); n > 0 {
		return fmt.Errorf("cmd: doctor: %d problem(s): %s", n, strings.Join(rep.Problems, "; "))
	}
	return nil
}
