package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// FanoutResult is one fanout run.
type FanoutResult struct {
	Label     string  `json:"label"`
	Users     int     `json:"users"`
	Devices   int     `json:"devices_per_user"`
	Messages  int     `json:"messages"`
	Producers int     `json:"producers"`
	Size      int     `json:"body_bytes"`
	Rate      float64 `json:"rate"` // requested msg/s; 0: as fast as possible
	Via       string  `json:"via"`  // http or nats
	AckEvery  int     `json:"ack_every"`
	Stuck     int     `json:"stuck_devices"`

	ConnectSeconds float64 `json:"connect_seconds"`
	Published      int64   `json:"published"` // acknowledged by ingest or JetStream
	PublishErrors  int64   `json:"publish_errors"`
	LastError      string  `json:"last_publish_error,omitempty"`
	PublishSeconds float64 `json:"publish_seconds"`
	PublishRate    float64 `json:"publish_msgs_per_s"`
	// Expected is Published × devices per user (stuck devices excluded).
	Expected  int64 `json:"expected_deliveries"`
	Delivered int64 `json:"delivered"` // first deliveries of a message to a device
	// DeliverySeconds runs from the first publish to the last delivery.
	DeliverySeconds float64 `json:"delivery_seconds"`
	DeliveryRate    float64 `json:"deliveries_per_s"`
	Latency         Latency `json:"latency"` // publish→deliver of the healthy devices
	// Lost counts (message, device) pairs acknowledged by the publish but
	// not delivered within the drain deadline.
	Lost       int64 `json:"lost"`
	Duplicates int64 `json:"duplicates"`   // a seq received twice on one connection
	OutOfOrder int64 `json:"out_of_order"` // a seq lower than one already received
	Foreign    int64 `json:"foreign"`      // messages not of this run (other producers)
	Retries    int64 `json:"dial_retries"` // dials answered 503 and retried
	// StuckClosedSeconds is when the edge closed the stuck devices as slow
	// consumers (4008), from their connect; -1 when not seen (no metrics,
	// or not within Options.StuckWait).
	StuckClosedSeconds float64 `json:"stuck_closed_seconds,omitempty"`
	// CPUSeconds is the CPU time (user and system) the target's processes
	// (Target.Procs: the server with --spawn or --pid) used from the first
	// publish to the last delivery; 0 when it could not be read.
	CPUSeconds float64 `json:"cpu_seconds,omitempty"`
	// CPUProcs names the processes CPUSeconds covers.
	CPUProcs string `json:"cpu_procs,omitempty"`
	// CPUPerDelivery and CPUPerMessage are CPUSeconds over Delivered and
	// over Published, in microseconds.
	CPUPerDelivery float64 `json:"cpu_us_per_delivery,omitempty"`
	CPUPerMessage  float64 `json:"cpu_us_per_message,omitempty"`
}

// slowCloses is the edge's series of slow-consumer closes.
const slowCloses = `herald_edge_closes_total{reason="slow_consumer"}`

// SlowResult compares a fanout without and with stuck devices.
type SlowResult struct {
	Without *FanoutResult `json:"without"`
	With    *FanoutResult `json:"with"`
	// P99Ratio is the healthy devices' p99 with stuck devices over without.
	P99Ratio float64 `json:"p99_ratio"`
}

// ConnectionsResult is the connections scenario.
type ConnectionsResult struct {
	Devices        int     `json:"devices"`
	Users          int     `json:"users"`
	ConnectSeconds float64 `json:"connect_seconds"`
	ConnectRate    float64 `json:"connects_per_s"`
	Retries        int64   `json:"dial_retries"` // dials answered 503 and retried
	// CloseSeconds runs from closing every client socket until the edge
	// reports its connections gone; -1 when the edge's metrics are unknown.
	CloseSeconds float64   `json:"close_seconds"`
	Before       MemSample `json:"before"`
	After        MemSample `json:"after"`
	// RSSPerConn is (after − before) / devices of each process, bytes.
	RSSPerConn        map[string]float64 `json:"rss_bytes_per_connection"`
	HeapPerConn       float64            `json:"heap_bytes_per_connection"`
	GoroutinesPerConn float64            `json:"goroutines_per_connection"`
	Note              string             `json:"note,omitempty"`
}

