package main

import (
	"encoding/json"
	"testing"

	"github.com/herald-push/herald/streams/streamstest"
)

// TestPublishIdempotencyAcrossPaths: `herald publish` over HTTP (through
// `herald ingest`) and with --nats set the same Nats-Msg-Id for a user and
// an id, so a retry by the other path is a duplicate; the same id for
// another user is a message of its own.
func TestPublishIdempotencyAcrossPaths(t *testing.T) {
	t.Parallel()
	srv := streamstest.RunServer(t)
	url := srv.ClientURL()
	const key = "publish-test-producer-key-0123"
	env := []string{"HERALD_JWT_SECRET=publish-test-secret-0123456789abcdef", "HERALD_PRODUCER_KEYS=" + key}
	if _, _, err := runCmd(t, nil, "streams", "apply", "--nats-url", url, "--wait", "10s"); err != nil {
		t.Fatal(err)
	}
	ingestP := startCmd(t, env, "ingest", "--nats-url", url, "--listen", "127.0.0.1:0")

	type answer struct {
		ID        string `json:"id"`
		Seq       uint64 `json:"seq"`
		Duplicate bool   `json:"duplicate"`
	}
	publish := func(args ...string) answer {
		t.Helper()
		out, _, err := runCmd(t, env, append([]string{"publish"}, args...)...)
		if err != nil {
			t.Fatalf("publish %v: %v", args, err)
		}
		var a answer
		if err := json.Unmarshal([]byte(out), &a); err != nil {
			t.Fatalf("publish %v printed %q: %v", args, out, err)
		}
		return a
	}
	viaHTTP := []string{"--url", ingestP.url(""), "--key", key}
	viaNATS := []string{"--nats", "--nats-url", url}

	first := publish(append(viaHTTP, "--user", "alice", "--id", "k-1", "over HTTP")...)
	retry := publish(append(viaNATS, "--user", "alice", "--id", "k-1", "over NATS")...)
	if first.Duplicate || !retry.Duplicate || retry.Seq != first.Seq || retry.ID != "k-1" {
		t.Errorf("HTTP then --nats with one id: %+v then %+v, want one message", first, retry)
	}
	other := publish(append(viaNATS, "--user", "bob", "--id", "k-1", "for bob")...)
	retry = publish(append(viaHTTP, "--user", "bob", "--id", "k-1", "for bob")...)
	if other.Duplicate || other.Seq == first.Seq || !retry.Duplicate || retry.Seq != other.Seq {
		t.Errorf("bob with alice's id: %+v, then over HTTP %+v; want a new message, then its duplicate", other, retry)
	}
}
