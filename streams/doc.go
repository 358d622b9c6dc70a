// Package streams owns Herald's JetStream layout: the subject scheme that maps
// a user id to a subject token and back, the validation of user and device
// ids, the write of a stored message (NewMsg: subject, scoped Nats-Msg-Id,
// TTL and schedule headers), the definition of the HERALD stream and the
// devices bucket with an idempotent Apply, and reads by direct get.
//
// Every other package, and producers that publish straight to NATS, use these
// functions; nobody formats a subject by hand. The subject, id and envelope
// functions are pure; Apply, the direct gets and the schedule purge do
// JetStream I/O, bounded by the context they are given. Everything is safe
// for concurrent use.
package streams
