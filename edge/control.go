package edge

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/herald-push/herald/streams"
)

// Acks across edges (SPEC §9). An ack frame or POST /v1/ack that an edge
// receives is also published on the core NATS subject of the device's user
// (streams.Subjects.Control, <prefix>.ctl.<token>). Every edge holding a
// session of that user subscribes to the subject and applies the ack to the
// device's sessions it holds, so that a stream still open on one edge stops
// resending what the device acked through another. Core NATS is best
// effort: a control message lost (a disconnect, a full queue) costs
// resends, never a message.
//
// Concurrency: one goroutine (run, owned by the Server) publishes and
// applies; sessions hand it acks through a bounded queue and never wait on
// NATS for that. acquire and release, called by a session as it starts and
// ends, subscribe and unsubscribe outside any lock of the Server.

// ctlQueue bounds the acks waiting to be published and the control
// messages received and not yet applied. Past it an ack is not published,
// and nats.go drops what it receives (a slow consumer); both cost resends
// only.
const ctlQueue = 4096

// ctlAck is a control message: device acked seq, as sent by edge.
type ctlAck struct {
	Edge   string `json:"edge"` // the sender, which ignores its own
	Device string `json:"device"`
	Seq    uint64 `json:"seq"`
}

// control is an edge's side of the control subjects. A nil *control (no
// NATS connection given) does nothing.
type control struct {
	nc    *nats.Conn
	subj  streams.Subjects
	id    string
	in    chan *nats.Msg // every user subscription delivers here
	out   chan pendingAck
	apply func(d Device, seq uint64)
	log   *slog.Logger

	mu    sync.Mutex // guards users; held only to look up or swap an entry, never across I/O
	users map[string]*ctlSub
}

// pendingAck is an ack waiting to be published.
type pendingAck struct {
	dev Device
	seq uint64
}

// ctlSub is the subscription of one user, shared by its sessions.
type ctlSub struct {
	n     int           // sessions using it
	ready chan struct{} // closed once sub is set
	sub   *nats.Subscription
}

func newControl(nc *nats.Conn, subj streams.Subjects, apply func(Device, uint64), log *slog.Logger) *control {
	if nc == nil {
		return nil
	}
	return &control{
		nc: nc, subj: subj, id: nuid.Next(), apply: apply, log: log,
		in:    make(chan *nats.Msg, ctlQueue),
		out:   make(chan pendingAck, ctlQueue),
		users: map[string]*ctlSub{},
	}
}

// publish queues an ack of d for the other edges; it never blocks.
func (c *control) publish(d Device, seq uint64) {
	if c == nil {
		return
	}
	select {
	case c.out <- pendingAck{d, seq}:
	default:
	}
}

// acquire subscribes to user's control subject unless a session of the
// user on this edge already did.
func (c *control) acquire(user string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	if u := c.users[user]; u != nil {
		u.n++
		c.mu.Unlock()
		return
	}
	u := &ctlSub{n: 1, ready: make(chan struct{})}
	c.users[user] = u
	c.mu.Unlock()
	sub, err := c.nc.ChanSubscribe(c.subj.Control(user), c.in)
	if err != nil {
		c.log.Warn("control subscription failed; acks from other edges will not reach this user's sessions", "user", streams.LogUser(user), "err", err)
	}
	u.sub = sub
	close(u.ready)
}

// release drops the subscription once the last session of user that
// acquired it ends.
func (c *control) release(user string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	u := c.users[user]
	if u == nil {
		c.mu.Unlock()
		return
	}
	if u.n--; u.n > 0 {
		c.mu.Unlock()
		return
	}
	delete(c.users, user)
	c.mu.Unlock()
	<-u.ready
	if u.sub != nil {
		_ = u.sub.Unsubscribe()
	}
}

// run publishes queued acks and applies received ones until ctx ends.
func (c *control) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case a := <-c.out:
			b, err := json.Marshal(ctlAck{Edge: c.id, Device: a.dev.Device, Seq: a.seq})
			if err == nil {
				err = c.nc.Publish(c.subj.Control(a.dev.User), b)
			}
			if err != nil && c.log.Enabled(ctx, slog.LevelDebug) {
				c.log.Debug("control publish failed", "user", streams.LogUser(a.dev.User), "err", err)
			}
		case m := <-c.in:
			c.receive(m)
		}
	}
}

// receive applies one control message from another edge.
func (c *control) receive(m *nats.Msg) {
	user, err := c.subj.UserFromControl(m.Subject)
	if err != nil {
		return
	}
	var a ctlAck
	if err := json.Unmarshal(m.Data, &a); err != nil || a.Edge == c.id || a.Seq == 0 || streams.ValidateDevice(a.Device) != nil {
		return
	}
	c.apply(Device{User: user, Device: a.Device}, a.Seq)
}
