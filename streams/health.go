package streams

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Ready is the check behind /readyz: the connection of js is up and the
// stream name exists (ErrStreamMissing when it does not).
func Ready(ctx context.Context, js jetstream.JetStream, name string) error {
	if !js.Conn().IsConnected() {
		return errors.New("NATS is not connected")
	}
	_, err := Lookup(ctx, js, name)
	return err
}

// Health is the state of the NATS side as a client may see it (no $SYS
// account): the connection, the JetStream account, for the stream and the
// devices bucket their replicas, leader and each replica's state, one line
// per server named by those, and the problems found. herald doctor prints
// it.
type Health struct {
	URL      string         `json:"url"`     // the server URL connected to (redacted)
	Server   string         `json:"server"`  // its name
	Cluster  string         `json:"cluster"` // its cluster name, "" when standalone
	Known    []string       `json:"known_servers"`
	Account  *AccountHealth `json:"account,omitempty"`
	Streams  []StreamHealth `json:"streams"`
	Servers  []ServerHealth `json:"servers"`
	Problems []string       `json:"problems"`
}

// AccountHealth is the JetStream account's usage.
type AccountHealth struct {
	Domain    string `json:"domain,omitempty"`
	Streams   int    `json:"streams"`
	Consumers int    `json:"consumers"`
	Memory    uint64 `json:"memory_bytes"`
	Store     uint64 `json:"store_bytes"`
	APITotal  uint64 `json:"api_total"`
	APIErrors uint64 `json:"api_errors"`
}

// StreamHealth is the state of one stream and its replicas.
type StreamHealth struct {
	Name     string          `json:"name"`
	Role     string          `json:"role"` // "messages" or "device positions"
	Replicas int             `json:"replicas"`
	Leader   string          `json:"leader"`
	Peers    []ReplicaHealth `json:"peers"` // the leader first
	Messages uint64          `json:"messages"`
	LastSeq  uint64          `json:"last_seq"`
	Error    string          `json:"error,omitempty"`
}

// ReplicaHealth is one peer of a stream.
type ReplicaHealth struct {
	Name    string        `json:"name"`
	Leader  bool          `json:"leader"`
	Current bool          `json:"current"`
	Offline bool          `json:"offline"`
	Lag     uint64        `json:"lag"`
	Active  time.Duration `json:"active_ns"` // since the leader last heard from it
	// State is ReplicaCurrent, ReplicaBehind or ReplicaOffline
	// (ReplicaState); not part of the JSON.
	State string `json:"-"`
}

// ServerHealth is one server named by a stream's cluster info.
type ServerHealth struct {
	Name   string   `json:"name"`
	Status string   `json:"status"` // ok, behind or offline
	Roles  []string `json:"roles"`  // e.g. "HERALD leader", "KV_HERALD_DEVICES replica"
}

// The states of a replica.
const (
	ReplicaCurrent = "current"
	ReplicaBehind  = "behind"
	ReplicaOffline = "offline"
)

// UnreachableAfter is how long a replica may go unheard by its leader
// before it counts as offline: the leader hears from a live one every
// second (Raft heartbeats), busy or idle. A server killed without a goodbye
// stays "not offline", even "current", in the cluster info for a while
// (seen: current, active 9 s ago).
const UnreachableAfter = 5 * time.Second

// ReplicaState is the state of a replica from the stream's cluster info:
// offline when the cluster says so, or, while the stream has a leader (what
// active measures), when the leader has not heard from it for
// UnreachableAfter or it is not current and the leader never heard from it
// (active 0); else behind when not current.
func ReplicaState(offline, current bool, active time.Duration, leader bool) string {
	switch {
	case offline:
		return ReplicaOffline
	case leader && (active > UnreachableAfter || !current && active == 0):
		return ReplicaOffline
	case !current:
		return ReplicaBehind
	}
	return ReplicaCurrent
}

// HealthOptions say what CheckHealth looks at.
type HealthOptions struct {
	Stream string // the stream's name
	// DevicesRequired says whether a missing devices bucket is a problem:
	// the live engine keeps positions there, and either engine counts
	// devices there when devices per user are capped.
	DevicesRequired bool
}

// Re-checks of a report with problems: a replica that is catching up (a
// fresh cluster, a moment of load) is current again within a heartbeat or
// two, and an election ends within seconds; what is still wrong at the last
// look is reported.
const (
	healthRechecks      = 3
	healthRecheckPeriod = time.Second
)

// CheckHealth looks at the account, the stream and the devices bucket,
// looking again (up to 3 times, 1 s apart) while it sees a problem, and
// returns the last look. It fails only when the JetStream account cannot
// be read at all; anything else is a problem in the report.
func CheckHealth(ctx context.Context, js jetstream.JetStream, o HealthOptions) (*Health, error) {
	for i := 0; ; i++ {
		h, err := checkOnce(ctx, js, o)
		if err != nil || i == healthRechecks || len(h.Problems) == 0 {
			return h, err
		}
		t := time.NewTimer(healthRecheckPeriod)
		select {
		case <-ctx.Done():
			t.Stop()
			return h, nil
		case <-t.C:
		}
	}
}

