package compat

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/herald-push/herald"
)

// The ntfy parameters of a publish, each read from the first of its names
// that is set: headers first, in the order given, then the query parameters
// of the same names in lower case (ntfy's readParam). Header values may be
// RFC 2047 encoded words.
var (
	paramTitle      = []string{"X-Title", "Title", "ti", "t"}
	paramMessage    = []string{"X-Message", "Message", "m"}
	paramPriority   = []string{"X-Priority", "Priority", "prio", "p"}
	paramTags       = []string{"X-Tags", "Tags", "Tag", "ta"}
	paramClick      = []string{"X-Click", "Click"}
	paramIcon       = []string{"X-Icon", "Icon"}
	paramAttach     = []string{"X-Attach", "Attach", "a"}
	paramFilename   = []string{"X-Filename", "Filename", "file", "f"}
	paramActions    = []string{"X-Actions", "Actions", "Action"}
	paramMarkdown   = []string{"X-Markdown", "Markdown", "md"}
	paramDelay      = []string{"X-Delay", "Delay", "X-At", "At", "X-In", "In"}
	paramSequenceID = []string{"X-Sequence-ID", "Sequence-ID", "sid"}
)

// params reads the ntfy parameters of one request; the query is parsed
// once.
type params struct {
	h http.Header
	q url.Values
}

// read returns the first non-empty value of names: headers (decoded by
// decodeHeader), then query parameters, trimmed.
func (p params) read(names []string) string {
	for _, name := range names {
		if v := strings.TrimSpace(decodeHeader(p.h.Get(name))); v != "" && !ignoredPriority(name, v) {
			return v
		}
	}
	for _, name := range names {
		if v := strings.TrimSpace(p.q.Get(strings.ToLower(name))); v != "" {
			return v
		}
	}
	return ""
}

// rfc9218Priority is the Priority header of RFC 9218 ("u=3", "u=1, i")
// that proxies add to requests; it is not ntfy's priority.
var rfc9218Priority = regexp.MustCompile(`^u=\d(,\s*(i|\d))?$`)

func ignoredPriority(header, v string) bool {
	return strings.EqualFold(header, "Priority") && rfc9218Priority.MatchString(v)
}

// wordDecoder decodes RFC 2047 encoded words in UTF-8, ISO-8859-1 and
// US-ASCII (mime.WordDecoder's charsets without a CharsetReader).
var wordDecoder mime.WordDecoder

// decodeHeader decodes the RFC 2047 encoded words of a header value
// ("=?UTF-8?B?4pyU?= done"); a value that is not encoded, or cannot be
// decoded, is returned as it is.
func decodeHeader(v string) string {
	if !strings.Contains(v, "=?") {
		return v
	}
	d, err := wordDecoder.DecodeHeader(v)
	if err != nil {
		return v
	}
	return d
}

// parseBool reads ntfy's booleans: 1, yes, true (any case) are true;
// anything else false.
func parseBool(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "yes", "true":
		return true
	}
	return false
}

// splitTags splits a comma-separated tag list, dropping empty tags.
func splitTags(v string) []string {
	var tags []string
	for _, t := range strings.Split(v, ",") {
		if t = strings.TrimSpace(t); t != "" {
			tags = append(tags, t)
		}
	}
	return tags
}

// errDelay is wrapped by parseDelay's errors.
var errDelay = errors.New("invalid delay")

// parseDelay reads ntfy's X-Delay / X-At / X-In: a Unix time in seconds,
// an RFC 3339 time, or a duration from now ("30m", "2h", "1d", "90 min").
// ntfy's natural-language forms ("tomorrow, 10am") are not read.
func parseDelay(v string, now time.Time) (time.Time, error) {
	v = strings.TrimSpace(v)
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return time.Time{}, fmt.Errorf("%w %q: a Unix time must be positive", errDelay, v)
		}
		return time.Unix(n, 0), nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	d, err := herald.ParseNtfyDuration(v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w %q: give a Unix time, an RFC 3339 time or a duration such as 30m, 2h or 1d", errDelay, v)
	}
	return now.Add(d), nil
}
