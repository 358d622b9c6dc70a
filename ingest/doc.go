// Package ingest is Herald's producer HTTP API (SPEC §4): backends publish
// one message or a batch to users, and read a user's retained history.
//
//	POST   /v1/users/{user}/messages        publish one message (JSON or text/plain)
//	POST   /v1/messages                     publish a batch, one result per item
//	GET    /v1/users/{user}/messages        history: ?since=<seq>&limit=<n>
//	PUT    /v1/users/{user}/messages/{id}   publish an update of message id (ref+op)
//	DELETE /v1/users/{user}/messages/{id}   publish a delete of message id (ref+op)
//	DELETE /v1/users/{user}/scheduled/{id}  cancel a scheduled message
//
// Every write goes to the user's subject (streams.Subjects.User) with the
// headers Nats-Msg-Id (the message id scoped by user, streams.MsgID, so that
// a retry within the stream's duplicate window is stored once) and
// Nats-Expected-Stream (so that a write can never land in another stream). A 2xx is only written after JetStream
// acknowledged the write; when NATS is unreachable, has no stream, or does not
// answer within Ingest.PublishTimeout, the answer is 503 unavailable with a
// Retry-After header. A 503 does not prove that nothing was stored: retry
// with the same Idempotency-Key (or id) to be safe.
//
// History reads with batched direct get ($JS.API.DIRECT.GET.<stream> with
// next_by_subj), one request per page, bounded by Ingest.PublishTimeout and
// by a byte budget per page (a page of large messages may hold fewer than
// limit messages; keep paging with next until messages is empty).
//
// The message lifecycle (SPEC §10): a ttl becomes the stored message's
// Nats-TTL (whole seconds, rounded up) and its "expires"; deliver_at or
// delay (or the Herald-Deliver-At header) makes the write a JetStream
// message schedule on streams.Subjects.Schedule, answered 202
// {"id","deliver_at"}: JetStream stores the message on the user's subject
// when it is due, and the envelope's time is deliver_at. Updates and
// deletes are new messages with ref and op, delivered in order like any
// other.
//
// Choices where SPEC §4 and §10 are silent:
//   - The Herald-TTL and Herald-Deliver-At headers apply to a single
//     publish and to each batch item that does not set the field itself (a
//     field wins over a header). Herald-Deliver-At takes an RFC 3339 time or
//     a duration from now. A header that does not parse is 400 for the
//     whole request; a value out of bounds fails its item.
//   - A retry of a scheduled publish (same id, within the duplicate window)
//     is 202 with "duplicate":true. A new schedule with the id of a pending
//     one, after the window, replaces it (JetStream keeps one schedule per
//     subject). To change a pending schedule, cancel it and publish again.
//   - A cancel is one purge of the schedule's subject, which also counts
//     what it removed: 204 when a schedule was removed, 404 when there was
//     none. A cancel that lands in the same instant as deliver_at can be
//     204 although JetStream was already storing the message: JetStream
//     copies a due schedule before it removes it, and stores the copy even
//     when the schedule is gone by then.
//   - DELETE on a message takes an optional JSON body (for example an id or
//     a ttl for the delete itself); PUT takes the body of a publish, whose
//     ref and op, if given, must match the path and the method.
//   - Unknown JSON fields are ignored. "seq" and "time" in a request are
//     ignored (the server sets them). A "user" field in the body of a single
//     publish must equal the user in the path (else 400 invalid_message).
//   - A JSON value of the wrong type (for example "priority":"high") is
//     400 invalid_message; malformed JSON is 400 invalid_json. data nested
//     deeper than streams.MaxDataDepth (32) levels is 400 invalid_message.
//   - Content types: application/json or none for JSON, text/plain (valid
//     UTF-8) for a body-only message, and application/x-www-form-urlencoded
//     (curl -d's default): the form fields id, title, body (or message),
//     priority and tags (comma-separated or repeated), or, when the body is
//     not a form or has none of these fields ("curl -d 'disk full'"), the
//     whole body as the message text. Anything else is 415
//     unsupported_media_type. A batch takes JSON only.
//   - The drop-in endpoints for ntfy and gotify (package ingest/compat)
//     publish through Publish, after Admit (or their own credentials):
//     the same checks, write and answers as a single publish.
//   - A single publish body larger than 2×max_message_bytes+4 KiB (capped by
//     http.max_body_bytes) is 413 too_large before it is decoded; the stored
//     envelope is then checked against max_message_bytes.
//   - A batch body is decoded as a stream of tokens, each item checked and
//     encoded as it is read: the item after the max_batch-th (or, with a
//     rate limit, the rate_burst-th) ends the request with 413 too_large
//     naming the setting, before the rest is read. Other top-level fields
//     are skipped; "messages" twice is 400 invalid_request. An
//     Idempotency-Key header on a batch is 400 invalid_request (set "id"
//     per item instead).
//   - At most ingest.max_concurrent_batches batches are decoded and
//     published at once per Handler. Another batch waits for a slot before
//     its body is read, at most publish_timeout and while its request
//     lasts, then gets 503 unavailable with Retry-After.
//   - The rate limit takes one token per single publish, before its body is
//     read, and one per batch item (at least one), once the batch is
//     decoded: a batch the bucket cannot pay yet is 429 with the
//     Retry-After at which it can, and takes nothing; a batch larger than
//     rate_burst could never pass and is 413 too_large.
//   - A duplicate single publish answers 200 with the first seq, the id and
//     "duplicate":true; its "time" is the stored message's time when it can
//     still be read, else it is left out. Ids are per user: the Nats-Msg-Id
//     is "<user token>:<id>" (SPEC §3 says the id itself), so the same id
//     sent for two users stores two messages, and one user's ids can neither
//     block nor reveal another's. The envelope's "id" is kept as given.
//   - A batch answers 200 with per-item results, including an "unavailable"
//     item whose ack did not arrive within the publish timeout; only when
//     the NATS connection is down before publishing is the whole batch 503.
//   - history accepts a producer key (Authorization header only, never the
//     query string) or the user's client token (Authorization header or
//     ?token=); a valid token of another user is 403 forbidden. A since at
//     or beyond the last sequence gives an empty page with next = since.
//   - history needs direct get on the stream (streams.Definition sets it);
//     without it, or without the stream, history is 503 unavailable.
//
// # Concurrency
//
// A Handler is immutable after New and safe for concurrent use by any number
// of HTTP requests. It starts no goroutines of its own; the goroutines that
// resolve asynchronous publish acks belong to the jetstream.JetStream passed
// to New, whose owner closes its connection. Create that JetStream with
// JetStreamOpts, so that lost acks are reaped after the publish timeout and a
// full batch fits in the async window. No lock is held across I/O.
package ingest
