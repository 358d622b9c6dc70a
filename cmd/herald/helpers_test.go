package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-push/herald/streams/streamstest"
)

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls f until it returns nil or d passes.
var waitFor = streamstest.WaitFor

// runCmd runs one herald command line to completion.
func runCmd(t testing.TB, environ []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb syncBuffer
	root := newRootCmd(&app{stdout: &out, stderr: &errb, environ: environ})
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = root.ExecuteContext(ctx)
	return out.String(), errb.String(), err
}

// proc is a long-running command (serve, ingest, edge) started in-process.
type proc struct {
	stdout, stderr *syncBuffer
	addr           string // the bound HTTP address
	cancel         context.CancelFunc
	exited         chan struct{}
	err            error // valid once exited is closed
}

// startCmd runs a long-running command until it reports its address, and
// registers its stop with t.Cleanup.
func startCmd(t testing.TB, environ []string, args ...string) *proc {
	t.Helper()
	p := &proc{stdout: &syncBuffer{}, stderr: &syncBuffer{}, exited: make(chan struct{})}
	readyc := make(chan string, 1)
	root := newRootCmd(&app{stdout: p.stdout, stderr: p.stderr, environ: environ, ready: func(addr string) { readyc <- addr }})
	root.SetArgs(args)
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() {
		defer close(p.exited)
		p.err = root.ExecuteContext(ctx)
	}()
	t.Cleanup(func() {
		if err := p.stop(20 * time.Second); err != nil {
			t.Errorf("%v: %v", args, err)
		}
		if t.Failed() {
			t.Logf("%v stderr:\n%s", args, p.stderr.String())
		}
	})
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	select {
	case p.addr = <-readyc:
	case <-p.exited:
		t.Fatalf("%v exited before it was ready: %v\nstderr:\n%s", args, p.err, p.stderr.String())
	case <-timeout.C:
		t.Fatalf("%v not ready within 30s\nstderr:\n%s", args, p.stderr.String())
	}
	return p
}

// stop cancels the command's context and returns its result, or an error
// if it does not return within d.
func (p *proc) stop(d time.Duration) error {
	p.cancel()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.exited:
		return p.err
	case <-t.C:
		return errTimeout
	}
}

var errTimeout = &timeoutError{}

type timeoutError struct{}

func (*timeoutError) Error() string { return "did not return in time" }

func (p *proc) url(path string) string { return "http://" + p.addr + path }

// httpDo sends a request and returns the status and body.
func httpDo(t testing.TB, method, url string, header map[string]string, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// checkNoLeaks fails the test if, once every later cleanup has run,
// goroutines running this package's (non-test) code remain. Call it first.
func checkNoLeaks(t *testing.T) {
	streamstest.CheckGoroutines(t, func(g string) bool {
		return strings.Contains(g, "/cmd/herald/") && !strings.Contains(g, "_test.go")
	})
}
