package edge

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/edge/token"
	"github.com/herald-push/herald/streams"
)

// The ntfy subscribe endpoints (SPEC §12), for ntfy's own clients:
//
//	GET /<topic>/json   one JSON event per line (application/x-ndjson)
//	GET /<topic>/sse    server-sent events: "event: open" and
//	                    "event: keepalive" events, and a "data:" event with
//	                    "id: <seq>" per message
//	GET /<topic>/ws     a WebSocket, one JSON event per text frame
//
// The topic is the user id; the client token must be that user's, given
// as Authorization: Bearer, as the password of Basic credentials, as
// ?auth= (base64url of the whole header value, as ntfy's web app sends it)
// or as ?token=. Each connection is a device like any other, so positions
// and resume hold: the device is ?device=, else the token's dev claim,
// else "ntfy". ntfy's clients do not ack: what a connection has written is
// acked (as SSE's ack=auto). Events are ntfy's: "open" first, "message"
// with the seq as id and the envelope mapped by herald.NtfyMessageOf, and
// "keepalive" every edge.ping_interval on the JSON and SSE streams (the
// WebSocket has its pings).
//
// ?since= picks where delivery starts:
//
//	(none)       the device's stored position, as on /v1/ws (with poll=1: all)
//	all          every retained message
//	none         only messages published from now on
//	latest       the user's last message, and what follows
//	<seq>        messages after that seq (the id of an ntfy message); a
//	             number of ten digits or more beyond the user's last seq is
//	             read as a Unix time, as ntfy's CLI may send one
//	<duration>   messages stored in that past: 10m, 2h, 1d, 1h30m
//
// ?poll=1 sends the retained messages from there and ends the response. A
// Last-Event-ID header on /sse resumes after that seq. ntfy's message
// filters (?title=, ?priority=, …) are refused with 400: Herald delivers
// every message of the user. Errors are ntfy's JSON, except that a path
// under Herald's own /v1/ gets Herald's 404: these routes never shadow it.

// NtfyStore is what the ntfy endpoints read to place a since given as a
// time: a subject's last message, and its first stored at or after a time.
// streams.DirectGet satisfies it.
type NtfyStore interface {
	Last(ctx context.Context, subject string) (*jetstream.RawStreamMsg, error)
	FirstAt(ctx context.Context, t time.Time, subject string) (*jetstream.RawStreamMsg, error)
}

var _ NtfyStore = streams.DirectGet{}

// NtfyOptions turn the ntfy subscribe endpoints on.
type NtfyOptions struct {
	// Store reads the stream the engine delivers from.
	Store NtfyStore
	// Subjects names each user's subject in that stream.
	Subjects streams.Subjects
	// Timeout bounds each read of Store.
	Timeout time.Duration
}

// ntfyDefaultDevice is the device of an ntfy connection that names none.
const ntfyDefaultDevice = "ntfy"

// ntfyTransport is one of the ntfy subscribe endpoints.
type ntfyTransport int

const (
	ntfyJSON ntfyTransport = iota
	ntfySSE
	ntfyWS
)

// RegisterNtfy adds the ntfy subscribe routes to mux when Options.Ntfy is
// set. GET /<topic>/json is as general as a path of two segments: serve
// mux only with what Herald's own routes (Register) leave, as cmd/herald
// does; a topic "v1" still gets Herald's 404.
func (s *Server) RegisterNtfy(mux *http.ServeMux) {
	if s.opts.Ntfy == nil {
		return
	}
	mux.HandleFunc("GET /{topic}/json", func(w http.ResponseWriter, r *http.Request) { s.handleNtfy(w, r, ntfyJSON) })
	mux.HandleFunc("GET /{topic}/sse", func(w http.ResponseWriter, r *http.Request) { s.handleNtfy(w, r, ntfySSE) })
	mux.HandleFunc("GET /{topic}/ws", func(w http.ResponseWriter, r *http.Request) { s.handleNtfy(w, r, ntfyWS) })
}

// rejectNtfy counts and renders a refusal in ntfy's error shape.
func (s *Server) rejectNtfy(w http.ResponseWriter, err error) {
	e := herald.AsError(err)
	s.metrics.rejects.WithLabelValues(string(e.Code)).Inc()
	herald.WriteNtfyError(w, s.log, err)
}

