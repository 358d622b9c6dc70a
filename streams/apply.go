package streams

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ApplyAll creates the stream and the devices bucket or updates them to c,
// the bucket's entries expiring after deviceTTL (DevicesBucket): the one
// apply that `herald streams apply`, serve and the tests run. Running it
// again with the same configuration changes nothing.
func ApplyAll(ctx context.Context, js jetstream.JetStream, c Config, deviceTTL time.Duration) (jetstream.Stream, jetstream.KeyValue, error) {
	s, err := Apply(ctx, js, c)
	if err != nil {
		return nil, nil, err
	}
	kv, err := ApplyDevices(ctx, js, DevicesBucket(c, deviceTTL))
	if err != nil {
		return nil, nil, err
	}
	return s, kv, nil
}

// RetryOptions are the knobs of Retry.
type RetryOptions struct {
	// Timeout bounds each attempt of the operation.
	Timeout time.Duration
	// NotConnected, when set, says why the connection is down (the last
	// connect error, or nil when there is none); Retry reports it when it
	// gives up while disconnected.
	NotConnected func() error
	// Logger receives one line per failed attempt; nil discards them.
	Logger *slog.Logger
}

// Retry runs op against js until it succeeds, fails with an error marked
// Permanent, or ctx ends, waiting 100 ms after the first failure and twice
// as long after each next one, up to 2 s. While js's connection is down it
// does not run op. It is how a command waits for a cluster that is still
// starting (no JetStream leader yet, no quorum).
func Retry(ctx context.Context, js jetstream.JetStream, o RetryOptions, op func(context.Context) error) error {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	nc := js.Conn()
	backoff := 100 * time.Millisecond
	var err error
	for {
		if nc.IsConnected() {
			octx, cancel := context.WithTimeout(ctx, o.Timeout)
			err = op(octx)
			cancel()
			if err == nil || errors.As(err, new(permanentError)) {
				return err
			}
			log.Info("waiting for JetStream", "err", err)
		} else {
			err = errors.New("not connected to NATS")
			if o.NotConnected != nil {
				if last := o.NotConnected(); last != nil {
					err = fmt.Errorf("not connected to NATS: %w", last)
				}
			}
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("streams: gave up: %w", err)
		case <-t.C:
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// Permanent marks err as one Retry does not retry; the mark is transparent
// to errors.Is and errors.As.
func Permanent(err error) error { return permanentError{err} }

type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// CachedInfo returns the info s came with from its lookup or apply, which
// is current right after either, sparing a second request; it asks the
// server only when there is none.
func CachedInfo(ctx context.Context, s jetstream.Stream) (*jetstream.StreamInfo, error) {
	if info := s.CachedInfo(); info != nil {
		return info, nil
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("streams: stream info: %w", err)
	}
	return info, nil
}
