package test

// TestComposeRun runs docker-compose.yml on the local Docker engine and
// breaks it while producers publish and devices listen through the load
// balancer. No image can be pulled: the test builds herald, nats-server
// (the version in go.mod) and Caddy (test/caddy) as static binaries, imports
// each into a FROM-scratch image, and points NATS_IMAGE, HERALD_IMAGE and
// LB_IMAGE at them. It skips where `docker info` fails, and `docker compose
// down -v` runs at the end whatever happens.

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald/streams"
	"github.com/herald-push/herald/streams/streamstest"
)

// composeRun is one compose project of the test: its command line, the
// environment that selects the images and secrets, and the ports it got.
type composeRun struct {
	t         *testing.T
	compose   []string // "docker compose" or "docker-compose", with -p and -f
	env       []string
	project   string
	lb        string // http://127.0.0.1:port of the load balancer
	heraldBin string // the herald binary in the image, runnable on this host
	natsPass  string // of the service user "herald"
	prodPass  string // of the publish-only user "producer"

	mu  sync.Mutex        // guards ids
	ids map[string]string // service → container id (kept across kill and start)
}

// composeNATS are the NATS services of docker-compose.yml.
var composeNATS = []string{"nats-1", "nats-2", "nats-3"}

func TestComposeRun(t *testing.T) {
	if testing.Short() {
		t.Skip("compose run: skipped with -short")
	}
	c := startCompose(t)
	start := time.Now()
	step := func(format string, args ...any) {
		t.Logf("%6.1fs  %s", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	nc := c.natsConn(t, "herald", c.natsPass)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}

	c.checkNATSAuth(t)
	step("NATS refuses anonymous clients; the producer user publishes and nothing else")
	if out, err := c.doctor(t); err != nil {
		t.Errorf("herald doctor on the fresh cluster: %v\n%s", err, out)
	}
	step("herald doctor: no problems")

	// The rig of failure_test.go, with the load balancer as its only edge
	// and ingest: devices reconnect through it with since = the last seq.
	r := &rig{edges: []*edgeProc{{url: c.lb}}, ingests: []*ingestProc{{addr: strings.TrimPrefix(c.lb, "http://")}}, prod: newProducers(), start: time.Now()}
	r.startDevices(t, []string{"alice", "bob"}, []string{"phone", "laptop"})
	r.startProducers(t)
	c.waitAcked(t, r, 40, time.Minute)
	step("devices connected and %d messages acked through the load balancer", r.prod.total())

	// 1. An edge dies: its devices resume on the other from their position.
	conns := r.totalConnections()
	c.docker(t, "kill", c.container(t, "edge-1"))
	waitUntil(t, time.Minute, func() bool { return r.totalConnections() > conns })
	c.waitAcked(t, r, 40, time.Minute)
	c.waitDelivered(t, r, time.Minute)
	step("edge-1 killed: %d devices reconnected through the load balancer", r.totalConnections()-conns)
	c.docker(t, "start", c.container(t, "edge-1"))
	c.waitReady(t, "edge-1")

	// 2. The NATS node leading the stream dies.
	leader := c.streamLeader(t, js, "")
	c.docker(t, "kill", c.container(t, leader))
	killed := time.Now()
	c.waitAcked(t, r, 1, time.Minute)
	stall := time.Since(killed)
	newLeader := c.streamLeader(t, js, leader)
	c.waitAcked(t, r, 40, time.Minute)
	step("stream leader %s killed: %s leads; the next 2xx %v after the kill", leader, newLeader, stall.Round(100*time.Millisecond))
	streamstest.WaitFor(t, 30*time.Second, func() error {
		out, err := c.doctor(t)
		if err == nil || !strings.Contains(out, "replica "+leader+" is offline") {
			return fmt.Errorf("herald doctor does not name %s offline: %v\n%s", leader, err, out)
		}
		return nil
	})
	step("herald doctor names %s offline", leader)
	c.docker(t, "start", c.container(t, leader))
	c.waitCurrent(t, js)

	// 3. Ingest dies and restarts while producers retry with the same key:
	// it comes back only once an attempt failed (the proxy holds a request
	// for up to 2 s while it cannot reach ingest).
	retries := r.prod.failures()
	c.docker(t, "kill", c.container(t, "ingest"))
	waitUntil(t, time.Minute, func() bool { return r.prod.failures() > retries })
	c.docker(t, "start", c.container(t, "ingest"))
	c.waitReady(t, "ingest")
	c.waitAcked(t, r, 40, time.Minute)
	step("ingest killed and restarted: %d attempts retried", r.prod.failures()-retries)

	// 4. The stream leader is cut off its network, then comes back.
	leader = c.streamLeader(t, js, "")
	network := c.network(t, leader)
	ctr := c.container(t, leader)
	c.docker(t, "network", "disconnect", network, ctr)
	newLeader = c.streamLeader(t, js, leader)
	c.waitAcked(t, r, 40, time.Minute)
	step("%s cut off: %s leads, publishing goes on", leader, newLeader)
	c.docker(t, "network", "connect", "--alias", leader, network, ctr)
	c.waitCurrent(t, js)
	step("%s back and current", leader)

	// 5. The NATS server an edge is connected to hangs (paused, not killed):
	// the edge answers /readyz in time, drops the silent connection and
	// delivers again through another server.
	edgeSvc, hung := c.edgeServer(t)
	c.docker(t, "pause", c.container(t, hung))
	paused := time.Now()
	hungID := c.container(t, hung)
	t.Cleanup(func() { _, _ = c.dockerErr("unpause", hungID) })
	c.checkReadyzAnswers(t, edgeSvc)
	c.waitAcked(t, r, 40, 90*time.Second)
	step("%s (the NATS server of %s) paused: publishing again after %v", hung, edgeSvc, time.Since(paused).Round(100*time.Millisecond))
	c.waitDelivered(t, r, 90*time.Second)
	step("delivering again after %v", time.Since(paused).Round(100*time.Millisecond))
	// Checked while the server is still paused: once it comes back, a
	// replica of its that lags can answer the edges' direct gets for
	// minutes without the newest messages (a known problem, README "Not
	// there yet"), which this run does not cover.
	r.stopProducers()
	acked := r.prod.snapshot()
	c.waitDelivered(t, r, time.Minute)
	r.stopDevices()
	r.check(t, acked)
	c.checkStoredOnce(t, js, acked)
	step("every acked message delivered to every device of its user, in order, and stored once")

	// Healed: the paused server comes back and catches up, which doctor
	// does not call a problem.
	c.docker(t, "unpause", c.container(t, hung))
	c.waitCurrent(t, js)
	if out, err := c.doctor(t); err != nil {
		t.Errorf("herald doctor on the healed cluster: %v\n%s", err, out)
	}
	step("%s back; herald doctor: no problems", hung)
}

// startCompose builds the images, runs `up` under a project name of its
// own, and waits until every Herald service is ready. Cleanup runs `down -v`
// and removes the images.
func startCompose(t *testing.T) *composeRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info").CombinedOutput(); err != nil {
		t.Skipf("compose run: no Docker engine here (docker info: %v: %s)", err, firstLine(out))
	}
	var compose []string
	switch {
	case exec.CommandContext(ctx, "docker", "compose", "version").Run() == nil:
		compose = []string{"docker", "compose"}
	case exec.CommandContext(ctx, "docker-compose", "version").Run() == nil:
		compose = []string{"docker-compose"}
	default:
		t.Skip("compose run: neither `docker compose` nor `docker-compose` works")
	}
	c := &composeRun{t: t, ids: map[string]string{}, project: "heraldtest" + randomHex(t, 4), natsPass: randomHex(t, 16), prodPass: randomHex(t, 16)}
	images := c.buildImages(t)
	c.compose = append(compose, "-p", c.project, "-f", filepath.Join(repoRoot, "docker-compose.yml"))
	c.env = append(os.Environ(),
		"NATS_IMAGE="+images["nats"], "HERALD_IMAGE="+images["herald"], "LB_IMAGE="+images["lb"],
		"HERALD_BIND=127.0.0.1", "HERALD_PORT=0", // any free port, on loopback only
		"HERALD_PRODUCER_KEYS="+failureProducerKey, "HERALD_JWT_SECRET="+testSecret,
		"NATS_HERALD_PASSWORD="+c.natsPass, "NATS_PRODUCER_PASSWORD="+c.prodPass,
	)
	t.Cleanup(func() {
		if t.Failed() {
			if out, err := c.composeErr(2*time.Minute, "logs", "--no-color", "--tail", "30"); err == nil {
				t.Logf("compose logs (last lines per service):\n%s", out)
			}
		}
		if out, err := c.composeErr(3*time.Minute, "down", "-v", "--remove-orphans", "-t", "2"); err != nil {
			t.Errorf("compose down: %v\n%s", err, out)
		}
		for _, img := range images {
			_, _ = c.dockerErr("rmi", img)
		}
	})
	c.composeOK(t, 3*time.Minute, "up", "-d", "--no-build")
	port := strings.TrimSpace(c.composeOK(t, time.Minute, "port", "lb", "8080"))
	if !strings.HasPrefix(port, "127.0.0.1:") {
		t.Fatalf("lb published on %q, want 127.0.0.1 only", port)
	}
	c.lb = "http://" + port
	for _, s := range []string{"ingest", "edge-1", "edge-2"} {
		c.waitReady(t, s)
	}
	waitUntil(t, time.Minute, func() bool {
		resp, err := http.Get(c.lb + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return c
}

// buildImages builds the three static binaries (once per test run; the Go
// build cache makes later runs quick) and imports each into an image with
// nothing else in it. It returns the image names by role.
func (c *composeRun) buildImages(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	abs, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	type build struct {
		role, dir, pkg, out string
	}
	builds := []build{
		{"herald", abs, "./cmd/herald", filepath.Join(dir, "herald")},
		{"nats", abs, "github.com/nats-io/nats-server/v2", filepath.Join(dir, "nats-server")},
		{"lb", filepath.Join(abs, "test", "caddy"), ".", filepath.Join(dir, "caddy")},
	}
	started := time.Now()
	errs := make([]error, len(builds))
	var wg sync.WaitGroup
	for i, b := range builds {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", b.out, b.pkg)
			cmd.Dir = b.dir
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("go build %s: %w\n%s", b.pkg, err, out)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	t.Logf("built herald, nats-server and caddy in %v", time.Since(started).Round(time.Second))
	c.heraldBin = builds[0].out
	images := map[string]string{}
	for _, spec := range []struct {
		role, bin, path string
		changes         []string
	}{
		{"herald", builds[0].out, "usr/local/bin/herald", []string{`ENTRYPOINT ["/usr/local/bin/herald"]`}},
		{"nats", builds[1].out, "nats-server", []string{`ENTRYPOINT ["/nats-server"]`}},
		// As the official image: caddy on the PATH, its state in /config
		// and /data.
		{"lb", builds[2].out, "usr/bin/caddy", []string{"ENV XDG_CONFIG_HOME=/config XDG_DATA_HOME=/data"}},
	} {
		name := "herald-compose-test/" + spec.role + ":" + c.project
		c.importImage(t, name, spec.bin, spec.path, spec.changes)
		images[spec.role] = name
	}
	return images
}

// importImage makes an image of one file: bin at path, plus empty /tmp,
// /config and /data.
func (c *composeRun) importImage(t *testing.T, name, bin, path string, changes []string) {
	t.Helper()
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := []string{"tmp/", "config/", "data/"}
	for d := filepath.Dir(path); d != "."; d = filepath.Dir(d) {
		dirs = append(dirs, d+"/")
	}
	for _, d := range dirs {
		mode := int64(0o755)
		if d == "tmp/" {
			mode = 0o1777
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: mode}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: path, Mode: 0o755, Size: int64(len(data))}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	args := []string{"import"}
	for _, ch := range changes {
		args = append(args, "--change", ch)
	}
	args = append(args, "-", name)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdin = &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker import %s: %v: %s", name, err, out)
	}
}

// composeErr runs a compose subcommand of the project.
func (c *composeRun) composeErr(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.compose[0], append(c.compose[1:], args...)...)
	cmd.Env = c.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String() + stderr.String(), fmt.Errorf("compose %s: %w", strings.Join(args, " "), err)
	}
	return stdout.String(), nil
}

