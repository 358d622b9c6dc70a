package edge

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

// storeReader reads single messages of the stream for the engines: the next
// message of a subject from a seq, and a subject's last message.
//
// With direct get on (the HERALD stream has it) it sends the direct get
// requests itself rather than through jetstream.Stream.GetMsg: the server
// appends its Nats-Sequence, Nats-Time-Stamp and Nats-Subject headers after
// the headers the producer stored, and nats.go reads the first value, so a
// message published straight to NATS with its own Nats-Sequence header would
// be reported under a forged seq (and a feed would skip messages), and one
// with a malformed Nats-Time-Stamp could not be read at all. This reader
// takes the server's, last, values.
type storeReader struct {
	s      jetstream.Stream
	nc     *nats.Conn
	direct string // the direct get subject; "" when the stream has no direct get
}

func newStoreReader(js jetstream.JetStream, s jetstream.Stream) storeReader {
	r := storeReader{s: s, nc: js.Conn()}
	if info := s.CachedInfo(); info != nil && info.Config.AllowDirect {
		r.direct = apiPrefix(js.Options()) + "DIRECT.GET." + info.Config.Name
	}
	return r
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

type directGetRequest struct {
	Seq        uint64 `json:"seq,omitempty"`
	NextBySubj string `json:"next_by_subj,omitempty"`
	LastBySubj string `json:"last_by_subj,omitempty"`
}

// next returns the first message of subject at or after seq;
// jetstream.ErrMsgNotFound when there is none.
func (r storeReader) next(ctx context.Context, seq uint64, subject string) (*jetstream.RawStreamMsg, error) {
	if r.direct == "" {
		return r.s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
	}
	return r.get(ctx, directGetRequest{Seq: seq, NextBySubj: subject})
}

// last returns the last message of subject; jetstream.ErrMsgNotFound when
// there is none.
func (r storeReader) last(ctx context.Context, subject string) (*jetstream.RawStreamMsg, error) {
	if r.direct == "" {
		return r.s.GetLastMsgForSubject(ctx, subject)
	}
	return r.get(ctx, directGetRequest{LastBySubj: subject})
}

func (r storeReader) info(ctx context.Context, opts ...jetstream.StreamInfoOpt) (*jetstream.StreamInfo, error) {
	return r.s.Info(ctx, opts...)
}

func (r storeReader) get(ctx context.Context, req directGetRequest) (*jetstream.RawStreamMsg, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("edge: direct get: %w", err)
	}
	m, err := r.nc.RequestWithContext(ctx, r.direct, b)
	if err != nil {
		return nil, fmt.Errorf("edge: direct get: %w", err)
	}
	return parseDirectGet(m)
}

// parseDirectGet reads a direct get response. A stored message always
// carries the server's Nats-Sequence; a response without one is a status
// (404: no message).
func parseDirectGet(m *nats.Msg) (*jetstream.RawStreamMsg, error) {
	seqHdr := lastHeader(m.Header, jetstream.SequenceHeader)
	if seqHdr == "" {
		switch status := lastHeader(m.Header, "Status"); status {
		case "404":
			return nil, jetstream.ErrMsgNotFound
		case "":
			return nil, errors.New("edge: direct get: a response with neither a message nor a status")
		default:
			return nil, fmt.Errorf("edge: direct get: status %s: %s", status, lastHeader(m.Header, "Description"))
		}
	}
	seq, err := strconv.ParseUint(seqHdr, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("edge: direct get: sequence %q: %w", seqHdr, err)
	}
	ts, err := time.Parse(time.RFC3339Nano, lastHeader(m.Header, jetstream.TimeStampHeaer))
	if err != nil {
		return nil, fmt.Errorf("edge: direct get: time of %d: %w", seq, err)
	}
	return &jetstream.RawStreamMsg{
		Subject:  lastHeader(m.Header, jetstream.SubjectHeader),
		Sequence: seq,
		Header:   m.Header,
		Data:     m.Data,
		Time:     ts,
	}, nil
}

// lastHeader returns the last value of key: the server appends its headers
// after those the producer set, so a producer cannot forge them.
func lastHeader(h nats.Header, key string) string {
	v := h.Values(key)
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}
