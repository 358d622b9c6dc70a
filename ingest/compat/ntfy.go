package compat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/ingest"
)

// emptyMessage is the body of an ntfy publish without a message, as ntfy
// sets it ("curl -X POST …/alerts", "ntfy trigger alerts").
const emptyMessage = "triggered"

// ntfyPublish is one ntfy publish, read from the parameters (headers and
// query) and the body, or from the JSON form.
type ntfyPublish struct {
	topic      string
	title      string
	message    string
	priority   int // ntfy's 1–5; 0: not given
	tags       []string
	click      string
	icon       string
	attach     string
	filename   string
	actions    json.RawMessage // a JSON array, or the header's text form as a JSON string
	markdown   bool
	delay      string
	sequenceID string
	id         string // the Idempotency-Key header
}

// ntfyJSON is the body of the JSON form, POST / (ntfy's publishMessage).
// email, call, cache, firebase and the other fields ntfy reads for its
// other channels are accepted and ignored.
type ntfyJSON struct {
	Topic      string          `json:"topic"`
	Message    string          `json:"message"`
	Title      string          `json:"title"`
	Priority   int             `json:"priority"`
	Tags       []string        `json:"tags"`
	Click      string          `json:"click"`
	Icon       string          `json:"icon"`
	Actions    json.RawMessage `json:"actions"`
	Attach     string          `json:"attach"`
	Markdown   bool            `json:"markdown"`
	Filename   string          `json:"filename"`
	Delay      string          `json:"delay"`
	SequenceID string          `json:"sequence_id"`
}

// fromParams reads a publish to topic from the request's parameters and
// its body (the message unless empty).
func fromParams(r *http.Request, topic string, body []byte) (ntfyPublish, error) {
	p := params{h: r.Header, q: r.URL.Query()}
	n := ntfyPublish{
		topic:      topic,
		title:      p.read(paramTitle),
		message:    strings.ReplaceAll(p.read(paramMessage), `\n`, "\n"),
		tags:       splitTags(p.read(paramTags)),
		click:      p.read(paramClick),
		icon:       p.read(paramIcon),
		attach:     p.read(paramAttach),
		filename:   p.read(paramFilename),
		markdown:   parseBool(p.read(paramMarkdown)),
		delay:      p.read(paramDelay),
		sequenceID: p.read(paramSequenceID),
		id:         r.Header.Get("Idempotency-Key"),
	}
	if ct := r.Header.Get("Content-Type"); strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "text/markdown") {
		n.markdown = true
	}
	if v := p.read(paramPriority); v != "" {
		prio, err := herald.ParseNtfyPriority(v)
		if err != nil {
			return n, ntfyErr(herald.NtfyCodePriorityInvalid, herald.WrapError(herald.InvalidMessage, err, err.Error()))
		}
		n.priority = prio
	}
	if a := p.read(paramActions); a != "" {
		n.actions = actionsValue(a)
	}
	if len(body) > 0 {
		if n.filename != "" && n.attach == "" {
			return n, ntfyErr(herald.NtfyCodeAttachUpload, herald.NewError(herald.InvalidMessage, "Herald stores no attachments: give the file's URL with X-Attach instead of uploading it"))
		}
		if !utf8.Valid(body) {
			return n, ntfyErr(herald.NtfyCodeNotUTF8, herald.NewError(herald.InvalidMessage, "the message must be UTF-8 text (Herald stores no attachments)"))
		}
		n.message = strings.TrimSpace(string(body))
	}
	return n, nil
}

// actionsValue keeps X-Actions as JSON: an array as it is, the text form
// ("view, Open, https://…; http, …") as a string.
func actionsValue(a string) json.RawMessage {
	if strings.HasPrefix(a, "[") && json.Valid([]byte(a)) {
		return json.RawMessage(a)
	}
	b, _ := json.Marshal(a)
	return b
}

// fromJSON reads the JSON form, POST / with {"topic":…}.
func fromJSON(body []byte, id string) (ntfyPublish, error) {
	var j ntfyJSON
	if err := json.Unmarshal(body, &j); err != nil {
		return ntfyPublish{}, ntfyErr(herald.NtfyCodeJSONInvalid, herald.WrapError(herald.InvalidJSON, err, "the body must be ntfy's message JSON: {\"topic\":…,\"message\":…}"))
	}
	if j.Priority < 0 || j.Priority > 5 {
		return ntfyPublish{}, ntfyErr(herald.NtfyCodePriorityInvalid, herald.NewError(herald.InvalidMessage, "priority %d is outside ntfy's 1–5", j.Priority))
	}
	n := ntfyPublish{
		topic: j.Topic, title: j.Title, message: j.Message, priority: j.Priority, tags: j.Tags,
		click: j.Click, icon: j.Icon, attach: j.Attach, filename: j.Filename, markdown: j.Markdown,
		delay: j.Delay, sequenceID: j.SequenceID, id: id,
	}
	if a := bytes.TrimSpace(j.Actions); len(a) > 0 && !bytes.Equal(a, []byte("null")) {
		if a[0] != '[' {
			return ntfyPublish{}, ntfyErr(herald.NtfyCodeJSONInvalid, herald.NewError(herald.InvalidMessage, "actions must be an array"))
		}
		n.actions = a
	}
	return n, nil
}

