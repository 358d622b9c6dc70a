package client

import (
	"context"
	"encoding/base64"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	t.Parallel()
	for attempt := 0; attempt < 40; attempt++ {
		d := backoff(attempt, 100*time.Millisecond, 30*time.Second)
		ceil := min(100*time.Millisecond<<min(attempt, 20), 30*time.Second)
		if d < ceil/2 || d > ceil {
			t.Errorf("backoff(%d) = %v, want within [%v, %v]", attempt, d, ceil/2, ceil)
		}
	}
}

func TestJWTExpiry(t *testing.T) {
	t.Parallel()
	jwt := func(payload string) string {
		return "e30." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".c2ln"
	}
	cases := []struct {
		tok  string
		want time.Time
		ok   bool
	}{
		{jwt(`{"sub":"alice","exp":1800000000}`), time.Unix(1800000000, 0), true},
		{jwt(`{"exp":1800000000.5}`), time.Unix(1800000000, 5e8), true},
		{"e30." + base64.URLEncoding.EncodeToString([]byte(`{"exp":1800000000}`)) + ".c2ln", time.Unix(1800000000, 0), true},
		{jwt(`{"sub":"alice"}`), time.Time{}, false},
		{jwt(`{"exp":"soon"}`), time.Time{}, false},
		{jwt(`{"exp":-1}`), time.Time{}, false},
		{jwt(`{"exp":1e300}`), time.Time{}, false},
		{jwt(`not json`), time.Time{}, false},
		{"opaque-token", time.Time{}, false},
		{"a.!!!.c", time.Time{}, false},
	}
	for _, tc := range cases {
		got, ok := jwtExpiry(tc.tok)
		if ok != tc.ok || !got.Equal(tc.want) {
			t.Errorf("jwtExpiry(%q) = %v, %v; want %v, %v", tc.tok, got, ok, tc.want, tc.ok)
		}
	}
}

func TestEndpoint(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"ws://127.0.0.1:8080":                   "ws://127.0.0.1:8080/v1/ws",
		"http://127.0.0.1:8080/":                "ws://127.0.0.1:8080/v1/ws",
		"https://push.example.com/herald":       "wss://push.example.com/herald/v1/ws",
		"wss://push.example.com/v1/ws":          "wss://push.example.com/v1/ws",
		"ws://127.0.0.1:8080/v1/ws?region=eu#x": "ws://127.0.0.1:8080/v1/ws?region=eu",
		"ftp://x":                               "scheme",
		"127.0.0.1:8080":                        "not a URL",
		"":                                      "not a URL",
	}
	for in, want := range cases {
		u, err := endpoint(in)
		var got string
		if err != nil {
			got = err.Error()
		} else {
			got = u.String()
		}
		if got != want && !strings.Contains(got, want) {
			t.Errorf("endpoint(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNewChecksOptions(t *testing.T) {
	t.Parallel()
	tok := func(context.Context) (string, error) { return "t", nil }
	cases := []struct {
		opts Options
		want string
	}{
		{Options{Device: "d", Token: tok}, "no URLs"},
		{Options{URLs: []string{"ws://h"}, Token: tok}, "no device"},
		{Options{URLs: []string{"ws://h"}, Device: "d"}, "no token source"},
		{Options{URLs: []string{"ws://h"}, Device: "d", Token: tok, AckDelay: -1}, "negative"},
		{Options{URLs: []string{"ftp://h"}, Device: "d", Token: tok}, "scheme"},
	}
	for _, tc := range cases {
		if _, err := New(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error with %q", tc.opts, err, tc.want)
		}
	}
	c, err := New(Options{URLs: []string{"ws://h"}, Device: "d", Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	if c.opts.AckDelay != DefaultAckDelay || c.opts.AckEvery != DefaultAckEvery || cap(c.msgs) != DefaultBuffer {
		t.Errorf("defaults not applied: %+v", c.opts)
	}
}

func TestRunTwice(t *testing.T) {
	t.Parallel()
	c, err := New(Options{URLs: []string{"ws://h"}, Device: "d", Token: func(context.Context) (string, error) { return "", errors.New("no token") }})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "no token") {
		t.Fatalf("Run = %v, want the token source's error", err)
	}
	if err := c.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "runs once") {
		t.Fatalf("second Run = %v", err)
	}
}

func TestProcessedIsClampedAndMonotonic(t *testing.T) {
	t.Parallel()
	c, err := New(Options{URLs: []string{"ws://h"}, Device: "d", Token: func(context.Context) (string, error) { return "t", nil }})
	if err != nil {
		t.Fatal(err)
	}
	c.delivered = 10
	c.Processed(5)
	c.Processed(3)
	if c.processed != 5 {
		t.Fatalf("processed = %d after 5 then 3, want 5", c.processed)
	}
	c.Processed(99)
	if c.processed != 10 || c.pending != 2 {
		t.Fatalf("processed = %d pending %d, want 10 (the last delivered), 2", c.processed, c.pending)
	}
}

func TestFileStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "pos.json")
	s := &FileStore{Path: path, User: "alice", Device: "phone"}
	if seq, err := s.Load(ctx); seq != 0 || err != nil {
		t.Fatalf("Load of a missing file = %d, %v", seq, err)
	}
	if err := s.Save(ctx, 42); err != nil {
		t.Fatal(err)
	}
	if seq, err := (&FileStore{Path: path, User: "alice", Device: "phone"}).Load(ctx); seq != 42 || err != nil {
		t.Fatalf("Load = %d, %v; want 42", seq, err)
	}
	if seq, err := (&FileStore{Path: path}).Load(ctx); seq != 42 || err != nil {
		t.Fatalf("Load without an owner = %d, %v; want 42", seq, err)
	}
	if _, err := (&FileStore{Path: path, User: "alice", Device: "laptop"}).Load(ctx); !errors.Is(err, ErrStoreOwner) {
		t.Fatalf("Load for another device = %v, want %v", err, ErrStoreOwner)
	}
	if err := (&FileStore{Path: filepath.Join(path, "not-a-dir", "x")}).Save(ctx, 1); err == nil {
		t.Fatal("Save under a file succeeded")
	}
}
