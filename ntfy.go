package herald

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The wire shapes of the endpoints that tools written for ntfy use
// unchanged (SPEC §12): the message and event JSON, ntfy's priority scale,
// its error body, its topic rule and its credentials (the Authorization
// header or the ?auth= parameter). The publish side (ingest/compat) and the
// subscribe side (edge) share them.

// Ntfy event types: the "event" field of every ntfy message.
const (
	NtfyEventOpen      = "open"      // first line of a subscription
	NtfyEventKeepalive = "keepalive" // sent every ping interval on a stream
	NtfyEventMessage   = "message"   // a message; its id is the Herald seq
)

// Keys of a Herald message's data that hold ntfy's fields of the same
// names: a publish through the ntfy endpoints puts them there, and a
// subscription through them reads them back.
const (
	NtfyDataClick    = "click"    // string: URL opened when the notification is tapped
	NtfyDataIcon     = "icon"     // string: URL of the notification icon
	NtfyDataAttach   = "attach"   // string: URL of an attachment
	NtfyDataFilename = "filename" // string: the attachment's name
	NtfyDataActions  = "actions"  // array of action objects, or the header's text form as a string
	NtfyDataMarkdown = "markdown" // true: the body is Markdown
)

// NtfyMessage is one ntfy message or event: the answer to a publish, and
// each line (or event, or frame) of a subscription.
//
//	{"id":"4211","time":1700000000,"event":"message","topic":"alice",
//	 "title":"Build failed","message":"main is red","priority":4,"tags":["ci"]}
type NtfyMessage struct {
	// ID is the Herald seq of a message; other events carry an id of
	// their own.
	ID    string `json:"id"`
	Time  int64  `json:"time"` // Unix seconds
	Event string `json:"event"`
	// Topic is the user id.
	Topic    string   `json:"topic"`
	Title    string   `json:"title,omitempty"`
	Message  string   `json:"message,omitempty"`
	Priority int      `json:"priority,omitempty"` // 1–5, ntfy's scale
	Tags     []string `json:"tags,omitempty"`
	Click    string   `json:"click,omitempty"`
	Icon     string   `json:"icon,omitempty"`
	// Actions is the JSON array of action objects, as given.
	Actions     json.RawMessage `json:"actions,omitempty"`
	Attachment  *NtfyAttachment `json:"attachment,omitempty"`
	ContentType string          `json:"content_type,omitempty"` // "text/markdown" or empty
}

// NtfyAttachment is an attachment by URL; Herald stores no files.
type NtfyAttachment struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

// PriorityFromNtfy maps ntfy's priority (1 min, 2 low, 3 default, 4 high,
// 5 max) to Herald's 0–10 scale: 1, 3, 5, 8, 10. Anything else is the
// default, 5.
func PriorityFromNtfy(p int) int {
	switch p {
	case 1:
		return 1
	case 2:
		return 3
	case 4:
		return 8
	case 5:
		return MaxPriority
	}
	return DefaultPriority
}

// NtfyPriority maps Herald's 0–10 priority to ntfy's 1–5, the inverse of
// PriorityFromNtfy on its values: 0–1 min, 2–3 low, 4–6 default, 7–8 high,
// 9–10 max.
func NtfyPriority(p int) int {
	switch {
	case p <= 1:
		return 1
	case p <= 3:
		return 2
	case p <= 6:
		return 3
	case p <= 8:
		return 4
	}
	return 5
}

// ErrNtfyPriority is wrapped by ParseNtfyPriority's error.
var ErrNtfyPriority = errors.New("invalid priority")

// ParseNtfyPriority reads a priority as ntfy takes it: 1–5, or min, low,
// default, high, max or urgent, in any case, with spaces around. It
// returns ntfy's 1–5.
func ParseNtfyPriority(s string) (int, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "min":
		return 1, nil
	case "2", "low":
		return 2, nil
	case "3", "default":
		return 3, nil
	case "4", "high":
		return 4, nil
	case "5", "max", "urgent":
		return 5, nil
	}
	return 0, fmt.Errorf("%w %q: use 1–5, min, low, default, high, max or urgent", ErrNtfyPriority, s)
}

// ntfyUnits are the unit words of ParseNtfyDuration.
var ntfyUnits = map[string]time.Duration{
	"s": time.Second, "sec": time.Second, "secs": time.Second, "second": time.Second, "seconds": time.Second,
	"m": time.Minute, "min": time.Minute, "mins": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"h": time.Hour, "hour": time.Hour, "hours": time.Hour,
	"d": 24 * time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour,
}

