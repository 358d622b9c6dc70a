package streams

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The text reports of herald streams apply, streams info and doctor: the
// library's types rendered for operators, so that cmd only prints them.

// WriteConfigText writes a stream's configuration as herald streams apply
// prints it, one indented setting a line.
func WriteConfigText(w io.Writer, c *jetstream.StreamConfig) error {
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

// WriteInfoText writes a stream's state as herald streams info prints it:
// configuration, cluster and replicas, messages and sequences.
func WriteInfoText(w io.Writer, info *jetstream.StreamInfo) error {
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

// WriteText writes the report as herald doctor prints it: the connection,
// the account, each stream's replicas, the servers, then the problems.
func (rep *Health) WriteText(w io.Writer) error {
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
			case p.State == ReplicaOffline:
				fmt.Fprintf(tw, "  peer\t%s: offline, lag %d, %s\n", p.Name, p.Lag, Unheard(p.Active))
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
