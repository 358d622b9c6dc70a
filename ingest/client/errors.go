package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/herald-push/herald"
)

// Error is Herald's refusal of a request: the HTTP status and, when the
// answer is a herald.ErrorBody, its code and message.
type Error struct {
	Status int
	// Code is the answer's error code; "" when the body was not a
	// herald.ErrorBody (a proxy's page, say).
	Code herald.Code
	// Message is the error's message, or the body as text without a code.
	Message string
}

func (e *Error) Error() string {
	status := fmt.Sprintf("%d %s", e.Status, http.StatusText(e.Status))
	if e.Code == "" {
		return status + ": " + e.Message
	}
	return fmt.Sprintf("%s: %s: %s", status, e.Code, e.Message)
}

// newError reads the body of a refusal with status.
func newError(status int, body []byte) *Error {
	var eb herald.ErrorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error.Code != "" {
		return &Error{Status: status, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	return &Error{Status: status, Message: string(bytes.TrimSpace(body))}
}
