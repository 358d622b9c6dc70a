package edge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

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

	frame   *sharedFrame // the encoded frame, shared by the deliveries of one live message; nil: encode it
	encoded bool         // Payload is Envelope.Encode's output (streams.Encoded): the frame is spliced from it
}

// Feed is one device's stream of messages, drained without a goroutine
// waiting on it: the session's pump calls Poll while it returns messages,
// and the feed calls the function given to Notify when Poll may have
// something new. Poll is called by one goroutine at a time; Ack may be
// called concurrently with it; Close stops the feed, keeps the device's
// acked position, and makes later Polls return ErrFeedClosed.
type Feed interface {
	Start() Start
	// Poll returns the next delivery if one is ready, ok false if none
	// is. It may read the store, but never waits for a new message.
	Poll(ctx context.Context) (d Delivery, ok bool, err error)
	// Notify sets fn, which the feed calls (without blocking, from any
	// goroutine) whenever Poll may have something new: a message, a freed
	// window slot, a resend that is due. Set before the first Poll.
	Notify(fn func())
	// Ack acknowledges seq and every earlier message (cumulative). It is
	// called on the reader of a device's socket: any I/O it does must be
	// bounded by the feed itself.
	Ack(ctx context.Context, seq uint64) error
	Close() error
}

// Engine is a delivery engine (SPEC §1): it opens device feeds and keeps
// device positions. Both engines, live and consumer, implement all of it.
type Engine interface {
	// Open positions the device's feed (p, else its stored position)
	// and returns it. It returns ErrUnavailable (wrapped) when JetStream
	// cannot be reached, so that the caller can answer 503, and
	// ErrTooManyDevices or ErrNoConsumerRoom (wrapped) when it refuses a
	// new device.
	Open(ctx context.Context, d Device, p Position) (Feed, error)
	// AckPosition moves the stored position of a device that has no
	// open feed on this edge to seq (clamped to the user's last message)
	// unless it is already there or later. It returns ErrNoPosition
	// (wrapped) when the device has no position, ErrUnavailable when
	// JetStream cannot be reached.
	AckPosition(ctx context.Context, d Device, seq uint64) error
	// Devices returns the user's devices that have a stored position,
	// with it and when the device was last seen (device status, SPEC
	// §10). ErrUnavailable when JetStream cannot be reached.
	Devices(ctx context.Context, user string) ([]DeviceState, error)
	// Run does the engine's background work until ctx ends. Feeds opened
	// before it starts work; once it has returned, Open may refuse.
	Run(ctx context.Context) error
	// Collector returns the engine's own metric series (nil: none), which
	// the edge server registers with its own.
	Collector() prometheus.Collector
}

// Sentinel errors of engines.
var (
	ErrUnavailable = errors.New("edge: jetstream unavailable")
	ErrFeedClosed  = errors.New("edge: feed closed")
	ErrNoPosition  = errors.New("edge: device has no position")
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
