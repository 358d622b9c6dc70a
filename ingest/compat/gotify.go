package compat

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/ingest"
)

// gotifyMessage is gotify's message JSON (its MessageExternal): the body of
// a JSON publish, and the answer.
type gotifyMessage struct {
	ID       uint64          `json:"id"`
	AppID    uint64          `json:"appid"`
	Message  string          `json:"message"`
	Title    string          `json:"title"`
	Priority *int            `json:"priority"`
	Extras   json.RawMessage `json:"extras,omitempty"`
	Date     time.Time       `json:"date"`
}

// gotifyError is gotify's error body:
//
//	{"error":"Unauthorized","errorCode":401,"errorDescription":"…"}
type gotifyError struct {
	Error            string `json:"error"`
	ErrorCode        int    `json:"errorCode"`
	ErrorDescription string `json:"errorDescription"`
}

// gotifyApps maps the SHA-256 of each application token to its user, so
// that a lookup compares digests rather than the secrets themselves.
type gotifyApps map[[sha256.Size]byte]string

func newGotifyApps(apps map[string]string) gotifyApps {
	m := make(gotifyApps, len(apps))
	for tok, user := range apps {
		m[sha256.Sum256([]byte(tok))] = user
	}
	return m
}

func (a gotifyApps) user(token string) (string, bool) {
	u, ok := a[sha256.Sum256([]byte(token))]
	return u, ok
}

// gotifyToken reads the application token where gotify does, in its order:
// ?token=, X-Gotify-Key, Authorization: Bearer.
func gotifyToken(r *http.Request) string {
	if t := r.URL.Query().Get("token"); t != "" {
		return t
	}
	if t := r.Header.Get("X-Gotify-Key"); t != "" {
		return t
	}
	const prefix = "Bearer "
	if h := r.Header.Get("Authorization"); len(h) > len(prefix) && strings.EqualFold(h[:len(prefix)], prefix) {
		return h[len(prefix):]
	}
	return ""
}

// errGotifyToken is gotify's own 401.
var errGotifyToken = herald.NewError(herald.Unauthorized, "you need to provide a valid access token or user credentials to access this api")

// gotify handles POST /message: a gotify application token (mapped to a
// user by compat.gotify.apps) publishes to that user. The body is JSON
// ({"message","title","priority","extras"}) or a form (message, title,
// priority; query parameters count as form fields, as in gotify).
func (c *Handler) gotify(w http.ResponseWriter, r *http.Request) {
	if err := c.gotifyPublish(w, r); err != nil {
		writeGotifyError(w, c, err)
	}
}

func (c *Handler) gotifyPublish(w http.ResponseWriter, r *http.Request) error {
	user, ok := c.apps.user(gotifyToken(r))
	if !ok {
		return errGotifyToken
	}
	body, err := c.readBody(w, r)
	if err != nil {
		return err
	}
	in, err := decodeGotify(r.Header.Get("Content-Type"), r.URL.Query(), body)
	if err != nil {
		return err
	}
	m := ingest.Message{Title: in.Title, Body: in.Message, Priority: in.Priority}
	if len(in.Extras) > 0 {
		m.Data, _ = json.Marshal(map[string]json.RawMessage{"extras": in.Extras})
	}
	res, err := c.pub.Publish(r.Context(), user, m)
	if err != nil {
		return err
	}
	out := gotifyMessage{ID: res.Seq, Message: in.Message, Title: in.Title, Priority: in.Priority, Extras: in.Extras, Date: time.Now().UTC()}
	if res.Time != nil {
		out.Date = *res.Time
	}
	if out.Priority == nil {
		p := herald.DefaultPriority
		out.Priority = &p
	}
	herald.WriteJSON(w, http.StatusOK, out)
	return nil
}

// decodeGotify reads a gotify publish body of content type ct: JSON when
// ct says so, else a form (urlencoded or multipart) whose fields the query
// completes, as gotify's binding reads them. message is required; extras
// must be a JSON object and comes with JSON only.
func decodeGotify(ct string, query url.Values, body []byte) (gotifyMessage, error) {
	var in gotifyMessage
	mt, mparams, _ := mime.ParseMediaType(ct)
	if mt == "application/json" {
		if err := json.Unmarshal(body, &in); err != nil {
			return in, herald.WrapError(herald.InvalidJSON, err, "the body must be gotify's message JSON: "+strings.TrimPrefix(err.Error(), "json: "))
		}
		switch e := bytes.TrimSpace(in.Extras); {
		case len(e) == 0:
		case bytes.Equal(e, []byte("null")):
			in.Extras = nil
		case e[0] != '{':
			return in, herald.NewError(herald.InvalidMessage, "extras must be a JSON object")
		}
	} else {
		form, err := parseForm(mt, mparams["boundary"], body)
		if err != nil {
			return in, err
		}
		field := func(name string) string {
			if v := form.Get(name); v != "" {
				return v
			}
			return query.Get(name)
		}
		in.Message, in.Title = field("message"), field("title")
		if v := strings.TrimSpace(field("priority")); v != "" {
			p, err := strconv.Atoi(v)
			if err != nil {
				return in, herald.WrapError(herald.InvalidMessage, err, "priority must be an integer from 0 to 10")
			}
			in.Priority = &p
		}
	}
	if in.Message == "" {
		return in, herald.NewError(herald.InvalidMessage, "Field validation for 'Message' failed on the 'required' tag")
	}
	return in, nil
}

// maxFormParts bounds the parts of a multipart body.
const maxFormParts = 64

// parseForm reads a urlencoded body, or a multipart one (mt
// multipart/form-data) of text fields.
func parseForm(mt, boundary string, body []byte) (url.Values, error) {
	if mt != "multipart/form-data" {
		v, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, herald.WrapError(herald.InvalidRequest, err, "the body is neither JSON nor a form")
		}
		return v, nil
	}
	form := url.Values{}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for range maxFormParts {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return form, nil
		}
		if err != nil {
			return nil, herald.WrapError(herald.InvalidRequest, err, "the multipart body is malformed")
		}
		b, err := io.ReadAll(part)
		if err != nil {
			return nil, herald.WrapError(herald.InvalidRequest, err, "the multipart body is malformed")
		}
		form.Add(part.FormName(), string(b))
	}
	return nil, herald.NewError(herald.InvalidRequest, "more than %d parts in the multipart body", maxFormParts)
}

// writeGotifyError renders err in gotify's error shape, with the status and
// Retry-After of herald.WriteError.
func writeGotifyError(w http.ResponseWriter, c *Handler, err error) {
	e := herald.AsError(err)
	if e.Code == herald.Internal {
		c.log.Error("internal error", "err", err)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	status := e.Code.Status()
	if e.Status != 0 {
		status = e.Status
	}
	herald.WriteJSON(w, status, gotifyError{Error: http.StatusText(status), ErrorCode: status, ErrorDescription: e.Message})
}
