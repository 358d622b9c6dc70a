package herald

import (
	"errors"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"90", 90 * time.Second, false},
		{" 1.5 ", 1500 * time.Millisecond, false},
		{"90s", 90 * time.Second, false},
		{"2h30m", 150 * time.Minute, false},
		{"7d", 7 * 24 * time.Hour, false},
		{"", 0, true},
		{"0", 0, true},
		{"-5", 0, true},
		{"-5s", 0, true},
		{"d", 0, true},
		{"-1d", 0, true},
		{"1.5d", 0, true},
		{"NaN", 0, true},
		{"Inf", 0, true},
		{"1e300", 0, true},
		{"soon", 0, true},
	}
	for _, tc := range cases {
		got, err := ParseDuration(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.err)
		}
		if err != nil && !errors.Is(err, ErrDuration) {
			t.Errorf("ParseDuration(%q) error %v does not wrap ErrDuration", tc.in, err)
		}
	}
}

func TestParseDeliverAt(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Time
	}{
		{"2026-11-23T12:00:00+01:00", time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC)},
		{"2026-11-23T10:00:00.5Z", now.Add(500 * time.Millisecond)},
		{"90s", now.Add(90 * time.Second)},
		{"60", now.Add(time.Minute)},
	}
	for _, tc := range cases {
		got, err := ParseDeliverAt(tc.in, now)
		if err != nil || !got.Equal(tc.want) || got.Location() != time.UTC {
			t.Errorf("ParseDeliverAt(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "tomorrow", "2026-11-23 10:00", "-5s"} {
		if _, err := ParseDeliverAt(in, now); !errors.Is(err, ErrDuration) {
			t.Errorf("ParseDeliverAt(%q) = %v, want ErrDuration", in, err)
		}
	}
}

// FuzzParseDuration: a duration is either refused with ErrDuration or
// positive, and never panics.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"90", "1.5", "90s", "2h30m", "7d", "0", "-1", "1e19", "9223372036d", "NaN", "0x10", "1_000", "+5", "+5d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		switch {
		case err != nil && !errors.Is(err, ErrDuration):
			t.Fatalf("ParseDuration(%q) error %v does not wrap ErrDuration", s, err)
		case err == nil && d <= 0:
			t.Fatalf("ParseDuration(%q) = %v, not positive", s, d)
		}
	})
}

// FuzzParseDeliverAt: a deliver time is either refused with ErrDuration or
// in UTC, and a duration lands after now.
func FuzzParseDeliverAt(f *testing.F) {
	for _, s := range []string{"2026-11-23T12:00:00+01:00", "2026-11-23T10:00:00.5Z", "90s", "7d", "9999-12-31T23:59:60Z", "-1h"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		at, err := ParseDeliverAt(s, now)
		if err != nil {
			if !errors.Is(err, ErrDuration) {
				t.Fatalf("ParseDeliverAt(%q) error %v does not wrap ErrDuration", s, err)
			}
			return
		}
		if at.Location() != time.UTC {
			t.Fatalf("ParseDeliverAt(%q) = %v, not UTC", s, at)
		}
		if _, perr := time.Parse(time.RFC3339, s); perr != nil && !at.After(now) {
			t.Fatalf("ParseDeliverAt(%q) = %v, a duration that is not after now", s, at)
		}
	})
}
