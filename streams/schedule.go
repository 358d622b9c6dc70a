package streams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The headers of JetStream's per-message TTLs and message schedules
// (nats-server stream.go), which the HERALD stream allows (Definition).
const (
	// HeaderTTL removes a stored message after the given seconds.
	HeaderTTL = "Nats-TTL"
	// HeaderSchedule makes a message a schedule: "@at <RFC 3339 time>".
	HeaderSchedule = "Nats-Schedule"
	// HeaderScheduleTarget is the subject the due message is stored on.
	HeaderScheduleTarget = "Nats-Schedule-Target"
	// HeaderScheduleTTL is the Nats-TTL the due message is stored with.
	HeaderScheduleTTL = "Nats-Schedule-TTL"
	// HeaderScheduler is set by JetStream on a message a schedule stored:
	// the schedule's subject.
	HeaderScheduler = "Nats-Scheduler"
)

// Lifecycle is how long a stored message lives and when it is stored
// (SPEC §10).
type Lifecycle struct {
	// TTL removes the message this long after it is stored, rounded up
	// to whole seconds (JetStream's unit). 0: the stream's limits alone.
	TTL time.Duration
	// DeliverAt, when set, stores the message then rather than now, as a
	// JetStream message schedule.
	DeliverAt time.Time
}

// Stamp sets e's Time to lc.DeliverAt when the message is scheduled (it is
// stored then), and its Expires to that time plus lc.TTL rounded up to
// whole seconds, when the stream removes it: what ingest and herald publish
// --nats write.
func (lc Lifecycle) Stamp(e *Envelope) {
	if !lc.DeliverAt.IsZero() {
		e.Time = lc.DeliverAt
	}
	if lc.TTL > 0 {
		exp := e.Time.Add((lc.TTL + time.Second - 1) / time.Second * time.Second)
		e.Expires = &exp
	}
}

// TTLSeconds is the Nats-TTL value of ttl: whole seconds, rounded up, so
// that a message never goes before the ttl its producer asked for.
func TTLSeconds(ttl time.Duration) string {
	return strconv.FormatInt(int64((ttl+time.Second-1)/time.Second), 10)
}

// NewMsg returns the write of a stored envelope (payload: Envelope.Encode's
// output for a valid envelope with its time set) with id for user: on the
// user's subject, with Nats-Msg-Id = MsgID(user, id), HeaderEnvelope and,
// with a ttl, Nats-TTL. With lc.DeliverAt set it is a schedule instead, on
// Schedule(user, id): JetStream stores a copy of it on the user's subject
// at that time (with the ttl, and without the Nats-Msg-Id and schedule
// headers) and then removes the schedule. The schedule carries the
// Nats-Msg-Id, so a retry within the duplicate window is stored once; a
// later schedule with the same id replaces a pending one (JetStream keeps
// one per subject).
func (s Subjects) NewMsg(user, id string, payload []byte, lc Lifecycle) *nats.Msg {
	m := nats.NewMsg(s.User(user))
	m.Data = payload
	m.Header.Set(jetstream.MsgIDHeader, MsgID(user, id))
	m.Header.Set(HeaderEnvelope, EnvelopeEncoded)
	if lc.DeliverAt.IsZero() {
		if lc.TTL > 0 {
			m.Header.Set(HeaderTTL, TTLSeconds(lc.TTL))
		}
		return m
	}
	m.Subject = s.Schedule(user, id)
	m.Header.Set(HeaderSchedule, "@at "+lc.DeliverAt.UTC().Format(time.RFC3339Nano))
	m.Header.Set(HeaderScheduleTarget, s.User(user))
	if lc.TTL > 0 {
		m.Header.Set(HeaderScheduleTTL, TTLSeconds(lc.TTL))
	}
	return m
}

// purgeResponse is JetStream's answer to a stream purge.
type purgeResponse struct {
	Success bool   `json:"success"`
	Purged  uint64 `json:"purged"`
	Error   *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
}

// ErrNotFound: nothing was stored on the subject a purge named.
var ErrNotFound = errors.New("streams: no message on the subject")

// PurgeSubject removes every message of subject from stream and returns
// how many there were; ErrNotFound (wrapped) when there were none. One
// request both removes and counts (nats.go's Purge does not return the
// count), so no other write can come between the two. A schedule that is
// due at that instant may still be stored, as JetStream copies a due
// schedule before it removes it.
func PurgeSubject(ctx context.Context, js jetstream.JetStream, stream, subject string) (uint64, error) {
	req, err := json.Marshal(struct {
		Filter string `json:"filter"`
	}{subject})
	if err != nil {
		return 0, fmt.Errorf("streams: purge: %w", err)
	}
	m, err := js.Conn().RequestWithContext(ctx, apiPrefix(js.Options())+"STREAM.PURGE."+stream, req)
	if err != nil {
		return 0, fmt.Errorf("streams: purge %s: %w", stream, err)
	}
	var resp purgeResponse
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return 0, fmt.Errorf("streams: purge %s: answer: %w", stream, err)
	}
	if resp.Error != nil {
		return 0, fmt.Errorf("streams: purge %s: %s (%d)", stream, resp.Error.Description, resp.Error.ErrCode)
	}
	if !resp.Success {
		return 0, fmt.Errorf("streams: purge %s: not successful", stream)
	}
	if resp.Purged == 0 {
		return 0, fmt.Errorf("streams: purge %s: %w", stream, ErrNotFound)
	}
	return resp.Purged, nil
}
