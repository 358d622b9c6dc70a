// Package edge serves devices: it verifies client tokens, upgrades to a
// WebSocket (SPEC §6), and runs one session per connection that delivers the
// user's messages in seq order, takes cumulative acks and resends what is not
// acked in time.
//
// The session layer does not know JetStream. It reads a Feed, opened by an
// Engine; the consumer engine (consumer.go) keeps each device's position in a
// durable JetStream consumer.
//
// Concurrency contract: a Server is safe for concurrent use. Each session
// owns three goroutines — a reader, a writer and a pump — started by the
// HTTP handler and stopped by the session's close, which the handler waits
// for before it returns. Everything bound for a socket goes through one
// bounded queue; a full queue or a write that misses its deadline closes that
// session alone with 4008. No lock is held across I/O or a channel send.
package edge
