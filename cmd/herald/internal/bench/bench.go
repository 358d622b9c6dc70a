// Package bench is Herald's load generator: it drives a running Herald
// (ingest over HTTP or JetStream, edges over WebSockets) with the real
// protocol over real sockets and measures what devices receive.
//
// Scenarios (each a method of Runner):
//   - Fanout: U users × D devices connected, M messages from C producers.
//   - Slow: Fanout twice, without and with stuck devices that never read.
//   - Connections: N idle devices; connect rate and memory per connection.
//   - Resume: devices disconnect, K messages per user, all reconnect with
//     since=<last seq>; time until caught up, completeness, duplicates.
//
// Every loop is bounded by a count and by Options.Timeout. A Runner owns
// every goroutine it starts and stops them before a scenario returns; a
// Runner runs one scenario at a time.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Target is the Herald deployment a scenario runs against.
type Target struct {
	Name       string // shown in the results, e.g. "in-process (live)"
	HTTPURL    string // ingest base URL: http://host:port
	WSURL      string // edge base URL: ws://host:port
	MetricsURL string // an edge's /metrics (connections, Go runtime); "" none
	Key        string // producer key
	JWTSecret  string // HS256 secret that signs device tokens
	// JS, when set, publishes straight to JetStream (Options.NATS).
	JS     jetstream.JetStream
	Prefix string // subject prefix, default "herald"
	Stream string // stream name, for WithExpectStream; "" none
	// Procs are processes whose RSS the connections scenario reports.
	Procs []Proc
	// BeforeSample, when set, runs before each memory sample (an in-process
	// target collects garbage).
	BeforeSample func()
	// MemNote qualifies the memory figures, e.g. that the clients share the
	// process with the server.
	MemNote string
}

// Proc names a process to sample memory of.
type Proc struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
}

// Options are the knobs of every scenario; Defaults fills zero values.
type Options struct {
	Users     int     // users with connected devices
	Devices   int     // devices per user
	Messages  int     // messages to publish (fanout, slow)
	Producers int     // concurrent publishers
	Size      int     // bytes of each message body
	Rate      float64 // messages/s over all producers; 0: as fast as possible
	NATS      bool    // publish straight to JetStream (Target.JS)
	AckEvery  int     // a device acks after this many messages (cumulative)
	Stuck     int     // slow: devices that never read, on the first user
	PerUser   int     // resume: messages per user while disconnected
	// Connections is the number of idle devices of the connections scenario.
	Connections int
	// ConnectConcurrency bounds dials in flight.
	ConnectConcurrency int
	Drain              time.Duration // wait for deliveries after the last publish
	StuckWait          time.Duration // slow: wait for the edge to close stuck devices (4008)
	Settle             time.Duration // connections: wait before sampling memory
	Timeout            time.Duration // bound on the whole scenario
	Progress           io.Writer     // a status line once a second; nil: none
	ProgressTTY        bool          // rewrite the line in place (\r) instead of one per second
	Logger             *slog.Logger  // nil: discard
	// OnConnected and OnDrained, when set, run in the fanout scenario once
	// every device is connected (before the first publish) and once the
	// deliveries are in (before the devices close). Benchmarks use them
	// to sample the server while the devices are connected.
	OnConnected func()
	OnDrained   func()
}

// Defaults fills zero fields with the defaults of a 2-core machine.
func (o Options) Defaults() Options {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.Users, 200)
	def(&o.Devices, 2)
	def(&o.Messages, 20000)
	def(&o.Producers, 16)
	def(&o.Size, 128)
	def(&o.AckEvery, 1)
	def(&o.PerUser, 50)
	def(&o.Connections, 5000)
	def(&o.ConnectConcurrency, 256)
	if o.Drain <= 0 {
		o.Drain = 15 * time.Second
	}
	if o.StuckWait <= 0 {
		o.StuckWait = 20 * time.Second // the default edge.write_timeout (10s) and a margin
	}
	if o.Settle <= 0 {
		o.Settle = 2 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Runner runs scenarios against one target.
type Runner struct {
	t       Target
	opts    Options
	log     *slog.Logger
	retries atomic.Int64 // dials answered 503 and retried, this scenario
}

// New validates the target and options and returns a Runner.
func New(t Target, opts Options) (*Runner, error) {
	opts = opts.Defaults()
	switch {
	case t.HTTPURL == "" && !opts.NATS:
		return nil, errors.New("bench: no ingest URL")
	case t.WSURL == "":
		return nil, errors.New("bench: no edge WebSocket URL")
	case t.JWTSecret == "":
		return nil, errors.New("bench: no JWT secret to mint device tokens")
	case opts.NATS && t.JS == nil:
		return nil, errors.New("bench: --nats needs a NATS connection")
	case !opts.NATS && t.Key == "":
		return nil, errors.New("bench: no producer key")
	case opts.Rate < 0:
		return nil, fmt.Errorf("bench: rate %v is negative", opts.Rate)
	case opts.AckEvery > 200:
		return nil, fmt.Errorf("bench: ack-every %d would stall on the in-flight window", opts.AckEvery)
	}
	if t.Prefix == "" {
		t.Prefix = "herald"
	}
	return &Runner{t: t, opts: opts, log: opts.Logger.With("component", "bench")}, nil
}

// Result is what a scenario measured; exactly one section is set.
type Result struct {
	Scenario string    `json:"scenario"`
	Target   string    `json:"target"`
	Started  time.Time `json:"started"`
	// Env describes the machine and the command line; set by the caller.
	Env         map[string]string  `json:"env,omitempty"`
	Fanout      *FanoutResult      `json:"fanout,omitempty"`
	Slow        *SlowResult        `json:"slow,omitempty"`
	Connections *ConnectionsResult `json:"connections,omitempty"`
	Resume      *ResumeResult      `json:"resume,omitempty"`
}

// Run runs the named scenario: fanout, slow, connections or resume.
func (r *Runner) Run(ctx context.Context, scenario string) (*Result, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	res := &Result{Scenario: scenario, Target: r.t.Name, Started: time.Now().UTC()}
	var err error
	switch scenario {
	case "fanout":
		res.Fanout, err = r.fanout(ctx, "fanout", 0)
	case "slow":
		res.Slow, err = r.slow(ctx)
	case "connections":
		res.Connections, err = r.connections(ctx)
	case "resume":
		res.Resume, err = r.resume(ctx)
	default:
		return nil, fmt.Errorf("bench: unknown scenario %q", scenario)
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}
