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

// runJetStream starts a JetStream server for t and returns a client of it.
func runJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(streamstest.Connect(t, streamstest.RunServer(t).ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func TestApplyAllAndHealth(t *testing.T) {
	t.Parallel()
	js := runJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := streamstest.StreamConfig()

	if err := streams.Ready(ctx, js, c.Name); !errors.Is(err, streams.ErrStreamMissing) {
		t.Fatalf("Ready before apply = %v, want ErrStreamMissing", err)
	}
	h, err := streams.CheckHealth(ctx, js, streams.HealthOptions{Stream: c.Name})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Problems) != 1 || len(h.Streams) != 0 {
		t.Errorf("health before apply: problems %q, streams %+v; want the missing stream alone", h.Problems, h.Streams)
	}

	for i := 0; i < 2; i++ {
		s, kv, err := streams.ApplyAll(ctx, js, c, time.Hour)
		if err != nil {
			t.Fatalf("apply %d: %v", i, err)
		}
		info, err := streams.CachedInfo(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.Name != c.Name || kv.Bucket() != streams.DevicesBucketName {
			t.Errorf("apply %d: stream %s, bucket %s", i, info.Config.Name, kv.Bucket())
		}
	}
	if err := streams.Ready(ctx, js, c.Name); err != nil {
		t.Fatalf("Ready after apply: %v", err)
	}
	h, err = streams.CheckHealth(ctx, js, streams.HealthOptions{Stream: c.Name, DevicesRequired: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Problems) != 0 || len(h.Streams) != 2 || h.Streams[1].Name != streams.DevicesStreamName {
		t.Errorf("health after apply: problems %q, streams %+v", h.Problems, h.Streams)
	}
}

func TestRetry(t *testing.T) {
	t.Parallel()
	js := runJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errBusy := errors.New("busy")

	calls := 0
	err := streams.Retry(ctx, js, streams.RetryOptions{Timeout: time.Second}, func(context.Context) error {
		if calls++; calls < 3 {
			return errBusy
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Errorf("Retry = %v after %d calls, want nil after 3", err, calls)
	}

	calls = 0
	err = streams.Retry(ctx, js, streams.RetryOptions{Timeout: time.Second}, func(context.Context) error {
		calls++
		return streams.Permanent(errBusy)
	})
	if !errors.Is(err, errBusy) || calls != 1 {
		t.Errorf("Retry of a permanent error = %v after %d calls, want errBusy after 1", err, calls)
	}

	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	err = streams.Retry(short, js, streams.RetryOptions{Timeout: time.Second}, func(context.Context) error { return errBusy })
	if !errors.Is(err, errBusy) {
		t.Errorf("Retry past its ctx = %v, want errBusy", err)
	}
}
