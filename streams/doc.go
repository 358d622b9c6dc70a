// Package streams owns Herald's JetStream layout: the subject scheme that maps
// a user id to a subject token and back, the validation of user and device
// ids, the write of a stored message (NewMsg: subject, scoped Nats-Msg-Id,
// TTL and schedule headers; Write, the checked write of a producer that
// publishes straight to JetStream), the definition of the HERALD stream and
// the devices bucket with an idempotent Apply (ApplyAll applies both; Retry
// waits for a cluster that is still starting), reads by direct get, and the
// health of both as /readyz (Ready) and herald doctor (CheckHealth) see it.
//
// Every other package, and producers that publish straight to NATS, use these
// functions; nobody formats a subject by hand. The subject, id and envelope
// functions are pure; Apply, the direct gets, Write.Publish, the schedule
// purge and the health checks do JetStream I/O, bounded by the context they
// are given.
// Everything is safe for concurrent use.
package streams
