// Package edge serves devices: it verifies client tokens, upgrades to a
// WebSocket (SPEC §6) or streams server-sent events (SPEC §7, sse.go, with
// acks by POST /v1/ack in ack.go), and runs one session per connection that
// delivers the user's messages in seq order, takes cumulative acks and
// resends what is not acked in time.
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
// starts; each user's subscription callback runs on a goroutine of the NATS
// client, ended by Unsubscribe when the user's last feed closes, and never
// blocks (a full feed queue makes that feed read the store instead). A feed
// has no goroutine of its own: Next does its work on the session's pump.
//
// Concurrency contract: a Server is safe for concurrent use. Each WebSocket
// session owns three goroutines — a reader, a writer and a pump. The HTTP
// handler upgrades, registers the session in the Server's wait group and
// starts the reader, which starts the other two and waits for them once
// the session's close has stopped them; Shutdown waits for every session.
// An SSE session owns two: the handler's own
// goroutine, its only writer, and the pump it starts and waits for.
// Everything bound for a socket goes through one bounded queue; a full queue
// or a write that misses its deadline closes that session alone (4008 on a
// WebSocket). No lock is held across I/O or a channel send.
package edge