// ResumeResult is the resume scenario.
type ResumeResult struct {
	Users     int   `json:"users"`
	Devices   int   `json:"devices_per_user"`
	PerUser   int   `json:"messages_per_user"`
	Published int64 `json:"published"`
	Expected  int64 `json:"expected_deliveries"`
	Delivered int64 `json:"delivered"`
	// Complete is Delivered / Expected, in percent.
	Complete float64 `json:"complete_percent"`
	// ReconnectSeconds runs until every device has its welcome frame;
	// CatchupSeconds until the last expected delivery.
	ReconnectSeconds float64 `json:"reconnect_seconds"`
	CatchupSeconds   float64 `json:"catchup_seconds"`
	Lost             int64   `json:"lost"`
	Duplicates       int64   `json:"duplicates"` // inside one connection
	OutOfOrder       int64   `json:"out_of_order"`
	Gaps             int64   `json:"gap_welcomes"` // welcome frames with gap true
	Retries          int64   `json:"dial_retries"` // reconnects answered 503 and retried
}

func newRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// population builds users × devices clients; users are named after run, so
// that runs against one server never share a user.
func population(run string, users, devices int) ([]*device, func(i int) string) {
	name := func(u int) string { return fmt.Sprintf("b%s-u%d", run, u) }
	devs := make([]*device, 0, users*devices)
	for u := range users {
		for d := range devices {
			devs = append(devs, &device{user: name(u), id: fmt.Sprintf("d%d", d)})
		}
	}
	return devs, name
}

// waitDone waits for the tracker to reach its expected deliveries, for
// Options.Drain, or for ctx.
func (r *Runner) waitDone(ctx context.Context, tr *tracker) {
	t := time.NewTimer(r.opts.Drain)
	defer t.Stop()
	select {
	case <-tr.done:
	case <-t.C:
	case <-ctx.Done():
	}
}

// lost counts (message, device) pairs of acknowledged messages that fewer
// than devices devices received.
func lost(tr *tracker, ok []bool, devices int) int64 {
	var n int64
	for i, acked := range ok {
		if got := int(tr.perMsg[i].Load()); acked && got < devices {
			n += int64(devices - got)
		}
	}
	return n
}

func (r *Runner) fanout(ctx context.Context, label string, stuck int) (*FanoutResult, error) {
	o := r.opts
	run := newRunID()
	res := &FanoutResult{Label: label, Users: o.Users, Devices: o.Devices, Messages: o.Messages,
		Producers: o.Producers, Size: o.Size, Rate: o.Rate, Via: "http", AckEvery: o.AckEvery, Stuck: stuck}
	if o.NATS {
		res.Via = "nats"
	}
	tr := newTracker(run, 0, o.Messages, o.AckEvery)
	devs, user := population(run, o.Users, o.Devices)
	var wg sync.WaitGroup
	defer closeAll(devs, &wg)

	var up atomic.Int64
	stop := r.progress(label+" connect", func() string { return fmt.Sprintf("connected %d/%d", up.Load(), len(devs)) })
	start := time.Now()
	err := r.connectAll(ctx, devs, tr, func(*device) int64 { return -1 }, o.ConnectConcurrency, true, &wg, func(n int) { up.Store(int64(n)) })
	stop()
	if err != nil {
		return nil, err
	}
	res.ConnectSeconds = time.Since(start).Seconds()
	slowBefore := -1.0
	if stuck > 0 && r.t.MetricsURL != "" {
		if m, err := scrape(ctx, r.t.MetricsURL); err == nil {
			slowBefore = m[slowCloses]
		}
	}
	stuckAt := time.Now()
	for k := range stuck {
		sc, err := r.dialStuck(ctx, user(0), fmt.Sprintf("stuck-%d", k))
		if err != nil {
			return nil, err
		}
		defer sc.conn.Close()
	}
	if o.OnConnected != nil {
		o.OnConnected()
	}

	var st *pubStats
	var stPtr atomic.Pointer[pubStats]
	stop = r.progress(label, func() string {
		s := fmt.Sprintf("delivered %d", tr.got.Load())
		if p := stPtr.Load(); p != nil {
			s += fmt.Sprintf("/%d (publishing done)", tr.want.Load())
		}
		return s
	})
	cpuStart, cpuOK := r.cpuOf()
	pubStart := time.Now()
	st = r.publishAll(ctx, publishPlan{run: run, n: o.Messages, user: func(i int) string { return user(i % o.Users) }})
	stPtr.Store(st)
	tr.expect(st.acked.Load() * int64(o.Devices))
	if st.acked.Load() > 0 {
		r.waitDone(ctx, tr)
	}
	if cpuEnd, ok := r.cpuOf(); ok && cpuOK {
		res.CPUSeconds = (cpuEnd - cpuStart).Seconds()
		names := make([]string, len(r.t.Procs))
		for i, p := range r.t.Procs {
			names[i] = p.Name
		}
		res.CPUProcs = strings.Join(names, ", ")
	}
	stop()
	if stuck > 0 {
		res.StuckClosedSeconds = -1
		if slowBefore >= 0 {
			if r.waitSlowCloses(ctx, slowBefore+float64(stuck)) {
				res.StuckClosedSeconds = time.Since(stuckAt).Seconds()
			}
		}
	}
	if o.OnDrained != nil {
		o.OnDrained()
	}
	closeAll(devs, &wg) // the readers are done: their fields are ours now

	res.Published, res.PublishErrors, res.LastError = st.acked.Load(), st.failed.Load(), st.lastError()
	res.PublishSeconds = st.elapsed.Seconds()
	if res.PublishSeconds > 0 {
		res.PublishRate = float64(res.Published) / res.PublishSeconds
	}
	res.Expected = res.Published * int64(o.Devices)
	res.Delivered = tr.got.Load()
	if last := tr.last.Load(); last > 0 {
		res.DeliverySeconds = time.Duration(last - pubStart.UnixNano()).Seconds()
		if res.DeliverySeconds > 0 {
			res.DeliveryRate = float64(res.Delivered) / res.DeliverySeconds
		}
	}
	var lat []time.Duration
	for _, d := range devs {
		lat = append(lat, d.lat...)
	}
	res.Latency = summarize(lat)
	if res.CPUSeconds > 0 {
		if res.Delivered > 0 {
			res.CPUPerDelivery = res.CPUSeconds / float64(res.Delivered) * 1e6
		}
		if res.Published > 0 {
			res.CPUPerMessage = res.CPUSeconds / float64(res.Published) * 1e6
		}
	}
	res.Lost = lost(tr, st.ok, o.Devices)
	res.Duplicates, res.OutOfOrder, res.Foreign = tr.dups.Load(), tr.ooo.Load(), tr.foreign.Load()
	res.Retries = r.retries.Swap(0)
	if ctx.Err() != nil {
		return res, fmt.Errorf("bench: %s: %w", label, ctx.Err())
	}
	return res, nil
}

