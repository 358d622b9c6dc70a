package streams_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/streams"
)

func TestWrite(t *testing.T) {
	t.Parallel()
	js := runJetStream(t)
	c := streams.DefaultConfig()
	c.MaxAge = time.Hour
	ctx := context.Background()
	if _, err := streams.Apply(ctx, js, c); err != nil {
		t.Fatal(err)
	}

	publish := func(e streams.Envelope, lc streams.Lifecycle) (herald.Published, error) {
		w, err := streams.NewWrite(c, e, lc, 4096)
		if err != nil {
			return herald.Published{}, err
		}
		return w.Publish(ctx, js)
	}
	first, err := publish(streams.Envelope{ID: "k-1", User: "alice", Body: "one"}, streams.Lifecycle{TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if first.ID != "k-1" || first.Seq == 0 || first.User != "alice" || first.Time == nil || first.Duplicate {
		t.Errorf("first: %+v", first)
	}
	retry, err := publish(streams.Envelope{ID: "k-1", User: "alice", Body: "again"}, streams.Lifecycle{})
	if err != nil || !retry.Duplicate || retry.Seq != first.Seq {
		t.Errorf("retry: %+v, %v; want a duplicate of seq %d", retry, err, first.Seq)
	}
	sched, err := publish(streams.Envelope{User: "alice", Body: "later"}, streams.Lifecycle{DeliverAt: time.Now().Add(time.Minute)})
	if err != nil || sched.Seq != 0 || sched.DeliverAt == nil || sched.ID == "" {
		t.Errorf("scheduled: %+v, %v; want an id, deliver_at and no seq", sched, err)
	}

	now := time.Now()
	for _, tc := range []struct {
		name string
		lc   streams.Lifecycle
		body string
		want error
	}{
		{"ttl under 1s", streams.Lifecycle{TTL: time.Millisecond}, "x", streams.ErrLifecycle},
		{"ttl over max age", streams.Lifecycle{TTL: 2 * time.Hour}, "x", streams.ErrLifecycle},
		{"delivery in the past", streams.Lifecycle{DeliverAt: now.Add(-time.Minute)}, "x", streams.ErrLifecycle},
		{"delivery past max age", streams.Lifecycle{DeliverAt: now.Add(2 * time.Hour)}, "x", streams.ErrLifecycle},
		{"too large", streams.Lifecycle{}, string(make([]byte, 5000)), streams.ErrTooLarge},
	} {
		_, err := streams.NewWrite(c, streams.Envelope{User: "alice", Body: tc.body, Time: now}, tc.lc, 4096)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}
