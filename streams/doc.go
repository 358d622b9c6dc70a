// Package streams owns Herald's JetStream layout: the subject scheme that maps
// a user id to a subject token and back, the validation of user and device
// ids, the message envelope stored in the stream, and the definition of the
// HERALD stream itself with an idempotent Apply.
//
// Every other package, and producers that publish straight to NATS, use these
// functions; nobody formats a subject by hand. All functions are pure and safe
// for concurrent use.
package streams
