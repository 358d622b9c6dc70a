// Package streams owns Herald's JetStream layout: the subject scheme that maps
// a user id to a subject token and back, the validation of user and device
// ids, the message envelope stored in the stream, and the definition of the
// HERALD stream itself with an idempotent Apply (ApplyAll adds the devices
// bucket, Retry waits for a cluster that is still starting), and the health
// of both as /readyz (Ready) and herald doctor (CheckHealth) see it.
//
// Every other package, and producers that publish straight to NATS, use these
// functions; nobody formats a subject by hand. The subject, id and envelope
// functions are pure; those that take a jetstream.JetStream talk to the
// server. All are safe for concurrent use.
package streams
