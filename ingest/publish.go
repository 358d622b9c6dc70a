package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/streams"
)

// input is a message as a producer sends it. Unknown fields, "seq",
// "time" and "expires" are ignored.
type input struct {
	ID       string          `json:"id"`
	User     string          `json:"user"`
	Title    string          `json:"title"`
	Body     string          `json:"body"`
	Priority *int            `json:"priority"`
	Tags     []string        `json:"tags"`
	Data     json.RawMessage `json:"data"`
	Ref      string          `json:"ref"`
	Op       string          `json:"op"`
	// TTL and Delay are a number of seconds or a duration string;
	// DeliverAt an RFC 3339 time (SPEC §10).
	TTL       json.RawMessage `json:"ttl"`
	Delay     json.RawMessage `json:"delay"`
	DeliverAt string          `json:"deliver_at"`
}

// published is the answer to a single publish.
type published struct {
	ID        string     `json:"id"`
	Seq       uint64     `json:"seq"`
	User      string     `json:"user"`
	Time      *time.Time `json:"time,omitempty"`
	Duplicate bool       `json:"duplicate,omitempty"`
}

// publish handles POST /v1/users/{user}/messages.
func (h *Handler) publish(w http.ResponseWriter, r *http.Request) (string, error) {
	user, in, err := h.readPublish(w, r, false)
	if err != nil {
		return "", err
	}
	return h.store(w, r, user, in)
}

// readPublish authenticates and reads a single publish: the user of the
// path and the message of the body (JSON, or text/plain as its body). An
// empty body is an empty message when emptyOK.
func (h *Handler) readPublish(w http.ResponseWriter, r *http.Request, emptyOK bool) (string, input, error) {
	var in input
	if err := h.authProducer(r); err != nil {
		return "", in, err
	}
	if err := h.rateLimit(r, 1); err != nil {
		return "", in, err
	}
	user := r.PathValue("user")
	if err := streams.ValidateUser(user); err != nil {
		return "", in, herald.WrapError(herald.InvalidUser, err, err.Error())
	}
	text, err := mediaType(r, true)
	if err != nil {
		return "", in, err
	}
	raw, err := readBody(w, r, h.singleLimit)
	if err != nil {
		return "", in, err
	}
	switch {
	case emptyOK && len(bytes.TrimSpace(raw)) == 0:
	case text:
		if !utf8.Valid(raw) {
			return "", in, herald.NewError(herald.InvalidMessage, "a text/plain body must be valid UTF-8")
		}
		in.Body = string(raw)
	default:
		if err := json.Unmarshal(raw, &in); err != nil {
			return "", in, decodeErr(err)
		}
		if in.User != "" && in.User != user {
			return "", in, herald.NewError(herald.InvalidMessage, "user in the body does not match the user in the path")
		}
	}
	return user, in, nil
}

// store writes the message in of user: 201 with its seq, 200 for a
// duplicate, or 202 with deliver_at for a scheduled message.
func (h *Handler) store(w http.ResponseWriter, r *http.Request, user string, in input) (string, error) {
	t := now()
	d, err := readDefaults(r, t)
	if err != nil {
		return "", err
	}
	env, msg, err := h.write(user, in, r.Header.Get("Idempotency-Key"), d, t)
	if err != nil {
		return "", err
	}
	if err := h.checkConnected(); err != nil {
		return "", err
	}

	ctx, cancel := context.WithTimeout(r.Context(), h.ingest.PublishTimeout)
	defer cancel()
	start := time.Now()
	ack, err := h.pub.PublishMsg(ctx, msg)
	if err != nil {
		return "", h.publishErr(user, err)
	}
	h.metrics.publish.Observe(time.Since(start).Seconds())

	if msg.Subject != h.subjects.User(user) {
		// A schedule: its own seq is not the message's, which exists
		// only once JetStream stores it on the user's subject.
		h.logStored(user, ack.Sequence, ack.Duplicate)
		if !ack.Duplicate {
			h.metrics.messages.Inc()
		}
		herald.WriteJSON(w, http.StatusAccepted, scheduled{ID: env.ID, DeliverAt: env.Time, Duplicate: ack.Duplicate})
		if ack.Duplicate {
			return outcomeDuplicate, nil
		}
		return outcomeOK, nil
	}
	resp := published{ID: env.ID, Seq: ack.Sequence, User: user, Time: &env.Time}
	if ack.Duplicate {
		orig, err := h.original(ctx, user, env.ID, ack.Sequence)
		if err != nil {
			return "", err
		}
		resp.Time, resp.Duplicate = orig, true
		h.logStored(user, ack.Sequence, true)
		herald.WriteJSON(w, http.StatusOK, resp)
		return outcomeDuplicate, nil
	}
	h.metrics.messages.Inc()
	h.logStored(user, ack.Sequence, false)
	herald.WriteJSON(w, http.StatusCreated, resp)
	return outcomeOK, nil
}

