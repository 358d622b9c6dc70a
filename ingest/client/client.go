package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/herald-push/herald"
)

// Options configure a Client.
type Options struct {
	// URL is the base URL of ingest (for Publish) or of an edge (for
	// Devices), e.g. http://127.0.0.1:8080.
	URL string
	// Credential is sent as Authorization: Bearer: a producer key, or for
	// Devices also the user's client token.
	Credential string
	// HTTPClient sends the requests; nil: http.DefaultClient.
	HTTPClient *http.Client
}

// Client publishes to Herald and reads device status.
type Client struct {
	base string
	cred string
	hc   *http.Client
}

// ErrOptions is wrapped by New's errors.
var ErrOptions = errors.New("invalid options")

// New checks opts and returns a Client.
func New(opts Options) (*Client, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: new: %w: URL %q is not an http(s) URL", ErrOptions, opts.URL)
	}
	if opts.Credential == "" {
		return nil, fmt.Errorf("client: new: %w: no credential", ErrOptions)
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(opts.URL, "/"), cred: opts.Credential, hc: hc}, nil
}

// Message is one message to publish: the envelope's optional fields (SPEC
// §3) and its lifecycle (SPEC §10). Herald checks it; the zero value of a
// field leaves it out.
type Message struct {
	Title    string
	Body     string
	Priority *int
	Tags     []string
	Data     json.RawMessage
	// Ref and Op (herald.OpUpdate, herald.OpDelete) update or delete the
	// earlier message whose id is Ref.
	Ref, Op string
	// TTL removes the message that long after it is stored.
	TTL time.Duration
	// DeliverAt, or Delay from Herald's clock, stores the message later;
	// give one of them.
	DeliverAt time.Time
	Delay     time.Duration
	// IdempotencyKey is the message's id: a retry with the same key
	// within the stream's duplicate window is stored once.
	IdempotencyKey string
}

// publishBody is the JSON body of a publish.
type publishBody struct {
	Title     string          `json:"title,omitempty"`
	Body      string          `json:"body,omitempty"`
	Priority  *int            `json:"priority,omitempty"`
	Tags      []string        `json:"tags,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
	Ref       string          `json:"ref,omitempty"`
	Op        string          `json:"op,omitempty"`
	TTL       string          `json:"ttl,omitempty"`
	DeliverAt string          `json:"deliver_at,omitempty"`
	Delay     string          `json:"delay,omitempty"`
}

// Publish publishes m to every device of user and returns Herald's answer:
// a seq once JetStream stored it, or DeliverAt for a scheduled message.
func (c *Client) Publish(ctx context.Context, user string, m Message) (herald.Published, error) {
	var res herald.Published
	b := publishBody{Title: m.Title, Body: m.Body, Priority: m.Priority, Tags: m.Tags, Data: m.Data, Ref: m.Ref, Op: m.Op}
	// Durations go as Go duration strings, which Herald reads exactly
	// (a number of seconds would round through a float).
	if m.TTL != 0 {
		b.TTL = m.TTL.String()
	}
	if m.Delay != 0 {
		b.Delay = m.Delay.String()
	}
	if !m.DeliverAt.IsZero() {
		b.DeliverAt = m.DeliverAt.UTC().Format(time.RFC3339Nano)
	}
	body, err := json.Marshal(b)
	if err != nil {
		return res, fmt.Errorf("client: publish: %w", err)
	}
	hdr := http.Header{"Content-Type": {"application/json"}}
	if m.IdempotencyKey != "" {
		hdr.Set("Idempotency-Key", m.IdempotencyKey)
	}
	if err := c.do(ctx, http.MethodPost, "/v1/users/"+url.PathEscape(user)+"/messages", hdr, body, 1<<20, &res); err != nil {
		return res, fmt.Errorf("client: publish: %w", err)
	}
	return res, nil
}

// Devices returns user's device status: each device's acked position,
// when it was last seen and whether it is connected, and the user's read
// position and last seq.
func (c *Client) Devices(ctx context.Context, user string) (herald.Devices, error) {
	var st herald.Devices
	if err := c.do(ctx, http.MethodGet, "/v1/users/"+url.PathEscape(user)+"/devices", nil, nil, 4<<20, &st); err != nil {
		return st, fmt.Errorf("client: devices: %w", err)
	}
	return st, nil
}

// do sends a request and decodes a 2xx answer of at most limit bytes into
// out; any other status is an *Error.
func (c *Client) do(ctx context.Context, method, path string, hdr http.Header, body []byte, limit int64, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+c.cred)
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return newError(resp.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("answer: %w", err)
	}
	return nil
}
