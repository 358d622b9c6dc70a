package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes the result as indented JSON.
func WriteJSON(w io.Writer, res *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		return fmt.Errorf("bench: write json: %w", err)
	}
	return nil
}

// WriteTable writes the result as a table for people.
func WriteTable(w io.Writer, res *Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "scenario\t%s\n", res.Scenario)
	fmt.Fprintf(tw, "target\t%s\n", res.Target)
	for _, k := range slices.Sorted(maps.Keys(res.Env)) {
		fmt.Fprintf(tw, "%s\t%s\n", k, res.Env[k])
	}
	switch {
	case res.Fanout != nil:
		fanoutRows(tw, res.Fanout)
	case res.Slow != nil:
		fanoutRows(tw, res.Slow.Without, res.Slow.With)
		fmt.Fprintf(tw, "p99 with / without\t%.2f×\n", res.Slow.P99Ratio)
	case res.Connections != nil:
		connectionRows(tw, res.Connections)
	case res.Resume != nil:
		resumeRows(tw, res.Resume)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("bench: write table: %w", err)
	}
	return nil
}

func fanoutRows(tw io.Writer, runs ...*FanoutResult) {
	row := func(name string, f func(*FanoutResult) string) {
		cells := make([]string, len(runs))
		for i, r := range runs {
			cells[i] = f(r)
		}
		fmt.Fprintf(tw, "%s\t%s\n", name, strings.Join(cells, "\t"))
	}
	if len(runs) > 1 {
		row("run", func(r *FanoutResult) string { return r.Label })
	}
	row("users × devices", func(r *FanoutResult) string {
		s := fmt.Sprintf("%d × %d", r.Users, r.Devices)
		if r.Stuck > 0 {
			s += fmt.Sprintf(" + %d stuck", r.Stuck)
		}
		return s
	})
	row("messages", func(r *FanoutResult) string {
		rate := "max rate"
		if r.Rate > 0 {
			rate = fmt.Sprintf("%.0f/s", r.Rate)
		}
		return fmt.Sprintf("%d × %d B body via %s, %d producers, %s", r.Messages, r.Size, r.Via, r.Producers, rate)
	})
	row("connect", func(r *FanoutResult) string {
		return fmt.Sprintf("%.2f s%s", r.ConnectSeconds, retries(r.Retries))
	})
	row("published", func(r *FanoutResult) string {
		s := fmt.Sprintf("%d in %.2f s = %.0f msg/s", r.Published, r.PublishSeconds, r.PublishRate)
		if r.PublishErrors > 0 {
			s += fmt.Sprintf(" (%d errors, last: %s)", r.PublishErrors, r.LastError)
		}
		return s
	})
	row("delivered", func(r *FanoutResult) string {
		return fmt.Sprintf("%d of %d in %.2f s = %.0f deliveries/s", r.Delivered, r.Expected, r.DeliverySeconds, r.DeliveryRate)
	})
	row("latency p50 / p90 / p99 / max", func(r *FanoutResult) string {
		l := r.Latency
		return fmt.Sprintf("%.2f / %.2f / %.2f / %.2f ms", l.P50, l.P90, l.P99, l.Max)
	})
	row("CPU per delivery / per message", func(r *FanoutResult) string {
		if r.CPUSeconds == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f / %.1f µs (%.2f s of %s)", r.CPUPerDelivery, r.CPUPerMessage, r.CPUSeconds, r.CPUProcs)
	})
	row("lost / duplicates / out of order", func(r *FanoutResult) string {
		return fmt.Sprintf("%d / %d / %d", r.Lost, r.Duplicates, r.OutOfOrder)
	})
	if runs[len(runs)-1].Stuck > 0 {
		row("stuck device closed (4008)", func(r *FanoutResult) string {
			switch {
			case r.Stuck == 0:
				return "-"
			case r.StuckClosedSeconds < 0:
				return "not seen"
			}
			return fmt.Sprintf("%.1f s after it connected", r.StuckClosedSeconds)
		})
	}
}

func connectionRows(tw io.Writer, c *ConnectionsResult) {
	fmt.Fprintf(tw, "devices (users)\t%d (%d)\n", c.Devices, c.Users)
	fmt.Fprintf(tw, "connect\t%.2f s = %.0f connections/s%s\n", c.ConnectSeconds, c.ConnectRate, retries(c.Retries))
	if c.CloseSeconds >= 0 {
		fmt.Fprintf(tw, "edge closed them in\t%.2f s\n", c.CloseSeconds)
	}
	for _, n := range slices.Sorted(maps.Keys(c.RSSPerConn)) {
		fmt.Fprintf(tw, "RSS per connection: %s\t%.2f KiB (%.1f → %.1f MiB)\n", n, c.RSSPerConn[n]/1024,
			float64(c.Before.RSS[n])/(1<<20), float64(c.After.RSS[n])/(1<<20))
	}
	if c.After.HeapInuse >= 0 {
		fmt.Fprintf(tw, "Go heap per connection (edge)\t%.2f KiB (%.1f → %.1f MiB)\n", c.HeapPerConn/1024,
			float64(c.Before.HeapInuse)/(1<<20), float64(c.After.HeapInuse)/(1<<20))
		fmt.Fprintf(tw, "goroutines per connection\t%.2f\n", c.GoroutinesPerConn)
	}
	if c.Note != "" {
		fmt.Fprintf(tw, "note\t%s\n", c.Note)
	}
}

func resumeRows(tw io.Writer, r *ResumeResult) {
	fmt.Fprintf(tw, "users × devices\t%d × %d, %d messages per user while away\n", r.Users, r.Devices, r.PerUser)
	fmt.Fprintf(tw, "reconnect (all welcomed)\t%.2f s%s\n", r.ReconnectSeconds, retries(r.Retries))
	fmt.Fprintf(tw, "caught up\t%.2f s after the reconnect began\n", r.CatchupSeconds)
	fmt.Fprintf(tw, "delivered\t%d of %d (%.2f%%)\n", r.Delivered, r.Expected, r.Complete)
	fmt.Fprintf(tw, "lost / duplicates in one connection / out of order\t%d / %d / %d\n", r.Lost, r.Duplicates, r.OutOfOrder)
	fmt.Fprintf(tw, "welcomes with gap\t%d\n", r.Gaps)
}

func retries(n int64) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d dials answered 503 and retried)", n)
}
