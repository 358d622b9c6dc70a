package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/cmd/herald/internal/creds"
	"github.com/herald-push/herald/cmd/herald/internal/node"
	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/ingest/client"
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

// lifecycle checks the lifecycle flags and returns what --nats writes, and
// the --delay, which the HTTP path sends as such (it runs from ingest's
// clock).
func (f *publishFlags) lifecycle(now time.Time) (lc streams.Lifecycle, delay time.Duration, err error) {
	if f.ttl != "" {
		if lc.TTL, err = herald.ParseDuration(f.ttl); err != nil {
			return lc, 0, fmt.Errorf("--ttl: %w", err)
		}
	}
	switch {
	case f.at != "":
		t, err := time.Parse(time.RFC3339, f.at)
		if err != nil {
			return lc, 0, fmt.Errorf("--at: %q is not an RFC 3339 time like 2026-11-23T10:00:00Z", f.at)
		}
		lc.DeliverAt = t.UTC()
	case f.delay != "":
		if delay, err = herald.ParseDuration(f.delay); err != nil {
			return lc, 0, fmt.Errorf("--delay: %w", err)
		}
		lc.DeliverAt = now.Add(delay)
	}
	if !lc.DeliverAt.IsZero() && !lc.DeliverAt.After(now) {
		return lc, 0, fmt.Errorf("--at %s is not in the future", lc.DeliverAt.Format(time.RFC3339))
	}
	return lc, delay, nil
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
	lc, delay, err := f.lifecycle(time.Now())
	if err != nil {
		return fmt.Errorf("cmd: publish: %w", err)
	}
	m := client.Message{Title: e.Title, Body: e.Body, Priority: e.Priority, Tags: e.Tags, Data: e.Data, Ref: e.Ref, Op: e.Op, TTL: lc.TTL, Delay: delay, IdempotencyKey: f.id}
	if delay == 0 {
		m.DeliverAt = lc.DeliverAt
	}
	c, err := client.New(client.Options{URL: f.url, Credential: key})
	if err != nil {
		return fmt.Errorf("cmd: publish: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Ingest.PublishTimeout+cfg.NATS.Timeout)
	defer cancel()
	res, err := c.Publish(ctx, f.user, m)
	if err != nil {
		return fmt.Errorf("cmd: %w", err)
	}
	return a.printJSON(res)
}

func (a *app) publishNATS(ctx context.Context, cfg *config.Config, f *publishFlags) error {
	e, err := f.envelope()
	if err != nil {
		return fmt.Errorf("cmd: publish: %w", err)
	}
	e.Time = time.Now().UTC().Truncate(time.Millisecond)
	lc, _, err := f.lifecycle(e.Time)
	if err != nil {
		return fmt.Errorf("cmd: publish: %w", err)
	}
	w, err := streams.NewWrite(cfg.Stream, e, lc, cfg.Ingest.MaxMessageBytes)
	if err != nil {
		return fmt.Errorf("cmd: publish: %w", err)
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
	ctx, cancel := context.WithTimeout(ctx, cfg.Ingest.PublishTimeout)
	defer cancel()
	res, err := w.Publish(ctx, js)
	if err != nil {
		return fmt.Errorf("cmd: %w", err)
	}
	return a.printJSON(res)
}