func (s *Server) handleNtfy(w http.ResponseWriter, r *http.Request, t ntfyTransport) {
	if r.PathValue("topic") == herald.NtfyHeraldPrefix {
		herald.WriteError(w, s.log, herald.NewError(herald.NotFound, "no such endpoint: %s %s", r.Method, r.URL.Path))
		return
	}
	release, err := s.Gate(r)
	if err != nil {
		s.rejectNtfy(w, err)
		return
	}
	s.allowCORS(w, r) // Gate refused any origin it does not allow
	cr, poll, err := s.authorizeNtfy(r, t)
	if err != nil {
		release()
		s.rejectNtfy(w, err)
		return
	}
	topic := cr.dev.User
	if t == ntfyWS {
		s.upgrade(w, r, cr, release, wsSpec{name: "ntfy", codec: ntfyCodec{topic: topic}, ntfy: true, poll: poll, reject: s.rejectNtfy})
		return
	}
	defer release()
	var format eventFormat = ntfyLines{topic: topic}
	if t == ntfySSE {
		format = ntfyEvents{topic: topic}
	}
	s.serveStream(w, r, cr, streamSpec{name: "ntfy", codec: ntfyCodec{topic: topic}, format: format, ack: sseAckAuto, poll: poll, reject: s.rejectNtfy})
}

// ntfyFilters are ntfy's message filters, which Herald does not apply.
var ntfyFilters = []string{"id", "message", "m", "title", "t", "tags", "tag", "ta", "priority", "prio", "p"}

// authorizeNtfy validates an ntfy subscription before the upgrade or the
// stream: topic, token, device, since and poll. Errors are *herald.Error,
// some with ntfy's code.
func (s *Server) authorizeNtfy(r *http.Request, t ntfyTransport) (connRequest, bool, error) {
	topic := r.PathValue("topic")
	switch {
	case strings.Contains(topic, ","):
		return connRequest{}, false, ntfyCoded(herald.NtfyCodeTopicInvalid, herald.NewError(herald.InvalidUser, "one topic per subscription: the topic is a Herald user, and a token reads its own user only"))
	case herald.NtfyTopicReserved(topic):
		return connRequest{}, false, ntfyCoded(herald.NtfyCodeTopicInvalid, herald.NewError(herald.InvalidUser, "topic %q is reserved by Herald: subscribe to this user with /v1/ws or /v1/sse", topic))
	case !herald.NtfyTopicValid(topic):
		return connRequest{}, false, ntfyCoded(herald.NtfyCodeTopicInvalid, herald.NewError(herald.InvalidUser, "topic %q is not an ntfy topic (1–64 characters of A-Z a-z 0-9 _ -): subscribe to this user with /v1/ws or /v1/sse", topic))
	}
	q := r.URL.Query()
	for _, f := range ntfyFilters {
		if q.Has(f) {
			return connRequest{}, false, herald.NewError(herald.InvalidRequest, "ntfy's message filters (%s=) are not supported: Herald delivers every message of the user", f)
		}
	}
	g, err := s.verifyNtfyToken(r)
	if err != nil {
		return connRequest{}, false, err
	}
	if g.User != topic {
		return connRequest{}, false, herald.NewError(herald.Forbidden, "the token is for another user than topic %q", topic)
	}
	device := q.Get("device")
	switch {
	case device == "" && g.Device != "":
		device = g.Device
	case device == "":
		device = ntfyDefaultDevice
	}
	if err := streams.ValidateDevice(device); err != nil {
		return connRequest{}, false, herald.WrapError(herald.InvalidDevice, err, err.Error())
	}
	if err := g.CheckDevice(device); err != nil {
		return connRequest{}, false, herald.WrapError(herald.Unauthorized, err, "the token is bound to another device")
	}
	poll := ntfyBool(r, "X-Poll", "poll", "po")
	since, err := parseNtfySince(q.Get("since"))
	if err != nil {
		return connRequest{}, false, ntfyCoded(herald.NtfyCodeSinceInvalid, herald.WrapError(herald.InvalidRequest, err, err.Error()))
	}
	if v := strings.TrimSpace(r.Header.Get("Last-Event-ID")); v != "" && t == ntfySSE {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return connRequest{}, false, ntfyCoded(herald.NtfyCodeSinceInvalid, herald.NewError(herald.InvalidRequest, "Last-Event-ID must be a seq"))
		}
		since = ntfySince{kind: sinceSeq, seq: n}
	}
	pos, err := s.ntfyPosition(r.Context(), topic, since, poll)
	if err != nil {
		return connRequest{}, false, err
	}
	return connRequest{dev: Device{User: g.User, Device: device}, pos: pos, expires: g.Expires}, poll, nil
}

