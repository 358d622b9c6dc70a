package ingest

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/streams"
)

// History paging limits.
const (
	DefaultHistoryLimit = 100
	MaxHistoryLimit     = 1000
	// historyPageBytes bounds the stored bytes of one page; the server
	// always sends at least one message.
	historyPageBytes = 4 << 20
)

// historyResponse is the answer to GET /v1/users/{user}/messages.
type historyResponse struct {
	Messages []streams.Envelope `json:"messages"`
	// Next is the since of the following page: the seq of the last message
	// returned, or the requested since when there was none.
	Next uint64 `json:"next"`
}

// parsePage reads since (default 0) and limit (default 100, 1–1000) from a
// raw query. Any malformed value is 400 invalid_request.
func parsePage(rawQuery string) (since uint64, limit int, err error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return 0, 0, herald.WrapError(herald.InvalidRequest, err, "the query string is malformed")
	}
	if q.Has("since") {
		since, err = strconv.ParseUint(q.Get("since"), 10, 64)
		if err != nil {
			return 0, 0, herald.WrapError(herald.InvalidRequest, err, "since must be a sequence number (an integer ≥ 0)")
		}
	}
	limit = DefaultHistoryLimit
	if q.Has("limit") {
		limit, err = strconv.Atoi(q.Get("limit"))
		if err != nil || limit < 1 || limit > MaxHistoryLimit {
			return 0, 0, herald.WrapError(herald.InvalidRequest, err, "limit must be an integer from 1 to 1000")
		}
	}
	return since, limit, nil
}

// history handles GET /v1/users/{user}/messages?since=N&limit=L.
func (h *Handler) history(w http.ResponseWriter, r *http.Request) (string, error) {
	g, err := h.authReader(r)
	if err != nil {
		return "", err
	}
	user := r.PathValue("user")
	if err := streams.ValidateUser(user); err != nil {
		return "", herald.WrapError(herald.InvalidUser, err, err.Error())
	}
	if err := g.allows(user); err != nil {
		return "", err
	}
	since, limit, err := parsePage(r.URL.RawQuery)
	if err != nil {
		return "", err
	}
	if err := h.checkConnected(); err != nil {
		return "", err
	}
	resp := historyResponse{Messages: []streams.Envelope{}, Next: since}
	if since < math.MaxUint64 {
		ctx, cancel := context.WithTimeout(r.Context(), h.ingest.PublishTimeout)
		defer cancel()
		msgs, err := h.reader.Batch(ctx, h.subjects.User(user), since+1, limit, historyPageBytes)
		if err != nil {
			h.log.Warn("history read failed", "user", streams.LogUser(user), "seq", since, "err", err)
			msg := "reading the stream failed; retry later"
			if errors.Is(err, streams.ErrNoStream) {
				msg = "the stream is not available; retry later"
			}
			return "", h.unavailable(msg, err)
		}
		resp.Messages = make([]streams.Envelope, 0, len(msgs))
		for _, m := range msgs {
			resp.Messages = append(resp.Messages, streams.Decode(m.Data, m.Sequence, m.Time))
		}
		if len(msgs) > 0 {
			resp.Next = msgs[len(msgs)-1].Sequence
		}
	}
	herald.WriteJSON(w, http.StatusOK, resp)
	return outcomeOK, nil
}
