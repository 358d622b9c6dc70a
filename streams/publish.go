package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald"
)

// MsgPublisher is what Write.Publish needs from JetStream; jetstream.JetStream
// satisfies it.
type MsgPublisher interface {
	PublishMsg(ctx context.Context, m *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

var _ MsgPublisher = (jetstream.JetStream)(nil)

// ErrLifecycle is wrapped by NewWrite's errors for a ttl or a delivery time
// the stream c cannot keep.
var ErrLifecycle = errors.New("lifecycle out of bounds")

// ErrTooLarge is wrapped by NewWrite's error for an envelope over maxBytes.
var ErrTooLarge = errors.New("envelope too large")

// Write is one message for a producer that publishes straight to JetStream
// rather than through ingest (herald publish --nats): checked as ingest
// checks it and encoded, so that a message is the same whichever way it
// came in. Build it with NewWrite before connecting, store it with Publish.
type Write struct {
	env    Envelope
	msg    *nats.Msg
	stream string
	sched  bool
}

// NewWrite checks and encodes e with lc for the stream c: a ttl of 1 s up
// to c.MaxAge, a delivery time after e.Time and at most c.MaxAge ahead (the
// stream would remove the message, or its schedule, first), an encoded
// envelope of at most maxBytes. It stamps e (Time, Expires; a zero e.Time
// is now) and gives it an id when it has none, from a new IDGen. e must be
// valid (Envelope.Validate).
func NewWrite(c Config, e Envelope, lc Lifecycle, maxBytes int) (*Write, error) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC().Truncate(time.Millisecond)
	}
	switch {
	case lc.TTL > 0 && lc.TTL < time.Second:
		return nil, fmt.Errorf("streams: write: %w: ttl %v is under the minimum of 1s", ErrLifecycle, lc.TTL)
	case c.MaxAge > 0 && lc.TTL > c.MaxAge:
		return nil, fmt.Errorf("streams: write: %w: ttl %v is longer than stream.max_age %v", ErrLifecycle, lc.TTL, c.MaxAge)
	case !lc.DeliverAt.IsZero() && !lc.DeliverAt.After(e.Time):
		return nil, fmt.Errorf("streams: write: %w: the delivery time %s is not in the future", ErrLifecycle, lc.DeliverAt.Format(time.RFC3339Nano))
	case c.MaxAge > 0 && lc.DeliverAt.Sub(e.Time) > c.MaxAge:
		return nil, fmt.Errorf("streams: write: %w: the delivery time is further ahead than stream.max_age %v", ErrLifecycle, c.MaxAge)
	}
	lc.DeliverAt = lc.DeliverAt.Truncate(time.Millisecond)
	lc.Stamp(&e)
	if e.ID == "" {
		e.ID = NewIDGen().Next(e.Time)
	}
	payload, err := e.Encode()
	if err != nil {
		return nil, fmt.Errorf("streams: write: %w", err)
	}
	if len(payload) > maxBytes {
		return nil, fmt.Errorf("streams: write: %w: the envelope is %d bytes, over ingest.max_message_bytes %d", ErrTooLarge, len(payload), maxBytes)
	}
	msg := Subjects{Prefix: c.Prefix}.NewMsg(e.User, e.ID, payload, lc)
	return &Write{env: e, msg: msg, stream: c.Name, sched: !lc.DeliverAt.IsZero()}, nil
}

// Publish stores w in its stream alone (a subject no stream of that name
// holds is an error, not a write elsewhere) and returns the answer ingest
// would give: seq, or deliver_at for a scheduled message. A retry of the
// same Write within the stream's duplicate window is stored once.
func (w *Write) Publish(ctx context.Context, js MsgPublisher) (herald.Published, error) {
	ack, err := js.PublishMsg(ctx, w.msg, jetstream.WithExpectStream(w.stream))
	if err != nil {
		return herald.Published{}, fmt.Errorf("streams: publish: %w", err)
	}
	e := w.env
	if w.sched {
		return herald.Published{ID: e.ID, DeliverAt: &e.Time, Duplicate: ack.Duplicate}, nil
	}
	return herald.Published{ID: e.ID, Seq: ack.Sequence, User: e.User, Time: &e.Time, Duplicate: ack.Duplicate}, nil
}
