package streams

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Definition returns the JetStream configuration of the HERALD stream: one
// subject per user, file storage, per-user message limit, direct get on and
// a RePublish of every stored message of a user subject to
// <prefix>.live.<token> (headers only are not used: the live engine needs
// the payload).
//
// The stream also holds the scheduled messages (SPEC §10), one subject
// each (Subjects.Schedule), which are never republished: JetStream stores
// the message on its target, the user's subject, when it is due. Per-message
// TTLs (Nats-TTL) and message schedules are on; neither can be turned off
// again on an existing stream (JetStream refuses), and schedules need
// roll-ups, which JetStream turns on with them.
func Definition(c Config) jetstream.StreamConfig {
	subj := Subjects{Prefix: c.Prefix}
	maxBytes := c.MaxBytes
	if maxBytes == 0 {
		maxBytes = -1
	}
	maxPer := c.MaxMsgsPerUser
	if maxPer == 0 {
		maxPer = -1
	}
	return jetstream.StreamConfig{
		Name:              c.Name,
		Description:       "Herald: one subject per user",
		Subjects:          []string{subj.AllUsers(), subj.AllSchedules()},
		Retention:         jetstream.LimitsPolicy,
		Storage:           jetstream.FileStorage,
		Discard:           jetstream.DiscardOld,
		MaxAge:            c.MaxAge,
		MaxMsgsPerSubject: maxPer,
		MaxMsgs:           -1,
		MaxBytes:          maxBytes,
		MaxConsumers:      c.MaxConsumers,
		Duplicates:        c.DuplicateWindow,
		Replicas:          c.Replicas,
		AllowDirect:       true,
		AllowMsgTTL:       true,
		AllowMsgSchedules: true,
		AllowRollup:       true,
		RePublish: &jetstream.RePublish{
			Source:      subj.AllUsers(),
			Destination: subj.LiveTemplate(),
		},
	}
}

// Apply creates the stream or updates it to the definition; running it again
// with the same configuration changes nothing.
func Apply(ctx context.Context, js jetstream.JetStream, c Config) (jetstream.Stream, error) {
	def := Definition(c)
	s, err := js.CreateOrUpdateStream(ctx, def)
	if err != nil {
		return nil, fmt.Errorf("streams: apply %s: %w", c.Name, err)
	}
	return s, nil
}

// Lookup returns the stream if it exists; ErrStreamMissing when it does not.
func Lookup(ctx context.Context, js jetstream.JetStream, name string) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("streams: %s: %w", name, ErrStreamMissing)
	}
	if err != nil {
		return nil, fmt.Errorf("streams: lookup %s: %w", name, err)
	}
	return s, nil
}

// ErrStreamMissing means the stream has not been applied yet.
var ErrStreamMissing = errors.New("stream does not exist (run `herald streams apply`)")
