// Package compat serves drop-in publish endpoints for tools written for
// ntfy and gotify (SPEC §12), so that their scripts, CLIs and integrations
// publish to Herald unchanged. Every message goes through ingest's single
// publish (ingest.Handler.Publish): the same checks, limits, idempotency
// and 503 when JetStream does not acknowledge the write. The subscribe
// side of ntfy is in package edge.
//
// # ntfy
//
//	PUT|POST /<topic>                       publish; the body is the message
//	GET /<topic>/publish|send|trigger       publish with parameters only
//	PUT|POST /                              the JSON form: {"topic":…, "message":…, …}
//	PUT|POST|DELETE /<topic>/<sequence_id>  update or delete (refused, see below)
//
// The topic is the user id, so only users whose id is an ntfy topic
// (1–64 characters of A-Z a-z 0-9 _ -) can be reached this way; the names
// of Herald's own paths (v1, healthz, readyz, metrics, message) are
// refused with 400, and a path under /v1/ that no Herald route took gets
// Herald's own 404, so these routes never shadow Herald's.
//
// Parameters are read as ntfy reads them: headers first, then query
// parameters of the same names in lower case; header values may be RFC
// 2047 encoded words (=?UTF-8?B?…?=). Title: X-Title, Title, ti, t.
// Message: X-Message, Message, m (a non-empty body wins; "\n" is a
// newline; no message at all is "triggered", as in ntfy). Priority:
// X-Priority, Priority, prio, p, with 1–5 or min, low, default, high,
// max|urgent, stored as Herald's 1, 3, 5, 8, 10 (an RFC 9218 "Priority:
// u=…" header that proxies add is ignored). Tags: X-Tags, Tags, tag, ta,
// comma-separated. Click (X-Click, click), icon (X-Icon, icon), attach
// (X-Attach, attach, a), filename (X-Filename, filename, file, f), actions
// (X-Actions, actions, action: a JSON array, or the text form kept as a
// string) and markdown (X-Markdown, markdown, md, or Content-Type:
// text/markdown) go into data under their ntfy names (herald.NtfyData*).
// An Idempotency-Key header is the message id, as on Herald's own API.
// email, call, template, firebase, cache, unifiedpush and poll-id are
// accepted and ignored: Herald has none of those channels.
//
// Not done, with a 400 that says so: uploading a file as the body
// (Herald stores no attachments; send its URL with X-Attach); scheduled
// delivery (X-Delay, X-At, X-In, "delay") and updates (X-Sequence-ID,
// /<topic>/<sequence_id>), which need Herald's deliver_at and ref of the
// message lifecycle; the function lifecycle maps them, in one place.
//
// Auth: the producer key as Authorization: Bearer, as the password of
// Basic credentials (the user is not read), or ?auth= (base64url of the
// whole header value, as ntfy's clients send it). No anonymous publishing.
// The answer is 200 with ntfy's message JSON, whose id is the Herald seq;
// errors are ntfy's {"code","http","error"}.
//
// # gotify
//
//	POST /message   publish with an application token
//
// The token comes from ?token=, X-Gotify-Key or Authorization: Bearer, in
// that order, as in gotify; compat.gotify.apps maps each token to the user
// it publishes to. The body is gotify's JSON ({"message", "title",
// "priority", "extras"}) or a form (urlencoded or multipart, completed by
// query parameters): message is required, priority is 0–10 as Herald's
// (none: Herald's default 5), extras (JSON only, an object) is kept as
// data.extras. The answer is gotify's message JSON with the seq as id and
// appid 0; errors, an unknown token's 401 first, are gotify's
// {"error","errorCode","errorDescription"}. ingest.rate_limit, which is
// per producer key, does not apply to application tokens.
//
// # Concurrency
//
// A Handler is immutable after New and safe for concurrent use; it starts
// no goroutines.
package compat
