package streamstest

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// Goroutines returns the stacks of the running goroutines for which match
// is true.
func Goroutines(match func(stack string) bool) []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if match(g) {
			out = append(out, g)
		}
	}
	return out
}

// WaitGoroutines polls until no goroutine matches, for up to d, and returns
// the stacks of those still running then.
func WaitGoroutines(d time.Duration, match func(stack string) bool) []string {
	deadline := time.Now().Add(d)
	for {
		left := Goroutines(match)
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// CheckGoroutines fails t if, once every cleanup registered after this call
// has run, goroutines matching match are still running 10 s later: every
// goroutine must have an owner that stops it. Call it first in a test.
func CheckGoroutines(t testing.TB, match func(stack string) bool) {
	t.Cleanup(func() {
		for _, g := range WaitGoroutines(10*time.Second, match) {
			t.Errorf("leaked goroutine:\n%s", g)
		}
	})
}