// ParseNtfyDuration reads a positive duration as ntfy's delay and since
// take it: a whole number and a unit word (s, m, h, d and their long forms,
// with or without a space between: "10m", "2 days"), or Go's syntax
// ("1h30m").
func ParseNtfyDuration(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	i := 0
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	if i > 0 && i <= 9 {
		if unit, ok := ntfyUnits[strings.ToLower(strings.TrimSpace(v[i:]))]; ok {
			n, _ := strconv.Atoi(v[:i])
			if n > 0 && time.Duration(n) <= math.MaxInt64/unit {
				return time.Duration(n) * unit, nil
			}
		}
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, err
	}
	if d <= 0 {
		return 0, errors.New("the duration must be positive")
	}
	return d, nil
}

// NtfyTopicValid reports whether topic is an ntfy topic:
// 1–64 characters of [-_A-Za-z0-9].
func NtfyTopicValid(topic string) bool {
	if topic == "" || len(topic) > 64 {
		return false
	}
	for i := 0; i < len(topic); i++ {
		c := topic[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// NtfyHeraldPrefix is the first segment of Herald's own API paths (/v1/…).
// As the topic of an ntfy route it is a path under /v1/ that none of
// Herald's routes took: the ntfy endpoints answer it with Herald's 404.
const NtfyHeraldPrefix = "v1"

// NtfyTopicReserved reports whether topic is a path of Herald's own (v1,
// healthz, readyz, metrics, and message, gotify's publish path): such a
// user cannot be reached through the ntfy endpoints, which refuse it with a
// 400 rather than shadow the path.
func NtfyTopicReserved(topic string) bool {
	switch topic {
	case NtfyHeraldPrefix, "healthz", "readyz", "metrics", "message":
		return true
	}
	return false
}

// NtfyMessageOf is the ntfy message of a delivered envelope (Seq set) on
// topic: the seq as id, the body as message, the priority on ntfy's scale,
// and ntfy's own fields from data (NtfyData*). Data keys of the wrong type
// are left out.
func NtfyMessageOf(e Envelope, topic string) NtfyMessage {
	m := NtfyMessage{
		ID:       strconv.FormatUint(e.Seq, 10),
		Time:     e.Time.Unix(),
		Event:    NtfyEventMessage,
		Topic:    topic,
		Title:    e.Title,
		Message:  e.Body,
		Priority: NtfyPriority(e.PriorityOrDefault()),
		Tags:     e.Tags,
	}
	if len(e.Data) == 0 {
		return m
	}
	var d struct {
		Click    json.RawMessage `json:"click"`
		Icon     json.RawMessage `json:"icon"`
		Attach   json.RawMessage `json:"attach"`
		Filename json.RawMessage `json:"filename"`
		Actions  json.RawMessage `json:"actions"`
		Markdown json.RawMessage `json:"markdown"`
	}
	if json.Unmarshal(e.Data, &d) != nil {
		return m
	}
	str := func(raw json.RawMessage) string {
		var s string
		_ = json.Unmarshal(raw, &s)
		return s
	}
	m.Click, m.Icon = str(d.Click), str(d.Icon)
	if a := strings.TrimSpace(string(d.Actions)); strings.HasPrefix(a, "[") {
		m.Actions = d.Actions
	}
	if u := str(d.Attach); u != "" {
		m.Attachment = &NtfyAttachment{Name: str(d.Filename), URL: u}
		if m.Attachment.Name == "" {
			m.Attachment.Name = "attachment"
		}
	}
	var md bool
	if json.Unmarshal(d.Markdown, &md) == nil && md {
		m.ContentType = "text/markdown"
	}
	return m
}

// NtfyEvent is an event other than a message (open, keepalive) on topic at
// t. Its id is unique enough for clients that keep the ids they saw.
func NtfyEvent(event, topic string, t time.Time) NtfyMessage {
	return NtfyMessage{ID: strconv.FormatInt(t.UnixNano(), 36), Time: t.Unix(), Event: event, Topic: topic}
}

// Ntfy error codes that ntfy's clients and docs name; other errors get
// their HTTP status times 100.
const (
	NtfyCodeDelayInvalid    = 40004
	NtfyCodePriorityInvalid = 40007
	NtfyCodeSinceInvalid    = 40008
	NtfyCodeTopicInvalid    = 40009
	NtfyCodeNotUTF8         = 40011
	NtfyCodeAttachURL       = 40013
	NtfyCodeAttachUpload    = 40014
	NtfyCodeJSONInvalid     = 40017
	NtfyCodeIconURL         = 40021
	NtfyCodeUnauthorized    = 40101
	NtfyCodeForbidden       = 40301
	NtfyCodeNotFound        = 40401
)

// NtfyError is an API error answered with ntfy's numeric code Code (one of
// NtfyCode*). Unwrap gives the *Error, so AsError and WriteError treat it as
// that error.
type NtfyError struct {
	Code int
	Err  *Error
}

func (e *NtfyError) Error() string { return e.Err.Error() }
func (e *NtfyError) Unwrap() error { return e.Err }

// NtfyErrorBody is the JSON body of an ntfy error:
//
//	{"code":40007,"http":400,"error":"invalid priority \"7\": use 1–5, …"}
type NtfyErrorBody struct {
	Code  int    `json:"code"`
	HTTP  int    `json:"http"`
	Error string `json:"error"`
}

// WriteNtfyError renders err as ntfy does: an NtfyErrorBody with the code of
// an *NtfyError in err's chain, else the status times 100 (40100 for an
// unauthorized request is 40101, as ntfy's clients expect). Statuses,
// Retry-After and the logging of internal errors are those of WriteError.
func WriteNtfyError(w http.ResponseWriter, log *slog.Logger, err error) {
	e, status := prepareError(w, log, err)
	code := status * 100
	var ne *NtfyError
	switch {
	case errors.As(err, &ne):
		code = ne.Code
	case status == http.StatusUnauthorized:
		code = NtfyCodeUnauthorized
	case status == http.StatusForbidden:
		code = NtfyCodeForbidden
	case status == http.StatusNotFound:
		code = NtfyCodeNotFound
	}
	WriteJSON(w, status, NtfyErrorBody{Code: code, HTTP: status, Error: e.Message})
}

// ErrNtfyAuth is wrapped by the errors of DecodeNtfyAuth.
var ErrNtfyAuth = errors.New("invalid auth parameter")

// DecodeNtfyAuth decodes ntfy's ?auth= parameter, the base64url encoding
// (unpadded, as ntfy sends it; padding and the standard alphabet are also
// taken) of a whole Authorization header value such as "Bearer <token>".
func DecodeNtfyAuth(param string) (string, error) {
	p := strings.TrimRight(strings.TrimSpace(param), "=")
	b, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(p); err != nil {
			return "", fmt.Errorf("%w: not base64url: %w", ErrNtfyAuth, err)
		}
	}
	return strings.TrimSpace(string(b)), nil
}

// NtfyCredential returns the secret of an Authorization header value as
// ntfy's clients send it: the token of "Bearer <token>", or the password of
// "Basic base64(user:password)" (the user is not read: ntfy's clients send
// a token as the password of an empty user). ok is false for any other
// value.
func NtfyCredential(header string) (secret string, ok bool) {
	scheme, rest, found := strings.Cut(strings.TrimSpace(header), " ")
	if !found {
		return "", false
	}
	rest = strings.TrimSpace(rest)
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		return rest, rest != ""
	case strings.EqualFold(scheme, "Basic"):
		b, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return "", false
		}
		_, pass, found := strings.Cut(string(b), ":")
		return pass, found && pass != ""
	}
	return "", false
}

// NtfyRequestCredential returns the secret a request to an ntfy endpoint
// carries: from ?auth= (or ?authorization=), which wins as in ntfy, else
// from the Authorization header. found is false when neither is present;
// a present but malformed one is an error wrapping ErrNtfyAuth.
func NtfyRequestCredential(r *http.Request) (secret string, found bool, err error) {
	header := r.Header.Get("Authorization")
	q := r.URL.Query()
	for _, name := range []string{"authorization", "auth"} {
		if v := q.Get(name); v != "" {
			if header, err = DecodeNtfyAuth(v); err != nil {
				return "", true, err
			}
			break
		}
	}
	if strings.TrimSpace(header) == "" {
		return "", false, nil
	}
	secret, ok := NtfyCredential(header)
	if !ok {
		return "", true, fmt.Errorf("%w: the Authorization value must be Bearer <token> or Basic with the token as password", ErrNtfyAuth)
	}
	return secret, true, nil
}
