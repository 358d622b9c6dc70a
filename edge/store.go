package edge

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald/streams"
)

// storeReader reads single messages of the stream for the engines: the next
// message of a subject from a seq, and a subject's last message. With direct
// get on (the HERALD stream has it) it reads with streams.DirectGet, which
// takes the server's headers rather than ones a producer forged; without, it
// falls back to the stream's message get.
type storeReader struct {
	s      jetstream.Stream
	d      streams.DirectGet
	direct bool // the stream allows direct get
}

func newStoreReader(js jetstream.JetStream, s jetstream.Stream) storeReader {
	r := storeReader{s: s}
	if info := s.CachedInfo(); info != nil && info.Config.AllowDirect {
		r.d, r.direct = streams.NewDirectGet(js, info.Config.Name), true
	}
	return r
}

// next returns the first message of subject at or after seq;
// jetstream.ErrMsgNotFound when there is none.
func (r storeReader) next(ctx context.Context, seq uint64, subject string) (*jetstream.RawStreamMsg, error) {
	if !r.direct {
		return r.s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
	}
	return r.d.Next(ctx, seq, subject)
}

// nextFromLeader is next asked of the stream's leader (the message get
// API), which holds every stored message: a direct get may be answered by
// a replica that lags behind it.
func (r storeReader) nextFromLeader(ctx context.Context, seq uint64, subject string) (*jetstream.RawStreamMsg, error) {
	return r.s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
}

// last returns the last message of subject; jetstream.ErrMsgNotFound when
// there is none.
func (r storeReader) last(ctx context.Context, subject string) (*jetstream.RawStreamMsg, error) {
	if !r.direct {
		return r.s.GetLastMsgForSubject(ctx, subject)
	}
	return r.d.Last(ctx, subject)
}

// nextRetry is next that outlasts an outage: a failure other than
// jetstream.ErrMsgNotFound (NATS down, a leader election, a busy server)
// is passed to failed (when not nil) and the read retried, backing off from
// 50 ms to 2 s, until ctx ends or done closes (ErrFeedClosed). Each try is
// bounded by timeout. found is false when no message matches.
func (r storeReader) nextRetry(ctx context.Context, done <-chan struct{}, seq uint64, subject string, timeout time.Duration, failed func(error)) (m *jetstream.RawStreamMsg, found bool, err error) {
	backoff := 50 * time.Millisecond
	for {
		rctx, cancel := context.WithTimeout(ctx, timeout)
		m, err := r.next(rctx, seq, subject)
		cancel()
		switch {
		case err == nil:
			return m, true, nil
		case errors.Is(err, jetstream.ErrMsgNotFound):
			return nil, false, nil
		case ctx.Err() != nil:
			return nil, false, ctx.Err()
		}
		if failed != nil {
			failed(err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, false, ctx.Err()
		case <-done:
			t.Stop()
			return nil, false, ErrFeedClosed
		case <-t.C:
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}
