package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
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

// doctorReport is what herald doctor prints.
type doctorReport struct {
	URL      string         `json:"url"`     // the server URL connected to (redacted)
	Server   string         `json:"server"`  // its name
	Cluster  string         `json:"cluster"` // its cluster name, "" when standalone
	Known    []string       `json:"known_servers"`
	Account  *accountReport `json:"account,omitempty"`
	Streams  []streamReport `json:"streams"`
	Servers  []serverReport `json:"servers"`
	Problems []string       `json:"problems"`
}

type accountReport struct {
	Domain    string `json:"domain,omitempty"`
	Streams   int    `json:"streams"`
	Consumers int    `json:"consumers"`
	Memory    uint64 `json:"memory_bytes"`
	Store     uint64 `json:"store_bytes"`
	APITotal  uint64 `json:"api_total"`
	APIErrors uint64 `json:"api_errors"`
}

type streamReport struct {
	Name     string          `json:"name"`
	Role     string          `json:"role"` // "messages" or "device positions"
	Replicas int             `json:"replicas"`
	Leader   string          `json:"leader"`
	Peers    []replicaReport `json:"peers"` // the leader first
	Messages uint64          `json:"messages"`
	LastSeq  uint64          `json:"last_seq"`
	Error    string          `json:"error,omitempty"`
}

type replicaReport struct {
	Name    string        `json:"name"`
	Leader  bool          `json:"leader"`
	Current bool          `json:"current"`
	Offline bool          `json:"offline"`
	Lag     uint64        `json:"lag"`
	Active  time.Duration `json:"active_ns"` // since the leader last heard from it
	// State is replicaCurrent, replicaBehind or replicaOffline, from
	// Current and Offline; set by inspect, not part of the JSON.
	State string `json:"-"`
}

// The states of a replica, as printed.
const (
	replicaCurrent = "current"
	replicaBehind  = "behind"
	replicaOffline = "offline"
)

// unreachableAfter is how long a replica may go unheard by its leader
// before it counts as offline: the leader hears from a live one every
// second (Raft heartbeats), busy or idle. A server killed without a goodbye
// stays "not offline", even "current", in the cluster info for a while
// (seen: current, active 9 s ago).
const unreachableAfter = 5 * time.Second

// replicaState is the state of a replica from the stream's cluster info:
// offline when the cluster says so, or, while the stream has a leader (what
// active measures), when the leader has not heard from it for
// unreachableAfter or it is not current and the leader never heard from it
// (active 0); else behind when not current.
func replicaState(offline, current bool, active time.Duration, leader bool) string {
	switch {
	case offline:
		return replicaOffline
	case leader && (active > unreachableAfter || !current && active == 0):
		return replicaOffline
	case !current:
		return replicaBehind
	}
	return replicaCurrent
}

// Re-checks of a report with problems: a replica that is catching up (a
// fresh cluster, a moment of load) is current again within a heartbeat or
// two, and an election ends within seconds; what is still wrong at the last
// look is reported.
const (
	doctorRechecks      = 3
	doctorRecheckPeriod = time.Second
)

// serverReport is one server named by a stream's cluster info.
type serverReport struct {
	Name   string   `json:"name"`
	Status string   `json:"status"` // ok, behind or offline
	Roles  []string `json:"roles"`  // e.g. "HERALD leader", "KV_HERALD_DEVICES replica"
}

