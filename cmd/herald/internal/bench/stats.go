package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Latency summarizes publish→deliver latencies, in milliseconds.
type Latency struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

func summarize(all []time.Duration) Latency {
	if len(all) == 0 {
		return Latency{}
	}
	slices.Sort(all)
	at := func(p float64) float64 {
		i := int(p * float64(len(all)-1))
		return float64(all[i]) / float64(time.Millisecond)
	}
	return Latency{Count: len(all), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: at(1)}
}

// MemSample is the memory of the target at one moment.
type MemSample struct {
	// RSS of each Target.Procs entry, bytes (from /proc/<pid>/status).
	RSS map[string]int64 `json:"rss_bytes,omitempty"`
	// From the edge's /metrics: Go heap in use, goroutines, connections.
	HeapInuse   int64 `json:"heap_inuse_bytes"`
	Goroutines  int64 `json:"goroutines"`
	Connections int64 `json:"connections"`
}

// sample reads the RSS of every process and the edge's metrics. Failures
// leave the fields at -1 and are logged once by the caller.
func (r *Runner) sample(ctx context.Context) (MemSample, error) {
	s := MemSample{RSS: map[string]int64{}, HeapInuse: -1, Goroutines: -1, Connections: -1}
	if r.t.BeforeSample != nil {
		r.t.BeforeSample()
	}
	var errs []string
	for _, p := range r.t.Procs {
		v, err := ProcRSS(p.PID)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		s.RSS[p.Name] = v
	}
	if r.t.MetricsURL != "" {
		m, err := scrape(ctx, r.t.MetricsURL)
		if err != nil {
			errs = append(errs, err.Error())
		} else {
			s.HeapInuse = int64(m["go_memstats_heap_inuse_bytes"])
			s.Goroutines = int64(m["go_goroutines"])
			s.Connections = int64(m["herald_edge_connections"])
		}
	}
	if len(errs) > 0 {
		return s, fmt.Errorf("bench: sample memory: %s", strings.Join(errs, "; "))
	}
	return s, nil
}

// ProcRSS reads VmRSS of a process from /proc (Linux), in bytes.
func ProcRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("rss of pid %d: %w", pid, err)
	}
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := strings.Fields(string(rest))
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err != nil {
					return 0, fmt.Errorf("rss of pid %d: %w", pid, err)
				}
				return kb << 10, nil
			}
		}
	}
	return 0, fmt.Errorf("rss of pid %d: no VmRSS line", pid)
}

// userHZ is the unit of the CPU times in /proc/<pid>/stat: Linux reports
// them in USER_HZ, 100 per second, whatever the kernel's own tick.
const userHZ = 100

// ProcCPU reads the CPU time (user and system) a process has used so far
// from /proc/<pid>/stat (Linux).
func ProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("cpu of pid %d: %w", pid, err)
	}
	// The command name, in parentheses, may hold spaces: the fields
	// counted below start after its closing parenthesis, at field 3.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("cpu of pid %d: no command field", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("cpu of pid %d: %d fields", pid, len(f))
	}
	var ticks int64
	for _, v := range f[11:13] { // utime (14) and stime (15)
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cpu of pid %d: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// cpuOf sums the CPU time of the target's processes; ok is false when one
// cannot be read (no /proc, or the process is gone).
func (r *Runner) cpuOf() (total time.Duration, ok bool) {
	if len(r.t.Procs) == 0 {
		return 0, false
	}
	for _, p := range r.t.Procs {
		d, err := ProcCPU(p.PID)
		if err != nil {
			return 0, false
		}
		total += d
	}
	return total, true
}

// scrape reads a Prometheus text page: each metric summed over its
// labels, and each labeled series as written (name{label="v"}).
func scrape(ctx context.Context, url string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, ok := strings.Cut(line, " ")
		series := ""
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
			if j := strings.LastIndexByte(line, '}'); j >= 0 {
				series = line[:j+1]
				rest, ok = strings.TrimSpace(line[j+1:]), true
			}
		}
		if !ok {
			continue
		}
		if f := strings.Fields(rest); len(f) > 0 {
			if v, err := strconv.ParseFloat(f[0], 64); err == nil {
				out[name] += v
				if series != "" {
					out[series] = v
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	return out, nil
}
