package client_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/herald-push/herald/streams/streamstest"
)

// TestMain fails the package when a goroutine running client or edge code
// outlives the tests: Run and the harness must stop everything they start.
// It checks once all tests have ended, so that they can run in parallel.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		ours := func(g string) bool {
			return strings.Contains(g, "herald/edge/client.") || strings.Contains(g, "herald/edge.")
		}
		if leak := streamstest.WaitGoroutines(10*time.Second, ours); len(leak) > 0 {
			fmt.Fprintf(os.Stderr, "leaked goroutines:\n%s\n", strings.Join(leak, "\n\n"))
			code = 1
		}
	}
	os.Exit(code)
}