// mediaType checks the Content-Type: JSON when it is missing or
// application/json, text when text/plain is allowed and given (in UTF-8 or
// US-ASCII); anything else is 415.
func mediaType(r *http.Request, allowText bool) (text bool, err error) {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return false, nil
	}
	mt, params, perr := mime.ParseMediaType(ct)
	switch {
	case perr != nil:
	case mt == "application/json":
		return false, nil
	case mt == "text/plain" && allowText:
		cs := params["charset"]
		if cs == "" || strings.EqualFold(cs, "utf-8") || strings.EqualFold(cs, "us-ascii") {
			return true, nil
		}
	}
	want := "application/json"
	if allowText {
		want += " or text/plain; charset=utf-8"
	}
	return false, herald.NewError(herald.UnsupportedMediaType, "Content-Type %q is not supported; send %s", ct, want)
}

// readBody reads the whole body, at most limit bytes; more is 413.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body, err := limitBody(w, r, limit)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(body)
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, tooLargeBody(limit)
	case err != nil:
		return nil, herald.WrapError(herald.InvalidRequest, err, "reading the request body failed")
	}
	return b, nil
}

// limitBody returns the body cut off after limit bytes (a read past it
// fails with *http.MaxBytesError), or 413 at once when Content-Length
// says it is longer. A body that trickles in is cut off by the server's
// read deadline (http.body_timeout), set before routing and
// authentication.
func limitBody(w http.ResponseWriter, r *http.Request, limit int64) (io.Reader, error) {
	if r.ContentLength > limit {
		return nil, tooLargeBody(limit)
	}
	return http.MaxBytesReader(w, r.Body, limit), nil
}

// bodyErr maps an error met while decoding a body as a stream: past the
// limit is 413, malformed or cut-off JSON 400 invalid_json, any other
// failed read 400 invalid_request.
func bodyErr(err error, limit int64) error {
	var mbe *http.MaxBytesError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &mbe):
		return tooLargeBody(limit)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return decodeErr(io.ErrUnexpectedEOF)
	case errors.As(err, &se):
		return decodeErr(err)
	}
	return herald.WrapError(herald.InvalidRequest, err, "reading the request body failed")
}

func tooLargeBody(limit int64) error {
	return herald.NewError(herald.TooLarge, "request body exceeds %d bytes", limit)
}

// decodeErr maps a JSON decoding error: a value of the wrong type is
// invalid_message, anything else invalid_json.
func decodeErr(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return herald.WrapError(herald.InvalidMessage, err, "a message must be a JSON object")
		}
		return herald.WrapError(herald.InvalidMessage, err, fmt.Sprintf("field %s must be %s, not %s", te.Field, jsonKind(te.Type.String()), te.Value))
	}
	return herald.WrapError(herald.InvalidJSON, err, "request body is not valid JSON: "+strings.TrimPrefix(err.Error(), "json: "))
}

// jsonKind names a Go type the way a JSON producer would.
func jsonKind(goType string) string {
	switch {
	case goType == "string":
		return "a string"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case strings.Contains(goType, "int"):
		return "an integer"
	default:
		return "an object"
	}
}

