package compat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/ingest"
	"github.com/herald-push/herald/streams"
)

// Publisher is what the drop-in endpoints need from ingest: admit a
// producer key, know the body limit, and publish one message through the
// single publish's checks and write. *ingest.Handler satisfies it.
type Publisher interface {
	Admit(key string) error
	Publish(ctx context.Context, user string, m ingest.Message) (herald.Published, error)
	BodyLimit() int64
}

var _ Publisher = (*ingest.Handler)(nil)

// Options configure a Handler.
type Options struct {
	// Config switches each protocol on and holds gotify's application
	// tokens.
	Config Config
	// Logger receives the package's logs; nil discards them.
	Logger *slog.Logger
}

// Handler serves the drop-in publish endpoints. Build it with New.
type Handler struct {
	pub  Publisher
	ntfy bool
	apps gotifyApps // nil: gotify is off
	log  *slog.Logger
}

// New checks opts (each gotify application's user must be a valid user id)
// and returns a Handler that publishes through pub.
func New(pub Publisher, opts Options) (*Handler, error) {
	if pub == nil {
		return nil, errors.New("compat: new: no publisher")
	}
	for _, user := range opts.Config.Gotify.Apps {
		if err := streams.ValidateUser(user); err != nil {
			return nil, fmt.Errorf("compat: new: compat.gotify.apps: %w", err)
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Handler{pub: pub, ntfy: opts.Config.NTFY.Enabled, log: log.With("component", "compat")}
	if opts.Config.Gotify.Enabled {
		c.apps = newGotifyApps(opts.Config.Gotify.Apps)
	}
	return c, nil
}

// Register adds the routes of the protocols that are on to mux. PUT|POST
// /<topic> is as general as a path of one segment: serve mux only with what
// Herald's own routes leave, as cmd/herald does. A topic that names one of
// Herald's paths is refused (herald.NtfyTopicReserved), and a topic "v1"
// gets Herald's own 404.
func (c *Handler) Register(mux *http.ServeMux) {
	if c.ntfy {
		topic := c.ntfyEndpoint(c.ntfyTopic)
		for _, p := range []string{"PUT /{topic}", "POST /{topic}", "GET /{topic}/publish", "GET /{topic}/send", "GET /{topic}/trigger"} {
			mux.Handle(p, topic)
		}
		form := c.ntfyEndpoint(c.ntfyJSONForm)
		mux.Handle("PUT /{$}", form)
		mux.Handle("POST /{$}", form)
		seq := c.ntfyEndpoint(c.ntfySequence)
		for _, p := range []string{"PUT /{topic}/{sid}", "POST /{topic}/{sid}", "DELETE /{topic}/{sid}"} {
			mux.Handle(p, seq)
		}
	}
	if c.apps != nil {
		mux.HandleFunc("POST /message", c.gotify)
	}
}
