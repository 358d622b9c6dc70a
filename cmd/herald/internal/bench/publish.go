package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald/streams"
)

// pubStats is what a publish phase did.
type pubStats struct {
	ok      []bool // by message index of the phase: acknowledged by ingest or JetStream
	acked   atomic.Int64
	failed  atomic.Int64
	lastErr atomic.Value // string
	elapsed time.Duration
}

// publishPlan names the messages of a phase: message i (0 ≤ i < n) goes
// to user(i) and carries index base+i.
type publishPlan struct {
	run  string
	base int
	n    int
	user func(i int) string
}

// publishAll publishes the plan with Options.Producers goroutines, paced at
// Options.Rate when set, and returns when every message was tried or ctx
// ends. Each message carries {"b":run,"i":index,"t":send time} in data.
func (r *Runner) publishAll(ctx context.Context, p publishPlan) *pubStats {
	st := &pubStats{ok: make([]bool, p.n)}
	pad := strings.Repeat("x", r.opts.Size)
	var next atomic.Int64
	var interval time.Duration
	if r.opts.Rate > 0 {
		interval = time.Duration(float64(time.Second) / r.opts.Rate)
	}
	client := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        r.opts.Producers,
			MaxIdleConnsPerHost: r.opts.Producers,
			MaxConnsPerHost:     r.opts.Producers,
			IdleConnTimeout:     30 * time.Second,
		},
	}
	defer client.CloseIdleConnections()
	start := time.Now()
	var wg sync.WaitGroup
	for range r.opts.Producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= p.n {
					return
				}
				if interval > 0 {
					if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
						t := time.NewTimer(wait)
						select {
						case <-t.C:
						case <-ctx.Done():
							t.Stop()
							return
						}
					}
				}
				user := p.user(i)
				var err error
				if r.opts.NATS {
					err = r.publishNATS(ctx, user, p.run, p.base+i, pad)
				} else {
					err = r.publishHTTP(ctx, client, &buf, user, p.run, p.base+i, pad)
				}
				if err != nil {
					st.failed.Add(1)
					st.lastErr.Store(err.Error())
					continue
				}
				st.ok[i] = true // each index is written by one goroutine
				st.acked.Add(1)
			}
		}()
	}
	wg.Wait()
	st.elapsed = time.Since(start)
	return st
}

// lastError is the last publish error, "" when none.
func (s *pubStats) lastError() string {
	v, _ := s.lastErr.Load().(string)
	return v
}

func (r *Runner) publishHTTP(ctx context.Context, c *http.Client, buf *bytes.Buffer, user, run string, i int, pad string) error {
	buf.Reset()
	buf.WriteString(`{"body":"`)
	buf.WriteString(pad)
	buf.WriteString(`","data":{"b":"`)
	buf.WriteString(run)
	buf.WriteString(`","i":`)
	buf.WriteString(strconv.Itoa(i))
	buf.WriteString(`,"t":`)
	buf.WriteString(strconv.FormatInt(time.Now().UnixNano(), 10))
	buf.WriteString(`}}`)
	u := strings.TrimRight(r.t.HTTPURL, "/") + "/v1/users/" + url.PathEscape(user) + "/messages"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(buf.Bytes()))
	if err != nil {
		return fmt.Errorf("bench: publish: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+r.t.Key)
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("bench: publish: %w", err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("bench: publish: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	return nil
}

func (r *Runner) publishNATS(ctx context.Context, user, run string, i int, pad string) error {
	data, err := json.Marshal(msgData{Run: run, I: i, T: time.Now().UnixNano()})
	if err != nil {
		return fmt.Errorf("bench: publish: %w", err)
	}
	e := streams.Envelope{ID: run + "-" + strconv.Itoa(i), User: user, Time: time.Now().UTC(), Body: pad, Data: data}
	payload, err := e.Encode()
	if err != nil {
		return fmt.Errorf("bench: publish: %w", err)
	}
	msg := streams.Subjects{Prefix: r.t.Prefix}.NewMsg(user, e.ID, payload, streams.Lifecycle{})
	var opts []jetstream.PublishOpt
	if r.t.Stream != "" {
		opts = append(opts, jetstream.WithExpectStream(r.t.Stream))
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := r.t.JS.PublishMsg(pctx, msg, opts...); err != nil {
		return fmt.Errorf("bench: publish: %w", err)
	}
	return nil
}
