package test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/ingest"
	"github.com/herald-push/herald/streams"
	"github.com/herald-push/herald/streams/streamstest"
)

// The message lifecycle of SPEC §10, end to end: producers publish through
// ingest, devices receive from an edge on the same listener (as serve runs
// them), on both engines.

// withProducerKey configures the producer key of the tests.
func withProducerKey(c *config.Config) { c.Ingest.ProducerKeys = []string{testProducerKey} }

// withLifecycle is withProducerKey with no resend during a test: the
// devices do not ack, and a resend must not come before a fence.
func withLifecycle(c *config.Config) {
	withProducerKey(c)
	c.Edge.AckWait = time.Minute
}

// lifecycleConfig is testConfig with withLifecycle.
func lifecycleConfig(engine string, mutate func(*config.Config)) config.Config {
	return testConfig(engine, func(c *config.Config) {
		withLifecycle(c)
		if mutate != nil {
			mutate(c)
		}
	})
}

// newNode starts an edge with ingest on its listener, on a connection of
// its own to c's server.
func newNode(t testing.TB, c *cluster) *edgeNode {
	t.Helper()
	return newNodeOn(t, c.cfg, streamstest.Connect(t, c.srv.ClientURL()))
}

func newNodeOn(t testing.TB, cfg config.Config, nc *nats.Conn) *edgeNode {
	t.Helper()
	return newEdgeWith(t, cfg, nc, func(mux *http.ServeMux, reg *prometheus.Registry) {
		js, err := jetstream.New(nc, ingest.JetStreamOpts(cfg.Ingest)...)
		if err != nil {
			t.Fatal(err)
		}
		h, err := ingest.New(ingest.Options{Ingest: cfg.Ingest, Stream: cfg.Stream, MaxBodyBytes: cfg.HTTP.MaxBodyBytes, Registerer: reg}, js)
		if err != nil {
			t.Fatal(err)
		}
		h.Register(mux)
	})
}

// call sends a request to base+path with the bearer credential auth ("":
// none) and returns the status and body.
func call(t testing.TB, method, base, path, auth, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = bytes.NewBufferString(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, b
}

// produce publishes body (a JSON message) for user and expects status; it
// returns the answer.
func produce(t testing.TB, base, user, body string, status int) map[string]any {
	t.Helper()
	return expectJSON(t, http.MethodPost, base, "/v1/users/"+url.PathEscape(user)+"/messages", testProducerKey, body, status)
}

func expectJSON(t testing.TB, method, base, path, auth, body string, status int) map[string]any {
	t.Helper()
	got, b := call(t, method, base, path, auth, body)
	if got != status {
		t.Fatalf("%s %s: %d %s, want %d", method, path, got, b, status)
	}
	var out map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s %s: %s: %v", method, path, b, err)
		}
	}
	return out
}

func seqOf(t testing.TB, answer map[string]any) uint64 {
	t.Helper()
	n, ok := answer["seq"].(float64)
	if !ok || n <= 0 {
		t.Fatalf("answer without a seq: %v", answer)
	}
	return uint64(n)
}

// TestLifecycleTTL: a message with a ttl is delivered while it lives, with
// its expires; once expired it is delivered to nobody (backlog, resume,
// history).
func TestLifecycleTTL(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		c := newCluster(t, engine, withLifecycle)
		n := newNode(t, c)
		early := dialSynced(t, n.url, "alice", "early", "")
		first := seqOf(t, produce(t, n.url, "alice", `{"body":"before"}`, http.StatusCreated))
		gone := seqOf(t, produce(t, n.url, "alice", `{"body":"short-lived","ttl":1}`, http.StatusCreated))
		got := early.messages(t, 2)
		if got[1].Seq != gone || got[1].Expires == nil || !got[1].Expires.Equal(got[1].Time.Add(time.Second)) {
			t.Fatalf("live delivery %+v, want seq %d with expires a second after its time", got[1], gone)
		}

		// Wait until JetStream removed it.
		waitUntil(t, 10*time.Second, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			s, err := c.js.Stream(ctx, c.cfg.Stream.Name)
			if err != nil {
				return false
			}
			_, err = s.GetMsg(ctx, gone)
			return errors.Is(err, jetstream.ErrMsgNotFound)
		})
		produce(t, n.url, "alice", `{"body":"kept"}`, http.StatusCreated)
		fresh := dial(t, n.url, "alice", "fresh", "since=0")
		fresh.expect(t, "welcome")
		if got := bodies(fresh.messages(t, 2)); got[0] != "before" || got[1] != "kept" {
			t.Errorf("the backlog from 0 is %v, want [before kept]", got)
		}
		resumed := dial(t, n.url, "alice", "resumed", "since="+strconv.FormatUint(first, 10))
		resumed.expect(t, "welcome")
		if got := bodies(resumed.messages(t, 1)); got[0] != "kept" {
			t.Errorf("resuming after %d delivered %v, want [kept]", first, got)
		}
		h := expectJSON(t, http.MethodGet, n.url, "/v1/users/alice/messages", testProducerKey, "", http.StatusOK)
		if msgs := h["messages"].([]any); len(msgs) != 2 {
			t.Errorf("history holds %d messages, want 2: %v", len(msgs), msgs)
		}
	})
}

