package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/streams"
)

// The message lifecycle of SPEC §10 on the producer side: ttl, scheduled
// delivery, and the shorthands for updates, deletes and cancelling a
// schedule.

// defaults are the lifecycle headers of a request (Herald-TTL,
// Herald-Deliver-At): they apply to a single publish, and to each item of
// a batch that does not set the field itself.
type defaults struct {
	ttl     time.Duration
	at      time.Time
	hasTTL  bool
	hasTime bool
}

// readDefaults parses the lifecycle headers of r at now.
func readDefaults(r *http.Request, now time.Time) (defaults, error) {
	var d defaults
	if v := r.Header.Get(herald.HeaderTTL); v != "" {
		ttl, err := herald.ParseDuration(v)
		if err != nil {
			return d, herald.WrapError(herald.InvalidMessage, err, herald.HeaderTTL+": "+err.Error())
		}
		d.ttl, d.hasTTL = ttl, true
	}
	if v := r.Header.Get(herald.HeaderDeliverAt); v != "" {
		at, err := herald.ParseDeliverAt(v, now)
		if err != nil {
			return d, herald.WrapError(herald.InvalidMessage, err, herald.HeaderDeliverAt+": "+err.Error())
		}
		d.at, d.hasTime = at, true
	}
	return d, nil
}

// lifecycle reads the ttl and the delivery time of in, falling back to the
// request's headers, and checks them against the stream's max age: a ttl
// of 1 s up to the max age, a delivery time after now and at most the max
// age ahead (a schedule is a stored message too, which the max age would
// remove before it is due). Errors are 400 invalid_message.
func (h *Handler) lifecycle(in input, d defaults, now time.Time) (streams.Lifecycle, error) {
	var lc streams.Lifecycle
	ttl, hasTTL, err := durationField(in.TTL, "ttl")
	if err != nil {
		return lc, err
	}
	if !hasTTL && d.hasTTL {
		ttl, hasTTL = d.ttl, true
	}
	if hasTTL {
		switch {
		case ttl < time.Second:
			return lc, herald.NewError(herald.InvalidMessage, "ttl %v is under the minimum of 1s", ttl)
		case h.maxAge > 0 && ttl > h.maxAge:
			return lc, herald.NewError(herald.InvalidMessage, "ttl %v is longer than the stream keeps messages (stream.max_age %v)", ttl, h.maxAge)
		}
		lc.TTL = ttl
	}

	delay, hasDelay, err := durationField(in.Delay, "delay")
	if err != nil {
		return lc, err
	}
	switch {
	case hasDelay && in.DeliverAt != "":
		return lc, herald.NewError(herald.InvalidMessage, "give deliver_at or delay, not both")
	case hasDelay:
		lc.DeliverAt = now.Add(delay)
	case in.DeliverAt != "":
		at, err := time.Parse(time.RFC3339, in.DeliverAt)
		if err != nil {
			return lc, herald.WrapError(herald.InvalidMessage, err, fmt.Sprintf("deliver_at %q is not an RFC 3339 time like 2026-11-23T10:00:00Z", in.DeliverAt))
		}
		lc.DeliverAt = at
	case d.hasTime:
		lc.DeliverAt = d.at
	}
	if lc.DeliverAt.IsZero() {
		return lc, nil
	}
	lc.DeliverAt = lc.DeliverAt.UTC().Truncate(time.Millisecond)
	switch {
	case !lc.DeliverAt.After(now):
		return lc, herald.NewError(herald.InvalidMessage, "deliver_at %s is not in the future", lc.DeliverAt.Format(time.RFC3339Nano))
	case h.maxAge > 0 && lc.DeliverAt.Sub(now) > h.maxAge:
		return lc, herald.NewError(herald.InvalidMessage, "deliver_at %s is further ahead than the stream keeps messages (stream.max_age %v)", lc.DeliverAt.Format(time.RFC3339Nano), h.maxAge)
	}
	return lc, nil
}

// durationField reads a ttl or delay field: a number of seconds, or a
// string as herald.ParseDuration reads it; absent or null is ok false.
func durationField(raw json.RawMessage, name string) (d time.Duration, ok bool, err error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return 0, false, nil
	}
	s := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, false, herald.WrapError(herald.InvalidMessage, err, name+" must be a number of seconds or a duration string")
		}
	} else if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		return 0, false, herald.NewError(herald.InvalidMessage, "%s must be a number of seconds or a duration string like \"90s\"", name)
	}
	d, err = herald.ParseDuration(s)
	if err != nil {
		return 0, false, herald.WrapError(herald.InvalidMessage, err, name+": "+err.Error())
	}
	return d, true, nil
}

// update handles PUT /v1/users/{user}/messages/{id}: a publish (the body
// as for POST) with ref = id and op = update.
func (h *Handler) update(w http.ResponseWriter, r *http.Request) (string, error) {
	return h.publishRef(w, r, herald.OpUpdate)
}

// retract handles DELETE /v1/users/{user}/messages/{id}: a publish of
// {"ref":id,"op":"delete"}; a body is optional (JSON, as for POST).
func (h *Handler) retract(w http.ResponseWriter, r *http.Request) (string, error) {
	return h.publishRef(w, r, herald.OpDelete)
}

func (h *Handler) publishRef(w http.ResponseWriter, r *http.Request, op string) (string, error) {
	user, in, err := h.readPublish(w, r, op == herald.OpDelete)
	if err != nil {
		return "", err
	}
	id := r.PathValue("id")
	if err := streams.ValidateID(id); err != nil {
		return "", herald.WrapError(herald.InvalidMessage, err, err.Error())
	}
	switch {
	case in.Ref != "" && in.Ref != id:
		return "", herald.NewError(herald.InvalidMessage, "ref in the body does not match the id in the path")
	case in.Op != "" && in.Op != op:
		return "", herald.NewError(herald.InvalidMessage, "op in the body must be %q on %s", op, r.Method)
	}
	in.Ref, in.Op = id, op
	return h.respond(w, r, user, in)
}

// cancel handles DELETE /v1/users/{user}/scheduled/{id}: it removes the
// schedule of the message with that id (204), 404 when there is none (it
// was never scheduled, was already delivered, or was cancelled).
func (h *Handler) cancel(w http.ResponseWriter, r *http.Request) (string, error) {
	p, err := h.authProducer(r)
	if err != nil {
		return "", err
	}
	if err := h.rateLimit(p, 1); err != nil {
		return "", err
	}
	user := r.PathValue("user")
	if err := streams.ValidateUser(user); err != nil {
		return "", herald.WrapError(herald.InvalidUser, err, err.Error())
	}
	id := r.PathValue("id")
	if err := streams.ValidateID(id); err != nil {
		return "", herald.WrapError(herald.InvalidMessage, err, err.Error())
	}
	if err := h.checkConnected(); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.ingest.PublishTimeout)
	defer cancel()
	_, err = streams.PurgeSubject(ctx, h.js, h.streamName, h.subjects.Schedule(user, id))
	switch {
	case errors.Is(err, streams.ErrNotFound):
		return "", herald.NewError(herald.NotFound, "no scheduled message %q for this user: it was never scheduled, was already delivered, or was cancelled", id)
	case err != nil:
		h.log.Warn("cancel failed", "user", streams.LogUser(user), "err", err)
		return "", h.unavailable("JetStream did not remove the schedule; retry later", err)
	}
	h.log.Debug("schedule cancelled", "user", streams.LogUser(user))
	w.WriteHeader(http.StatusNoContent)
	return outcomeOK, nil
}
