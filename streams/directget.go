package streams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrNoStream: nobody answers direct get for the stream (it does not exist,
// has direct get off, or no replica is reachable).
var ErrNoStream = errors.New("streams: no stream answers direct get")

// DirectGet reads stored messages of a stream with JetStream direct get,
// which any replica (or mirror) answers without a consumer.
//
// It sends the requests itself rather than through jetstream.Stream.GetMsg:
// the server appends its Nats-Sequence, Nats-Time-Stamp and Nats-Subject
// headers after the headers the producer stored, and nats.go reads the
// first value, so a message published straight to NATS with its own
// Nats-Sequence header would be reported under a forged seq (and a reader
// would skip or mislabel messages), and one with a malformed
// Nats-Time-Stamp could not be read at all. DirectGet takes the server's,
// last, values, and takes a reply for a status only when it has no
// Nats-Sequence.
type DirectGet struct {
	nc      *nats.Conn
	subject string // <api prefix>DIRECT.GET.<stream>
}

// NewDirectGet returns a reader of stream over js's connection and API
// prefix.
func NewDirectGet(js jetstream.JetStream, stream string) DirectGet {
	return DirectGet{nc: js.Conn(), subject: apiPrefix(js.Options()) + "DIRECT.GET." + stream}
}

// apiPrefix is the JetStream API prefix of o, as nats.go computes it.
func apiPrefix(o jetstream.JetStreamOptions) string {
	switch {
	case o.Domain != "":
		return "$JS." + o.Domain + ".API."
	case o.APIPrefix != "":
		return strings.TrimSuffix(o.APIPrefix, ".") + "."
	}
	return jetstream.DefaultAPIPrefix
}

// directGetRequest is the body of a direct get (nats-server
// JSApiMsgGetRequest).
type directGetRequest struct {
	Seq        uint64 `json:"seq,omitempty"`
	NextBySubj string `json:"next_by_subj,omitempty"`
	LastBySubj string `json:"last_by_subj,omitempty"`
	Batch      int    `json:"batch,omitempty"`
	MaxBytes   int    `json:"max_bytes,omitempty"`
	// StartTime asks for the first message stored at or after it.
	StartTime *time.Time `json:"start_time,omitempty"`
}

// Next returns the first message of subject at or after seq, or with
// subject "" the message at exactly seq; jetstream.ErrMsgNotFound when
// there is none.
func (d DirectGet) Next(ctx context.Context, seq uint64, subject string) (*jetstream.RawStreamMsg, error) {
	return d.get(ctx, directGetRequest{Seq: seq, NextBySubj: subject})
}

// FirstAt returns the first message of subject stored at or after t;
// jetstream.ErrMsgNotFound when there is none.
func (d DirectGet) FirstAt(ctx context.Context, t time.Time, subject string) (*jetstream.RawStreamMsg, error) {
	t = t.UTC()
	return d.get(ctx, directGetRequest{StartTime: &t, NextBySubj: subject})
}

// Last returns the last message of subject; jetstream.ErrMsgNotFound when
// there is none.
func (d DirectGet) Last(ctx context.Context, subject string) (*jetstream.RawStreamMsg, error) {
	return d.get(ctx, directGetRequest{LastBySubj: subject})
}

func (d DirectGet) get(ctx context.Context, req directGetRequest) (*jetstream.RawStreamMsg, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("streams: direct get: %w", err)
	}
	m, err := d.nc.RequestWithContext(ctx, d.subject, b)
	if errors.Is(err, nats.ErrNoResponders) {
		return nil, fmt.Errorf("streams: direct get: %w", ErrNoStream)
	}
	if err != nil {
		return nil, fmt.Errorf("streams: direct get: %w", err)
	}
	sm, err := ParseDirectGet(m)
	if errors.Is(err, errEndOfBatch) {
		return nil, fmt.Errorf("streams: direct get: an end of batch answered a single get")
	}
	return sm, err
}

