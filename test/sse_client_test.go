package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sseEvent is one parsed text/event-stream event; a comment line is an
// event of its own with Comment set.
type sseEvent struct {
	Event   string // "message" when the event has no event line
	ID      string
	HasID   bool
	Data    string
	Comment string
}

// sseParser reads events from a text/event-stream (WHATWG HTML, "Event
// stream interpretation"): lines end in LF, CRLF or CR; a line starting
// with ':' is a comment; "field: value" loses one space after the colon;
// data lines join with LF; a blank line dispatches the event (an event
// with no data is not dispatched); unknown fields are ignored.
type sseParser struct {
	r      *bufio.Reader
	lastCR bool

	// The event being read; a comment between its lines does not end it.
	ev      sseEvent
	data    []string
	hasData bool
}

func newSSEParser(r io.Reader) *sseParser { return &sseParser{r: bufio.NewReader(r)} }

// line returns the next line without its terminator.
func (p *sseParser) line() (string, error) {
	var b []byte
	for {
		c, err := p.r.ReadByte()
		if err != nil {
			if err == io.EOF && (len(b) > 0 || p.hasData) {
				err = io.ErrUnexpectedEOF // an unterminated event is dropped
			}
			return "", err
		}
		if p.lastCR {
			p.lastCR = false
			if c == '\n' {
				continue // the LF of a CRLF
			}
		}
		switch c {
		case '\r':
			p.lastCR = true
			return string(b), nil
		case '\n':
			return string(b), nil
		}
		b = append(b, c)
	}
}

// next returns the next event or comment.
func (p *sseParser) next() (sseEvent, error) {
	for {
		l, err := p.line()
		if err != nil {
			return sseEvent{}, err
		}
		if l == "" {
			ev, data, hasData := p.ev, p.data, p.hasData
			p.ev, p.data, p.hasData = sseEvent{}, nil, false
			if !hasData {
				continue
			}
			ev.Data = strings.Join(data, "\n")
			if ev.Event == "" {
				ev.Event = "message"
			}
			return ev, nil
		}
		if strings.HasPrefix(l, ":") {
			return sseEvent{Comment: strings.TrimPrefix(strings.TrimPrefix(l, ":"), " ")}, nil
		}
		field, value, _ := strings.Cut(l, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			p.ev.Event = value
		case "data":
			p.data, p.hasData = append(p.data, value), true
		case "id":
			if !strings.ContainsRune(value, 0) {
				p.ev.ID, p.ev.HasID = value, true
			}
		}
	}
}

// sseClient is a device on the SSE transport. Its reader goroutine stops
// when the stream ends; Close ends it and waits.
type sseClient struct {
	resp   *http.Response
	cancel context.CancelFunc
	events chan sseEvent
	done   chan struct{}
}

func sseURL(base, device, query string) string {
	u := base + "/v1/sse?device=" + url.QueryEscape(device)
	if query != "" {
		u += "&" + query
	}
	return u
}

// trySSE opens a stream; a non-200 answer is returned with its body read
// into the error.
func trySSE(base, tok, device, query string, h http.Header) (*sseClient, *http.Response, error) {
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, sseURL(base, device, query), nil)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		return nil, resp, errors.New(strings.TrimSpace(string(b)))
	}
	c := &sseClient{resp: resp, cancel: cancel, events: make(chan sseEvent, 10000), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		defer close(c.events)
		p := newSSEParser(resp.Body)
		for {
			ev, err := p.next()
			if err != nil {
				return
			}
			c.events <- ev
		}
	}()
	return c, resp, nil
}

func openSSE(t *testing.T, base, user, device, query string, h http.Header) *sseClient {
	t.Helper()
	c, resp, err := trySSE(base, mint(t, user, device), device, query, h)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("sse %s/%s: %v (status %d)", user, device, err, status)
	}
	t.Cleanup(c.Close)
	return c
}

// openSSESynced opens a stream like openSSE and reads the welcome and
// synced events.
func openSSESynced(t *testing.T, base, user, device, query string, h http.Header) *sseClient {
	t.Helper()
	c := openSSE(t, base, user, device, query, h)
	c.expect(t, "welcome")
	c.expect(t, "synced")
	return c
}

