package edge

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/streams"
)

// POST /v1/ack {"device":…,"seq":N}: a cumulative ack outside a socket,
// for SSE clients (SPEC §7). It needs the user's client token (a token
// bound to a device acks that device only).
//
// The ack goes to every open session of the device, on this edge and, over
// the user's control subject (ctl.go), on every other edge, exactly as an
// ack frame would (it frees window slots and stops resends). When none is
// open here (the device streams from another edge, or is offline), it also
// goes to the device's stored position, which it only ever advances: the
// live engine updates the device's KV entry (compare and set), the
// consumer engine resets the device's consumer past seq unless its ack
// floor is there already. An ack frame is shared with the other edges the
// same way.

// ackBodyLimit bounds the body of POST /v1/ack.
const ackBodyLimit = 4096

// ackRequest is the body of POST /v1/ack.
type ackRequest struct {
	Device string
	Seq    uint64
}

// parseAck parses {"device":…,"seq":N}. Errors are *herald.Error.
func parseAck(b []byte) (ackRequest, error) {
	var raw struct {
		Device *string         `json:"device"`
		Seq    json.RawMessage `json:"seq"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return ackRequest{}, herald.WrapError(herald.InvalidJSON, err, `the body must be a JSON object {"device":…,"seq":N}`)
	}
	if raw.Device == nil {
		return ackRequest{}, herald.NewError(herald.InvalidDevice, "device is required")
	}
	if err := streams.ValidateDevice(*raw.Device); err != nil {
		return ackRequest{}, herald.WrapError(herald.InvalidDevice, err, err.Error())
	}
	var seq uint64
	if len(raw.Seq) == 0 || json.Unmarshal(raw.Seq, &seq) != nil || seq == 0 {
		return ackRequest{}, herald.NewError(herald.InvalidRequest, "seq must be a positive integer")
	}
	return ackRequest{Device: *raw.Device, Seq: seq}, nil
}

func (s *Server) handleAck(w http.ResponseWriter, r *http.Request) {
	if !s.allowCORS(w, r) {
		herald.WriteError(w, s.log, herald.NewError(herald.Forbidden, "origin %q is not allowed (edge.allowed_origins)", r.Header.Get("Origin")))
		return
	}
	if err := s.ack(w, r); err != nil {
		herald.WriteError(w, s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handlePreflight answers a browser's CORS preflight of an endpoint that
// takes method (POST /v1/ack, POST /v1/read, GET device status) from an
// allowed origin.
func (s *Server) handlePreflight(method string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Origin") == "" || !s.allowCORS(w, r) {
			herald.WriteError(w, s.log, herald.NewError(herald.Forbidden, "origin %q is not allowed (edge.allowed_origins)", r.Header.Get("Origin")))
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Methods", method)
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
	}
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
			return herald.WrapError(herald.TooLarge, err, fmt.Sprintf("the body is limited to %d bytes", ackBodyLimit))
		}
		return herald.WrapError(herald.InvalidRequest, err, "reading the body failed")
	}
	req, err := parseAck(b)
	if err != nil {
		return err
	}
	if err := g.CheckDevice(req.Device); err != nil {
		return herald.WrapError(herald.Forbidden, err, "the token is bound to another device")
	}
	dev := Device{User: g.User, Device: req.Device}
	s.metrics.acks.Inc()
	s.sendAck(dev, req.Seq)

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
	switch err := s.opts.Engine.AckPosition(r.Context(), dev, req.Seq); {
	case errors.Is(err, ErrNoPosition):
		return herald.WrapError(herald.NotFound, err, "no position for this device: it never connected, or its state expired")
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

// sessionsOfUser returns the open sessions of user's devices on this edge.
func (s *Server) sessionsOfUser(user string) []*session {
	sh := s.shardOf(user)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var out []*session
	for ss := range sh.sessions {
		if ss.dev.User == user {
			out = append(out, ss)
		}
	}
	return out
}

// sendAck tells the device's streams on other edges of an ack received
// here (SPEC §9), at once.
func (s *Server) sendAck(d Device, seq uint64) {
	s.ctl.send(d.User, ctlMsg{Type: ctlAck, Device: d.Device, Seq: seq})
}

// shareAck tells the device's streams on other edges of an ack frame
// received here. Each shared ack is a NATS message that every edge with a
// stream of the user receives, this one included, for a second stream of
// the device that exists only while it moves between edges; so under load
// they are coalesced: an ack when none was shared for shareAckEvery goes
// out at once, and the acks that follow within it go out at its end, the
// highest of each device only. A late shared ack only delays the freeing
// of the other stream's window; its resends wait for the ack wait.
func (s *Server) shareAck(d Device, seq uint64) {
	if s.ctl == nil {
		return
	}
	a := &s.shared
	a.mu.Lock()
	if a.running {
		if a.pending == nil {
			a.pending = map[Device]uint64{}
		}
		if seq > a.pending[d] {
			a.pending[d] = seq
		}
		a.mu.Unlock()
		return
	}
	a.running = true
	// Counted with the sessions, one of which is running this (so the
	// count is not 0): Shutdown waits for the last batch too.
	s.wg.Add(1)
	a.mu.Unlock()
	s.sendAck(d, seq)
	go s.shareAcks()
}

// shareAckEvery is the period over which shared acks are coalesced.
const shareAckEvery = 100 * time.Millisecond

// sharedAcks holds the acks that shareAck has yet to send.
type sharedAcks struct {
	mu      sync.Mutex
	running bool              // shareAcks is running
	pending map[Device]uint64 // the highest ack of each device; under mu
	spare   map[Device]uint64 // the previous batch's map, emptied, for the next; under mu
}

// shareAcks sends the acks that came during each period, until a period
// brought none.
func (s *Server) shareAcks() {
	defer s.wg.Done()
	a := &s.shared
	t := time.NewTimer(shareAckEvery)
	defer t.Stop()
	for {
		<-t.C
		a.mu.Lock()
		batch := a.pending
		if len(batch) == 0 {
			a.running = false
			a.mu.Unlock()
			return
		}
		a.pending, a.spare = a.spare, nil // nil: made by the next shareAck
		a.mu.Unlock()
		for d, seq := range batch {
			s.sendAck(d, seq)
		}
		clear(batch)
		a.mu.Lock()
		a.spare = batch
		a.mu.Unlock()
		t.Reset(shareAckEvery)
	}
}
