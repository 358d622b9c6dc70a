// Package client is a Go producer of Herald: it publishes messages to a
// user (POST /v1/users/{user}/messages, SPEC §4, with the lifecycle fields
// of §10) and reads a user's device status (GET /v1/users/{user}/devices)
// over HTTP.
//
// A Client is built once with New and is safe for concurrent use; it starts
// no goroutines, and each call ends when its context does. A refusal by
// Herald is an *Error carrying the status and the error code of the answer
// (herald.ErrorBody); match it with errors.As.
package client