func (a *app) doctor(ctx context.Context, cfg config.Config, wait time.Duration, asJSON bool) error {
	log := newLogger(cfg.Log, a.stderr)
	var rep *doctorReport
	err := withJetStream(ctx, &cfg, wait, log, func(ctx context.Context, js jetstream.JetStream) error {
		r, err := diagnose(ctx, js, &cfg)
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
	} else if err := printDoctor(a.stdout, rep); err != nil {
		return fmt.Errorf("cmd: doctor: %w", err)
	}
	if n := len(rep.Problems); n > 0 {
		return fmt.Errorf("cmd: doctor: %d problem(s): %s", n, strings.Join(rep.Problems, "; "))
	}
	return nil
}

// unheard says when the leader last heard from a replica.
func unheard(active time.Duration) string {
	if active == 0 {
		return "not heard from by the leader"
	}
	return fmt.Sprintf("last heard %v ago", active.Round(time.Millisecond))
}

// diagnose gathers the report, looking again (up to doctorRechecks times)
// while it shows a problem, and returns the last look. It fails (and
// is retried) only when the JetStream account cannot be read at all;
// anything else is a problem in the report.
func diagnose(ctx context.Context, js jetstream.JetStream, cfg *config.Config) (*doctorReport, error) {
	for i := 0; ; i++ {
		rep, err := diagnoseOnce(ctx, js, cfg)
		if err != nil || i == doctorRechecks || len(rep.Problems) == 0 {
			return rep, err
		}
		t := time.NewTimer(doctorRecheckPeriod)
		select {
		case <-ctx.Done():
			t.Stop()
			return rep, nil
		case <-t.C:
		}
	}
}

// diagnoseOnce is one look at the account, the stream and the bucket.
func diagnoseOnce(ctx context.Context, js jetstream.JetStream, cfg *config.Config) (*doctorReport, error) {
	nc := js.Conn()
	ai, err := js.AccountInfo(ctx)
	if err != nil {
		return nil, fmt.Errorf("jetstream account info: %w", err)
	}
	rep := &doctorReport{
		URL:     nc.ConnectedUrlRedacted(),
		Server:  nc.ConnectedServerName(),
		Cluster: nc.ConnectedClusterName(),
		Known:   nc.Servers(),
		Account: &accountReport{
			Domain: ai.Domain, Streams: ai.Streams, Consumers: ai.Consumers,
			Memory: ai.Memory, Store: ai.Store, APITotal: ai.API.Total, APIErrors: ai.API.Errors,
		},
	}
	rep.inspect(ctx, js, cfg.Stream.Name, "messages", true)
	// The live engine keeps positions there; either engine counts devices
	// there when edge.max_devices_per_user is set.
	rep.inspect(ctx, js, "KV_"+streams.DevicesBucketName, "device positions", cfg.Edge.Delivery == config.DeliveryLive || cfg.Edge.MaxDevicesPerUser > 0)
	rep.summarizeServers()
	return rep, nil
}

// inspect adds the report of stream name; required says whether its
// absence is a problem.
func (rep *doctorReport) inspect(ctx context.Context, js jetstream.JetStream, name, role string, required bool) {
	sr := streamReport{Name: name, Role: role}
	s, err := js.Stream(ctx, name)
	var info *jetstream.StreamInfo
	if err == nil {
		info, err = cachedInfo(ctx, s)
	}
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		if required {
			rep.Problems = append(rep.Problems, fmt.Sprintf("stream %s does not exist: run `herald streams apply`", name))
		}
		return
	case err != nil:
		sr.Error = err.Error()
		rep.Problems = append(rep.Problems, fmt.Sprintf("stream %s: no answer (no leader or no quorum?): %v", name, err))
		rep.Streams = append(rep.Streams, sr)
		return
	}
	sr.Replicas = info.Config.Replicas
	sr.Messages, sr.LastSeq = info.State.Msgs, info.State.LastSeq
	if c := info.Cluster; c != nil {
		sr.Leader = c.Leader
		if c.Leader != "" {
			sr.Peers = append(sr.Peers, replicaReport{Name: c.Leader, Leader: true, Current: true, State: replicaCurrent})
		}
		for _, p := range c.Replicas {
			state := replicaState(p.Offline, p.Current, p.Active, c.Leader != "")
			sr.Peers = append(sr.Peers, replicaReport{Name: p.Name, Current: p.Current, Offline: p.Offline, Lag: p.Lag, Active: p.Active, State: state})
			switch state {
			case replicaOffline:
				rep.Problems = append(rep.Problems, fmt.Sprintf("stream %s: replica %s is offline (%s)", name, p.Name, unheard(p.Active)))
			case replicaBehind:
				rep.Problems = append(rep.Problems, fmt.Sprintf("stream %s: replica %s is behind (lag %d)", name, p.Name, p.Lag))
			}
		}
	}
	if sr.Leader == "" {
		rep.Problems = append(rep.Problems, fmt.Sprintf("stream %s has no leader", name))
	}
	if sr.Leader != "" && len(sr.Peers) < sr.Replicas {
		rep.Problems = append(rep.Problems, fmt.Sprintf("stream %s: %d of %d replicas known", name, len(sr.Peers), sr.Replicas))
	}
	rep.Streams = append(rep.Streams, sr)
}