func (r *Runner) slow(ctx context.Context) (*SlowResult, error) {
	stuck := max(1, r.opts.Stuck)
	without, err := r.fanout(ctx, "without stuck device", 0)
	if err != nil {
		return nil, err
	}
	with, err := r.fanout(ctx, fmt.Sprintf("with %d stuck", stuck), stuck)
	if err != nil {
		return nil, err
	}
	res := &SlowResult{Without: without, With: with}
	if without.Latency.P99 > 0 {
		res.P99Ratio = with.Latency.P99 / without.Latency.P99
	}
	return res, nil
}

func (r *Runner) connections(ctx context.Context) (*ConnectionsResult, error) {
	o := r.opts
	users := (o.Connections + o.Devices - 1) / o.Devices
	run := newRunID()
	devs, _ := population(run, users, o.Devices)
	devs = devs[:o.Connections]
	res := &ConnectionsResult{Devices: len(devs), Users: users, CloseSeconds: -1, Note: r.t.MemNote}
	tr := newTracker(run, 0, 0, o.AckEvery)
	var wg sync.WaitGroup
	defer closeAll(devs, &wg)

	before, err := r.sample(ctx)
	if err != nil {
		r.log.Warn("memory sample incomplete", "err", err)
	}
	res.Before = before
	var up atomic.Int64
	stop := r.progress("connections", func() string { return fmt.Sprintf("connected %d/%d", up.Load(), len(devs)) })
	start := time.Now()
	err = r.connectAll(ctx, devs, tr, func(*device) int64 { return -1 }, o.ConnectConcurrency, true, &wg, func(n int) { up.Store(int64(n)) })
	stop()
	if err != nil {
		return nil, err
	}
	res.ConnectSeconds = time.Since(start).Seconds()
	res.ConnectRate = float64(len(devs)) / res.ConnectSeconds
	res.Retries = r.retries.Swap(0)
	if err := sleepCtx(ctx, o.Settle); err != nil {
		return nil, err
	}
	after, err := r.sample(ctx)
	if err != nil {
		r.log.Warn("memory sample incomplete", "err", err)
	}
	res.After = after
	n := float64(len(devs))
	res.RSSPerConn = map[string]float64{}
	for name, v := range after.RSS {
		if b, ok := before.RSS[name]; ok {
			res.RSSPerConn[name] = float64(v-b) / n
		}
	}
	if before.HeapInuse >= 0 && after.HeapInuse >= 0 {
		res.HeapPerConn = float64(after.HeapInuse-before.HeapInuse) / n
		res.GoroutinesPerConn = float64(after.Goroutines-before.Goroutines) / n
	}

	closeStart := time.Now()
	closeAll(devs, &wg)
	if r.t.MetricsURL != "" && before.Connections >= 0 {
		if err := r.waitConnections(ctx, before.Connections, 60*time.Second); err == nil {
			res.CloseSeconds = time.Since(closeStart).Seconds()
		} else {
			r.log.Warn("edge connections did not drop", "err", err)
		}
	}
	return res, nil
}