// write builds, encodes and checks the stored envelope of in for user and
// returns it with its write. key is the Idempotency-Key header ("" when
// absent), d the request's lifecycle headers, t the time of the request.
// A scheduled message's time is its deliver_at; a message with a ttl
// expires at its time plus the ttl.
func (h *Handler) write(user string, in input, key string, d defaults, t time.Time) (streams.Envelope, *nats.Msg, error) {
	id := in.ID
	if key != "" {
		if id != "" && id != key {
			return streams.Envelope{}, nil, herald.NewError(herald.InvalidMessage, "the Idempotency-Key header and the id field differ")
		}
		id = key
	}
	if id != "" {
		if err := streams.ValidateID(id); err != nil {
			return streams.Envelope{}, nil, herald.WrapError(herald.InvalidMessage, err, err.Error())
		}
	}
	lc, err := h.lifecycle(in, d, t)
	if err != nil {
		return streams.Envelope{}, nil, err
	}
	if id == "" {
		id = h.ids.next(t)
	}
	env := streams.Envelope{
		ID: id, User: user, Time: t,
		Title: in.Title, Body: in.Body, Priority: in.Priority, Tags: in.Tags, Data: in.Data,
		Ref: in.Ref, Op: in.Op,
	}
	if !lc.DeliverAt.IsZero() {
		env.Time = lc.DeliverAt
	}
	if lc.TTL > 0 {
		exp := env.Time.Add((lc.TTL + time.Second - 1) / time.Second * time.Second)
		env.Expires = &exp
	}
	if err := env.Validate(); err != nil {
		return streams.Envelope{}, nil, herald.WrapError(herald.InvalidMessage, err, err.Error())
	}
	payload, err := env.Encode()
	if err != nil {
		return streams.Envelope{}, nil, fmt.Errorf("ingest: envelope: %w", err)
	}
	if len(payload) > h.ingest.MaxMessageBytes {
		return streams.Envelope{}, nil, herald.NewError(herald.TooLarge, "the stored message would be %d bytes; the limit is %d", len(payload), h.ingest.MaxMessageBytes)
	}
	m := h.subjects.NewMsg(user, id, payload, lc)
	m.Header.Set(jetstream.ExpectedStreamHeader, h.streamName)
	return env, m, nil
}

// publishErr maps a failed write: a payload over the NATS max payload is
// 413, anything else (timeout, no stream, disconnected, a JetStream error)
// is 503 with Retry-After.
func (h *Handler) publishErr(user string, err error) error {
	if errors.Is(err, nats.ErrMaxPayload) {
		return herald.WrapError(herald.TooLarge, err, "the message exceeds the NATS max payload")
	}
	h.log.Warn("publish failed", "user", streams.LogUser(user), "err", err)
	return h.unavailable("JetStream did not acknowledge the write; retry later", err)
}

// original inspects the message a duplicate write matched (at seq). It
// returns the stored time, or nil when the message cannot be read (then the
// duplicate is reported without a time). Nats-Msg-Id is scoped by user
// (streams.MsgID), so the match is this user's message unless a publisher
// straight to NATS set the header by hand for another subject: that is 400,
// since the write was not stored and is not a retry of this message.
func (h *Handler) original(ctx context.Context, user, id string, seq uint64) (*time.Time, error) {
	sm, err := h.reader.Next(ctx, seq, "")
	if err != nil {
		h.log.Debug("duplicate lookup failed", "user", streams.LogUser(user), "seq", seq, "err", err)
		return nil, nil
	}
	if sm.Subject != h.subjects.User(user) {
		return nil, herald.NewError(herald.InvalidMessage, "id %q was already used for another user within the duplicate window", id)
	}
	t := streams.Decode(sm.Data, sm.Sequence, sm.Time).Time
	return &t, nil
}

func (h *Handler) logStored(user string, seq uint64, duplicate bool) {
	h.log.Debug("stored", "user", streams.LogUser(user), "seq", seq, "duplicate", duplicate)
}
