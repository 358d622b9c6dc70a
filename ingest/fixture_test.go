package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/edge/token"
	"github.com/herald-push/herald/ingest"
	"github.com/herald-push/herald/streams"
	"github.com/herald-push/herald/streams/streamstest"
)

const (
	producerKey = "producer-key-0123456789"
	otherKey    = "producer-key-second-abcdef"
	jwtSecret   = "jwt-secret-0123456789abcdef-0123456789"
)

// fixture is an embedded JetStream server with the stream applied, a
// Handler on a real HTTP server, and a metrics registry.
type fixture struct {
	t      testing.TB
	cfg    config.Config
	sopts  *server.Options
	srv    *server.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream // nil when the stream was not applied
	h      *ingest.Handler
	url    string
	reg    *prometheus.Registry
	client *http.Client
}

type fixtureOpts struct {
	cfg      func(*config.Config)
	noStream bool
	noTokens bool
	// jsOpts replaces the production JetStream options (JetStreamOpts).
	jsOpts []jetstream.JetStreamOpt
}

func newFixture(t testing.TB, fo fixtureOpts) *fixture {
	t.Helper()
	cfg := config.Default()
	cfg.Ingest.ProducerKeys = []string{producerKey, otherKey}
	cfg.Auth.JWTSecret = jwtSecret
	if fo.cfg != nil {
		fo.cfg(&cfg)
	}
	f := &fixture{t: t, cfg: cfg, reg: prometheus.NewRegistry()}
	f.sopts = streamstest.Options(t.TempDir())
	f.srv = streamstest.Start(t, f.sopts)
	f.nc = streamstest.Connect(t, f.srv.ClientURL())
	jsOpts := ingest.JetStreamOpts(cfg.Ingest)
	if fo.jsOpts != nil {
		jsOpts = fo.jsOpts
	}
	js, err := jetstream.New(f.nc, jsOpts...)
	if err != nil {
		t.Fatal(err)
	}
	f.js = js
	if !fo.noStream {
		f.stream = streamstest.Apply(t, f.nc, cfg.Stream)
	}
	var _ ingest.TokenVerifier = (*token.Verifier)(nil)
	var tokens ingest.TokenVerifier
	if !fo.noTokens {
		v, err := token.NewWithPEM(jwtSecret)
		if err != nil {
			t.Fatal(err)
		}
		tokens = v
	}
	f.h, err = ingest.New(ingest.Options{
		Ingest:       cfg.Ingest,
		Stream:       cfg.Stream,
		MaxBodyBytes: cfg.HTTP.MaxBodyBytes,
		Tokens:       tokens,
		Registerer:   f.reg,
	}, js)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	f.h.Register(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	f.url = hs.URL
	f.client = hs.Client()
	return f
}

// mux returns a fresh mux with the handler's routes, for in-process
// requests through httptest.NewRecorder.
func (f *fixture) mux() *http.ServeMux {
	mux := http.NewServeMux()
	f.h.Register(mux)
	return mux
}

// userPath is the path of a user's messages, the user id escaped.
func userPath(user string) string {
	return "/v1/users/" + url.PathEscape(user) + "/messages"
}

// response is a completed HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

// do sends a request with the producer key unless hdr sets Authorization
// (set it to "" to send none). hdr is name, value pairs.
func (f *fixture) do(method, path string, body io.Reader, hdr ...string) response {
	f.t.Helper()
	req, err := http.NewRequest(method, f.url+path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+producerKey)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	client := f.client
	if req.ContentLength > 64<<10 {
		// A handler that refuses a body by its Content-Length answers
		// without reading it, and the server closes the connection; a
		// client still writing can then see a reset instead of the
		// answer. Expect: 100-continue makes it wait for the answer.
		req.Header.Set("Expect", "100-continue")
		tr := f.client.Transport.(*http.Transport).Clone()
		tr.ExpectContinueTimeout = 5 * time.Second
		client = &http.Client{Transport: tr}
		defer tr.CloseIdleConnections()
	}
	res, err := client.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// postJSON posts v (a string is sent as is) as application/json.
func (f *fixture) postJSON(path string, v any, hdr ...string) response {
	f.t.Helper()
	var b []byte
	if s, ok := v.(string); ok {
		b = []byte(s)
	} else {
		var err error
		if b, err = json.Marshal(v); err != nil {
			f.t.Fatal(err)
		}
	}
	return f.do(http.MethodPost, path, bytes.NewReader(b), append([]string{"Content-Type", "application/json"}, hdr...)...)
}

// publishedResp is the body of a single publish.
type publishedResp struct {
	ID        string     `json:"id"`
	Seq       uint64     `json:"seq"`
	User      string     `json:"user"`
	Time      *time.Time `json:"time"`
	Duplicate bool       `json:"duplicate"`
}

// publish posts msg for user and expects status.
func (f *fixture) publish(user string, msg any, status int, hdr ...string) publishedResp {
	f.t.Helper()
	res := f.postJSON(userPath(user), msg, hdr...)
	if res.status != status {
		f.t.Fatalf("publish for %q: %v, want status %d", user, res, status)
	}
	var p publishedResp
	decode(f.t, res.body, &p)
	return p
}

type batchResp struct {
	Results []struct {
		ID        string     `json:"id"`
		Seq       uint64     `json:"seq"`
		Duplicate bool       `json:"duplicate"`
		Error     *errDetail `json:"error"`
	} `json:"results"`
}

type errDetail struct {
	Code    herald.Code `json:"code"`
	Message string      `json:"message"`
}

type historyResp struct {
	Messages []streams.Envelope `json:"messages"`
	Next     *uint64            `json:"next"`
}

// history reads a page and expects 200.
func (f *fixture) history(user, query string, hdr ...string) historyResp {
	f.t.Helper()
	res := f.do(http.MethodGet, userPath(user)+query, nil, hdr...)
	if res.status != http.StatusOK {
		f.t.Fatalf("history %q%s: %v", user, query, res)
	}
	var h historyResp
	decode(f.t, res.body, &h)
	if h.Messages == nil || h.Next == nil {
		f.t.Fatalf("history %q%s: messages or next missing: %s", user, query, res.body)
	}
	return h
}

func decode(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

// wantError asserts an error response with status and code.
func wantError(t testing.TB, res response, status int, code herald.Code) {
	t.Helper()
	if res.status != status {
		t.Errorf("status = %v, want %d %s", res, status, code)
		return
	}
	if ct := res.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var b struct {
		Error *errDetail `json:"error"`
	}
	if err := json.Unmarshal(res.body, &b); err != nil || b.Error == nil {
		t.Errorf("error body %q: %v", res.body, err)
		return
	}
	if b.Error.Code != code || b.Error.Message == "" {
		t.Errorf("error = %+v, want code %s with a message", b.Error, code)
	}
}

// state returns the stream's message count and last sequence.
func (f *fixture) state() (msgs, last uint64) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := f.stream.Info(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	return info.State.Msgs, info.State.LastSeq
}

// stored reads the raw message at seq.
func (f *fixture) stored(seq uint64) *jetstream.RawStreamMsg {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := f.stream.GetMsg(ctx, seq)
	if err != nil {
		f.t.Fatalf("get %d: %v", seq, err)
	}
	return m
}

// storedEnvelope decodes the message at seq and checks its subject.
func (f *fixture) storedEnvelope(seq uint64, user string) streams.Envelope {
	f.t.Helper()
	m := f.stored(seq)
	if want := (streams.Subjects{Prefix: f.cfg.Stream.Prefix}).User(user); m.Subject != want {
		f.t.Errorf("seq %d stored on %q, want %q", seq, m.Subject, want)
	}
	var e streams.Envelope
	decode(f.t, m.Data, &e)
	if got, want := m.Header.Get(jetstream.MsgIDHeader), streams.MsgID(user, e.ID); got != want {
		f.t.Errorf("seq %d: Nats-Msg-Id %q, want %q", seq, got, want)
	}
	return e
}

// counter returns the value of a counter in the registry (labels as
// name=value pairs); 0 when absent.
func (f *fixture) counter(name string, labels ...string) float64 {
	f.t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		f.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
		}
	}
	return 0
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	streamstest.WaitFor(t, 10*time.Second, func() error {
		if cond() {
			return nil
		}
		return fmt.Errorf("%s", what)
	})
}

func repeat(s string, n int) string { return strings.Repeat(s, n) }