// waitConnections polls the edge's metrics until it reports at most n
// connections, for at most d.
func (r *Runner) waitConnections(ctx context.Context, n int64, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		m, err := scrape(ctx, r.t.MetricsURL)
		if err == nil && int64(m["herald_edge_connections"]) <= n {
			return nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("%v connections left", m["herald_edge_connections"])
			}
			return fmt.Errorf("bench: wait for the edge to close connections: %w", err)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

// waitSlowCloses polls the edge's metrics until its slow-consumer closes
// reach n, for at most StuckWait; it reports whether they did.
func (r *Runner) waitSlowCloses(ctx context.Context, n float64) bool {
	stop := r.progress("slow", func() string { return "waiting for the edge to close the stuck device (4008)" })
	defer stop()
	deadline := time.Now().Add(r.opts.StuckWait)
	for time.Now().Before(deadline) {
		if m, err := scrape(ctx, r.t.MetricsURL); err == nil && m[slowCloses] >= n {
			return true
		}
		if sleepCtx(ctx, 100*time.Millisecond) != nil {
			return false
		}
	}
	return false
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Runner) resume(ctx context.Context) (*ResumeResult, error) {
	o := r.opts
	run := newRunID()
	devs, user := population(run, o.Users, o.Devices)
	res := &ResumeResult{Users: o.Users, Devices: o.Devices, PerUser: o.PerUser}
	var wg sync.WaitGroup
	defer closeAll(devs, &wg)
	base := int64(-1)
	if r.t.MetricsURL != "" {
		if m, err := scrape(ctx, r.t.MetricsURL); err == nil {
			base = int64(m["herald_edge_connections"])
		}
	}

	// Phase 1: connect, one message per user, everyone acks it.
	tr1 := newTracker(run, 0, o.Users, o.AckEvery)
	var up atomic.Int64
	stop := r.progress("resume connect", func() string { return fmt.Sprintf("connected %d/%d", up.Load(), len(devs)) })
	err := r.connectAll(ctx, devs, tr1, func(*device) int64 { return -1 }, o.ConnectConcurrency, true, &wg, func(n int) { up.Store(int64(n)) })
	stop()
	if err != nil {
		return nil, err
	}
	st1 := r.publishAll(ctx, publishPlan{run: run, n: o.Users, user: user})
	tr1.expect(st1.acked.Load() * int64(o.Devices))
	r.waitDone(ctx, tr1)
	if got, want := tr1.got.Load(), int64(o.Users*o.Devices); got != want {
		return nil, fmt.Errorf("bench: resume: warm-up delivered %d of %d (publish errors %d: %s)", got, want, st1.failed.Load(), st1.lastError())
	}

	// Phase 2: everyone disconnects; K messages per user.
	closeAll(devs, &wg)
	if base >= 0 {
		if err := r.waitConnections(ctx, base, 60*time.Second); err != nil {
			return nil, err
		}
	}
	n := o.Users * o.PerUser
	tr2 := newTracker(run, o.Users, n, o.AckEvery)
	stop = r.progress("resume publish", func() string { return "" })
	st2 := r.publishAll(ctx, publishPlan{run: run, base: o.Users, n: n, user: func(i int) string { return user(i % o.Users) }})
	stop()
	res.Published = st2.acked.Load()
	res.Expected = res.Published * int64(o.Devices)
	tr2.expect(res.Expected)

	// Phase 3: all reconnect at once with since=<last seq>.
	up.Store(0)
	r.retries.Store(0)
	stop = r.progress("resume reconnect", func() string {
		return fmt.Sprintf("connected %d/%d delivered %d/%d", up.Load(), len(devs), tr2.got.Load(), res.Expected)
	})
	start := time.Now()
	err = r.connectAll(ctx, devs, tr2, func(d *device) int64 { return int64(d.lastSeq) }, o.ConnectConcurrency, false, &wg, func(n int) { up.Store(int64(n)) })
	if err != nil {
		stop()
		return nil, err
	}
	res.ReconnectSeconds = time.Since(start).Seconds()
	r.waitDone(ctx, tr2)
	stop()
	closeAll(devs, &wg)
	res.Delivered = tr2.got.Load()
	if res.Expected > 0 {
		res.Complete = 100 * float64(res.Delivered) / float64(res.Expected)
	}
	if last := tr2.last.Load(); last > 0 {
		res.CatchupSeconds = time.Duration(last - start.UnixNano()).Seconds()
	}
	res.Lost = lost(tr2, st2.ok, o.Devices)
	res.Duplicates, res.OutOfOrder = tr2.dups.Load(), tr2.ooo.Load()
	res.Retries = r.retries.Load()
	for _, d := range devs {
		if d.gap {
			res.Gaps++
		}
	}
	return res, nil
}
