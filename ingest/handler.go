package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/streams"
)

// Options configure a Handler.
type Options struct {
	// Ingest holds the producer keys, the message and batch limits, the
	// publish timeout and the Retry-After of a 503.
	Ingest Config
	// Stream names the stream writes must land in and its subject prefix.
	Stream streams.Config
	// MaxBodyBytes is the hard cap on a request body (http.max_body_bytes).
	MaxBodyBytes int64
	// Tokens verifies client tokens for history; nil: history only accepts
	// producer keys.
	Tokens TokenVerifier
	// Logger receives the package's logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the package's metrics; nil: no metrics.
	Registerer prometheus.Registerer
}

// TokenVerifier checks a client token and returns the user it was issued
// for. cmd wires edge/token's Verifier to it; ingest knows nothing else of
// client tokens.
type TokenVerifier interface {
	User(raw string) (string, error)
}

// publisher is what ingest needs from JetStream to write.
type publisher interface {
	PublishMsg(ctx context.Context, m *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
	PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error)
}

var _ publisher = (jetstream.JetStream)(nil)

// Handler serves the producer API. Build it with New.
type Handler struct {
	ingest       Config
	streamName   string
	maxAge       time.Duration // the stream's; bounds ttl and deliver_at (0: none)
	subjects     streams.Subjects
	maxBodyBytes int64
	singleLimit  int64
	keys         *Keyring
	limiter      *rateLimiter  // nil: no producer rate limit
	batchSlots   chan struct{} // a send takes a batch slot; nil: unlimited
	tokens       TokenVerifier
	pub          publisher
	js           jetstream.JetStream
	nc           *nats.Conn
	reader       streams.DirectGet
	ids          *streams.IDGen
	metrics      *metrics
	log          *slog.Logger
}

// asyncMinPending is the smallest async publish window JetStreamOpts asks for
// (the nats.go default).
const asyncMinPending = 4000

// JetStreamOpts returns the options the JetStream passed to New should be
// created with: an async publish window that holds a whole batch, and an ack
// timeout equal to the publish timeout so that a lost ack frees its slot.
func JetStreamOpts(c Config) []jetstream.JetStreamOpt {
	pending := max(asyncMinPending, c.MaxBatch)
	opts := []jetstream.JetStreamOpt{jetstream.WithPublishAsyncMaxPending(pending)}
	if c.PublishTimeout > 0 {
		opts = append(opts, jetstream.WithPublishAsyncTimeout(c.PublishTimeout))
	}
	return opts
}

// New validates opts and returns a ready Handler that writes and reads
// through js.
func New(opts Options, js jetstream.JetStream) (*Handler, error) {
	if js == nil || js.Conn() == nil {
		return nil, errors.New("ingest: new: no JetStream connection")
	}
	if err := validate(&opts); err != nil {
		return nil, fmt.Errorf("ingest: new: %w", err)
	}
	keys, err := NewKeyring(opts.Ingest.ProducerKeys)
	if err != nil {
		return nil, fmt.Errorf("ingest: new: %w", err)
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("ingest: new: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{
		ingest:       opts.Ingest,
		streamName:   opts.Stream.Name,
		maxAge:       opts.Stream.MaxAge,
		subjects:     streams.Subjects{Prefix: opts.Stream.Prefix},
		maxBodyBytes: opts.MaxBodyBytes,
		singleLimit:  min(opts.MaxBodyBytes, 2*int64(opts.Ingest.MaxMessageBytes)+4<<10),
		keys:         keys,
		limiter:      newRateLimiter(opts.Ingest, keys.len()),
		tokens:       opts.Tokens,
		pub:          js,
		js:           js,
		nc:           js.Conn(),
		reader:       streams.NewDirectGet(js, opts.Stream.Name),
		ids:          streams.NewIDGen(),
		metrics:      m,
		log:          log.With("component", "ingest"),
	}
	if n := opts.Ingest.MaxConcurrentBatches; n > 0 {
		h.batchSlots = make(chan struct{}, n)
	}
	return h, nil
}

func validate(o *Options) error {
	var errs []error
	if o.Stream.Name == "" || strings.ContainsAny(o.Stream.Name, ".*> \t\r\n") {
		errs = append(errs, fmt.Errorf("stream name %q is not a valid stream name", o.Stream.Name))
	}
	if o.Stream.Prefix != "" {
		if err := streams.ValidatePrefix(o.Stream.Prefix); err != nil {
			errs = append(errs, err)
		}
	}
	if o.Ingest.MaxMessageBytes < 1 {
		errs = append(errs, fmt.Errorf("max message bytes %d must be positive", o.Ingest.MaxMessageBytes))
	}
	if o.Ingest.MaxBatch < 1 {
		errs = append(errs, fmt.Errorf("max batch %d must be positive", o.Ingest.MaxBatch))
	}
	if o.Ingest.PublishTimeout <= 0 {
		errs = append(errs, fmt.Errorf("publish timeout %v must be positive", o.Ingest.PublishTimeout))
	}
	if o.Ingest.RetryAfter <= 0 {
		errs = append(errs, fmt.Errorf("retry after %v must be positive", o.Ingest.RetryAfter))
	}
	if o.Ingest.MaxConcurrentBatches < 0 {
		errs = append(errs, fmt.Errorf("max concurrent batches %d must not be negative", o.Ingest.MaxConcurrentBatches))
	}
	if o.MaxBodyBytes < 1 {
		errs = append(errs, fmt.Errorf("max body bytes %d must be positive", o.MaxBodyBytes))
	}
	return errors.Join(errs...)
}

// Register adds the producer routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle("POST /v1/users/{user}/messages", h.endpoint(h.publish))
	mux.Handle("POST /v1/messages", h.endpoint(h.batch))
	mux.Handle("GET /v1/users/{user}/messages", h.endpoint(h.history))
	mux.Handle("PUT /v1/users/{user}/messages/{id}", h.endpoint(h.update))
	mux.Handle("DELETE /v1/users/{user}/messages/{id}", h.endpoint(h.retract))
	mux.Handle("DELETE /v1/users/{user}/scheduled/{id}", h.endpoint(h.cancel))
}

// Outcomes counted by herald_ingest_requests_total besides error codes.
const (
	outcomeOK        = "ok"
	outcomeDuplicate = "duplicate"
)

// endpointFunc handles one request: it writes the success response itself
// and returns its outcome, or returns an error that endpoint renders.
type endpointFunc func(w http.ResponseWriter, r *http.Request) (string, error)

func (h *Handler) endpoint(f endpointFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		outcome, err := f(w, r)
		if err != nil {
			e := herald.AsError(err)
			outcome = string(e.Code)
			herald.WriteError(w, h.log, err)
		}
		h.metrics.requests.WithLabelValues(outcome).Inc()
	})
}

// unavailable is the 503 of a write or read NATS did not complete.
func (h *Handler) unavailable(msg string, err error) *herald.Error {
	return &herald.Error{Code: herald.Unavailable, Message: msg, RetryAfter: h.ingest.RetryAfter, Err: err}
}

// errNotConnected is the cause of a 503 while the NATS connection is down.
var errNotConnected = errors.New("ingest: NATS connection is down")

// checkConnected fails fast with 503 while the NATS connection is down,
// rather than buffering a write that may land after the client gave up.
func (h *Handler) checkConnected() error {
	if !h.nc.IsConnected() {
		return h.unavailable("NATS is not connected; retry later", errNotConnected)
	}
	return nil
}

// now is the envelope time: UTC with millisecond precision.
func now() time.Time {
	return time.Now().UTC().Truncate(time.Millisecond)
}