// verifyNtfyToken verifies the client token of an ntfy request: from
// ?auth= or the Authorization header (Bearer, or Basic with the token as
// password), else ?token=.
func (s *Server) verifyNtfyToken(r *http.Request) (g token.Verified, err error) {
	raw, found, err := herald.NtfyRequestCredential(r)
	if err != nil {
		return g, herald.WrapError(herald.InvalidRequest, err, err.Error())
	}
	if !found {
		raw = r.URL.Query().Get("token")
	}
	if raw == "" {
		return g, herald.NewError(herald.Unauthorized, "a client token is required (Authorization: Bearer, Basic with the token as password, ?auth= or ?token=)")
	}
	v, err := s.opts.Tokens.Verify(raw)
	if err != nil {
		return g, herald.WrapError(herald.Unauthorized, err, "invalid token")
	}
	return v, nil
}

// ntfyBool reads a boolean parameter as ntfy does: the first of names set
// as a header, then as a query parameter; 1, yes and true are true.
func ntfyBool(r *http.Request, names ...string) bool {
	v := ""
	for _, n := range names {
		if v = r.Header.Get(n); v != "" {
			break
		}
	}
	if v == "" {
		q := r.URL.Query()
		for _, n := range names {
			if v = q.Get(strings.ToLower(n)); v != "" {
				break
			}
		}
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "yes", "true":
		return true
	}
	return false
}

// sinceKind is what an ntfy since names.
type sinceKind int

const (
	sinceStored sinceKind = iota // no since: the device's position
	sinceAll
	sinceNone
	sinceLatest
	sinceSeq // a seq, or a Unix time (see ntfyPosition)
	sinceAgo // a duration before now
)

// ntfySince is a parsed since.
type ntfySince struct {
	kind sinceKind
	seq  uint64
	ago  time.Duration
}

// errSince is wrapped by parseNtfySince's errors.
var errSince = errors.New("invalid since")

// parseNtfySince reads ntfy's since: "", all, none, latest, a number, or a
// duration (herald.ParseNtfyDuration).
func parseNtfySince(v string) (ntfySince, error) {
	switch v = strings.TrimSpace(v); v {
	case "":
		return ntfySince{kind: sinceStored}, nil
	case "all":
		return ntfySince{kind: sinceAll}, nil
	case "none":
		return ntfySince{kind: sinceNone}, nil
	case "latest":
		return ntfySince{kind: sinceLatest}, nil
	}
	if n, err := strconv.ParseUint(v, 10, 64); err == nil {
		return ntfySince{kind: sinceSeq, seq: n}, nil
	}
	d, err := herald.ParseNtfyDuration(v)
	if err != nil {
		return ntfySince{}, fmt.Errorf("%w %q: use all, none, latest, a seq (a message id), or a duration such as 10m, 2h or 1d", errSince, v)
	}
	return ntfySince{kind: sinceAgo, ago: d}, nil
}

// unixTimeMin is the smallest number a since may be read as a Unix time
// (2001-09-09): a seq that high is beyond any user's messages in practice.
const unixTimeMin = 1_000_000_000

