package edge

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
)

// closeInfo is what a close reason means on the wire.
type closeInfo struct {
	code int    // WebSocket close code
	text string // close frame reason, error frame code, metric label
	// message is the error frame's message: sent before the WebSocket
	// close frame when clientCaused, and as the SSE error event always.
	message      string
	clientCaused bool
}

// closeTable is the one place close reasons are mapped (SPEC §6).
var closeTable = [...]closeInfo{
	CloseNone:         {code: 1000, text: "closed", message: "closed"},
	CloseShutdown:     {code: 1001, text: "shutting_down", message: "the edge is shutting down; reconnect"},
	CloseFrameTooBig:  {code: 1009, text: "frame_too_large", message: "client frames are limited in size", clientCaused: true},
	CloseUnauthorized: {code: 4001, text: "token_expired", message: "the token expired", clientCaused: true},
	CloseSlow:         {code: 4008, text: "slow_consumer", message: "the device did not read in time"},
	CloseTooMany:      {code: 4009, text: "too_many_connections", message: "too many connections for this user", clientCaused: true},
	CloseInternal:     {code: 1011, text: "internal", message: "delivery failed; reconnect"},
	CloseClientGone:   {code: 1000, text: "closed", message: "closed"},
}

func (r CloseReason) info() closeInfo {
	if r < 0 || int(r) >= len(closeTable) {
		return closeTable[CloseNone]
	}
	return closeTable[r]
}

// Code returns the WebSocket close code of r.
func (r CloseReason) Code() int { return r.info().code }

// Text is the close reason text and the error frame code.
func (r CloseReason) Text() string { return r.info().text }

// message is the error frame's message of r.
func (r CloseReason) message() string { return r.info().message }

// clientCaused reports whether an error frame precedes the WebSocket close.
func (r CloseReason) clientCaused() bool { return r.info().clientCaused }
