// Package edge serves devices: it verifies client tokens, upgrades to a
// WebSocket (SPEC §6) or streams server-sent events (SPEC §7, sse.go, with
// acks by POST /v1/ack in ack.go), and runs one session per connection that
// delivers the user's messages in seq order, takes cumulative acks and
// resends what is not acked in time. It also serves the browser side,
// embedded from package edge/web (web.go): the JavaScript client at
// /v1/herald.js and the console at /.
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
// re-checks within a second). A feed has no goroutine of its own: Next and
// Poll do their work on the session's pump.
//
// Concurrency contract: a Server is safe for concurrent use. The HTTP
// handler upgrades, registers the session in the Server's wait group and
// starts its goroutine; Shutdown waits for every session. A WebSocket
// session over a live feed owns one goroutine while idle, its reader, and a
// pump goroutine only while the feed has something to send (the feed's
// Notify starts it, it exits when Poll has nothing; the reader waits for
// the last one). Over a consumer feed, whose Next blocks, the session owns
// a reader and a pump. The pump writes each frame itself: a device that
// stops reading blocks only its own pump, until the write timeout closes it
// with 4008. An SSE session owns two goroutines: the handler's own, its
// only writer, and the pump it starts and waits for, with a bounded queue
// (edge.send_queue) between them. No lock is held across I/O or a channel
// send, except a WebSocket session's own write and ping locks across its
// socket writes.
package edge
