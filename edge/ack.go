package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald/ingest/apierr"
	"github.com/herald-push/herald/streams"
)

// POST /v1/ack {"device":…,"seq":N}: a cumulative ack outside a socket,
// for SSE clients (SPEC §7). It needs the user's client token (a token
// bound to a device acks that device only).
//
// The ack goes to every open session of the device on this edge, exactly
// as an ack frame would (it frees window slots and stops resends). When
// none is open here (the device streams from another edge, or is offline),
// it goes to the device's stored position instead, which it only ever
// advances: the live engine updates the device's KV entry (compare and
// set), the consumer engine resets the device's consumer past seq. Either
// way, with Options.Control it also reaches the device's sessions on the
// other edges (control.go), which stop resending what it covers.

// ackBodyLimit bounds the body of POST /v1/ack.
const ackBodyLimit = 4096

// PositionAcker is what the ack endpoint needs of an engine for a device
// without an open session on this edge. Both engines satisfy it.
type PositionAcker interface {
	// AckPosition moves the device's stored position to seq unless it is
	// already there or later. It returns ErrNoPosition (wrapped) when the
	// device has no position, ErrUnavailable when JetStream cannot be
	// reached.
	AckPosition(ctx context.Context, d Device, seq uint64) error
}

// ErrNoPosition is returned by AckPosition for an unknown device.
var ErrNoPosition = errors.New("edge: device has no position")

var (
	_ PositionAcker = (*LiveEngine)(nil)
	_ PositionAcker = (*ConsumerEngine)(nil)
)

// ackRequest is the body of POST /v1/ack.
type ackRequest struct {
	Device string
	Seq    uint64
}

