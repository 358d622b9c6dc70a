package herald

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// The message lifecycle of SPEC §10: how a producer writes a ttl, a delay
// and a deliver_at, and the wire types of read state and device status.

// Headers a producer may send instead of the JSON fields ttl and
// deliver_at (or delay).
const (
	HeaderTTL       = "Herald-TTL"
	HeaderDeliverAt = "Herald-Deliver-At"
)

// ErrDuration is wrapped by the errors of ParseDuration and ParseDeliverAt.
var ErrDuration = errors.New("invalid duration")

// maxDurationSeconds keeps a parsed duration within time.Duration.
const maxDurationSeconds = math.MaxInt64 / int64(time.Second)

// ParseDuration reads a ttl or a delay: a number of seconds ("90", "1.5"),
// a number of days ("7d"), or a Go duration ("90s", "2h30m"). It must be
// positive; the caller checks it against its own bounds.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("%w: empty", ErrDuration)
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok && days != "" && days[0] != '-' && days[0] != '+' {
		n, err := strconv.ParseUint(days, 10, 32)
		if err != nil || n > uint64(maxDurationSeconds/86400) {
			return 0, fmt.Errorf("%w: %q: days must be a whole number", ErrDuration, s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else if secs, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(secs) || math.IsInf(secs, 0) || secs >= float64(maxDurationSeconds) {
			return 0, fmt.Errorf("%w: %q is out of range", ErrDuration, s)
		}
		d = time.Duration(secs * float64(time.Second))
	} else {
		d, err = time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("%w: %q: want seconds (90), days (7d) or a duration (90s, 2h30m)", ErrDuration, s)
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("%w: %q must be positive", ErrDuration, s)
	}
	return d, nil
}

// ParseDeliverAt reads the Herald-Deliver-At header: an RFC 3339 time, or a
// duration from now as ParseDuration reads it. The result is in UTC.
func ParseDeliverAt(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	d, err := ParseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: want an RFC 3339 time or a duration from now", err)
	}
	return now.Add(d).UTC(), nil
}

// ReadRequest is the body of POST /v1/read: the user has seen everything
// up to Seq, on Device (optional; a token bound to a device names it).
type ReadRequest struct {
	Seq    uint64 `json:"seq"`
	Device string `json:"device,omitempty"`
}

// ReadPosition answers POST /v1/read: the user's read position after the
// request (never lower than before; clamped to the user's last message).
type ReadPosition struct {
	Read uint64 `json:"read"`
}

// Devices is the answer of GET /v1/users/{user}/devices (SPEC §10).
type Devices struct {
	// Read is the user's read position, 0 when none.
	Read uint64 `json:"read"`
	// LastSeq is the seq of the user's last retained message, 0 when none.
	LastSeq uint64         `json:"last_seq"`
	Devices []DeviceStatus `json:"devices"`
}

// DeviceStatus is one device of a user.
type DeviceStatus struct {
	Device string `json:"device"`
	// Acked is the device's stored position: it has acknowledged every
	// message up to it.
	Acked uint64 `json:"acked"`
	// LastSeen is when the device was last connected, or last moved its
	// position; nil when unknown.
	LastSeen *time.Time `json:"last_seen"`
	// Connected is true while the device has a stream open on an edge.
	Connected bool `json:"connected"`
}