// ntfyPosition places a since: a Position the engines take. A since given
// as a time reads the store (errors are 503).
func (s *Server) ntfyPosition(ctx context.Context, user string, since ntfySince, poll bool) (Position, error) {
	all := Position{Since: 0, HasSince: true}
	// A since beyond the user's last message is clamped to it by the
	// engines: delivery starts with the next message.
	none := Position{Since: math.MaxUint64, HasSince: true}
	switch since.kind {
	case sinceStored:
		if poll {
			return all, nil // ntfy's poll without since returns every message
		}
		return Position{}, nil
	case sinceAll:
		return all, nil
	case sinceNone:
		return none, nil
	}
	o := s.opts.Ntfy
	subject := o.Subjects.User(user)
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	var at time.Time
	switch since.kind {
	case sinceLatest:
		m, err := o.Store.Last(ctx, subject)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			return none, nil
		case err != nil:
			return Position{}, errStoreUnavailable(err)
		}
		return Position{Since: m.Sequence - 1, HasSince: true}, nil
	case sinceSeq:
		if since.seq < unixTimeMin {
			return Position{Since: since.seq, HasSince: true}, nil
		}
		m, err := o.Store.Last(ctx, subject)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			return none, nil
		case err != nil:
			return Position{}, errStoreUnavailable(err)
		case since.seq <= m.Sequence:
			return Position{Since: since.seq, HasSince: true}, nil
		}
		at = time.Unix(int64(min(since.seq, math.MaxInt64)), 0)
	case sinceAgo:
		at = time.Now().Add(-since.ago)
	}
	m, err := o.Store.FirstAt(ctx, at, subject)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return none, nil
	case err != nil:
		return Position{}, errStoreUnavailable(err)
	}
	return Position{Since: m.Sequence - 1, HasSince: true}, nil
}

// ntfyCoded gives e ntfy's numeric code.
func ntfyCoded(code int, e *herald.Error) error {
	return &herald.NtfyError{Code: code, Err: e}
}

// ntfyCodec encodes frames as ntfy's events on topic: the welcome is the
// open event, a message its ntfy message; synced has no ntfy event.
type ntfyCodec struct {
	topic string
}

var _ codec = ntfyCodec{}

func (c ntfyCodec) welcome(Device, Start, uint64) []byte {
	return mustJSON(herald.NtfyEvent(herald.NtfyEventOpen, c.topic, time.Now()))
}

func (c ntfyCodec) message(d Delivery) []byte {
	return mustJSON(herald.NtfyMessageOf(streams.Decode(d.Payload, d.Seq, d.Time), c.topic))
}

func (ntfyCodec) synced(uint64) []byte { return nil }

// ntfyLines is the event format of GET /<topic>/json: one JSON event per
// line.
type ntfyLines struct {
	topic string
}

var _ eventFormat = ntfyLines{}

func (ntfyLines) event(b []byte, _ frameKind, _ uint64, frame []byte) []byte {
	if frame == nil {
		return b
	}
	return append(append(b, frame...), '\n')
}

func (f ntfyLines) ping() []byte {
	return append(mustJSON(herald.NtfyEvent(herald.NtfyEventKeepalive, f.topic, time.Now())), '\n')
}

func (ntfyLines) end(CloseReason) []byte { return nil }
func (ntfyLines) contentType() string    { return "application/x-ndjson; charset=utf-8" }

// ntfyEvents is the event format of GET /<topic>/sse: ntfy's events as
// server-sent events, named by their type except messages (EventSource's
// default), which carry their seq as id.
type ntfyEvents struct {
	topic string
}

var _ eventFormat = ntfyEvents{}

func (ntfyEvents) event(b []byte, kind frameKind, seq uint64, frame []byte) []byte {
	switch {
	case frame == nil:
		return b
	case kind == kindMessage:
		return appendEvent(b, "", seq, frame)
	case kind == kindWelcome:
		return appendEvent(b, herald.NtfyEventOpen, 0, frame)
	}
	return appendEvent(b, kind.event(), 0, frame)
}

func (f ntfyEvents) ping() []byte {
	return appendEvent(nil, herald.NtfyEventKeepalive, 0, mustJSON(herald.NtfyEvent(herald.NtfyEventKeepalive, f.topic, time.Now())))
}

func (ntfyEvents) end(CloseReason) []byte { return nil }
func (ntfyEvents) contentType() string    { return "text/event-stream; charset=utf-8" }
