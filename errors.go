package herald

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// Code is a machine-readable error code: of an HTTP error body (ErrorBody)
// and of an error frame (ErrorFrame).
type Code string

// The error catalogue (SPEC §4 and §6).
const (
	InvalidJSON          Code = "invalid_json"
	InvalidUser          Code = "invalid_user"
	InvalidDevice        Code = "invalid_device"
	InvalidMessage       Code = "invalid_message"
	InvalidRequest       Code = "invalid_request"
	TooLarge             Code = "too_large"
	Unauthorized         Code = "unauthorized"
	Forbidden            Code = "forbidden"
	NotFound             Code = "not_found"
	MethodNotAllowed     Code = "method_not_allowed"
	UnsupportedMediaType Code = "unsupported_media_type"
	RateLimited          Code = "rate_limited"
	TooManyConnections   Code = "too_many_connections"
	TooManyDevices       Code = "too_many_devices"
	Unavailable          Code = "unavailable"
	Internal             Code = "internal"

	// Codes of error frames, sent before the edge closes a WebSocket.
	InvalidFrame  Code = "invalid_frame"   // a malformed client frame; the connection stays open
	FrameTooLarge Code = "frame_too_large" // a client frame over the limit; close 1009
	TokenExpired  Code = "token_expired"   // the token expired; close 4001
)

// Status returns the HTTP status of a code: 500 for a code not in the
// catalogue. The codes of error frames have the status an HTTP answer with
// that code would have.
func (c Code) Status() int {
	switch c {
	case InvalidJSON, InvalidUser, InvalidDevice, InvalidMessage, InvalidRequest, InvalidFrame:
		return http.StatusBadRequest
	case TooLarge, FrameTooLarge:
		return http.StatusRequestEntityTooLarge
	case Unauthorized, TokenExpired:
		return http.StatusUnauthorized
	case Forbidden:
		return http.StatusForbidden
	case NotFound:
		return http.StatusNotFound
	case MethodNotAllowed:
		return http.StatusMethodNotAllowed
	case UnsupportedMediaType:
		return http.StatusUnsupportedMediaType
	case RateLimited, TooManyConnections, TooManyDevices:
		return http.StatusTooManyRequests
	case Unavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// ErrorBody is the JSON body of every HTTP error:
//
//	{"error":{"code":"invalid_user","message":"user id has a control character"}}
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of an ErrorBody.
type ErrorDetail struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// CloseCode is a WebSocket close code the edge sends (SPEC §6).
type CloseCode int

// Close codes.
const (
	CloseNormal             CloseCode = 1000 // the session ended normally
	CloseGoingAway          CloseCode = 1001 // the edge is shutting down: reconnect, to another edge if there is one
	CloseMessageTooBig      CloseCode = 1009 // a client frame was over the limit
	CloseInternal           CloseCode = 1011 // the edge could not read the user's messages
	CloseUnauthorized       CloseCode = 4001 // unauthorized or token expired: reconnect with a new token
	CloseSlowConsumer       CloseCode = 4008 // a write did not complete within the write timeout
	CloseTooManyConnections CloseCode = 4009 // the user has too many connections
)

// Reason is the text the edge puts in the close frame of c. For the closes
// a client causes (1009, 4001, 4009) it is also the code of the error frame
// that precedes the close.
func (c CloseCode) Reason() string {
	switch c {
	case CloseNormal:
		return "closed"
	case CloseGoingAway:
		return "shutting_down"
	case CloseMessageTooBig:
		return string(FrameTooLarge)
	case CloseInternal:
		return string(Internal)
	case CloseUnauthorized:
		return string(TokenExpired)
	case CloseSlowConsumer:
		return "slow_consumer"
	case CloseTooManyConnections:
		return string(TooManyConnections)
	default:
		return ""
	}
}

// String is the code and, for a known code, its reason: "4001 token_expired".
func (c CloseCode) String() string {
	s := strconv.Itoa(int(c))
	if r := c.Reason(); r != "" {
		s += " " + r
	}
	return s
}

// Error is an API error: a code, a message safe to show to the caller, and
// optionally the underlying cause (never shown). Handlers of ingest and the
// edge return errors; WriteError renders them.
type Error struct {
	Code    Code
	Message string
	// Status, when set, replaces the code's status: 431 for headers over
	// the limit, whose code is too_large like a body's 413.
	Status     int
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// NewError returns an *Error with a formatted message.
func NewError(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WrapError returns an *Error whose message is msg and whose cause is err.
func WrapError(code Code, err error, msg string) *Error {
	return &Error{Code: code, Message: msg, Err: err}
}

// AsError returns the *Error in err's chain, or an Internal error for
// anything else.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: Internal, Message: "internal error", Err: err}
}

// WriteError renders err as an ErrorBody with its status (and Retry-After
// when set). An error that is not an *Error is logged at error level (when
// log is not nil) and rendered as a generic 500 without details.
func WriteError(w http.ResponseWriter, log *slog.Logger, err error) {
	e, status := prepareError(w, log, err)
	WriteJSON(w, status, ErrorBody{Error: ErrorDetail{Code: e.Code, Message: e.Message}})
}

// prepareError is what every rendering of an error does first: it logs an
// internal one, sets Retry-After, and returns the *Error with its status.
func prepareError(w http.ResponseWriter, log *slog.Logger, err error) (*Error, int) {
	e := AsError(err)
	if e.Code == Internal && log != nil {
		log.Error("internal error", "err", err)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	status := e.Code.Status()
	if e.Status != 0 {
		status = e.Status
	}
	return e, status
}

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