// parseAck parses {"device":…,"seq":N}. Errors are *apierr.Error.
func parseAck(b []byte) (ackRequest, error) {
	var raw struct {
		Device *string         `json:"device"`
		Seq    json.RawMessage `json:"seq"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return ackRequest{}, apierr.Wrap(apierr.InvalidJSON, err, `the body must be a JSON object {"device":…,"seq":N}`)
	}
	if raw.Device == nil {
		return ackRequest{}, apierr.New(apierr.InvalidDevice, "device is required")
	}
	if err := streams.ValidateDevice(*raw.Device); err != nil {
		return ackRequest{}, apierr.Wrap(apierr.InvalidDevice, err, err.Error())
	}
	var seq uint64
	if len(raw.Seq) == 0 || json.Unmarshal(raw.Seq, &seq) != nil || seq == 0 {
		return ackRequest{}, apierr.New(apierr.InvalidRequest, "seq must be a positive integer")
	}
	return ackRequest{Device: *raw.Device, Seq: seq}, nil
}

func (s *Server) handleAck(w http.ResponseWriter, r *http.Request) {
	if !s.allowCORS(w, r) {
		apierr.Write(w, s.log, apierr.New(apierr.Forbidden, "origin %q is not allowed (edge.allowed_origins)", r.Header.Get("Origin")))
		return
	}
	if err := s.ack(w, r); err != nil {
		apierr.Write(w, s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleAckPreflight answers a browser's CORS preflight of POST /v1/ack
// from an allowed origin.
func (s *Server) handleAckPreflight(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Origin") == "" || !s.allowCORS(w, r) {
		apierr.Write(w, s.log, apierr.New(apierr.Forbidden, "origin %q is not allowed (edge.allowed_origins)", r.Header.Get("Origin")))
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "POST")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// allowCORS lets a browser page from an origin the edge allows (its own, or
// one of edge.allowed_origins, as Gate decides) read the answer; false when
// the request has an Origin that is not allowed.
func (s *Server) allowCORS(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if !s.lim.origin(r) {
		return false
	}
	w.Header().Set("Access-Control-Allow-Origin", origin)
	w.Header().Add("Vary", "Origin")
	return true
}

func (s *Server) ack(w http.ResponseWriter, r *http.Request) error {
	g, err := s.verifyToken(r)
	if err != nil {
		return err
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, ackBodyLimit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return apierr.Wrap(apierr.TooLarge, err, fmt.Sprintf("the body is limited to %d bytes", ackBodyLimit))
		}
		return apierr.Wrap(apierr.InvalidRequest, err, "reading the body failed")
	}
	req, err := parseAck(b)
	if err != nil {
		return err
	}
	if err := g.CheckDevice(req.Device); err != nil {
		return apierr.Wrap(apierr.Forbidden, err, "the token is bound to another device")
	}
	dev := Device{User: g.User, Device: req.Device}
	s.metrics.acks.Inc()
	s.ctl.publish(dev, req.Seq)

	applied := false
	for _, ss := range s.sessionsOf(dev) {
		if ss.ack(req.Seq) != nil {
			continue
		}
		// A session still open after the ack had its feed open during it
		// (the feed closes only after the session's context ends), so the
		// feed keeps the ack. A closing one may have dropped it.
		if ss.ctx.Err() == nil {
			applied = true
		}
	}
	if applied {
		return nil
	}
	pa, ok := s.opts.Engine.(PositionAcker)
	if !ok {
		return apierr.New(apierr.NotFound, "the device is not connected to this edge")
	}
	switch err := pa.AckPosition(r.Context(), dev, req.Seq); {
	case errors.Is(err, ErrNoPosition):
		return apierr.Wrap(apierr.NotFound, err, "no position for this device: it never connected, or its state expired")
	case errors.Is(err, ErrUnavailable):
		return errStoreUnavailable(err)
	case err != nil:
		return err
	}
	return nil
}

// sessionsOf returns the open sessions of d on this edge. It scans d's
// user's shard, 1/64 of the sessions.
func (s *Server) sessionsOf(d Device) []*session {
	sh := s.shardOf(d.User)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var out []*session
	for ss := range sh.sessions {
		if ss.dev == d {
			out = append(out, ss)
		}
	}
	return out
}

// AckPosition advances the device's KV position to seq (compare and set;
// a position already at or past seq is left alone). A seq beyond the
// user's last stored message is clamped to it (SPEC §9): stored as given,
// it would make the device skip the messages stored after the ack, up to
// seq, without a gap.
func (e *LiveEngine) AckPosition(ctx context.Context, d Device, seq uint64) error {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	s, kv, err := e.handles(ctx)
	if err != nil {
		return err
	}
	key := streams.DeviceKey(d.User, d.Device)
	// The user's last message, read before the position: a message stored
	// after this read has a higher seq than the clamp, so it is delivered.
	// A replica that lags can only make the clamp lower (a resend, never a
	// loss).
	subject := e.subj.User(d.User)
	var userLast uint64
	switch last, err := newStoreReader(e.js, s).last(ctx, subject); {
	case errors.Is(err, jetstream.ErrMsgNotFound):
	case err != nil:
		e.forget()
		return unavailable("last message of "+subject, err)
	default:
		userLast = last.Sequence
	}
	seq = clampSince(seq, userLast)
	for range 5 {
		entry, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			return fmt.Errorf("edge: ack %s: %w", key, ErrNoPosition)
		case err != nil:
			e.forget()
			return unavailable("position of "+key, err)
		}
		if pos, err := strconv.ParseUint(string(entry.Value()), 10, 64); err == nil && pos >= seq {
			return nil
		}
		_, err = kv.Update(ctx, key, strconv.AppendUint(nil, seq, 10), entry.Revision())
		switch {
		case err == nil:
			return nil
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch), errors.Is(err, jetstream.ErrKeyExists):
			continue // written meanwhile: look again
		default:
			e.forget()
			return unavailable("ack position of "+key, err)
		}
	}
	return unavailable("ack position of "+key, errors.New("too many concurrent writes"))
}

// AckPosition moves the device consumer's ack floor to seq (clamped to the
// stream's last seq) by resetting it to seq+1, unless the floor is already
// there. Messages after seq that the consumer had delivered are delivered
// again.
func (e *ConsumerEngine) AckPosition(ctx context.Context, d Device, seq uint64) error {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	s, err := e.handle(ctx)
	if err != nil {
		return err
	}
	name := ConsumerName(d.User, d.Device)
	cons, err := s.Consumer(ctx, name)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		return fmt.Errorf("edge: ack %s: %w", name, ErrNoPosition)
	case err != nil:
		e.forget()
		return unavailable("consumer info", err)
	}
	if cons.CachedInfo().AckFloor.Stream >= seq {
		return nil
	}
	info, err := s.Info(ctx)
	if err != nil {
		e.forget()
		return unavailable("stream info", err)
	}
	seq = clampSince(seq, info.State.LastSeq)
	if cons.CachedInfo().AckFloor.Stream >= seq {
		return nil
	}
	if _, err := reset(ctx, s, name, seq+1); err != nil {
		e.forget()
		return err
	}
	return nil
}
