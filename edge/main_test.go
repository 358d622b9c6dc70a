package edge

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/herald-push/herald/streams/streamstest"
)

// TestMain fails the package when a goroutine running edge code outlives
// the tests: every goroutine must have an owner that stops it.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		edgeCode := func(g string) bool {
			return strings.Contains(g, "herald/edge.") && !strings.Contains(g, "edge.TestMain")
		}
		if leak := streamstest.WaitGoroutines(5*time.Second, edgeCode); len(leak) > 0 {
			fmt.Fprintf(os.Stderr, "leaked goroutines:\n%s\n", strings.Join(leak, "\n\n"))
			code = 1
		}
	}
	os.Exit(code)
}
