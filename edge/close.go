package edge

import "github.com/gorilla/websocket"

// CloseReason is why the server closes a session. Each maps to one
// WebSocket close code and, for client-caused closes, an error frame code.
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

// Code returns the WebSocket close code of r.
func (r CloseReason) Code() int {
	switch r {
	case CloseShutdown:
		return websocket.CloseGoingAway
	case CloseFrameTooBig:
		return websocket.CloseMessageTooBig
	case CloseUnauthorized:
		return 4001
	case CloseSlow:
		return 4008
	case CloseTooMany:
		return 4009
	case CloseInternal:
		return websocket.CloseInternalServerErr
	default:
		return websocket.CloseNormalClosure
	}
}

// Text is the close reason text and the error frame code.
func (r CloseReason) Text() string {
	switch r {
	case CloseShutdown:
		return "shutting_down"
	case CloseFrameTooBig:
		return "frame_too_large"
	case CloseUnauthorized:
		return "token_expired"
	case CloseSlow:
		return "slow_consumer"
	case CloseTooMany:
		return "too_many_connections"
	case CloseInternal:
		return "internal"
	default:
		return "closed"
	}
}

// clientCaused reports whether an error frame precedes the close.
func (r CloseReason) clientCaused() bool {
	return r == CloseUnauthorized || r == CloseFrameTooBig || r == CloseTooMany
}