// summarizeServers folds the streams' peers into one line per server: the
// worst state seen and every role it plays.
func (rep *doctorReport) summarizeServers() {
	byName := map[string]*serverReport{}
	rank := map[string]int{"ok": 0, "behind": 1, "offline": 2}
	for _, s := range rep.Streams {
		for _, p := range s.Peers {
			sv := byName[p.Name]
			if sv == nil {
				sv = &serverReport{Name: p.Name, Status: "ok"}
				byName[p.Name] = sv
			}
			role, status := s.Name+" replica", p.State
			if p.Leader {
				role = s.Name + " leader"
			}
			if status == replicaCurrent {
				status = "ok"
			}
			if rank[status] > rank[sv.Status] {
				sv.Status = status
			}
			sv.Roles = append(sv.Roles, role)
		}
	}
	for _, sv := range byName {
		rep.Servers = append(rep.Servers, *sv)
	}
	slices.SortFunc(rep.Servers, func(a, b serverReport) int { return strings.Compare(a.Name, b.Name) })
}

func printDoctor(w io.Writer, rep *doctorReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	cluster := rep.Cluster
	if cluster == "" {
		cluster = "(standalone)"
	}
	fmt.Fprintf(tw, "connected\t%s (server %s, cluster %s)\n", rep.URL, orNone(rep.Server), cluster)
	fmt.Fprintf(tw, "known servers\t%s\n", strings.Join(rep.Known, ", "))
	if a := rep.Account; a != nil {
		fmt.Fprintf(tw, "jetstream\t%d streams, %d consumers, store %d bytes, memory %d bytes, API %d calls (%d errors)\n",
			a.Streams, a.Consumers, a.Store, a.Memory, a.APITotal, a.APIErrors)
	}
	for _, s := range rep.Streams {
		fmt.Fprintf(tw, "\nstream\t%s (%s)\n", s.Name, s.Role)
		if s.Error != "" {
			fmt.Fprintf(tw, "  error\t%s\n", s.Error)
			continue
		}
		fmt.Fprintf(tw, "  replicas\t%d\n", s.Replicas)
		fmt.Fprintf(tw, "  leader\t%s\n", orNone(s.Leader))
		fmt.Fprintf(tw, "  messages\t%d (last seq %d)\n", s.Messages, s.LastSeq)
		for _, p := range s.Peers {
			switch {
			case p.Leader:
				fmt.Fprintf(tw, "  peer\t%s: leader\n", p.Name)
			case p.State == replicaOffline:
				fmt.Fprintf(tw, "  peer\t%s: offline, lag %d, %s\n", p.Name, p.Lag, unheard(p.Active))
			default:
				fmt.Fprintf(tw, "  peer\t%s: %s, lag %d, active %v ago\n", p.Name, p.State, p.Lag, p.Active.Round(time.Millisecond))
			}
		}
	}
	fmt.Fprintf(tw, "\nservers\n")
	for _, sv := range rep.Servers {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", sv.Name, sv.Status, strings.Join(sv.Roles, ", "))
	}
	if len(rep.Problems) == 0 {
		fmt.Fprintf(tw, "\nno problems found\n")
	} else {
		fmt.Fprintf(tw, "\nproblems\n")
		for _, p := range rep.Problems {
			fmt.Fprintf(tw, "  - %s\n", p)
		}
	}
	return tw.Flush()
}
