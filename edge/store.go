package edge

import (
	"context"

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

// last returns the last message of subject; jetstream.ErrMsgNotFound when
// there is none.
func (r storeReader) last(ctx context.Context, subject string) (*jetstream.RawStreamMsg, error) {
	if !r.direct {
		return r.s.GetLastMsgForSubject(ctx, subject)
	}
	return r.d.Last(ctx, subject)
}

func (r storeReader) info(ctx context.Context, opts ...jetstream.StreamInfoOpt) (*jetstream.StreamInfo, error) {
	return r.s.Info(ctx, opts...)
}
