package herald

import (
	"net/http"
	"testing"
)

func TestCodeStatus(t *testing.T) {
	cases := map[Code]int{
		InvalidJSON: 400, InvalidUser: 400, InvalidDevice: 400, InvalidMessage: 400, InvalidRequest: 400, InvalidFrame: 400,
		TooLarge: 413, FrameTooLarge: 413, Unauthorized: 401, TokenExpired: 401, Forbidden: 403, NotFound: 404,
		MethodNotAllowed: 405, UnsupportedMediaType: 415, RateLimited: 429, TooManyConnections: 429,
		Unavailable: 503, Internal: 500, "something_else": 500,
	}
	for c, want := range cases {
		if got := c.Status(); got != want {
			t.Errorf("%s.Status() = %d, want %d", c, got, want)
		}
	}
	if InvalidJSON.Status() != http.StatusBadRequest {
		t.Error("statuses are net/http's")
	}
}

func TestCloseCode(t *testing.T) {
	cases := []struct {
		c      CloseCode
		code   int
		reason string
	}{
		{CloseNormal, 1000, "closed"},
		{CloseGoingAway, 1001, "shutting_down"},
		{CloseMessageTooBig, 1009, "frame_too_large"},
		{CloseInternal, 1011, "internal"},
		{CloseUnauthorized, 4001, "token_expired"},
		{CloseSlowConsumer, 4008, "slow_consumer"},
		{CloseTooManyConnections, 4009, "too_many_connections"},
	}
	for _, tc := range cases {
		if int(tc.c) != tc.code || tc.c.Reason() != tc.reason {
			t.Errorf("%d: %d %q, want %d %q", tc.c, int(tc.c), tc.c.Reason(), tc.code, tc.reason)
		}
	}
	if s := CloseUnauthorized.String(); s != "4001 token_expired" {
		t.Errorf("String = %q", s)
	}
	if s := CloseCode(4999).String(); s != "4999" {
		t.Errorf("String of an unknown code = %q", s)
	}
}
