// Package apierr is the one error catalogue of Herald's HTTP APIs (ingest
// and edge): each Code maps to one HTTP status, and Write renders every error
// as {"error":{"code":…,"message":…}}. Handlers return errors; anything that
// is not an *Error is logged and rendered as a generic 500 without details.
package apierr

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// Code is a machine-readable error code.
type Code string

// The catalogue (SPEC §4).
const (
	InvalidJSON    Code = "invalid_json"
	InvalidUser    Code = "invalid_user"
	InvalidDevice  Code = "invalid_device"
	InvalidMessage Code = "invalid_message"
	InvalidRequest Code = "invalid_request"
	TooLarge       Code = "too_large"
	Unauthorized   Code = "unauthorized"
	Forbidden      Code = "forbidden"
	NotFound       Code = "not_found"
	MethodNotAllow Code = "method_not_allowed"
	Unsupported    Code = "unsupported_media_type"
	RateLimited    Code = "rate_limited"
	TooMany        Code = "too_many_connections"
	TooManyDevices Code = "too_many_devices"
	Unavailable    Code = "unavailable"
	Internal       Code = "internal"
)

// Status returns the HTTP status of a code.
func (c Code) Status() int {
	switch c {
	case InvalidJSON, InvalidUser, InvalidDevice, InvalidMessage, InvalidRequest:
		return http.StatusBadRequest
	case TooLarge:
		return http.StatusRequestEntityTooLarge
	case Unauthorized:
		return http.StatusUnauthorized
	case Forbidden:
		return http.StatusForbidden
	case NotFound:
		return http.StatusNotFound
	case MethodNotAllow:
		return http.StatusMethodNotAllowed
	case Unsupported:
		return http.StatusUnsupportedMediaType
	case RateLimited, TooMany, TooManyDevices:
		return http.StatusTooManyRequests
	case Unavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// Error is an API error with a code, a message safe to show to the caller,
// and optionally the underlying cause (never shown).
type Error struct {
	Code       Code
	Message    string
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

// New returns an *Error with a formatted message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error whose message is msg and whose cause is err.
func Wrap(code Code, err error, msg string) *Error {
	return &Error{Code: code, Message: msg, Err: err}
}

// Body is the JSON shape of an error.
type Body struct {
	Error struct {
		Code    Code   `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// As returns the *Error in err's chain, or an Internal error for anything
// else.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: Internal, Message: "internal error", Err: err}
}

// Write renders err. Unknown errors are logged at error level.
func Write(w http.ResponseWriter, log *slog.Logger, err error) {
	e := As(err)
	if e.Code == Internal && log != nil {
		log.Error("internal error", "err", err)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	var b Body
	b.Error.Code = e.Code
	b.Error.Message = e.Message
	WriteJSON(w, e.Code.Status(), b)
}

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
