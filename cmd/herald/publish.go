package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/cmd/herald/internal/creds"
	"github.com/herald-push/herald/cmd/herald/internal/node"
	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/streams"
)

// publishFlags are the message fields of herald publish.
type publishFlags struct {
	user     string
	title    string
	body     string
	priority int
	id       string
	tags     []string
	data     string
	url      string
	key      string
	viaNATS  bool
	// The lifecycle of SPEC §10: as given on the command line.
	ttl    string
	at     string
	delay  string
	update string // the id of the message this one replaces
	delete string // the id of the message this one retracts
}

func newPublishCmd(a *app) *cobra.Command {
	var f publishFlags
	cmd := &cobra.Command{
		Use:   "publish --user U [--title T] [--priority N] [--id KEY] [--ttl D] [--at T | --delay D] [--update ID | --delete ID] [BODY]",
		Short: "Publish a message to a user, via the ingest HTTP API or --nats",
		Long: `Publish one message to every device of a user and print the JSON answer.

By default it posts to the ingest API at --url with the producer key --key
(else the first of ingest.producer_keys / HERALD_PRODUCER_KEYS, else the key
herald serve generated in <data-dir>/credentials.json). With --nats it stores
the envelope straight in JetStream at --nats-url, with Nats-Msg-Id set to the
id scoped by user (as ingest sets it), so that a retry within the duplicate
window, by either path, is stored once.

--ttl removes the message that long after it is stored (90s, 2h, 7d, or
seconds). --at (an RFC 3339 time) or --delay (a duration) stores it later,
as a JetStream message schedule; the answer then has deliver_at, not seq.
--update ID publishes a replacement of the message with that id, --delete ID
a retraction (which needs no body).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.loadConfig(cmd)
			if err != nil {
				return err
			}
			if len(args) == 1 {
				f.body = args[0]
			}
			if !cmd.Flags().Changed("priority") {
				f.priority = -1
			}
			if f.viaNATS {
				return a.publishNATS(cmd.Context(), &cfg, &f)
			}
			return a.publishHTTP(cmd.Context(), &cfg, &f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.user, "user", "", "user id to publish to")
	fl.StringVar(&f.title, "title", "", "message title")
	fl.IntVar(&f.priority, "priority", streams.DefaultPriority, "priority 0–10")
	fl.StringVar(&f.id, "id", "", "idempotency key (Idempotency-Key header; Nats-Msg-Id with --nats)")
	fl.StringArrayVar(&f.tags, "tag", nil, "a tag (repeatable)")
	fl.StringVar(&f.data, "data", "", `a JSON object to attach, e.g. '{"build":42}'`)
	fl.StringVar(&f.url, "url", "http://127.0.0.1:8080", "base URL of the ingest API")
	fl.StringVar(&f.key, "key", "", "producer key")
	fl.BoolVar(&f.viaNATS, "nats", false, "publish straight to JetStream at --nats-url instead of HTTP")
	fl.StringVar(&f.ttl, "ttl", "", "remove the message this long after it is stored (90s, 2h, 7d, or seconds)")
	fl.StringVar(&f.at, "at", "", "deliver at this RFC 3339 time (2026-11-23T10:00:00Z)")
	fl.StringVar(&f.delay, "delay", "", "deliver after this duration (90s, 2h)")
	fl.StringVar(&f.update, "update", "", "publish an update of the message with this id")
	fl.StringVar(&f.delete, "delete", "", "publish a delete of the message with this id")
	cmd.MarkFlagsMutuallyExclusive("at", "delay")
	cmd.MarkFlagsMutuallyExclusive("update", "delete")
	_ = cmd.MarkFlagRequired("user")
	return cmd
}

// lifecycle checks the lifecycle flags and returns what --nats writes.
func (f *publishFlags) lifecycle(now time.Time) (streams.Lifecycle, error) {
	var lc streams.Lifecycle
	if f.ttl != "" {
		d, err := herald.ParseDuration(f.ttl)
		if err != nil {
			return lc, fmt.Errorf("--ttl: %w", err)
		}
		lc.TTL = d
	}
	switch {
	case f.at != "":
		t, err := time.Parse(time.RFC3339, f.at)
		if err != nil {
			return lc, fmt.Errorf("--at: %q is not an RFC 3339 time like 2026-11-23T10:00:00Z", f.at)
		}
		lc.DeliverAt = t.UTC()
	case f.delay != "":
		d, err := herald.ParseDuration(f.delay)
		if err != nil {
			return lc, fmt.Errorf("--delay: %w", err)
		}
		lc.DeliverAt = now.Add(d)
	}
	if !lc.DeliverAt.IsZero() && !lc.DeliverAt.After(now) {
		return lc, fmt.Errorf("--at %s is not in the future", lc.DeliverAt.Format(time.RFC3339))
	}
	return lc, nil
}

// envelope builds and validates the message of f.
func (f *publishFlags) envelope() (streams.Envelope, error) {
	if err := streams.ValidateUser(f.user); err != nil {
		return streams.Envelope{}, err
	}
	e := streams.Envelope{ID: f.id, User: f.user, Title: f.title, Body: f.body, Tags: f.tags}
	switch {
	case f.update != "":
		e.Ref, e.Op = f.update, herald.OpUpdate
	case f.delete != "":
		e.Ref, e.Op = f.delete, herald.OpDelete
	}
	if f.priority >= 0 {
		p := f.priority
		e.Priority = &p
	}
	if f.data != "" {
		e.Data = json.RawMessage(f.data)
	}
	if err := e.Validate(); err != nil {
		return streams.Envelope{}, err
	}
	return e, nil
}

func (a *app) publishHTTP(ctx context.Context, cfg *config.Config, f *publishFlags) error {
	e, err := f.envelope()
	if err != nil {
		return fmt.Errorf("cmd: publish: %w", err)
	}
	key := f.key
	if key == "" {
		if key, err = creds.ProducerKey(cfg); err != nil {
			return err
		}
	}
	if _, err := f.lifecycle(time.Now()); err != nil {
		return fmt.Errorf("cmd: publish: %w", err)
	}
	body, err := json.Marshal(struct {
		Title     string          `json:"title,omitempty"`
		Body      string          `json:"body,omitempty"`
		Priority  *int            `json:"priority,omitempty"`
		Tags      []string        `json:"tags,omitempty"`
		Data      json.RawMessage `json:"data,omitempty"`
		Ref       string          `json:"ref,omitempty"`
		Op        string          `json:"op,omitempty"`
		TTL       string          `json:"ttl,omitempty"`
		DeliverAt string          `json:"deliver_at,omitempty"`
		Delay     string          `json:"delay,omitempty"`
	}{e.Title, e.Body, e.Priority, e.Tags, e.Data, e.Ref, e.Op, f.ttl, f.at, f.delay})
	if err != nil {
		return fmt.Errorf("cmd: publish: %w", err)
	}
	u := strings.TrimRight(f.url, "/") + "/v1/users/" + url.PathEscape(f.user) + "/messages"
	ctx, cancel := context.WithTimeout(ctx, cfg.Ingest.PublishTimeout+cfg.NATS.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("cmd: publish: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	if f.id != "" {
		req.Header.Set("Idempotency-Key", f.id)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cmd: publish: %w", err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("cmd: publish: read answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var eb herald.ErrorBody
		if json.Unmarshal(out, &eb) == nil && eb.Error.Code != "" {
			return fmt.Errorf("cmd: publish: %s: %s: %s", resp.Status, eb.Error.Code, eb.Error.Message)
		}
		return fmt.Errorf("cmd: publish: %s: %s", resp.Status, bytes.TrimSpace(out))
	}
	_, err = fmt.Fprintln(a.stdout, string(bytes.TrimSpace(out)))
	return err
}

// natsPublished is what publish --nats prints, shaped like ingest's answer:
// a scheduled message has deliver_at and no seq (nor user and time).
type natsPublished struct {
	ID        string     `json:"id"`
	Seq       uint64     `json:"seq,omitempty"`
	User      string     `json:"user,omitempty"`
	Time      *time.Time `json:"time,omitempty"`
	DeliverAt *time.Time `json:"deliver_at,omitempty"`
	Duplicate bool       `json:"duplicate,omitempty"`
}

func (a *app) publishNATS(ctx context.Context, cfg *config.Config, f *publishFlags) error {
	e, err := f.envelope()
	if err != nil {
		return fmt.Errorf("cmd: publish: %w", err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	lc, err := f.lifecycle(now)
	if err != nil {
		return fmt.Errorf("cmd: publish: %w", err)
	}
	// The checks ingest makes: the stream would remove the message (or
	// the schedule) by its max age first.
	if maxAge := cfg.Stream.MaxAge; maxAge > 0 {
		switch {
		case lc.TTL > maxAge:
			return fmt.Errorf("cmd: publish: --ttl %v is longer than stream.max_age %v", lc.TTL, maxAge)
		case lc.DeliverAt.Sub(now) > maxAge:
			return fmt.Errorf("cmd: publish: the delivery time is further ahead than stream.max_age %v", maxAge)
		}
	}
	if lc.TTL > 0 && lc.TTL < time.Second {
		return fmt.Errorf("cmd: publish: --ttl %v is under the minimum of 1s", lc.TTL)
	}
	lc.DeliverAt = lc.DeliverAt.Truncate(time.Millisecond)
	e.Time = now
	lc.Stamp(&e)
	if e.ID == "" {
		e.ID = streams.NewIDGen().Next(now)
	}
	payload, err := e.Encode()
	if err != nil {
		return fmt.Errorf("cmd: publish: %w", err)
	}
	if len(payload) > cfg.Ingest.MaxMessageBytes {
		return fmt.Errorf("cmd: publish: the envelope is %d bytes, over ingest.max_message_bytes %d", len(payload), cfg.Ingest.MaxMessageBytes)
	}
	log := newLogger(cfg.Log, a.stderr)
	// With no NATS credentials configured, the producer user serve
	// generated in the data dir, if any; it may read only its own inbox.
	creds.NATSAuthFromDataDir(cfg, true)
	conn, err := node.Connect(cfg, "herald-cli", log, nil, nats.CustomInboxPrefix(streams.ProducerInbox))
	if err != nil {
		return err
	}
	defer conn.Drain(cfg.NATS.Timeout)
	js, err := jetstream.New(conn.NC)
	if err != nil {
		return fmt.Errorf("cmd: jetstream: %w", err)
	}
	msg := streams.Subjects{Prefix: cfg.Stream.Prefix}.NewMsg(e.User, e.ID, payload, lc)
	ctx, cancel := context.WithTimeout(ctx, cfg.Ingest.PublishTimeout)
	defer cancel()
	ack, err := js.PublishMsg(ctx, msg, jetstream.WithExpectStream(cfg.Stream.Name))
	if err != nil {
		return fmt.Errorf("cmd: publish: %w", err)
	}
	answer := natsPublished{ID: e.ID, Seq: ack.Sequence, User: e.User, Time: &e.Time, Duplicate: ack.Duplicate}
	if !lc.DeliverAt.IsZero() {
		answer = natsPublished{ID: e.ID, DeliverAt: &e.Time, Duplicate: ack.Duplicate}
	}
	out, err := json.Marshal(answer)
	if err != nil {
		return fmt.Errorf("cmd: publish: %w", err)
	}
	_, err = fmt.Fprintln(a.stdout, string(out))
	return err
}
