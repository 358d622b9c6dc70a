package edge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/herald-push/herald/streams"
)

// control is how the edges that hold streams of one user tell each other
// about that user, over core NATS on <prefix>.ctl.<token> (SPEC §9, §10),
// so that no sticky routing is needed:
//
//   - ack: a device's ack (frame or POST /v1/ack) reaches its open streams
//     on every edge;
//   - read: the user's read position moved; every edge sends a read frame
//     to the user's devices there, other than the one that read;
//   - presence: a request of device status; each edge with streams of the
//     user answers with its devices.
//
// An edge subscribes to a user's subject while it holds at least one of
// the user's sessions (join, leave), one subscription per user, all served
// by one dispatcher goroutine. Its handler never blocks: it hands acks to
// feeds (which do no I/O, or a buffered publish) and reads to sessions'
// pumps. Messages are at most once; a lost ack leaves a resend, a lost read
// the welcome of the next connect.
type control struct {
	nc   *nats.Conn
	subj streams.Subjects
	id   string // this edge's, in each message it sends; its own acks are not applied twice
	srv  *Server
	log  *slog.Logger
	disp dispatcher

	shards [64]ctlShard
}

// ctlShard is one part of the registry of control subscriptions, keyed by
// control subject. Its lock is held only to read or change the map and a
// count; never across I/O.
type ctlShard struct {
	mu    sync.Mutex
	users map[string]*ctlSub
}

type ctlSub struct {
	user  string
	n     int           // sessions of the user on this edge; under the shard lock
	ready chan struct{} // closed once sub and err are set
	sub   *nats.Subscription
	err   error
}

// Types of control messages.
const (
	ctlAck      = "ack"
	ctlRead     = "read"
	ctlPresence = "presence"
)

// ctlMsg is a control message; a presence request has a reply subject.
type ctlMsg struct {
	Type   string `json:"type"`
	Edge   string `json:"edge"`
	Device string `json:"device,omitempty"`
	Seq    uint64 `json:"seq,omitempty"`
}

// presenceReply answers a presence request: the devices of the user with a
// stream open on the edge.
type presenceReply struct {
	Edge    string   `json:"edge"`
	Devices []string `json:"devices"`
}

func newControl(nc *nats.Conn, subj streams.Subjects, srv *Server, log *slog.Logger) *control {
	var id [8]byte
	_, _ = rand.Read(id[:])
	c := &control{nc: nc, subj: subj, id: hex.EncodeToString(id[:]), srv: srv, log: log}
	c.disp.handle = c.handle
	for i := range c.shards {
		c.shards[i].users = map[string]*ctlSub{}
	}
	return c
}

func (c *control) shardOf(subject string) *ctlShard {
	return &c.shards[shardIndex(subject, len(c.shards))]
}

// The methods of a nil control (a Server without JetStream) do nothing.

// join counts one session of user on this edge, subscribing to the user's
// control subject for the first. The subscription is registered with the
// client on return, so the server sees it before any later request on the
// same connection (the welcome's read position is read after it).
func (c *control) join(user string) {
	if c == nil {
		return
	}
	subject := c.subj.Ctl(user)
	sh := c.shardOf(subject)
	sh.mu.Lock()
	u, ok := sh.users[subject]
	if !ok {
		u = &ctlSub{user: user, ready: make(chan struct{})}
		sh.users[subject] = u
	}
	u.n++
	sh.mu.Unlock()
	if ok {
		<-u.ready // a local registration; it does not wait on the network
		return
	}
	ch := c.disp.start()
	u.sub, u.err = c.nc.ChanSubscribe(subject, ch)
	if u.err != nil {
		c.disp.stop()
		c.log.Warn("subscribe to the control subject; acks and reads of other edges will not reach this user's devices here", "user", streams.LogUser(user), "err", c.subj.LogSubjects(u.err.Error()))
	}
	close(u.ready)
}