// Batch returns up to limit messages on subject with a sequence ≥ from, in
// sequence order. The server stops early once it sent maxBytes (always
// sending at least one message), so fewer than limit messages do not mean
// that none follow. When no message matches, the result is empty and the
// error nil.
func (d DirectGet) Batch(ctx context.Context, subject string, from uint64, limit, maxBytes int) ([]*jetstream.RawStreamMsg, error) {
	inbox := d.nc.NewInbox()
	sub, err := d.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("streams: direct get: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	req, err := json.Marshal(directGetRequest{Seq: from, NextBySubj: subject, Batch: limit, MaxBytes: maxBytes})
	if err != nil {
		return nil, fmt.Errorf("streams: direct get: %w", err)
	}
	if err := d.nc.PublishRequest(d.subject, inbox, req); err != nil {
		return nil, fmt.Errorf("streams: direct get: %w", err)
	}
	msgs := make([]*jetstream.RawStreamMsg, 0, min(limit, 128))
	for len(msgs) < limit {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return nil, fmt.Errorf("streams: direct get: %w", err)
		}
		sm, err := ParseDirectGet(m)
		switch {
		case errors.Is(err, errEndOfBatch), errors.Is(err, jetstream.ErrMsgNotFound):
			// 204 ends a batch; 404 means nothing at or after from.
			return msgs, nil
		case err != nil:
			return nil, fmt.Errorf("streams: direct get: %w", err)
		}
		msgs = append(msgs, sm)
		// Every message of a batch says how many follow. Without the
		// header the server answered a plain get (it predates batches):
		// return the one message rather than wait for an end of batch.
		if np := LastHeader(m.Header, numPendingHeader); np == "" || np == "0" {
			return msgs, nil
		}
	}
	return msgs, nil
}

// numPendingHeader is set on each message of a batched direct get: how many
// matching messages follow it.
const numPendingHeader = "Nats-Num-Pending"

// errEndOfBatch is the 204 status that ends a batched direct get.
var errEndOfBatch = errors.New("end of batch")

// ParseDirectGet reads a direct get response. A stored message always
// carries the server's Nats-Sequence; a response without one is a status:
// 404 is jetstream.ErrMsgNotFound, 503 ErrNoStream. (A stored message may
// carry its own Status header and an empty payload: the producer's headers
// come first.)
func ParseDirectGet(m *nats.Msg) (*jetstream.RawStreamMsg, error) {
	seqHdr := LastHeader(m.Header, jetstream.SequenceHeader)
	if seqHdr == "" {
		switch status := LastHeader(m.Header, "Status"); status {
		case "404":
			return nil, jetstream.ErrMsgNotFound
		case "503":
			return nil, ErrNoStream
		case "204":
			return nil, errEndOfBatch
		case "":
			return nil, errors.New("a response with neither a message nor a status")
		default:
			return nil, fmt.Errorf("status %s: %s", status, LastHeader(m.Header, "Description"))
		}
	}
	seq, err := strconv.ParseUint(seqHdr, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("sequence %q: %w", seqHdr, err)
	}
	ts, err := time.Parse(time.RFC3339Nano, LastHeader(m.Header, jetstream.TimeStampHeaer))
	if err != nil {
		return nil, fmt.Errorf("time of %d: %w", seq, err)
	}
	return &jetstream.RawStreamMsg{
		Subject:  LastHeader(m.Header, jetstream.SubjectHeader),
		Sequence: seq,
		Header:   m.Header,
		Data:     m.Data,
		Time:     ts,
	}, nil
}

// LastHeader returns the last value of key. JetStream appends its headers
// (Nats-Sequence, Nats-Subject, Nats-Time-Stamp on a direct get or a
// republish) after those the producer set, so the last value is the
// server's and a producer cannot forge it.
func LastHeader(h nats.Header, key string) string {
	v := h.Values(key)
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}
