// Package edge serves devices: it verifies client tokens, upgrades to a
// WebSocket (SPEC §6) or streams server-sent events (SPEC §7, sse.go, with
// acks by POST /v1/ack in ack.go), and runs one session per connection that
// delivers the user's messages in seq order, takes cumulative acks and
// resends what is not acked in time. It also serves the browser side,
// embedded from package edge/web (web.go): the JavaScript client at
// /v1/herald.js and the console at /; and ntfy's subscribe endpoints
// (SPEC §12, ntfy.go), whose connections are devices on the same sessions:
// a codec encodes the frames as ntfy's events, the SSE connection writes
// ntfy's line or event format, and what they write is acked.
//
// The edge also keeps the read state of SPEC §10 (read.go: read frames,
// POST /v1/read, one read position per user in the devices bucket, the
// welcome's read), answers device status (status.go: GET
// /v1/users/{user}/devices), and shares acks and reads with the other
// edges over core NATS (ctl.go: <prefix>.ctl.<token>, one subscription per
// user with a session on the edge, served by one dispatcher goroutine that
// runs while there is one).
//
// The session layer does not know JetStream. It reads a Feed, opened by an
// Engine; the consumer engine (consumer.go) keeps each device's position in a
// durable JetStream consumer. The live engine (live.go, live_users.go,
// live_feed.go) holds one core subscription per connected user on the
// stream's republish subject, reads backlogs and gaps with direct gets, keeps
// each feed's unacked window itself and stores positions in the
// HERALD_DEVICES KV bucket; its Run method must run alongside the server.
//
// Live engine goroutines: Run's goroutine (owned by the caller) writes
// positions and re-checks users, and waits for the short-lived workers it
// starts. Every user subscription of an engine delivers into one channel,
// read by one dispatcher goroutine that runs while the engine has a
// subscription (the last Unsubscribe ends it); the dispatcher never blocks
// (a full feed queue makes that feed read the store instead, and a full
// channel makes the client library drop and count the message, which Run
// re-checks within a second). A live feed has no goroutine of its own: Poll
// does its work on the session's pump. A consumer feed has one, its puller,
// which Open starts and Close stops and waits for: it waits on the pull
// consumer and hands each message over a channel that holds a window.
//
// Acks across edges (ctl.go): with JetStream, a Server publishes each
// POST /v1/ack, and the ack frames coalesced per 100 ms (the first at once,
// the highest of each device at the end of the period), on the user's
// control subject, and subscribes to it while it holds a session of the
// user, so an ack reaches the device's sessions on every edge. The
// coalescing goroutine runs only while acks come (shareAcks, counted in the
// Server's wait group, which Shutdown waits for); the control dispatcher
// applies the received ones; sessions never wait for either.
//
// Concurrency contract: a Server is safe for concurrent use. The HTTP
// handler registers the session in the Server's wait group; Shutdown waits
// for every session. Every session, WebSocket or SSE over either engine,
// runs on a pumper: a pump goroutine exists only while the feed has
// something to send (the feed's Notify starts it, it exits once Poll has
// had nothing for 100 ms). An idle WebSocket session owns one goroutine,
// its reader (the HTTP handler returns after the upgrade); an idle SSE
// session owns the handler's goroutine, which writes pings and waits for
// the end. The pump writes each frame itself (SSE buffers a batch and
// flushes when the pump has nothing more ready): a device that stops
// reading blocks only its own pump, until the write timeout closes it with
// 4008. No lock is held across I/O or a channel send, except a session's
// own write locks across its socket writes.
package edge
