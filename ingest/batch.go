package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/streams"
)

// batchResult is one item's result: id and seq, id and deliver_at for a
// scheduled message, or an error.
type batchResult struct {
	ID        string     `json:"id,omitempty"`
	Seq       uint64     `json:"seq,omitempty"`
	DeliverAt *time.Time `json:"deliver_at,omitempty"`
	Duplicate bool       `json:"duplicate,omitempty"`
	Error     *itemError `json:"error,omitempty"`
}

type itemError struct {
	Code    herald.Code `json:"code"`
	Message string      `json:"message"`
}

type batchResponse struct {
	Results []batchResult `json:"results"`
}

func failed(err error) batchResult {
	e := herald.AsError(err)
	return batchResult{Error: &itemError{Code: e.Code, Message: e.Message}}
}

// batch handles POST /v1/messages. It waits for a batch slot, decodes the
// body one item at a time (decodeBatch), takes one rate-limit token per
// item, then publishes every valid item asynchronously, in request order,
// and awaits every ack until the publish timeout. Results are in request
// order; a bad item or a missing ack fails that item only.
func (h *Handler) batch(w http.ResponseWriter, r *http.Request) (string, error) {
	p, err := h.authProducer(r)
	if err != nil {
		return "", err
	}
	if r.Header.Get("Idempotency-Key") != "" {
		return "", herald.NewError(herald.InvalidRequest, "Idempotency-Key is not supported on a batch; set id on each message")
	}
	if _, err := mediaType(r, false); err != nil {
		return "", err
	}
	d, err := readDefaults(r, now())
	if err != nil {
		return "", err
	}
	release, err := h.batchSlot(r.Context())
	if err != nil {
		return "", err
	}
	defer release()
	b, err := h.decodeBatch(w, r, d)
	if err != nil {
		return "", err
	}
	// Every item costs a token, a bad one too (it cost decoding); an empty
	// batch costs one, like any request.
	if err := h.rateLimit(p, max(len(b.results), 1)); err != nil {
		return "", err
	}
	if b.valid > 0 {
		if err := h.checkConnected(); err != nil {
			return "", err
		}
		h.publishAll(r.Context(), b.msgs, b.users, b.results)
	}
	herald.WriteJSON(w, http.StatusOK, batchResponse{Results: b.results})
	return outcomeOK, nil
}

// batchSlot takes one of the ingest.max_concurrent_batches slots, so that
// the memory of the batches a node works on at once stays bounded. When all
// are taken it waits, at most the publish timeout and while the request
// lasts, then answers 503 with Retry-After. It returns the slot's release.
func (h *Handler) batchSlot(ctx context.Context) (release func(), err error) {
	if h.batchSlots == nil {
		return func() {}, nil
	}
	release = func() { <-h.batchSlots }
	select {
	case h.batchSlots <- struct{}{}:
		return release, nil
	default:
	}
	t := time.NewTimer(h.ingest.PublishTimeout)
	defer t.Stop()
	select {
	case h.batchSlots <- struct{}{}:
		return release, nil
	case <-t.C:
	case <-ctx.Done():
	}
	return nil, h.unavailable(fmt.Sprintf("%d batches are already in progress (ingest.max_concurrent_batches); retry later", cap(h.batchSlots)), errBatchesBusy)
}

// errBatchesBusy is the cause of a 503 when no batch slot became free.
var errBatchesBusy = errors.New("ingest: every batch slot is taken")

// decodedBatch is a decoded batch body: results[i] holds item i's id or
// error, msgs[i] and users[i] its write (msgs[i] is nil when it failed).
type decodedBatch struct {
	results []batchResult
	msgs    []*nats.Msg
	users   []string
	valid   int
}

// errBatchShape refuses a body that is not {"messages":[…]}.
var errBatchShape = herald.NewError(herald.InvalidRequest, `the body must be {"messages":[…]}`)

// decodeBatch reads {"messages":[…]} as a stream of tokens, checking and
// encoding each item as soon as it is read, so that a batch with more
// items than it may have is refused before the next one is read, and the
// memory of a batch is its valid messages rather than one value per item
// of the whole body. Other top-level fields are skipped.
func (h *Handler) decodeBatch(w http.ResponseWriter, r *http.Request, d defaults) (*decodedBatch, error) {
	body, err := limitBody(w, r, h.maxBodyBytes)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(body)
	if tok, err := dec.Token(); err != nil {
		return nil, bodyErr(err, h.maxBodyBytes)
	} else if tok != json.Delim('{') {
		// A value of the wrong type, as decoding it whole reported it.
		return nil, herald.NewError(herald.InvalidMessage, `the body must be a JSON object: {"messages":[…]}`)
	}
	var b *decodedBatch
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return nil, bodyErr(err, h.maxBodyBytes)
		}
		if key != "messages" {
			if err := dec.Decode(&skip{}); err != nil {
				return nil, bodyErr(err, h.maxBodyBytes)
			}
			continue
		}
		if b != nil {
			return nil, herald.NewError(herald.InvalidRequest, `"messages" appears twice`)
		}
		if b, err = h.decodeItems(dec, d); err != nil {
			return nil, err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, bodyErr(err, h.maxBodyBytes)
	}
	switch _, err := dec.Token(); {
	case err == nil:
		return nil, herald.NewError(herald.InvalidJSON, "request body is not valid JSON: data after the top-level object")
	case !errors.Is(err, io.EOF):
		return nil, bodyErr(err, h.maxBodyBytes)
	}
	if b == nil {
		return nil, errBatchShape
	}
	return b, nil
}