// TestLifecycleSchedule: a scheduled message is 202 with its deliver_at and
// reaches a connected device when due, after what was published before
// that, with its time set to deliver_at; a cancelled one never arrives.
func TestLifecycleSchedule(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		c := newCluster(t, engine, withLifecycle)
		n := newNode(t, c)
		d := dialSynced(t, n.url, "alice", "phone", "")

		cancelled := produce(t, n.url, "alice", `{"id":"c-1","body":"cancelled","delay":"1s"}`, http.StatusAccepted)
		later := produce(t, n.url, "alice", `{"id":"l-1","body":"later","delay":"1.5s"}`, http.StatusAccepted)
		if later["id"] != "l-1" || later["deliver_at"] == nil || later["seq"] != nil {
			t.Fatalf("scheduled answer %v", later)
		}
		expectJSON(t, http.MethodDelete, n.url, "/v1/users/alice/scheduled/c-1", testProducerKey, "", http.StatusNoContent)
		expectJSON(t, http.MethodDelete, n.url, "/v1/users/alice/scheduled/c-1", testProducerKey, "", http.StatusNotFound)
		now := seqOf(t, produce(t, n.url, "alice", `{"body":"now"}`, http.StatusCreated))

		got := d.messages(t, 2)
		at, err := time.Parse(time.RFC3339Nano, later["deliver_at"].(string))
		if err != nil {
			t.Fatal(err)
		}
		if got[0].Seq != now || got[1].Body != "later" || got[1].ID != "l-1" || !got[1].Time.Equal(at) || got[1].Seq <= now {
			t.Fatalf("delivered %+v", got)
		}
		if time.Now().Before(at) {
			t.Fatalf("delivered before its deliver_at %v", at)
		}
		// The cancelled one was due half a second before: a message
		// published now is the next the device gets.
		_ = cancelled
		fence := seqOf(t, produce(t, n.url, "alice", `{"body":"fence"}`, http.StatusCreated))
		if f := d.messages(t, 1)[0]; f.Seq != fence {
			t.Fatalf("after the fence got %+v", f)
		}
		expectJSON(t, http.MethodDelete, n.url, "/v1/users/alice/scheduled/l-1", testProducerKey, "", http.StatusNotFound)
	})
}

// TestLifecycleUpdateDelete: PUT and DELETE on a message id, and ref+op in
// a publish, reach the device as messages of their own, in order, naming
// the message they apply to.
func TestLifecycleUpdateDelete(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		c := newCluster(t, engine, withLifecycle)
		n := newNode(t, c)
		d := dialSynced(t, n.url, "alice", "phone", "")
		produce(t, n.url, "alice", `{"id":"m-1","body":"v1"}`, http.StatusCreated)
		expectJSON(t, http.MethodPut, n.url, "/v1/users/alice/messages/m-1", testProducerKey, `{"body":"v2"}`, http.StatusCreated)
		produce(t, n.url, "alice", `{"ref":"m-1","op":"update","body":"v3"}`, http.StatusCreated)
		expectJSON(t, http.MethodDelete, n.url, "/v1/users/alice/messages/m-1", testProducerKey, "", http.StatusCreated)
		got := d.messages(t, 4)
		want := []struct{ body, ref, op string }{{"v1", "", ""}, {"v2", "m-1", herald.OpUpdate}, {"v3", "m-1", herald.OpUpdate}, {"", "m-1", herald.OpDelete}}
		for i, w := range want {
			if got[i].Body != w.body || got[i].Ref != w.ref || got[i].Op != w.op || (i > 0 && got[i].Seq <= got[i-1].Seq) {
				t.Errorf("message %d = %+v, want %+v", i, got[i], w)
			}
		}
		expectJSON(t, http.MethodPost, n.url, "/v1/users/alice/messages", testProducerKey, `{"body":"x","op":"delete"}`, http.StatusBadRequest)
	})
}

