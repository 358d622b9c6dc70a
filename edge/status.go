package edge

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/edge/token"
	"github.com/herald-push/herald/streams"
)

// Device status (SPEC §10): GET /v1/users/{user}/devices, for a producer
// (its key) or the user (the user's token): the read position, the user's
// last seq, and each device's acked position, last seen time and whether
// it has a stream open on any edge, so that a backend can tell whether a
// message reached a device, and fall back to another channel when it has
// not.
//
// The devices are those the engine keeps a position for (Engine.Devices);
// connected comes from a presence request to every edge (control), and a
// connected device is seen now. An edge that answers that request later
// than presenceLinger after the first answer is not counted.

// DeviceState is what an engine keeps of one device of a user.
type DeviceState struct {
	Device string
	// Acked is the stored position: every message up to it is acked.
	Acked uint64
	// LastSeen is when the device last connected, moved its position or
	// disconnected, as far as the engine recorded it; zero when unknown.
	LastSeen time.Time
}

// presenceWait bounds the wait for the first presence answer.
const presenceWait = time.Second

func (s *Server) handleDevices(w http.ResponseWriter, r *http.Request) {
	s.allowCORS(w, r)
	st, err := s.deviceStatus(r)
	if err != nil {
		herald.WriteError(w, s.log, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	herald.WriteJSON(w, http.StatusOK, st)
}

func (s *Server) deviceStatus(r *http.Request) (herald.Devices, error) {
	user := r.PathValue("user")
	if err := s.authUserOrProducer(r, user); err != nil {
		return herald.Devices{}, err
	}
	if err := streams.ValidateUser(user); err != nil {
		return herald.Devices{}, herald.WrapError(herald.InvalidUser, err, err.Error())
	}
	if s.reads == nil {
		return herald.Devices{}, &herald.Error{Code: herald.Unavailable, Message: "this edge keeps no device status", Err: errNoReadState}
	}
	ctx := r.Context()
	out := herald.Devices{Devices: []herald.DeviceStatus{}}
	var err error
	if out.Read, err = s.reads.get(ctx, user); err != nil {
		return out, errStoreUnavailable(err)
	}
	if out.LastSeq, err = s.reads.last(ctx, user); err != nil {
		return out, errStoreUnavailable(err)
	}
	states, err := s.opts.Engine.Devices(ctx, user)
	if err != nil {
		return out, errStoreUnavailable(err)
	}
	pctx, cancel := context.WithTimeout(ctx, presenceWait)
	online, err := s.ctl.presence(pctx, user)
	cancel()
	if err != nil {
		return out, errStoreUnavailable(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	for _, d := range states {
		ds := herald.DeviceStatus{Device: d.Device, Acked: d.Acked, Connected: online[d.Device]}
		switch {
		case ds.Connected:
			ds.LastSeen = &now
			delete(online, d.Device)
		case !d.LastSeen.IsZero():
			t := d.LastSeen.UTC()
			ds.LastSeen = &t
		}
		out.Devices = append(out.Devices, ds)
	}
	// A stream whose device the engine has no position for (yet).
	for d := range online {
		out.Devices = append(out.Devices, herald.DeviceStatus{Device: d, LastSeen: &now, Connected: true})
	}
	slices.SortFunc(out.Devices, func(a, b herald.DeviceStatus) int { return strings.Compare(a.Device, b.Device) })
	return out, nil
}

// authUserOrProducer admits a request that carries a producer key
// (Options.ProducerKeys, in the Authorization header only) or a client
// token of user (header or ?token=); a valid token of another user is 403.
func (s *Server) authUserOrProducer(r *http.Request, user string) error {
	if h := r.Header.Get("Authorization"); h != "" && s.producers != nil {
		if scheme, cred, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") && s.producers.Match(strings.TrimSpace(cred)) {
			return nil
		}
	}
	g, err := s.verifyToken(r)
	switch {
	case errors.Is(err, token.ErrMissing):
		return herald.WrapError(herald.Unauthorized, err, "a producer key or the user's client token is required (Authorization: Bearer)")
	case err != nil:
		return herald.WrapError(herald.Unauthorized, err, "unknown producer key or invalid client token")
	}
	if g.User != user {
		return herald.NewError(herald.Forbidden, "the token does not grant access to this user")
	}
	return nil
}
