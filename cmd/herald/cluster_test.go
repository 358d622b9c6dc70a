package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herald-push/herald/streams"
	"github.com/herald-push/herald/streams/streamstest"
)

// TestStreamsApplyWaitsForClusterThenDoctor starts `streams apply
// --replicas 3` while two of three servers are down (no quorum: it waits),
// brings them back (it succeeds), and checks `herald doctor` against the
// healthy cluster, then with one server stopped.
func TestStreamsApplyWaitsForClusterThenDoctor(t *testing.T) {
	t.Parallel()
	servers, opts := streamstest.StartCluster(t, 3)
	url := streamstest.ClusterURL(servers)
	for _, s := range servers[1:] {
		s.Shutdown()
		s.WaitForShutdown()
	}

	var out, errb syncBuffer
	root := newRootCmd(&app{stdout: &out, stderr: &errb})
	root.SetArgs([]string{"streams", "apply", "--nats-url", url, "--replicas", "3", "--wait", "40s"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(context.Background()) }()
	waitFor(t, 20*time.Second, func() error {
		if !strings.Contains(errb.String(), "waiting for JetStream") {
			return fmt.Errorf("apply has not retried yet; stderr:\n%s", errb.String())
		}
		return nil
	})
	for i := 1; i < 3; i++ {
		servers[i] = streamstest.Restart(t, servers[i], opts[i])
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("streams apply: %v\nstderr:\n%s", err, errb.String())
		}
	case <-time.After(45 * time.Second):
		t.Fatal("streams apply did not return")
	}
	if !strings.Contains(out.String(), "stream HERALD applied") {
		t.Fatalf("apply output:\n%s", out.String())
	}

	// Healthy: every replica of the stream and the bucket is current.
	var rep streams.Health
	waitFor(t, 30*time.Second, func() error {
		o, _, err := runCmd(t, nil, "doctor", "--nats-url", url, "--json")
		if err != nil {
			return err
		}
		rep = streams.Health{}
		return json.Unmarshal([]byte(o), &rep)
	})
	if len(rep.Streams) != 2 || rep.Streams[0].Name != "HERALD" || rep.Streams[1].Name != "KV_HERALD_DEVICES" {
		t.Fatalf("doctor streams = %+v", rep.Streams)
	}
	st := rep.Streams[0]
	if st.Replicas != 3 || len(st.Peers) != 3 || st.Leader == "" || !st.Peers[0].Leader || st.Peers[0].Name != st.Leader {
		t.Errorf("doctor stream report = %+v", st)
	}
	if len(rep.Servers) != 3 || rep.Cluster != "HERALD-TEST" || len(rep.Problems) != 0 {
		t.Errorf("doctor report = %+v", rep)
	}
	text, _, err := runCmd(t, nil, "doctor", "--nats-url", url)
	if err != nil {
		t.Fatalf("doctor: %v\n%s", err, text)
	}
	for _, want := range []string{"cluster HERALD-TEST", "leader    " + st.Leader, "replicas  3", "S-1", "S-2", "S-3", "KV_HERALD_DEVICES", "no problems found"} {
		if !strings.Contains(text, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, text)
		}
	}

	// One follower down: doctor names it offline and fails.
	var down string
	for _, s := range servers {
		if s.Name() != st.Leader {
			down = s.Name()
			s.Shutdown()
			s.WaitForShutdown()
			break
		}
	}
	waitFor(t, 30*time.Second, func() error {
		o, _, err := runCmd(t, nil, "doctor", "--nats-url", url)
		if err == nil {
			return fmt.Errorf("doctor found no problem with %s down:\n%s", down, o)
		}
		if !strings.Contains(err.Error(), "replica "+down+" is offline") {
			return fmt.Errorf("doctor: %v", err)
		}
		return nil
	})
}

// TestRolesNATSDown stops the NATS server under a running `herald ingest`
// and `herald edge`: /readyz turns 503 and a publish is 503 with
// Retry-After, never a 2xx; once the server is back both are ready again
// and the publish succeeds.
func TestRolesNATSDown(t *testing.T) {
	checkNoLeaks(t)
	opts := streamstest.Options(t.TempDir())
	srv := streamstest.Start(t, opts)
	url := srv.ClientURL()
	if _, _, err := runCmd(t, nil, "streams", "apply", "--nats-url", url, "--wait", "10s"); err != nil {
		t.Fatal(err)
	}
	env := []string{"HERALD_JWT_SECRET=roles-test-secret-0123456789abcdef", "HERALD_PRODUCER_KEYS=roles-test-producer-key-0123"}
	edgeP := startCmd(t, env, "edge", "--nats-url", url, "--listen", "127.0.0.1:0")
	ingestP := startCmd(t, env, "ingest", "--nats-url", url, "--listen", "127.0.0.1:0")
	ready := func(want int) {
		t.Helper()
		for _, p := range []*proc{edgeP, ingestP} {
			waitFor(t, 20*time.Second, func() error {
				if code, body := httpDo(t, "GET", p.url("/readyz"), nil, ""); code != want {
					return fmt.Errorf("/readyz = %d %s, want %d", code, body, want)
				}
				return nil
			})
		}
	}
	publish := func() (int, string) {
		t.Helper()
		req, err := http.NewRequest("POST", ingestP.url("/v1/users/alice/messages"), strings.NewReader("hi"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer roles-test-producer-key-0123")
		req.Header.Set("Content-Type", "text/plain")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	ready(http.StatusOK)
	if code, _ := publish(); code != http.StatusCreated {
		t.Fatalf("publish while up: %d", code)
	}

	srv.Shutdown()
	srv.WaitForShutdown()
	ready(http.StatusServiceUnavailable)
	for range 3 {
		if code, ra := publish(); code != http.StatusServiceUnavailable || ra == "" {
			t.Errorf("publish while NATS is down: %d, Retry-After %q; want 503 with Retry-After", code, ra)
		}
	}

	streamstest.Restart(t, srv, opts)
	ready(http.StatusOK)
	if code, _ := publish(); code != http.StatusCreated {
		t.Errorf("publish after NATS is back: %d", code)
	}
}
