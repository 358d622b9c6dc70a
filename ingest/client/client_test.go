package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/edge"
	"github.com/herald-push/herald/edge/token"
	"github.com/herald-push/herald/ingest"
	"github.com/herald-push/herald/ingest/client"
	"github.com/herald-push/herald/streams/streamstest"
)

const (
	producerKey = "client-test-producer-key-0123"
	jwtSecret   = "client-test-secret-0123456789abcdef"
)

// startHerald serves ingest and an edge (consumer engine) on one embedded
// JetStream server, as herald serve does, and returns their base URL.
func startHerald(t *testing.T) string {
	t.Helper()
	cfg := config.Default()
	cfg.Ingest.ProducerKeys = []string{producerKey}
	cfg.Auth.JWTSecret = jwtSecret
	cfg.Stream.MaxAge = time.Hour
	nc := streamstest.Connect(t, streamstest.RunServer(t).ClientURL())
	streamstest.Apply(t, nc, cfg.Stream)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	in, err := ingest.New(ingest.Options{Ingest: cfg.Ingest, Stream: cfg.Stream, MaxBodyBytes: cfg.HTTP.MaxBodyBytes}, js)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := edge.NewConsumerEngine(js, cfg.Stream, cfg.Edge, 5*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := token.New(cfg.Auth)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ingest.NewKeyring(cfg.Ingest.ProducerKeys)
	if err != nil {
		t.Fatal(err)
	}
	es, err := edge.New(edge.Options{Edge: cfg.Edge, Engine: eng, Tokens: tokens, JetStream: js, Stream: cfg.Stream, Producers: keys})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	in.Register(mux)
	es.Register(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = es.Shutdown(ctx)
		hs.Close()
	})
	return hs.URL
}

func newClient(t *testing.T, url, cred string) *client.Client {
	t.Helper()
	c, err := client.New(client.Options{URL: url, Credential: cred})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPublish(t *testing.T) {
	t.Parallel()
	c := newClient(t, startHerald(t), producerKey)
	ctx := context.Background()

	first, err := c.Publish(ctx, "alice", client.Message{Title: "hi", Body: "one", TTL: time.Minute, IdempotencyKey: "k-1"})
	if err != nil {
		t.Fatal(err)
	}
	if first.ID != "k-1" || first.Seq == 0 || first.User != "alice" || first.Time == nil || first.Duplicate {
		t.Errorf("first publish: %+v", first)
	}
	retry, err := c.Publish(ctx, "alice", client.Message{Body: "one", IdempotencyKey: "k-1"})
	if err != nil {
		t.Fatal(err)
	}
	if !retry.Duplicate || retry.Seq != first.Seq {
		t.Errorf("retry: %+v, want a duplicate of seq %d", retry, first.Seq)
	}
	sched, err := c.Publish(ctx, "alice", client.Message{Body: "later", Delay: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if sched.Seq != 0 || sched.DeliverAt == nil || sched.ID == "" {
		t.Errorf("scheduled publish: %+v, want deliver_at and no seq", sched)
	}
	at := time.Now().Add(time.Minute).UTC().Truncate(time.Millisecond)
	sched, err = c.Publish(ctx, "alice", client.Message{Body: "at", DeliverAt: at})
	if err != nil {
		t.Fatal(err)
	}
	if sched.DeliverAt == nil || !sched.DeliverAt.Equal(at) {
		t.Errorf("publish at %v: %+v", at, sched)
	}
}

func TestPublishErrors(t *testing.T) {
	t.Parallel()
	url := startHerald(t)
	for _, tc := range []struct {
		name   string
		cred   string
		m      client.Message
		status int
		code   herald.Code
	}{
		{"unknown key", "not-a-producer-key-0123", client.Message{Body: "x"}, http.StatusUnauthorized, herald.Unauthorized},
		{"ttl over max age", producerKey, client.Message{Body: "x", TTL: 2 * time.Hour}, http.StatusBadRequest, herald.InvalidMessage},
		{"bad op", producerKey, client.Message{Body: "x", Ref: "a", Op: "nope"}, http.StatusBadRequest, herald.InvalidMessage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := newClient(t, url, tc.cred).Publish(context.Background(), "alice", tc.m)
			var e *client.Error
			if !errors.As(err, &e) || e.Status != tc.status || e.Code != tc.code {
				t.Errorf("got %v, want %d %s", err, tc.status, tc.code)
			}
		})
	}
}

func TestDevices(t *testing.T) {
	t.Parallel()
	url := startHerald(t)
	ctx := context.Background()
	p, err := newClient(t, url, producerKey).Publish(ctx, "alice", client.Message{Body: "one"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := newClient(t, url, producerKey).Devices(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if st.LastSeq != p.Seq || len(st.Devices) != 0 {
		t.Errorf("devices of alice: %+v, want last seq %d and no devices", st, p.Seq)
	}
	tok, err := token.Mint(jwtSecret, "bob", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newClient(t, url, tok).Devices(ctx, "bob"); err != nil {
		t.Errorf("bob's devices with his token: %v", err)
	}
	_, err = newClient(t, url, tok).Devices(ctx, "alice")
	var e *client.Error
	if !errors.As(err, &e) || e.Status/100 != 4 || e.Code == "" {
		t.Errorf("alice's devices with bob's token: %v, want a 4xx with a code", err)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	for _, o := range []client.Options{
		{URL: "127.0.0.1:8080", Credential: producerKey},
		{URL: "ftp://h", Credential: producerKey},
		{URL: "http://127.0.0.1:8080"},
	} {
		if _, err := client.New(o); !errors.Is(err, client.ErrOptions) {
			t.Errorf("New(%+v): %v, want ErrOptions", o, err)
		}
	}
}