func (c *sseClient) Close() {
	c.cancel()
	_ = c.resp.Body.Close()
	<-c.done
}

// next returns the next event (comments included) or fails after d.
func (c *sseClient) next(t *testing.T, d time.Duration) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-c.events:
		if !ok {
			t.Fatal("stream ended while waiting for an event")
		}
		return ev
	case <-time.After(d):
		t.Fatalf("no event within %v", d)
	}
	return sseEvent{}
}

// expect returns the next event that is not a comment and checks its name
// and its frame type, and decodes its data.
func (c *sseClient) expect(t *testing.T, name string) frame {
	t.Helper()
	for {
		ev := c.next(t, 10*time.Second)
		if ev.Comment != "" {
			continue
		}
		if ev.Event != name {
			t.Fatalf("got %+v, want a %s event", ev, name)
		}
		return decodeEvent(t, ev)
	}
}

func decodeEvent(t *testing.T, ev sseEvent) frame {
	t.Helper()
	var f frame
	if err := json.Unmarshal([]byte(ev.Data), &f); err != nil {
		t.Fatalf("event data %q: %v", ev.Data, err)
	}
	want := ev.Event
	if f.Type != want {
		t.Fatalf("event %q carries a %q frame", ev.Event, f.Type)
	}
	if ev.Event == "message" {
		if !ev.HasID || ev.ID != strconv.FormatUint(f.Seq, 10) {
			t.Fatalf("message event id %q, seq %d", ev.ID, f.Seq)
		}
	} else if ev.HasID {
		t.Fatalf("%s event has an id %q", ev.Event, ev.ID)
	}
	return f
}

// messages reads n message events, skipping synced events and comments.
func (c *sseClient) messages(t *testing.T, n int) []frame {
	t.Helper()
	var out []frame
	for len(out) < n {
		ev := c.next(t, 10*time.Second)
		switch {
		case ev.Comment != "", ev.Event == "synced":
		case ev.Event == "message":
			out = append(out, decodeEvent(t, ev))
		default:
			t.Fatalf("unexpected event %+v", ev)
		}
	}
	return out
}

// quiet asserts that no message event arrives within d and that the
// stream stays open.
func (c *sseClient) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				t.Fatal("stream ended while it should stay quiet")
			}
			if ev.Event == "message" {
				t.Fatalf("unexpected message %+v", ev)
			}
		case <-timer.C:
			return
		}
	}
}

// waitEnded waits for the server to end the stream and returns the events
// that came before the end.
func (c *sseClient) waitEnded(t *testing.T, d time.Duration) []sseEvent {
	t.Helper()
	var got []sseEvent
	deadline := time.After(d)
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				return got
			}
			got = append(got, ev)
		case <-deadline:
			t.Fatalf("stream still open after %v", d)
		}
	}
}

// postAck sends POST /v1/ack with tok and body and returns the status and
// the error code of a JSON error answer.
func postAck(t *testing.T, base, tok, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/v1/ack", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &e)
	return resp.StatusCode, e.Error.Code
}

func ackBody(device string, seq uint64) string {
	b, _ := json.Marshal(map[string]any{"device": device, "seq": seq})
	return string(b)
}

func TestSSEParser(t *testing.T) {
	t.Parallel()
	in := ": ping\n\nevent: welcome\ndata: {\"a\":1}\n\nid: 7\r\ndata: x\r\n: between\r\ndata:y\r\n\r\nid: 8\rdata: z\r\rdata: no end"
	p := newSSEParser(strings.NewReader(in))
	want := []sseEvent{
		{Comment: "ping"},
		{Event: "welcome", Data: `{"a":1}`},
		{Comment: "between"},
		{Event: "message", ID: "7", HasID: true, Data: "x\ny"},
		{Event: "message", ID: "8", HasID: true, Data: "z"},
	}
	for i, w := range want {
		got, err := p.next()
		if err != nil || got != w {
			t.Fatalf("event %d = %+v, %v; want %+v", i, got, err, w)
		}
	}
	if _, err := p.next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("unterminated event: err %v, want io.ErrUnexpectedEOF", err)
	}
}
