package edge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald/streams"
)

// Device names one device of one user.
type Device struct {
	User   string
	Device string
}

// logName names d in errors, which may be logged: the user as
// streams.LogUser, never the id or its subject token.
func (d Device) logName() string {
	return "device " + d.Device + " of " + streams.LogUser(d.User)
}

// Position is where a client asks delivery to start.
type Position struct {
	// Since, when HasSince, asks for the first retained message after it.
	Since    uint64
	HasSince bool
}

// Start describes a feed right after it opened: the welcome and synced
// frames are built from it.
type Start struct {
	// From is the first seq the feed will deliver, 0 when nothing is
	// retained yet (the welcome frame shows null).
	From uint64
	// Gap is true when messages after the requested position were already
	// removed by retention.
	Gap bool
	// Synced is the last seq of the user's retained messages at connect
	// time; the backlog is complete once it has been delivered. 0: none.
	Synced uint64
	// First is the first seq the feed is positioned at (From ≥ First).
	First uint64
}

// Delivery is one message handed to a session.
type Delivery struct {
	Seq         uint64
	Payload     []byte
	Time        time.Time
	Redelivered bool

	frame *sharedFrame // the encoded frame, shared by the deliveries of one live message; nil: encode it
}

// Feed is one device's stream of messages. Next and Ack may be called from
// different goroutines; Close stops the feed, keeps the device's acked
// position, and makes a pending Next return.
type Feed interface {
	Start() Start
	Next(ctx context.Context) (Delivery, error)
	// Ack acknowledges seq and every earlier message (cumulative). It is
	// called on the reader of a device's socket: any I/O it does must be
	// bounded by the feed itself.
	Ack(ctx context.Context, seq uint64) error
	Close() error
}

// Engine opens feeds. Open must return ErrUnavailable (wrapped) when
// JetStream cannot be reached, so the caller can answer 503, and
// ErrTooManyDevices (wrapped) when it refuses a new device.
type Engine interface {
	Open(ctx context.Context, d Device, p Position) (Feed, error)
}

// Sentinel errors of engines.
var (
	ErrUnavailable = errors.New("edge: jetstream unavailable")
	ErrFeedClosed  = errors.New("edge: feed closed")
	// ErrTooManyDevices refuses a new device of a user who has
	// edge.max_devices_per_user devices already.
	ErrTooManyDevices = errors.New("edge: the user has too many devices")
	// ErrNoConsumerRoom refuses a new device of the consumer engine when
	// the stream has stream.max_consumers consumers.
	ErrNoConsumerRoom = errors.New("edge: the stream is at its consumer limit")
)

// locate computes the Start of a feed whose first position is first, for a
// user's subject: the first retained seq ≥ first, the last retained seq of
// the user, and whether retention removed messages after the requested
// position (only meaningful when the client gave since). state is the
// stream's, read with the user's subject as filter.
func locate(ctx context.Context, s storeReader, subject string, first uint64, p Position, state jetstream.StreamState, maxPerUser int64) (Start, error) {
	var userLast uint64
	switch last, err := s.last(ctx, subject); {
	case errors.Is(err, jetstream.ErrMsgNotFound):
	case err != nil:
		return Start{First: first}, fmt.Errorf("edge: last message of the user: %w", err)
	default:
		userLast = last.Sequence
	}
	known := func(context.Context) (jetstream.StreamState, error) { return state, nil }
	return locateFrom(ctx, s, subject, first, p, known, maxPerUser, userLast)
}

// locateFrom is locate with the user's last retained seq already read
// (userLast, 0: the user has none). It asks stateOf for the stream's state,
// filtered by subject, only when the user's own messages cannot tell
// whether retention removed messages after a since.
func locateFrom(ctx context.Context, s storeReader, subject string, first uint64, p Position, stateOf func(context.Context) (jetstream.StreamState, error), maxPerUser int64, userLast uint64) (Start, error) {
	st := Start{First: first}
	if userLast == 0 {
		return st, nil
	}
	st.Synced = userLast
	if userLast >= first {
		next, err := s.next(ctx, first, subject)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
		case err != nil:
			return st, fmt.Errorf("edge: next message of the user from %d: %w", first, err)
		default:
			st.From = next.Sequence
		}
	}
	if !p.HasSince {
		return st, nil
	}
	want := p.Since + 1
	// Retention removes the oldest messages first, from the front of the
	// stream (age, bytes) or of the user's messages (the per-user limit):
	// while the user's last message is retained, nothing of the user's
	// before it but after a since at or past it can be gone, and while a
	// message of the user at or before want is retained, nothing after it
	// is gone either.
	if p.Since >= userLast || st.From == want {
		return st, nil
	}
	firstOfUser, err := s.next(ctx, 0, subject)
	if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return st, fmt.Errorf("edge: first message of the user: %w", err)
	}
	if firstOfUser != nil && firstOfUser.Sequence <= want {
		return st, nil
	}
	state, err := stateOf(ctx)
	if err != nil {
		return st, fmt.Errorf("edge: stream state: %w", err)
	}
	// Age and byte limits remove from the front of the stream. The
	// per-user limit removes a user's oldest messages; they may have been
	// after since when the user is at the limit and its first retained
	// message is later than requested. This can report a gap that holds
	// only other users' messages, never miss a real one.
	if want < state.FirstSeq || (maxPerUser > 0 && firstOfUser != nil && int64(state.Subjects[subject]) >= maxPerUser) {
		st.Gap = true
	}
	return st, nil
}
