package main

import (
	"fmt"
	"os"
	"testing"
)

// asHerald, in a test process's environment, makes the test binary run as
// herald itself: bench --spawn starts os.Executable(), which in a test is
// this binary. "fail" makes it exit at once with an error instead.
const asHerald = "BE_HERALD_COMMAND"

func TestMain(m *testing.M) {
	switch os.Getenv(asHerald) {
	case "":
		os.Exit(m.Run())
	case "fail":
		fmt.Fprintln(os.Stderr, "herald: failing on purpose")
		os.Exit(1)
	default:
		os.Exit(run())
	}
}
