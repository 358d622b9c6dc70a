package edge

import "github.com/herald-push/herald"

// CloseReason is why the server closes a session. Each maps to one
// WebSocket close code, one text (the close frame's reason, the error
// frame's code and the metric label) and, for client-caused closes, an
// error frame sent before the close.
type CloseReason int

// Close reasons.
const (
	CloseNone         CloseReason = iota
	CloseShutdown                 // 1001: the edge is shutting down
	CloseFrameTooBig              // 1009: a client frame over the limit
	CloseUnauthorized             // 4001: unauthorized or token expired
	CloseSlow                     // 4008: slow consumer
	CloseTooMany                  // 4009: too many connections
	CloseInternal                 // 1011: the feed failed
	CloseClientGone               // the client closed or the socket broke
	CloseDone                     // 1000: a poll request (ntfy's poll=1) got the retained messages

	numCloseReasons // the count of close reasons; not a reason
)

// closeInfo is what a close reason means on the wire.
type closeInfo struct {
	code herald.CloseCode // its Reason is the close frame's reason, the error frame's code and the metric label
	// message is the error frame's message: sent before the WebSocket
	// close frame when clientCaused, and as the SSE error event always.
	message      string
	clientCaused bool
}

// closeTable is the one place close reasons are mapped (SPEC §6).
var closeTable = [...]closeInfo{
	CloseNone:         {code: herald.CloseNormal, message: "closed"},
	CloseShutdown:     {code: herald.CloseGoingAway, message: "the edge is shutting down; reconnect"},
	CloseFrameTooBig:  {code: herald.CloseMessageTooBig, message: "client frames are limited in size", clientCaused: true},
	CloseUnauthorized: {code: herald.CloseUnauthorized, message: "the token expired", clientCaused: true},
	CloseSlow:         {code: herald.CloseSlowConsumer, message: "the device did not read in time"},
	CloseTooMany:      {code: herald.CloseTooManyConnections, message: "too many connections for this user", clientCaused: true},
	CloseInternal:     {code: herald.CloseInternal, message: "delivery failed; reconnect"},
	CloseClientGone:   {code: herald.CloseNormal, message: "closed"},
	CloseDone:         {code: herald.CloseNormal, message: "the poll is complete"},
}

func (r CloseReason) info() closeInfo {
	if r < 0 || int(r) >= len(closeTable) {
		return closeTable[CloseNone]
	}
	return closeTable[r]
}

// Code returns the WebSocket close code of r.
func (r CloseReason) Code() int { return int(r.info().code) }

// Text is the close reason text, the error frame code and the metric label.
func (r CloseReason) Text() string { return r.info().code.Reason() }

// message is the error frame's message of r.
func (r CloseReason) message() string { return r.info().message }

// clientCaused reports whether an error frame precedes the WebSocket close.
func (r CloseReason) clientCaused() bool { return r.info().clientCaused }
