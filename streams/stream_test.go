package streams_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald/streams"
	"github.com/herald-push/herald/streams/streamstest"
)

func TestApplyIsIdempotent(t *testing.T) {
	t.Parallel()
	srv := streamstest.RunServer(t)
	nc := streamstest.Connect(t, srv.ClientURL())
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, err := streams.Lookup(ctx, js, "HERALD"); !errors.Is(err, streams.ErrStreamMissing) {
		t.Fatalf("Lookup before apply = %v, want ErrStreamMissing", err)
	}
	c := streamstest.StreamConfig()
	for i := 0; i < 2; i++ {
		if _, err := streams.Apply(ctx, js, c); err != nil {
			t.Fatalf("apply %d: %v", i, err)
		}
	}
	c.MaxMsgsPerUser = 5
	s, err := streams.Apply(ctx, js, c)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := info.Config
	if got.MaxMsgsPerSubject != 5 || !got.AllowDirect || got.Subjects[0] != "herald.user.*" ||
		got.Duplicates != 2*time.Minute || got.MaxConsumers != c.MaxConsumers || got.RePublish == nil ||
		got.RePublish.Source != "herald.user.*" || len(got.Subjects) != 2 || got.Subjects[1] != "herald.sched.*.*" ||
		!got.AllowMsgTTL || !got.AllowMsgSchedules || !got.AllowRollup {
		t.Errorf("stream config after update = %+v", got)
	}

	// A stored message is republished to the live subject of its user.
	sub, err := nc.SubscribeSync(streams.Subjects{}.Live("a.b"))
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(ctx, streams.Subjects{}.User("a.b"), []byte("hi"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != "hi" || m.Header.Get("Nats-Sequence") == "" || ack.Sequence != 1 {
		t.Errorf("republished %q headers %v", m.Data, m.Header)
	}
}
