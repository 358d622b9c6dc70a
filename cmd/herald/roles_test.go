package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herald-push/herald/streams/streamstest"
)

// TestRolesAgainstExternalNATS runs `herald edge` and `herald ingest`
// against a NATS server without the stream: /readyz stays 503 until
// `herald streams apply` creates it.
func TestRolesAgainstExternalNATS(t *testing.T) {
	checkNoLeaks(t)
	srv := streamstest.RunServer(t)
	url := srv.ClientURL()
	env := []string{"HERALD_JWT_SECRET=roles-test-secret-0123456789abcdef", "HERALD_PRODUCER_KEYS=roles-test-producer-key-0123"}

	edgeP := startCmd(t, env, "edge", "--nats-url", url, "--listen", "127.0.0.1:0")
	ingestP := startCmd(t, env, "ingest", "--nats-url", url, "--listen", "127.0.0.1:0")
	for _, p := range []*proc{edgeP, ingestP} {
		code, body := httpDo(t, "GET", p.url("/readyz"), nil, "")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "streams apply") {
			t.Errorf("/readyz before the stream exists = %d %s, want 503 naming streams apply", code, body)
		}
		if code, _ := httpDo(t, "GET", p.url("/healthz"), nil, ""); code != 200 {
			t.Errorf("/healthz = %d", code)
		}
	}
	// Each role serves its own routes only.
	if code, _ := httpDo(t, "GET", edgeP.url("/v1/users/alice/messages"), nil, ""); code != http.StatusNotFound {
		t.Errorf("edge serves ingest routes: %d", code)
	}
	if code, _ := httpDo(t, "GET", ingestP.url("/v1/ws?device=d"), nil, ""); code != http.StatusNotFound {
		t.Errorf("ingest serves edge routes: %d", code)
	}

	out, _, err := runCmd(t, nil, "streams", "apply", "--nats-url", url, "--replicas", "1", "--wait", "10s")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"stream HERALD applied", "herald.user.*", "herald.sched.*.*", "replicas", "10000", "bucket HERALD_DEVICES applied", "cannot turn them off"} {
		if !strings.Contains(out, want) {
			t.Errorf("streams apply output lacks %q:\n%s", want, out)
		}
	}
	for _, p := range []*proc{edgeP, ingestP} {
		waitFor(t, 10*time.Second, func() error {
			if code, body := httpDo(t, "GET", p.url("/readyz"), nil, ""); code != 200 {
				return fmt.Errorf("/readyz = %d %s", code, body)
			}
			return nil
		})
	}
	// Applying again changes nothing and succeeds.
	if _, _, err := runCmd(t, nil, "streams", "apply", "--nats-url", url); err != nil {
		t.Fatalf("second apply: %v", err)
	}

	code, body := httpDo(t, "POST", ingestP.url("/v1/users/alice/messages"), map[string]string{
		"Authorization": "Bearer roles-test-producer-key-0123", "Content-Type": "application/json",
	}, `{"title":"hi"}`)
	if code != http.StatusCreated {
		t.Fatalf("publish through herald ingest: %d %s", code, body)
	}

	out, _, err = runCmd(t, nil, "streams", "info", "--nats-url", url, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Config struct {
			Name string `json:"name"`
		} `json:"config"`
		State struct {
			Msgs uint64 `json:"messages"`
		} `json:"state"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil || info.Config.Name != "HERALD" || info.State.Msgs != 1 {
		t.Errorf("streams info --json = %+v, %v\n%s", info, err, out)
	}
	out, _, err = runCmd(t, nil, "streams", "info", "--nats-url", url)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"stream", "HERALD", "leader", "first seq", "last seq", "consumers"} {
		if !strings.Contains(out, want) {
			t.Errorf("streams info lacks %q:\n%s", want, out)
		}
	}
}

func TestRolesNameMissingAuth(t *testing.T) {
	t.Parallel()
	cases := []struct {
		cmd  string
		want string
	}{
		{"ingest", "ingest.producer_keys"},
		{"edge", "auth.jwt_secret"},
	}
	for _, tc := range cases {
		t.Run(tc.cmd, func(t *testing.T) {
			_, _, err := runCmd(t, nil, tc.cmd, "--nats-url", "nats://127.0.0.1:1", "--listen", "127.0.0.1:0")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%s without auth: %v, want an error naming %s", tc.cmd, err, tc.want)
			}
		})
	}
}

func TestStreamsInfoMissingStream(t *testing.T) {
	t.Parallel()
	srv := streamstest.RunServer(t)
	start := time.Now()
	_, _, err := runCmd(t, nil, "streams", "info", "--nats-url", srv.ClientURL(), "--wait", "20s")
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("streams info without a stream: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("a missing stream took %v to report; it should not be retried", d)
	}
}

func TestStreamsWaitGivesUp(t *testing.T) {
	t.Parallel()
	_, _, err := runCmd(t, nil, "streams", "apply", "--nats-url", "nats://127.0.0.1:1", "--wait", "300ms")
	if err == nil || !strings.Contains(err.Error(), "--wait 300ms") {
		t.Fatalf("streams apply against nothing: %v", err)
	}
}
