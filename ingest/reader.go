package ingest

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

// Errors of direct get.
var (
	// errNoStream: nobody answers direct get for the stream (it does not
	// exist, or has direct get off, or no replica is reachable).
	errNoStream = errors.New("no stream answers direct get")
	// errNotFound: no message at or after the requested sequence.
	errNotFound = errors.New("message not found")
)

// reader reads stored messages with JetStream direct get, which any replica
// (or mirror) answers without a consumer.
type reader struct {
	nc      *nats.Conn
	subject string // <api prefix>DIRECT.GET.<stream>
}

func newReader(js jetstream.JetStream, stream string) *reader {
	return &reader{nc: js.Conn(), subject: apiPrefix(js.Options()) + "DIRECT.GET." + stream}
}

// apiPrefix is the JetStream API prefix js sends its requests to.
func apiPrefix(o jetstream.JetStreamOptions) string {
	switch {
	case o.Domain != "":
		return "$JS." + o.Domain + ".API."
	case o.APIPrefix != "":
		return strings.TrimSuffix(o.APIPrefix, ".") + "."
	default:
		return jetstream.DefaultAPIPrefix
	}
}

// getRequest is the body of a direct get (nats-server JSApiMsgGetRequest).
type getRequest struct {
	Seq      uint64 `json:"seq,omitempty"`
	NextFor  string `json:"next_by_subj,omitempty"`
	Batch    int    `json:"batch,omitempty"`
	MaxBytes int    `json:"max_bytes,omitempty"`
}

// storedMsg is one message as direct get returns it.
type storedMsg struct {
	Subject string
	Seq     uint64
	Time    time.Time
	Data    []byte
}

// get returns the message at exactly seq.
func (rd *reader) get(ctx context.Context, seq uint64) (storedMsg, error) {
	req, _ := json.Marshal(getRequest{Seq: seq})
	m, err := rd.nc.RequestWithContext(ctx, rd.subject, req)
	if errors.Is(err, nats.ErrNoResponders) {
		return storedMsg{}, fmt.Errorf("ingest: get %d: %w", seq, errNoStream)
	}
	if err != nil {
		return storedMsg{}, fmt.Errorf("ingest: get %d: %w", seq, err)
	}
	if err := statusErr(m); err != nil {
		return storedMsg{}, fmt.Errorf("ingest: get %d: %w", seq, err)
	}
	sm, err := parseStored(m)
	if err != nil {
		return storedMsg{}, fmt.Errorf("ingest: get %d: %w", seq, err)
	}
	return sm, nil
}

// next returns up to limit messages on subject with a sequence ≥ from, in
// sequence order. The server stops early once it sent maxBytes (always
// sending at least one message), so fewer than limit messages do not mean
// that none follow. When no message matches, the result is empty and the
// error nil.
func (rd *reader) next(ctx context.Context, subject string, from uint64, limit, maxBytes int) ([]storedMsg, error) {
	inbox := rd.nc.NewInbox()
	sub, err := rd.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("ingest: direct get: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	req, _ := json.Marshal(getRequest{Seq: from, NextFor: subject, Batch: limit, MaxBytes: maxBytes})
	if err := rd.nc.PublishRequest(rd.subject, inbox, req); err != nil {
		return nil, fmt.Errorf("ingest: direct get: %w", err)
	}
	msgs := make([]storedMsg, 0, min(limit, 128))
	for len(msgs) < limit {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return nil, fmt.Errorf("ingest: direct get: %w", err)
		}
		if isStatus(m) {
			switch err := statusErr(m); {
			case err == nil, errors.Is(err, errNotFound):
				// 204 EOB ends a batch; 404 means nothing at or after from.
				return msgs, nil
			default:
				return nil, fmt.Errorf("ingest: direct get: %w", err)
			}
		}
		sm, err := parseStored(m)
		if err != nil {
			return nil, fmt.Errorf("ingest: direct get: %w", err)
		}
		msgs = append(msgs, sm)
		// Every message of a batch says how many follow. Without the
		// header the server answered a plain get (it predates batches):
		// return the one message rather than wait for an EOB.
		if np := lastHeader(m.Header, numPendingHeader); np == "" || np == "0" {
			return msgs, nil
		}
	}
	return msgs, nil
}

// numPendingHeader is set on each message of a batched direct get: how many
// matching messages follow it.
const numPendingHeader = "Nats-Num-Pending"

// isStatus reports whether m is a status reply rather than a stored
// message. A stored message always carries the server's Nats-Sequence
// header; a status reply has none. (A stored message may carry its own
// Status header and an empty payload: the producer's headers come first.)
func isStatus(m *nats.Msg) bool {
	return len(m.Header.Values(jetstream.SequenceHeader)) == 0
}

// statusErr maps a status reply to an error; nil for 204 (end of batch) and
// for a message that is not a status reply.
func statusErr(m *nats.Msg) error {
	if !isStatus(m) {
		return nil
	}
	switch code := lastHeader(m.Header, "Status"); code {
	case "204":
		return nil
	case "404":
		return errNotFound
	case "503":
		return errNoStream
	default:
		return fmt.Errorf("status %q %s", code, lastHeader(m.Header, "Description"))
	}
}

// parseStored reads a stored message of a direct get. The server appends
// its Nats-Sequence, Nats-Time-Stamp and Nats-Subject headers after the
// headers the producer stored, and Header.Get returns the first value, so a
// message published straight to NATS with its own Nats-Sequence would be
// read under a forged seq: parseStored takes the last values.
func parseStored(m *nats.Msg) (storedMsg, error) {
	seq, err := strconv.ParseUint(lastHeader(m.Header, jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return storedMsg{}, fmt.Errorf("bad %s header: %w", jetstream.SequenceHeader, err)
	}
	t, err := time.Parse(time.RFC3339Nano, lastHeader(m.Header, jetstream.TimeStampHeaer))
	if err != nil {
		return storedMsg{}, fmt.Errorf("bad %s header: %w", jetstream.TimeStampHeaer, err)
	}
	return storedMsg{Subject: lastHeader(m.Header, jetstream.SubjectHeader), Seq: seq, Time: t, Data: m.Data}, nil
}

// lastHeader returns the last value of key, the one the server set.
func lastHeader(h nats.Header, key string) string {
	v := h.Values(key)
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}