// toMessage maps the publish to a Herald message: the message text as body
// ("triggered" when there is none), the priority on Herald's scale, and
// click, icon, attach, filename, actions and markdown in data under their
// ntfy names. It checks URLs as ntfy does and refuses what Herald does not
// do yet (lifecycle).
func (n ntfyPublish) toMessage(now time.Time) (ingest.Message, error) {
	for _, u := range []struct {
		name, v string
		code    int
	}{{"attach", n.attach, herald.NtfyCodeAttachURL}, {"icon", n.icon, herald.NtfyCodeIconURL}} {
		if u.v != "" && !strings.HasPrefix(u.v, "http://") && !strings.HasPrefix(u.v, "https://") {
			return ingest.Message{}, ntfyErr(u.code, herald.NewError(herald.InvalidMessage, "%s must be an http:// or https:// URL", u.name))
		}
	}
	if n.filename != "" && n.attach == "" {
		return ingest.Message{}, ntfyErr(herald.NtfyCodeAttachUpload, herald.NewError(herald.InvalidMessage, "a filename needs an attachment URL (X-Attach): Herald stores no attachments"))
	}
	m := ingest.Message{ID: n.id, Title: n.title, Body: n.message, Tags: n.tags}
	if m.Body == "" {
		m.Body = emptyMessage
	}
	if err := lifecycle(n, now, &m); err != nil {
		return ingest.Message{}, err
	}
	if n.priority != 0 {
		p := herald.PriorityFromNtfy(n.priority)
		m.Priority = &p
	}
	data := map[string]any{}
	for k, v := range map[string]string{herald.NtfyDataClick: n.click, herald.NtfyDataIcon: n.icon, herald.NtfyDataAttach: n.attach, herald.NtfyDataFilename: n.filename} {
		if v != "" {
			data[k] = v
		}
	}
	if len(n.actions) > 0 {
		data[herald.NtfyDataActions] = n.actions
	}
	if n.markdown {
		data[herald.NtfyDataMarkdown] = true
	}
	if len(data) > 0 {
		b, err := json.Marshal(data)
		if err != nil {
			return ingest.Message{}, herald.WrapError(herald.InvalidMessage, err, "actions are not valid JSON")
		}
		m.Data = b
	}
	return m, nil
}

// lifecycle maps ntfy's scheduled delivery (X-Delay, X-At, X-In, "delay")
// and its updates (X-Sequence-ID) onto m, Herald's message lifecycle (SPEC
// §10): the delay becomes deliver_at, and a sequence id an update of the
// messages that carried it (ref = the sequence id, op = update). It is the
// one place they are mapped.
func lifecycle(n ntfyPublish, now time.Time, m *ingest.Message) error {
	if n.delay != "" {
		at, err := parseDelay(n.delay, now)
		if err != nil {
			return ntfyErr(herald.NtfyCodeDelayInvalid, herald.WrapError(herald.InvalidMessage, err, err.Error()))
		}
		m.DeliverAt = at
	}
	if n.sequenceID != "" {
		m.Ref, m.Op = n.sequenceID, herald.OpUpdate
	}
	return nil
}

// ntfyErr gives e ntfy's numeric code.
func ntfyErr(code int, e *herald.Error) error {
	return &herald.NtfyError{Code: code, Err: e}
}

// errReservedTopic refuses a topic that would collide with Herald's own
// paths.
func errReservedTopic(topic string) error {
	return ntfyErr(herald.NtfyCodeTopicInvalid, herald.NewError(herald.InvalidUser, "topic %q is reserved by Herald (its paths /v1/…, /healthz, /readyz, /metrics and /message): publish to this user with POST /v1/users/{user}/messages", topic))
}

// checkTopic validates an ntfy topic (the user id).
func checkTopic(topic string) error {
	switch {
	case herald.NtfyTopicReserved(topic):
		return errReservedTopic(topic)
	case !herald.NtfyTopicValid(topic):
		return ntfyErr(herald.NtfyCodeTopicInvalid, herald.NewError(herald.InvalidUser, "topic %q is not an ntfy topic (1–64 characters of A-Z a-z 0-9 _ -): publish to this user with POST /v1/users/{user}/messages", topic))
	}
	return nil
}

