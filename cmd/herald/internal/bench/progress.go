package bench

import (
	"fmt"
	"time"
)

// progress prints status() to Options.Progress once a second until the
// returned stop is called; stop prints a last line and waits for the
// printer goroutine.
func (r *Runner) progress(phase string, status func() string) (stop func()) {
	w := r.opts.Progress
	if w == nil {
		return func() {}
	}
	start := time.Now()
	line := func() {
		s := fmt.Sprintf("bench %s %5.1fs  %s", phase, time.Since(start).Seconds(), status())
		if r.opts.ProgressTTY {
			fmt.Fprintf(w, "\r\x1b[K%s", s)
		} else {
			fmt.Fprintln(w, s)
		}
	}
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				line()
			case <-quit:
				return
			}
		}
	}()
	return func() {
		close(quit)
		<-done
		line()
		if r.opts.ProgressTTY {
			fmt.Fprintln(w)
		}
	}
}
