package ingest

import (
	"errors"
	"net/url"
	"strconv"
	"testing"

	"github.com/herald-push/herald"
)

func TestParsePage(t *testing.T) {
	t.Parallel()
	cases := []struct {
		q     string
		since uint64
		limit int
		ok    bool
	}{
		{"", 0, 100, true},
		{"since=5", 5, 100, true},
		{"limit=1", 0, 1, true},
		{"since=18446744073709551615&limit=1000", 1<<64 - 1, 1000, true},
		{"limit=0", 0, 0, false},
		{"limit=1001", 0, 0, false},
		{"limit=-1", 0, 0, false},
		{"limit=", 0, 0, false},
		{"limit=1e3", 0, 0, false},
		{"since=", 0, 0, false},
		{"since=-1", 0, 0, false},
		{"since=+1", 0, 0, false},
		{"since=0x10", 0, 0, false},
		{"since=18446744073709551616", 0, 0, false},
		{"since=%zz", 0, 0, false},
		{"other=1", 0, 100, true},
	}
	for _, tc := range cases {
		since, limit, err := parsePage(tc.q)
		if !tc.ok {
			var e *herald.Error
			if !errors.As(err, &e) || e.Code != herald.InvalidRequest {
				t.Errorf("parsePage(%q) err = %v, want invalid_request", tc.q, err)
			}
			continue
		}
		if err != nil || since != tc.since || limit != tc.limit {
			t.Errorf("parsePage(%q) = %d, %d, %v; want %d, %d", tc.q, since, limit, err, tc.since, tc.limit)
		}
	}
}

func FuzzParsePage(f *testing.F) {
	for _, s := range []string{"", "since=1&limit=10", "limit=0", "since=-1", "since=%zz", "limit=1000&since=18446744073709551615", "since=1&since=x", "limit=+5", "limit=007"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		since, limit, err := parsePage(q)
		if err != nil {
			var e *herald.Error
			if !errors.As(err, &e) || e.Code != herald.InvalidRequest || e.Code.Status() != 400 {
				t.Fatalf("parsePage(%q) error %v is not a 400 invalid_request", q, err)
			}
			return
		}
		if limit < 1 || limit > MaxHistoryLimit {
			t.Fatalf("parsePage(%q) limit %d out of range", q, limit)
		}
		// What was accepted reads back the same.
		v, _ := url.ParseQuery(q)
		if want, err := strconv.ParseUint(v.Get("since"), 10, 64); v.Has("since") && (err != nil || want != since) {
			t.Fatalf("parsePage(%q) since = %d, query says %q", q, since, v.Get("since"))
		} else if !v.Has("since") && since != 0 {
			t.Fatalf("parsePage(%q) default since = %d", q, since)
		}
		if want, err := strconv.Atoi(v.Get("limit")); v.Has("limit") && (err != nil || want != limit) {
			t.Fatalf("parsePage(%q) limit = %d, query says %q", q, limit, v.Get("limit"))
		} else if !v.Has("limit") && limit != DefaultHistoryLimit {
			t.Fatalf("parsePage(%q) default limit = %d", q, limit)
		}
	})
}

func TestKeyring(t *testing.T) {
	t.Parallel()
	kr, err := NewKeyring([]string{"first-key-0123456789", "second-key-0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]bool{
		"first-key-0123456789": true, "second-key-0123456789": true,
		"": false, "first-key-012345678": false, "first-key-01234567890": false, "FIRST-key-0123456789": false,
	} {
		if kr.Match(key) != want {
			t.Errorf("match(%q) = %v", key, !want)
		}
	}
	if _, err := NewKeyring(nil); err == nil {
		t.Error("no keys accepted")
	}
	if _, err := NewKeyring([]string{"ok-key-0123456789", ""}); err == nil {
		t.Error("an empty key accepted")
	}
}

// FuzzDurationField: a ttl or delay field either reads as a positive
// duration or is refused with a 400 invalid_message, never a panic.
func FuzzDurationField(f *testing.F) {
	for _, s := range []string{`90`, `1.5`, `"90s"`, `"7d"`, `null`, ``, `0`, `-1`, `"x"`, `true`, `{}`, `1e400`, `"\u0039\u0030"`, `"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, ok, err := durationField(raw, "ttl")
		switch {
		case err != nil:
			var e *herald.Error
			if !errors.As(err, &e) || e.Code != herald.InvalidMessage || ok {
				t.Fatalf("durationField(%q) = %v, %v, %v", raw, d, ok, err)
			}
		case ok && d <= 0:
			t.Fatalf("durationField(%q) = %v", raw, d)
		case !ok && d != 0:
			t.Fatalf("durationField(%q) = %v without ok", raw, d)
		}
	})
}