// TestLifecycleScheduleSurvivesRestart: a schedule stored before the NATS
// server restarts fires after it, once.
func TestLifecycleScheduleSurvivesRestart(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		opts := streamstest.Options(t.TempDir())
		srv := streamstest.Start(t, opts)
		c := clusterOn(t, srv, lifecycleConfig(engine, nil))
		n := newNode(t, c)
		d := dialSynced(t, n.url, "alice", "phone", "")
		s := produce(t, n.url, "alice", `{"id":"s-1","body":"scheduled","delay":"2s"}`, http.StatusAccepted)
		at, err := time.Parse(time.RFC3339Nano, s["deliver_at"].(string))
		if err != nil {
			t.Fatal(err)
		}

		srv.Shutdown()
		srv.WaitForShutdown()
		if time.Now().After(at) {
			t.Skip("the server took until deliver_at to stop; the restart proves nothing")
		}
		c.srv = streamstest.Restart(t, srv, opts)

		got := d.messages(t, 1)
		if got[0].Body != "scheduled" || time.Now().Before(at) {
			t.Fatalf("delivered %+v at %v, want it at %v", got[0], time.Now(), at)
		}
		// Once: a message published now is the next.
		fence := seqOf(t, produce(t, n.url, "alice", `{"body":"fence"}`, http.StatusCreated))
		if f := d.messages(t, 1)[0]; f.Seq != fence {
			t.Fatalf("after the fence got %+v", f)
		}
	})
}

// TestLifecycleScheduleLeaderChange: a schedule of an R3 stream fires once
// after its stream leader stepped down before it was due.
func TestLifecycleScheduleLeaderChange(t *testing.T) {
	t.Parallel()
	servers, _ := streamstest.StartCluster(t, 3)
	url := streamstest.ClusterURL(servers)
	cfg := lifecycleConfig(config.DeliveryLive, func(cfg *config.Config) {
		cfg.NATS.URL = url
		cfg.Stream.Replicas = 3
	})
	nc := streamstest.Connect(t, url)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	streamstest.WaitFor(t, 20*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _, err := streams.ApplyAll(ctx, js, cfg.Stream, cfg.Edge.DeviceTTL)
		return err
	})
	c := &cluster{srv: servers[0], nc: nc, js: js, cfg: cfg}
	n := newNodeOn(t, cfg, streamstest.Connect(t, url))
	d := dialSynced(t, n.url, "alice", "phone", "")

	leader := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, cfg.Stream.Name)
		if err != nil {
			return ""
		}
		info, err := s.Info(ctx)
		if err != nil || info.Cluster == nil {
			return ""
		}
		return info.Cluster.Leader
	}
	var before string
	waitUntil(t, 10*time.Second, func() bool { before = leader(); return before != "" })

	s := produce(t, n.url, "alice", `{"id":"s-1","body":"scheduled","delay":"3s"}`, http.StatusAccepted)
	at, err := time.Parse(time.RFC3339Nano, s["deliver_at"].(string))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN."+cfg.Stream.Name, nil); err != nil {
		t.Fatalf("step down: %v", err)
	}
	waitUntil(t, 10*time.Second, func() bool { l := leader(); return l != "" && l != before })
	if time.Now().After(at) {
		t.Skip("the leader change took until deliver_at; it proves nothing")
	}

	got := d.messages(t, 1)
	if got[0].Body != "scheduled" || time.Now().Before(at) {
		t.Fatalf("delivered %+v at %v, want it at %v", got[0], time.Now(), at)
	}
	fence := c.publish(t, "alice", "fence")
	if f := d.messages(t, 1)[0]; f.Seq != fence {
		t.Fatalf("after the fence got %+v: the schedule fired twice?", f)
	}
}