func (c *composeRun) composeOK(t *testing.T, timeout time.Duration, args ...string) string {
	t.Helper()
	out, err := c.composeErr(timeout, args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return out
}

func (c *composeRun) dockerErr(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

func (c *composeRun) docker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := c.dockerErr(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// container is the id of the service's (one) container.
func (c *composeRun) container(t *testing.T, service string) string {
	t.Helper()
	c.mu.Lock()
	id, ok := c.ids[service]
	c.mu.Unlock()
	if ok {
		return id
	}
	id = strings.TrimSpace(c.composeOK(t, time.Minute, "ps", "-q", service))
	if id == "" || strings.Contains(id, "\n") {
		t.Fatalf("service %s: containers %q, want one", service, id)
	}
	c.mu.Lock()
	c.ids[service] = id
	c.mu.Unlock()
	return id
}

// ip is the service's address on the project network ("" while it has
// none, e.g. cut off).
func (c *composeRun) ip(t *testing.T, service string) string {
	t.Helper()
	return strings.TrimSpace(c.docker(t, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", c.container(t, service)))
}

// network is the name of the (one) network the service is on.
func (c *composeRun) network(t *testing.T, service string) string {
	t.Helper()
	n := strings.TrimSpace(c.docker(t, "inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", c.container(t, service)))
	if n == "" || strings.Contains(n, " ") {
		t.Fatalf("service %s: networks %q, want one", service, n)
	}
	return n
}

// waitReady polls the service's /readyz (on its private address) until 200.
func (c *composeRun) waitReady(t *testing.T, service string) {
	t.Helper()
	client := &http.Client{Timeout: 3 * time.Second}
	var last string
	streamstest.WaitFor(t, time.Minute, func() error {
		ip := c.ip(t, service)
		if ip == "" {
			return fmt.Errorf("%s has no address yet", service)
		}
		resp, err := client.Get("http://" + ip + ":8080/readyz")
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		last = string(b)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s /readyz: %d %s", service, resp.StatusCode, last)
		}
		return nil
	})
}

// checkReadyzAnswers asks the service's /readyz a few times, each answer
// (200 or 503) due within 3 s: the handler's own deadline is 2 s.
func (c *composeRun) checkReadyzAnswers(t *testing.T, service string) {
	t.Helper()
	client := &http.Client{Timeout: 3 * time.Second}
	ip := c.ip(t, service)
	for range 3 {
		start := time.Now()
		resp, err := client.Get("http://" + ip + ":8080/readyz")
		if err != nil {
			t.Errorf("%s /readyz with its NATS server hung: %v", service, err)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Logf("%s /readyz with its NATS server hung: %d in %v: %s", service, resp.StatusCode, time.Since(start).Round(time.Millisecond), bytes.TrimSpace(b))
	}
}

// natsURL lists the NATS services' current addresses.
func (c *composeRun) natsURL(t *testing.T) string {
	t.Helper()
	var urls []string
	for _, s := range composeNATS {
		if ip := c.ip(t, s); ip != "" {
			urls = append(urls, "nats://"+ip+":4222")
		}
	}
	return strings.Join(urls, ",")
}

// natsConn connects to the cluster as user, reconnecting forever.
func (c *composeRun) natsConn(t *testing.T, user, pass string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(c.natsURL(t), nats.UserInfo(user, pass), nats.MaxReconnects(-1),
		nats.ReconnectWait(200*time.Millisecond), nats.PingInterval(2*time.Second), nats.MaxPingsOutstanding(2), nats.Timeout(3*time.Second))
	if err != nil {
		t.Fatalf("connect to the compose NATS cluster as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// checkNATSAuth: no credentials are refused; the producer user publishes
// with `herald publish --nats`, and may neither subscribe to a user's
// subject nor use the JetStream API.
func (c *composeRun) checkNATSAuth(t *testing.T) {
	t.Helper()
	url := c.natsURL(t)
	if nc, err := nats.Connect(url, nats.Timeout(3*time.Second), nats.NoReconnect()); err == nil {
		nc.Close()
		t.Error("NATS accepted a client without credentials")
	} else if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Errorf("NATS without credentials: %v, want an authorization violation", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.heraldBin, "publish", "--nats", "--nats-url", url, "--nats-user", "producer", "--nats-password", c.prodPass,
		"--user", "dave", "--id", "direct-1", "straight to NATS")
	cmd.Env = []string{"HOME=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"seq":`) {
		t.Errorf("herald publish --nats as the producer user: %v: %s", err, out)
	}

	errs := make(chan error, 8)
	nc, err := nats.Connect(url, nats.UserInfo("producer", c.prodPass), nats.Timeout(3*time.Second), nats.NoReconnect(),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case errs <- err:
			default:
			}
		}))
	if err != nil {
		t.Fatalf("connect as the producer user: %v", err)
	}
	defer nc.Close()
	subj := streams.Subjects{}.User("alice")
	if _, err := nc.SubscribeSync(subj); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		if !errors.Is(err, nats.ErrPermissionViolation) {
			t.Errorf("producer subscribing to %s: %v, want a permissions violation", subj, err)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("producer subscribed to %s without a permissions violation", subj)
	}
	pjs, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer dcancel()
	if err := pjs.DeleteStream(dctx, "HERALD"); err == nil {
		t.Error("the producer user deleted the stream")
	}
	if err := nc.LastError(); !errors.Is(err, nats.ErrPermissionViolation) {
		t.Errorf("producer deleting the stream: last error %v, want a permissions violation", err)
	}
}

// doctor runs herald doctor (the binary of the image) against the cluster
// as the service user.
func (c *composeRun) doctor(t *testing.T) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.heraldBin, "doctor", "--nats-url", c.natsURL(t), "--nats-user", "herald", "--nats-password", c.natsPass)
	cmd.Env = []string{"HOME=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// streamLeader waits until the stream has a leader other than not, and
// returns it (a NATS service name).
func (c *composeRun) streamLeader(t *testing.T, js jetstream.JetStream, not string) string {
	t.Helper()
	var leader string
	streamstest.WaitFor(t, time.Minute, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, "HERALD")
		if err != nil {
			return err
		}
		info := s.CachedInfo()
		if info.Cluster == nil || info.Cluster.Leader == "" || info.Cluster.Leader == not {
			return fmt.Errorf("stream leader %+v", info.Cluster)
		}
		leader = info.Cluster.Leader
		return nil
	})
	return leader
}

// waitCurrent waits until the stream and the devices bucket each have a
// leader and two current replicas.
func (c *composeRun) waitCurrent(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	streamstest.WaitFor(t, 90*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		for _, name := range []string{"HERALD", "KV_" + streams.DevicesBucketName} {
			s, err := js.Stream(ctx, name)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			cl := s.CachedInfo().Cluster
			if cl == nil || cl.Leader == "" || len(cl.Replicas) != 2 {
				return fmt.Errorf("%s: cluster %+v", name, cl)
			}
			for _, p := range cl.Replicas {
				if !p.Current || p.Offline {
					return fmt.Errorf("%s: replica %s: current %v, offline %v, lag %d", name, p.Name, p.Current, p.Offline, p.Lag)
				}
			}
		}
		return nil
	})
}

// edgeServer returns an edge service with devices and the NATS service its
// connection is on, from the servers' monitoring endpoint (/connz).
func (c *composeRun) edgeServer(t *testing.T) (edgeSvc, natsSvc string) {
	t.Helper()
	client := &http.Client{Timeout: 3 * time.Second}
	for _, e := range []string{"edge-2", "edge-1"} {
		eip := c.ip(t, e)
		for _, n := range composeNATS {
			resp, err := client.Get("http://" + c.ip(t, n) + ":8222/connz")
			if err != nil {
				t.Fatalf("%s /connz: %v", n, err)
			}
			var connz struct {
				Connections []struct {
					IP   string `json:"ip"`
					Name string `json:"name"`
				} `json:"connections"`
			}
			err = json.NewDecoder(resp.Body).Decode(&connz)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("%s /connz: %v", n, err)
			}
			for _, conn := range connz.Connections {
				if conn.IP == eip && conn.Name == "herald-edge" {
					return e, n
				}
			}
		}
	}
	t.Fatal("no edge found in the NATS servers' connections")
	return "", ""
}

// waitAcked waits until n more messages got a 2xx.
func (c *composeRun) waitAcked(t *testing.T, r *rig, n int, d time.Duration) {
	t.Helper()
	want := r.prod.total() + n
	streamstest.WaitFor(t, d, func() error {
		if err := r.prod.failed(); err != nil {
			t.Fatalf("producer: %v", err)
		}
		if got := r.prod.total(); got < want {
			return fmt.Errorf("%d acked, want %d", got, want)
		}
		return nil
	})
}

// waitDelivered waits until every device has every message acked so far.
func (c *composeRun) waitDelivered(t *testing.T, r *rig, d time.Duration) {
	t.Helper()
	acked := r.prod.snapshot()
	streamstest.WaitFor(t, d, func() error {
		for _, dev := range r.devices {
			if m := dev.missing(acked[dev.user]); len(m) > 0 {
				return fmt.Errorf("%s/%s misses %d acked messages, the first seq %d", dev.user, dev.name, len(m), m[0])
			}
		}
		return nil
	})
}

// checkStoredOnce reads the devices' users' messages back from the stream:
// each idempotency key is stored once, at the seq its 2xx named.
func (c *composeRun) checkStoredOnce(t *testing.T, js jetstream.JetStream, acked map[string][]acked) {
	t.Helper()
	for user, as := range acked {
		var seqOf map[string][]uint64
		var stored int
		// A server that was just paused may still hold the JetStream API
		// for a moment: read again until a whole read succeeds.
		streamstest.WaitFor(t, time.Minute, func() error {
			var err error
			seqOf, stored, err = readStored(js, user)
			return err
		})
		dups := 0
		for id, seqs := range seqOf {
			if len(seqs) > 1 {
				dups++
				if dups <= 5 {
					t.Errorf("%s: key %s stored %d times, at seqs %v", user, id, len(seqs), seqs)
				}
			}
		}
		for _, a := range as {
			if s := seqOf[a.key]; len(s) == 0 || s[0] != a.seq {
				t.Errorf("%s: key %s acked at seq %d, stored at %v", user, a.key, a.seq, s)
			}
		}
		t.Logf("%s: %d messages stored, %d keys stored more than once", user, stored, dups)
	}
}

// readStored maps each message id of user's subject to the seqs it is
// stored at.
func readStored(js jetstream.JetStream, user string) (seqOf map[string][]uint64, stored int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, "HERALD", jetstream.OrderedConsumerConfig{FilterSubjects: []string{streams.Subjects{}.User(user)}})
	if err != nil {
		return nil, 0, fmt.Errorf("ordered consumer: %w", err)
	}
	seqOf = map[string][]uint64{}
	for {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return nil, 0, fmt.Errorf("fetch: %w", err)
		}
		got := 0
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				return nil, 0, fmt.Errorf("metadata: %w", err)
			}
			e := streams.Decode(m.Data(), md.Sequence.Stream, md.Timestamp)
			seqOf[e.ID] = append(seqOf[e.ID], md.Sequence.Stream)
			got++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, 0, fmt.Errorf("fetch: %w", err)
		}
		stored += got
		if got > 0 {
			continue
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return nil, 0, fmt.Errorf("consumer info: %w", err)
		}
		if info.NumPending == 0 {
			return seqOf, stored, nil
		}
	}
}

// totalConnections counts the connections the devices opened so far.
func (r *rig) totalConnections() int {
	n := 0
	for _, d := range r.devices {
		n += d.connections()
	}
	return n
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}