func checkOnce(ctx context.Context, js jetstream.JetStream, o HealthOptions) (*Health, error) {
	nc := js.Conn()
	ai, err := js.AccountInfo(ctx)
	if err != nil {
		return nil, fmt.Errorf("streams: jetstream account info: %w", err)
	}
	h := &Health{
		URL:     nc.ConnectedUrlRedacted(),
		Server:  nc.ConnectedServerName(),
		Cluster: nc.ConnectedClusterName(),
		Known:   nc.Servers(),
		Account: &AccountHealth{
			Domain: ai.Domain, Streams: ai.Streams, Consumers: ai.Consumers,
			Memory: ai.Memory, Store: ai.Store, APITotal: ai.API.Total, APIErrors: ai.API.Errors,
		},
	}
	h.inspect(ctx, js, o.Stream, "messages", true)
	h.inspect(ctx, js, DevicesStreamName, "device positions", o.DevicesRequired)
	h.summarizeServers()
	return h, nil
}

// Unheard says when the leader last heard from a replica.
func Unheard(active time.Duration) string {
	if active == 0 {
		return "not heard from by the leader"
	}
	return fmt.Sprintf("last heard %v ago", active.Round(time.Millisecond))
}

// inspect adds the state of stream name; required says whether its absence
// is a problem.
func (h *Health) inspect(ctx context.Context, js jetstream.JetStream, name, role string, required bool) {
	sr := StreamHealth{Name: name, Role: role}
	s, err := js.Stream(ctx, name)
	var info *jetstream.StreamInfo
	if err == nil {
		info, err = CachedInfo(ctx, s)
	}
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		if required {
			h.Problems = append(h.Problems, fmt.Sprintf("stream %s does not exist: run `herald streams apply`", name))
		}
		return
	case err != nil:
		sr.Error = err.Error()
		h.Problems = append(h.Problems, fmt.Sprintf("stream %s: no answer (no leader or no quorum?): %v", name, err))
		h.Streams = append(h.Streams, sr)
		return
	}
	sr.Replicas = info.Config.Replicas
	sr.Messages, sr.LastSeq = info.State.Msgs, info.State.LastSeq
	if c := info.Cluster; c != nil {
		sr.Leader = c.Leader
		if c.Leader != "" {
			sr.Peers = append(sr.Peers, ReplicaHealth{Name: c.Leader, Leader: true, Current: true, State: ReplicaCurrent})
		}
		for _, p := range c.Replicas {
			state := ReplicaState(p.Offline, p.Current, p.Active, c.Leader != "")
			sr.Peers = append(sr.Peers, ReplicaHealth{Name: p.Name, Current: p.Current, Offline: p.Offline, Lag: p.Lag, Active: p.Active, State: state})
			switch state {
			case ReplicaOffline:
				h.Problems = append(h.Problems, fmt.Sprintf("stream %s: replica %s is offline (%s)", name, p.Name, Unheard(p.Active)))
			case ReplicaBehind:
				h.Problems = append(h.Problems, fmt.Sprintf("stream %s: replica %s is behind (lag %d)", name, p.Name, p.Lag))
			}
		}
	}
	if sr.Leader == "" {
		h.Problems = append(h.Problems, fmt.Sprintf("stream %s has no leader", name))
	}
	if sr.Leader != "" && len(sr.Peers) < sr.Replicas {
		h.Problems = append(h.Problems, fmt.Sprintf("stream %s: %d of %d replicas known", name, len(sr.Peers), sr.Replicas))
	}
	h.Streams = append(h.Streams, sr)
}

// summarizeServers folds the streams' peers into one line per server: the
// worst state seen and every role it plays.
func (h *Health) summarizeServers() {
	byName := map[string]*ServerHealth{}
	rank := map[string]int{"ok": 0, "behind": 1, "offline": 2}
	for _, s := range h.Streams {
		for _, p := range s.Peers {
			sv := byName[p.Name]
			if sv == nil {
				sv = &ServerHealth{Name: p.Name, Status: "ok"}
				byName[p.Name] = sv
			}
			role, status := s.Name+" replica", p.State
			if p.Leader {
				role = s.Name + " leader"
			}
			if status == ReplicaCurrent {
				status = "ok"
			}
			if rank[status] > rank[sv.Status] {
				sv.Status = status
			}
			sv.Roles = append(sv.Roles, role)
		}
	}
	for _, sv := range byName {
		h.Servers = append(h.Servers, *sv)
	}
	slices.SortFunc(h.Servers, func(a, b ServerHealth) int { return strings.Compare(a.Name, b.Name) })
}