// leave uncounts one session of user, unsubscribing after the last.
func (c *control) leave(user string) {
	if c == nil {
		return
	}
	subject := c.subj.Ctl(user)
	sh := c.shardOf(subject)
	sh.mu.Lock()
	u := sh.users[subject]
	if u == nil {
		sh.mu.Unlock()
		return
	}
	u.n--
	last := u.n == 0
	if last {
		delete(sh.users, subject)
	}
	sh.mu.Unlock()
	if !last {
		return
	}
	<-u.ready
	if u.sub != nil {
		_ = u.sub.Unsubscribe()
		c.disp.stop()
	}
}

// send publishes m on user's control subject, without waiting.
func (c *control) send(user string, m ctlMsg) {
	if c == nil {
		return
	}
	m.Edge = c.id
	b, err := json.Marshal(m)
	if err == nil {
		err = c.nc.Publish(c.subj.Ctl(user), b)
	}
	if err != nil && c.log.Enabled(context.Background(), slog.LevelDebug) {
		c.log.Debug("control message not sent", "type", m.Type, "user", streams.LogUser(user), "err", err)
	}
}

// handle applies one control message; on the dispatcher's goroutine.
func (c *control) handle(m *nats.Msg) {
	sh := c.shardOf(m.Subject)
	sh.mu.Lock()
	u := sh.users[m.Subject]
	sh.mu.Unlock()
	if u == nil {
		return // the user's last session here ended meanwhile
	}
	var cm ctlMsg
	if json.Unmarshal(m.Data, &cm) != nil {
		return
	}
	switch cm.Type {
	case ctlAck:
		if cm.Edge == c.id || cm.Seq == 0 {
			return // applied where it was received
		}
		for _, ss := range c.srv.sessionsOf(Device{User: u.user, Device: cm.Device}) {
			_ = ss.ack(cm.Seq)
		}
	case ctlRead:
		if cm.Seq == 0 {
			return
		}
		for _, ss := range c.srv.sessionsOfUser(u.user) {
			if ss.dev.Device != cm.Device {
				ss.pushRead(cm.Seq, cm.Device)
			}
		}
	case ctlPresence:
		if m.Reply == "" {
			return
		}
		var devices []string
		for _, ss := range c.srv.sessionsOfUser(u.user) {
			devices = append(devices, ss.dev.Device)
		}
		slices.Sort(devices)
		b, err := json.Marshal(presenceReply{Edge: c.id, Devices: slices.Compact(devices)})
		if err == nil {
			_ = c.nc.Publish(m.Reply, b)
		}
	}
}

// presenceLinger is how long a presence request waits for more answers
// after the last one: the edges of a cluster answer within a few
// milliseconds of each other.
const presenceLinger = 100 * time.Millisecond

// presence asks every edge with streams of user which devices they hold,
// until ctx ends or no further answer came for presenceLinger after the
// last. It returns the connected devices; none at once when no edge holds
// a stream of the user (NATS answers that nobody listens).
func (c *control) presence(ctx context.Context, user string) (map[string]bool, error) {
	inbox := c.nc.NewInbox()
	sub, err := c.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, unavailable("presence", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	b, err := json.Marshal(ctlMsg{Type: ctlPresence, Edge: c.id})
	if err != nil {
		return nil, unavailable("presence", err)
	}
	if err := c.nc.PublishRequest(c.subj.Ctl(user), inbox, b); err != nil {
		return nil, unavailable("presence", err)
	}
	online := map[string]bool{}
	first := true
	for {
		wctx, cancel := ctx, context.CancelFunc(func() {})
		if !first {
			wctx, cancel = context.WithTimeout(ctx, presenceLinger)
		}
		m, err := sub.NextMsgWithContext(wctx)
		cancel()
		switch {
		case errors.Is(err, nats.ErrNoResponders):
			return online, nil // no edge holds a stream of the user
		case err != nil && first && ctx.Err() == nil:
			return nil, unavailable("presence", err)
		case err != nil:
			return online, nil
		}
		first = false
		var r presenceReply
		if json.Unmarshal(m.Data, &r) != nil {
			continue
		}
		for _, d := range r.Devices {
			online[d] = true
		}
	}
}
