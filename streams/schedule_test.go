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

// TestScheduleStoresOnTheUserSubject checks JetStream's side of a schedule
// as Herald writes it: when it is due, a copy with the ttl is stored on the
// user's subject and republished to the live subject, the schedule is
// gone, and a purge of another schedule's subject counts it.
func TestScheduleStoresOnTheUserSubject(t *testing.T) {
	t.Parallel()
	srv := streamstest.RunServer(t)
	nc := streamstest.Connect(t, srv.ClientURL())
	streamstest.Apply(t, nc, streamstest.StreamConfig())
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	subj := streams.Subjects{}
	live, err := nc.SubscribeSync(subj.Live("a.b"))
	if err != nil {
		t.Fatal(err)
	}

	at := time.Now().Add(time.Second)
	m := subj.NewMsg("a.b", "m.1", []byte(`{"body":"later"}`), streams.Lifecycle{TTL: 90 * time.Second, DeliverAt: at})
	if m.Subject != "herald.sched.~YS5i.~bS4x" {
		t.Fatalf("schedule subject %q", m.Subject)
	}
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	other := subj.NewMsg("a.b", "m-2", []byte(`{"body":"cancelled"}`), streams.Lifecycle{DeliverAt: at.Add(time.Hour)})
	if _, err := js.PublishMsg(ctx, other); err != nil {
		t.Fatal(err)
	}

	got, err := live.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if time.Now().Before(at) {
		t.Errorf("stored before it was due")
	}
	if string(got.Data) != `{"body":"later"}` || got.Header.Get(streams.HeaderTTL) != "90" ||
		got.Header.Get(streams.HeaderScheduler) != m.Subject || got.Header.Get(jetstream.MsgIDHeader) != "" {
		t.Errorf("stored %q with headers %v", got.Data, got.Header)
	}
	s, err := js.Stream(ctx, "HERALD")
	if err != nil {
		t.Fatal(err)
	}
	streamstest.WaitFor(t, 5*time.Second, func() error {
		if _, err := s.GetLastMsgForSubject(ctx, m.Subject); !errors.Is(err, jetstream.ErrMsgNotFound) {
			return errors.New("the schedule is still stored")
		}
		return nil
	})

	if n, err := streams.PurgeSubject(ctx, js, "HERALD", other.Subject); err != nil || n != 1 {
		t.Fatalf("purge of a pending schedule = %d, %v", n, err)
	}
	if _, err := streams.PurgeSubject(ctx, js, "HERALD", other.Subject); !errors.Is(err, streams.ErrNotFound) {
		t.Fatalf("second purge = %v, want ErrNotFound", err)
	}
}

func TestNewMsg(t *testing.T) {
	t.Parallel()
	subj := streams.Subjects{Prefix: "p"}
	m := subj.NewMsg("alice", "m1", []byte("x"), streams.Lifecycle{TTL: 1500 * time.Millisecond})
	if m.Subject != "p.user.alice" || m.Header.Get(streams.HeaderTTL) != "2" || m.Header.Get(jetstream.MsgIDHeader) != "alice:m1" || m.Header.Get(streams.HeaderSchedule) != "" {
		t.Errorf("NewMsg with a ttl = %s %v", m.Subject, m.Header)
	}
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.FixedZone("CET", 3600))
	m = subj.NewMsg("alice", "m1", []byte("x"), streams.Lifecycle{DeliverAt: at})
	if m.Subject != "p.sched.alice.m1" || m.Header.Get(streams.HeaderSchedule) != "@at 2026-11-23T09:00:00Z" ||
		m.Header.Get(streams.HeaderScheduleTarget) != "p.user.alice" || m.Header.Get(streams.HeaderScheduleTTL) != "" || m.Header.Get(streams.HeaderTTL) != "" {
		t.Errorf("NewMsg with deliver_at = %s %v", m.Subject, m.Header)
	}
}