// ntfyEndpoint wraps an ntfy handler: a topic of "v1" is a path under
// Herald's /v1/ that no route took, answered with Herald's own 404, so the
// ntfy routes never shadow it; any other error is rendered in ntfy's
// shape.
func (c *Handler) ntfyEndpoint(f func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("topic") == herald.NtfyHeraldPrefix {
			herald.WriteError(w, c.log, herald.NewError(herald.NotFound, "no such endpoint: %s %s", r.Method, r.URL.Path))
			return
		}
		if err := f(w, r); err != nil {
			herald.WriteNtfyError(w, c.log, err)
		}
	})
}

// ntfyTopic handles PUT|POST /<topic> and GET /<topic>/publish|send|trigger.
func (c *Handler) ntfyTopic(w http.ResponseWriter, r *http.Request) error {
	topic := r.PathValue("topic")
	if err := checkTopic(topic); err != nil {
		return err
	}
	if err := c.ntfyAdmit(r); err != nil {
		return err
	}
	return c.ntfyPublishBody(w, r, topic, "")
}

// ntfyPublishBody reads the body and the parameters of an admitted publish
// to topic, with sequence id sid when the path gave one, and publishes it.
func (c *Handler) ntfyPublishBody(w http.ResponseWriter, r *http.Request, topic, sid string) error {
	body, err := c.readBody(w, r)
	if err != nil {
		return err
	}
	n, err := fromParams(r, topic, body)
	if err != nil {
		return err
	}
	if sid != "" {
		n.sequenceID = sid
	}
	return c.ntfyPublish(w, r.Context(), n)
}

// ntfyJSONForm handles PUT|POST /, the JSON form.
func (c *Handler) ntfyJSONForm(w http.ResponseWriter, r *http.Request) error {
	if err := c.ntfyAdmit(r); err != nil {
		return err
	}
	body, err := c.readBody(w, r)
	if err != nil {
		return err
	}
	n, err := fromJSON(body, r.Header.Get("Idempotency-Key"))
	if err != nil {
		return err
	}
	if err := checkTopic(n.topic); err != nil {
		return err
	}
	return c.ntfyPublish(w, r.Context(), n)
}

// ntfySequence handles PUT|POST|DELETE /<topic>/<sequence_id>: ntfy's
// update and delete of a notification, Herald's ref and op (lifecycle).
func (c *Handler) ntfySequence(w http.ResponseWriter, r *http.Request) error {
	topic := r.PathValue("topic")
	if err := checkTopic(topic); err != nil {
		return err
	}
	if err := c.ntfyAdmit(r); err != nil {
		return err
	}
	sid := r.PathValue("sid")
	if r.Method == http.MethodDelete {
		res, err := c.pub.Publish(r.Context(), topic, ingest.Message{Ref: sid, Op: herald.OpDelete})
		if err != nil {
			return err
		}
		env := herald.Envelope{Seq: res.Seq, Ref: sid, Op: herald.OpDelete, Time: time.Now()}
		if res.Time != nil {
			env.Time = *res.Time
		}
		herald.WriteJSON(w, http.StatusOK, herald.NtfyMessageOf(env, topic))
		return nil
	}
	return c.ntfyPublishBody(w, r, topic, sid)
}

// ntfyAdmit checks the producer key of an ntfy request: Authorization as
// Bearer or Basic (the key as password), or ?auth=.
func (c *Handler) ntfyAdmit(r *http.Request) error {
	key, found, err := herald.NtfyRequestCredential(r)
	switch {
	case err != nil:
		return herald.WrapError(herald.InvalidRequest, err, err.Error())
	case !found:
		return herald.NewError(herald.Unauthorized, "a producer key is required: Authorization: Bearer KEY, Basic with the key as password, or ?auth=")
	}
	return c.pub.Admit(key)
}

// ntfyPublish stores n and answers with ntfy's message JSON, whose id is
// the seq.
func (c *Handler) ntfyPublish(w http.ResponseWriter, ctx context.Context, n ntfyPublish) error {
	m, err := n.toMessage(time.Now())
	if err != nil {
		return err
	}
	res, err := c.pub.Publish(ctx, n.topic, m)
	if err != nil {
		return err
	}
	env := herald.Envelope{Seq: res.Seq, Title: m.Title, Body: m.Body, Priority: m.Priority, Tags: m.Tags, Data: m.Data}
	switch {
	case res.Time != nil:
		env.Time = *res.Time
	case res.DeliverAt != nil: // scheduled: ntfy answers with the time it is due
		env.Time = *res.DeliverAt
	default:
		env.Time = time.Now()
	}
	herald.WriteJSON(w, http.StatusOK, herald.NtfyMessageOf(env, n.topic))
	return nil
}

// readBody reads a request body of at most the publisher's body limit; a
// longer one is 413.
func (c *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	limit := c.pub.BodyLimit()
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, tooLarge(limit)
	case err != nil:
		return nil, herald.WrapError(herald.InvalidRequest, err, "reading the request body failed")
	}
	return b, nil
}

func tooLarge(limit int64) error {
	return herald.NewError(herald.TooLarge, "the request body exceeds %d bytes", limit)
}
