package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/streams"
)

// Read state (SPEC §10): one read position per user, the seq up to which
// the person has seen their messages, shared by their devices. It is the
// value of streams.ReadKey(user) in the devices bucket, moved only forward
// (compare and set) and never past the user's last message. A device moves
// it with a read frame or POST /v1/read; the edge that stored it tells
// every edge with streams of the user (control), which send
// {"type":"read","seq":N,"device":D} to the user's other devices. The
// welcome carries the position.
//
// Read is not ack: an ack is one device's delivery, read is the person's.

// readStore keeps read positions in the devices bucket. It is safe for
// concurrent use; the bucket handle is looked up once and dropped on
// error.
type readStore struct {
	js      jetstream.JetStream
	subj    streams.Subjects
	reader  streams.DirectGet
	timeout time.Duration

	mu sync.Mutex
	kv jetstream.KeyValue
}

func newReadStore(js jetstream.JetStream, stream string, subj streams.Subjects, timeout time.Duration) *readStore {
	return &readStore{js: js, subj: subj, reader: streams.NewDirectGet(js, stream), timeout: timeout}
}

func (r *readStore) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	r.mu.Lock()
	kv := r.kv
	r.mu.Unlock()
	if kv != nil {
		return kv, nil
	}
	kv, err := r.js.KeyValue(ctx, streams.DevicesBucketName)
	if err != nil {
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			err = fmt.Errorf("%w (create it with `herald streams apply`)", err)
		}
		return nil, unavailable("bucket "+streams.DevicesBucketName, err)
	}
	r.mu.Lock()
	r.kv = kv
	r.mu.Unlock()
	return kv, nil
}

func (r *readStore) forget() {
	r.mu.Lock()
	r.kv = nil
	r.mu.Unlock()
}

// get returns user's read position, 0 when there is none.
func (r *readStore) get(ctx context.Context, user string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	kv, err := r.bucket(ctx)
	if err != nil {
		return 0, err
	}
	e, err := kv.Get(ctx, streams.ReadKey(user))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return 0, nil
	case err != nil:
		r.forget()
		return 0, unavailable("read position of "+streams.LogUser(user), err)
	}
	pos, err := strconv.ParseUint(string(e.Value()), 10, 64)
	if err != nil {
		return 0, nil // not written by Herald: as if none
	}
	return pos, nil
}

// last returns the seq of user's last retained message, 0 when none.
func (r *readStore) last(ctx context.Context, user string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	m, err := r.reader.Last(ctx, r.subj.User(user))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return 0, nil
	case err != nil:
		return 0, unavailable("last message of "+streams.LogUser(user), err)
	}
	return m.Sequence, nil
}

// mark moves user's read position to seq, clamped to the user's last
// message, unless it is there or later already. It returns the position
// after the call and whether this call moved it.
func (r *readStore) mark(ctx context.Context, user string, seq uint64) (pos uint64, moved bool, err error) {
	last, err := r.last(ctx, user)
	if err != nil {
		return 0, false, err
	}
	seq = min(seq, last)
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	kv, err := r.bucket(ctx)
	if err != nil {
		return 0, false, err
	}
	key := streams.ReadKey(user)
	value := strconv.AppendUint(nil, seq, 10)
	for range 5 {
		e, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			if seq == 0 {
				return 0, false, nil
			}
			_, err = kv.Create(ctx, key, value)
		case err != nil:
		default:
			if cur, perr := strconv.ParseUint(string(e.Value()), 10, 64); perr == nil && cur >= seq {
				return cur, false, nil
			}
			_, err = kv.Update(ctx, key, value, e.Revision())
		}
		switch {
		case err == nil:
			return seq, true, nil
		case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
			continue // written meanwhile: look again
		default:
			r.forget()
			return 0, false, unavailable("read position of "+streams.LogUser(user), err)
		}
	}
	return 0, false, unavailable("read position of "+streams.LogUser(user), errors.New("too many concurrent writes"))
}

// markRead moves the read position of d's user to seq and, when it moved,
// tells the user's devices on every edge. It is the session's hook for
// read frames, and POST /v1/read.
func (s *Server) markRead(ctx context.Context, d Device, seq uint64) (uint64, error) {
	if s.reads == nil {
		return 0, errNoReadState
	}
	pos, moved, err := s.reads.mark(ctx, d.User, seq)
	if err != nil {
		return 0, err
	}
	if moved {
		s.ctl.send(d.User, ctlMsg{Type: ctlRead, Device: d.Device, Seq: pos})
	}
	return pos, nil
}

// errNoReadState: the edge was built without JetStream (Options.JetStream).
var errNoReadState = errors.New("edge: read state needs Options.JetStream")

// readBodyLimit bounds the body of POST /v1/read.
const readBodyLimit = 4096

// handleRead serves POST /v1/read {"seq":N,"device":…}: the user's token,
// a device optional (a token bound to a device names it). 200
// {"read":<position after>}.
func (s *Server) handleRead(w http.ResponseWriter, r *http.Request) {
	if !s.allowCORS(w, r) {
		herald.WriteError(w, s.log, herald.NewError(herald.Forbidden, "origin %q is not allowed (edge.allowed_origins)", r.Header.Get("Origin")))
		return
	}
	pos, err := s.read(w, r)
	if err != nil {
		herald.WriteError(w, s.log, err)
		return
	}
	herald.WriteJSON(w, http.StatusOK, herald.ReadPosition{Read: pos})
}

func (s *Server) read(w http.ResponseWriter, r *http.Request) (uint64, error) {
	g, err := s.verifyToken(r)
	if err != nil {
		return 0, err
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, readBodyLimit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return 0, herald.WrapError(herald.TooLarge, err, fmt.Sprintf("the body is limited to %d bytes", readBodyLimit))
		}
		return 0, herald.WrapError(herald.InvalidRequest, err, "reading the body failed")
	}
	var raw struct {
		Seq    json.RawMessage `json:"seq"`
		Device *string         `json:"device"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return 0, herald.WrapError(herald.InvalidJSON, err, `the body must be a JSON object {"seq":N}`)
	}
	var seq uint64
	if len(raw.Seq) == 0 || json.Unmarshal(raw.Seq, &seq) != nil || seq == 0 {
		return 0, herald.NewError(herald.InvalidRequest, "seq must be a positive integer")
	}
	device := g.Device
	if raw.Device != nil {
		if err := streams.ValidateDevice(*raw.Device); err != nil {
			return 0, herald.WrapError(herald.InvalidDevice, err, err.Error())
		}
		if err := g.CheckDevice(*raw.Device); err != nil {
			return 0, herald.WrapError(herald.Forbidden, err, "the token is bound to another device")
		}
		device = *raw.Device
	}
	pos, err := s.markRead(r.Context(), Device{User: g.User, Device: device}, seq)
	switch {
	case errors.Is(err, errNoReadState):
		return 0, &herald.Error{Code: herald.Unavailable, Message: "this edge keeps no read state", Err: err}
	case errors.Is(err, ErrUnavailable):
		return 0, errStoreUnavailable(err)
	case err != nil:
		return 0, err
	}
	return pos, nil
}
