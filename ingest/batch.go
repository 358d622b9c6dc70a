package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald/ingest/apierr"
	"github.com/herald-push/herald/streams"
)

// batchRequest is the body of POST /v1/messages.
type batchRequest struct {
	Messages []json.RawMessage `json:"messages"`
}

// batchResult is one item's result: id and seq, or an error.
type batchResult struct {
	ID        string     `json:"id,omitempty"`
	Seq       uint64     `json:"seq,omitempty"`
	Duplicate bool       `json:"duplicate,omitempty"`
	Error     *itemError `json:"error,omitempty"`
}

type itemError struct {
	Code    apierr.Code `json:"code"`
	Message string      `json:"message"`
}

type batchResponse struct {
	Results []batchResult `json:"results"`
}

func failed(err error) batchResult {
	e := apierr.As(err)
	return batchResult{Error: &itemError{Code: e.Code, Message: e.Message}}
}

// batch handles POST /v1/messages: every valid item is published
// asynchronously, in request order, then every ack is awaited until the
// publish timeout. Results are in request order; a bad item or a missing ack
// fails that item only.
func (h *Handler) batch(w http.ResponseWriter, r *http.Request) (string, error) {
	if err := h.authProducer(r); err != nil {
		return "", err
	}
	if err := h.rateLimit(r, 1); err != nil {
		return "", err
	}
	if r.Header.Get("Idempotency-Key") != "" {
		return "", apierr.New(apierr.InvalidRequest, "Idempotency-Key is not supported on a batch; set id on each message")
	}
	if _, err := mediaType(r, false); err != nil {
		return "", err
	}
	raw, err := readBody(w, r, h.maxBodyBytes)
	if err != nil {
		return "", err
	}
	var req batchRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return "", decodeErr(err)
	}
	if req.Messages == nil {
		return "", apierr.New(apierr.InvalidRequest, `the body must be {"messages":[…]}`)
	}
	if len(req.Messages) > h.ingest.MaxBatch {
		return "", apierr.New(apierr.TooLarge, "%d messages in one batch; the limit is %d", len(req.Messages), h.ingest.MaxBatch)
	}
	if err := h.rateLimit(r, len(req.Messages)-1); err != nil { // the request took one
		return "", err
	}

	results := make([]batchResult, len(req.Messages))
	msgs := make([]*nats.Msg, len(req.Messages))
	users := make([]string, len(req.Messages))
	valid := 0
	for i, item := range req.Messages {
		var in input
		if err := json.Unmarshal(item, &in); err != nil {
			results[i] = failed(decodeErr(err))
			continue
		}
		if err := streams.ValidateUser(in.User); err != nil {
			results[i] = failed(apierr.Wrap(apierr.InvalidUser, err, err.Error()))
			continue
		}
		env, payload, err := h.envelope(in.User, in, "")
		if err != nil {
			results[i] = failed(err)
			continue
		}
		results[i].ID = env.ID
		msgs[i], users[i] = h.natsMsg(in.User, env.ID, payload), in.User
		valid++
	}
	if valid > 0 {
		if err := h.checkConnected(); err != nil {
			return "", err
		}
		h.publishAll(r.Context(), msgs, users, results)
	}
	apierr.WriteJSON(w, http.StatusOK, batchResponse{Results: results})
	return outcomeOK, nil
}

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
			results[i] = failed(apierr.Wrap(apierr.TooLarge, err, "the message exceeds the NATS max payload"))
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