// decodeItems reads the value of "messages": null is 400 invalid_request,
// anything but an array 400 invalid_message, an item beyond the limit 413.
func (h *Handler) decodeItems(dec *json.Decoder, d defaults) (*decodedBatch, error) {
	tok, err := dec.Token()
	switch {
	case err != nil:
		return nil, bodyErr(err, h.maxBodyBytes)
	case tok == nil:
		return nil, errBatchShape
	case tok != json.Delim('['):
		return nil, herald.NewError(herald.InvalidMessage, "messages must be an array")
	}
	limit := h.batchLimit()
	b := &decodedBatch{results: []batchResult{}}
	var raw json.RawMessage // reused: each item is copied out of it
	for dec.More() {
		if len(b.results) == limit {
			return nil, h.tooManyItems()
		}
		raw = raw[:0]
		if err := dec.Decode(&raw); err != nil {
			return nil, bodyErr(err, h.maxBodyBytes)
		}
		res, msg, user := h.item(raw, d)
		if msg != nil {
			b.valid++
		}
		b.results = append(b.results, res)
		b.msgs = append(b.msgs, msg)
		b.users = append(b.users, user)
	}
	if _, err := dec.Token(); err != nil { // the closing bracket
		return nil, bodyErr(err, h.maxBodyBytes)
	}
	return b, nil
}

// item checks one batch item and returns its result, and its write and user
// when it is valid. d are the request's lifecycle headers.
func (h *Handler) item(raw []byte, d defaults) (batchResult, *nats.Msg, string) {
	var in input
	if err := json.Unmarshal(raw, &in); err != nil {
		return failed(decodeErr(err)), nil, ""
	}
	if err := streams.ValidateUser(in.User); err != nil {
		return failed(herald.WrapError(herald.InvalidUser, err, err.Error())), nil, ""
	}
	env, msg, err := h.write(in.User, in, "", d, now())
	if err != nil {
		return failed(err), nil, ""
	}
	res := batchResult{ID: env.ID}
	if msg.Subject != h.subjects.User(in.User) {
		at := env.Time
		res.DeliverAt = &at
	}
	return res, msg, in.User
}

// batchLimit is the most items a batch may have: ingest.max_batch, or
// ingest.rate_burst when a rate limit is set and its burst is smaller, since
// a larger batch could never take its tokens.
func (h *Handler) batchLimit() int {
	if h.limiter != nil {
		return min(h.ingest.MaxBatch, h.limiter.burst)
	}
	return h.ingest.MaxBatch
}

// tooManyItems is the 413 of a batch over batchLimit, naming the setting.
func (h *Handler) tooManyItems() error {
	if n := h.batchLimit(); n < h.ingest.MaxBatch {
		return h.overBurst()
	}
	return herald.NewError(herald.TooLarge, "more than %d messages in one batch (ingest.max_batch); split it", h.ingest.MaxBatch)
}

// skip discards a JSON value that the decoder has read (and checked).
type skip struct{}

func (*skip) UnmarshalJSON([]byte) error { return nil }

// publishAll publishes every non-nil msgs[i] and fills results[i].
func (h *Handler) publishAll(parent context.Context, msgs []*nats.Msg, users []string, results []batchResult) {
	ctx, cancel := context.WithTimeout(parent, h.ingest.PublishTimeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	start := time.Now()

	futures := make([]jetstream.PubAckFuture, len(msgs))
	var firstErr error
	nFailed := 0
	fail := func(i int, err error) {
		if firstErr == nil {
			firstErr = err
		}
		nFailed++
		if errors.Is(err, nats.ErrMaxPayload) {
			results[i] = failed(herald.WrapError(herald.TooLarge, err, "the message exceeds the NATS max payload"))
			return
		}
		results[i] = failed(h.unavailable("JetStream did not acknowledge the write; retry later", err))
	}
	for i, m := range msgs {
		if m == nil {
			continue
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			fail(i, context.DeadlineExceeded)
			continue
		}
		// Blocks while the async window is full, at most until the deadline.
		f, err := h.pub.PublishMsgAsync(m, jetstream.WithStallWait(wait))
		if err != nil {
			fail(i, err)
			continue
		}
		futures[i] = f
	}

	stored := 0
	for i, f := range futures {
		if f == nil {
			continue
		}
		ack, err := await(ctx, f)
		if err != nil {
			fail(i, err)
			continue
		}
		if results[i].DeliverAt != nil {
			// A schedule: the message has no seq until it is due.
			results[i].Duplicate = ack.Duplicate
			if !ack.Duplicate {
				stored++
			}
			continue
		}
		results[i].Seq = ack.Sequence
		if ack.Duplicate {
			if _, err := h.original(ctx, users[i], results[i].ID, ack.Sequence); err != nil {
				results[i] = failed(err)
				continue
			}
			results[i].Duplicate = true
			continue
		}
		stored++
	}
	h.metrics.publish.Observe(time.Since(start).Seconds())
	h.metrics.messages.Add(float64(stored))
	if nFailed > 0 {
		h.log.Warn("batch publish incomplete", "failed", nFailed, "stored", stored, "err", firstErr)
	}
	h.log.Debug("batch stored", "messages", len(msgs), "stored", stored)
}

// await waits for f's ack until ctx ends; then it still takes an ack or an
// error that already arrived, so that a stored item is never reported as
// failed because it was awaited late.
func await(ctx context.Context, f jetstream.PubAckFuture) (*jetstream.PubAck, error) {
	select {
	case ack := <-f.Ok():
		return ack, nil
	case err := <-f.Err():
		return nil, err
	case <-ctx.Done():
	}
	select {
	case ack := <-f.Ok():
		return ack, nil
	case err := <-f.Err():
		return nil, err
	default:
		return nil, ctx.Err()
	}
}
