package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/herald-push/herald/cmd/herald/internal/bench"
)

// runBenchJSON runs one herald bench command line in-process and decodes
// its JSON result.
func runBenchJSON(t *testing.T, args ...string) *bench.Result {
	t.Helper()
	return runBenchJSONEnv(t, nil, args...)
}

// runBenchJSONEnv is runBenchJSON with environ as the process environment.
func runBenchJSONEnv(t *testing.T, environ []string, args ...string) *bench.Result {
	t.Helper()
	args = append(append([]string{"bench"}, args...), "--json", "--drain", "10s", "--timeout", "40s")
	stdout, stderr, err := runCmd(t, environ, args...)
	if err != nil {
		t.Fatalf("herald %s: %v\nstderr:\n%s", strings.Join(args, " "), err, stderr)
	}
	var res bench.Result
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("decode %q: %v", stdout, err)
	}
	return &res
}

// checkFanout asserts that every published message reached every device
// once, in order.
func checkFanout(t *testing.T, f *bench.FanoutResult, messages, devices int) {
	t.Helper()
	if f == nil {
		t.Fatal("no fanout result")
	}
	want := int64(messages * devices)
	if f.Published != int64(messages) || f.PublishErrors != 0 {
		t.Errorf("%s: published %d of %d (errors %d: %s)", f.Label, f.Published, messages, f.PublishErrors, f.LastError)
	}
	if f.Expected != want || f.Delivered != want {
		t.Errorf("%s: delivered %d, expected %d, want %d", f.Label, f.Delivered, f.Expected, want)
	}
	if f.Lost != 0 || f.Duplicates != 0 || f.OutOfOrder != 0 || f.Foreign != 0 {
		t.Errorf("%s: lost %d, duplicates %d, out of order %d, foreign %d", f.Label, f.Lost, f.Duplicates, f.OutOfOrder, f.Foreign)
	}
	if f.Latency.Count != int(want) || f.Latency.P99 <= 0 || f.Latency.Max < f.Latency.P99 {
		t.Errorf("%s: latency %+v", f.Label, f.Latency)
	}
	if f.DeliveryRate <= 0 || f.PublishRate <= 0 {
		t.Errorf("%s: rates %v deliveries/s, %v msg/s", f.Label, f.DeliveryRate, f.PublishRate)
	}
}

func TestBenchFanout(t *testing.T) {
	t.Parallel()
	small := []string{"--users", "3", "--devices", "2", "--messages", "60", "--producers", "4"}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"live", []string{"--delivery", "live"}},
		{"consumer", []string{"--delivery", "consumer"}},
		{"nats-paced", []string{"--nats", "--rate", "300"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runBenchJSON(t, append(append([]string{"fanout"}, small...), tc.args...)...)
			checkFanout(t, res.Fanout, 60, 2)
			if res.Env["cpus"] == "" {
				t.Errorf("env %v: no cpus", res.Env)
			}
		})
	}
}

func TestBenchSlow(t *testing.T) {
	t.Parallel()
	// 100 messages of 60 KB to the stuck device's user outgrow the socket
	// buffers (loopback TCP autotunes them up to 4 MiB); a
	// short write timeout makes the edge close it within the run.
	res := runBenchJSON(t, "slow", "--users", "1", "--devices", "2", "--messages", "100", "--producers", "4", "--size", "60000",
		"--set", "edge.write_timeout=1s", "--stuck-wait", "15s")
	if res.Slow == nil {
		t.Fatal("no slow result")
	}
	checkFanout(t, res.Slow.Without, 100, 2)
	checkFanout(t, res.Slow.With, 100, 2)
	if res.Slow.With.Stuck != 1 || res.Slow.P99Ratio <= 0 {
		t.Errorf("stuck %d, p99 ratio %v", res.Slow.With.Stuck, res.Slow.P99Ratio)
	}
	if res.Slow.With.StuckClosedSeconds <= 0 {
		t.Errorf("the edge did not close the stuck device as a slow consumer (%v)", res.Slow.With.StuckClosedSeconds)
	}
}

func TestBenchConnections(t *testing.T) {
	t.Parallel()
	res := runBenchJSON(t, "connections", "--connections", "40", "--settle", "50ms")
	c := res.Connections
	if c == nil {
		t.Fatal("no connections result")
	}
	if c.Devices != 40 || c.ConnectRate <= 0 || c.CloseSeconds < 0 {
		t.Errorf("devices %d, connect rate %v, close %v s", c.Devices, c.ConnectRate, c.CloseSeconds)
	}
	if c.After.Connections-c.Before.Connections != 40 {
		t.Errorf("edge connections %d → %d, want +40", c.Before.Connections, c.After.Connections)
	}
	if len(c.After.RSS) != 1 || c.After.HeapInuse <= 0 || c.After.Goroutines <= c.Before.Goroutines {
		t.Errorf("memory samples %+v → %+v", c.Before, c.After)
	}
}

func TestBenchResume(t *testing.T) {
	t.Parallel()
	res := runBenchJSON(t, "resume", "--users", "5", "--devices", "2", "--per-user", "6", "--producers", "4")
	r := res.Resume
	if r == nil {
		t.Fatal("no resume result")
	}
	if r.Published != 30 || r.Expected != 60 || r.Delivered != 60 || r.Complete != 100 {
		t.Errorf("published %d, delivered %d of %d (%v%%)", r.Published, r.Delivered, r.Expected, r.Complete)
	}
	if r.Lost != 0 || r.Duplicates != 0 || r.OutOfOrder != 0 || r.Gaps != 0 {
		t.Errorf("lost %d, duplicates %d, out of order %d, gaps %d", r.Lost, r.Duplicates, r.OutOfOrder, r.Gaps)
	}
	if r.ReconnectSeconds <= 0 || r.CatchupSeconds <= 0 {
		t.Errorf("reconnect %v s, catch-up %v s", r.ReconnectSeconds, r.CatchupSeconds)
	}
}

// TestBenchSpawn runs fanout against a spawned herald serve (this test
// binary, standing in for herald), over HTTP and over NATS.
func TestBenchSpawn(t *testing.T) {
	t.Parallel()
	environ := append(os.Environ(), asHerald+"=1")
	for _, extra := range [][]string{nil, {"--nats"}} {
		args := append([]string{"fanout", "--spawn", "--users", "3", "--devices", "2", "--messages", "60", "--producers", "4"}, extra...)
		res := runBenchJSONEnv(t, environ, args...)
		if !strings.HasPrefix(res.Target, "spawned herald serve") {
			t.Errorf("%v: target %q", extra, res.Target)
		}
		checkFanout(t, res.Fanout, 60, 2)
	}
}

// TestBenchSpawnFails checks that a serve that exits before it is ready is
// an error of the bench, not a panic.
func TestBenchSpawnFails(t *testing.T) {
	t.Parallel()
	environ := append(os.Environ(), asHerald+"=fail")
	_, _, err := runCmd(t, environ, "bench", "fanout", "--spawn")
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") {
		t.Fatalf("err = %v, want the spawned serve's early exit", err)
	}
}

func TestBenchErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"bench", "fanout", "--url", "http://127.0.0.1:1", "--spawn"},
		{"bench", "fanout", "--pid", "x"},
		{"bench", "fanout", "--rate", "-1"},
	} {
		if _, _, err := runCmd(t, nil, args...); err == nil {
			t.Errorf("herald %s: no error", strings.Join(args, " "))
		}
	}
}
