package edge

import (
	"sync"

	"github.com/nats-io/nats.go"
)

// dispatchQueue is the capacity of the channel every subscription of a
// dispatcher delivers into. When it is full the client library drops the
// message and counts it on its subscription.
const dispatchQueue = 1 << 16

// dispatcher serves many core subscriptions with one channel and one
// goroutine, rather than a goroutine each (nats.go runs one per async
// subscription), and so also keeps the messages of each subscription in
// order. The goroutine runs while there is at least one subscription:
// start, called before each subscribe, starts it when needed; stop, after
// each unsubscribe (or failed subscribe), lets it end with the last one.
// The live engine's user subscriptions have one, the control subjects of
// a Server another.
type dispatcher struct {
	// handle is called on the dispatcher's goroutine for each message; it
	// must not block. Set before the first start.
	handle func(*nats.Msg)
	// capacity replaces dispatchQueue when positive; set before the
	// first start.
	capacity int

	mu      sync.Mutex
	ch      chan *nats.Msg // made with the first subscription, then kept
	subs    int            // subscriptions made and not yet unsubscribed
	running bool
	idle    chan struct{} // one slot: subs reached zero
}

// start counts one subscription about to be made and returns the channel
// it must deliver into, starting the goroutine if it is not running.
func (d *dispatcher) start() chan *nats.Msg {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ch == nil {
		n := dispatchQueue
		if d.capacity > 0 {
			n = d.capacity
		}
		d.ch = make(chan *nats.Msg, n)
		d.idle = make(chan struct{}, 1)
	}
	d.subs++
	if !d.running {
		d.running = true
		go d.run(d.ch)
	}
	return d.ch
}

// stop counts one subscription gone.
func (d *dispatcher) stop() {
	d.mu.Lock()
	d.subs--
	last := d.subs == 0
	d.mu.Unlock()
	if last {
		select {
		case d.idle <- struct{}{}:
		default:
		}
	}
}

// run hands each message of ch to handle until there is no subscription
// left; then it drops what is still queued (every message in ch is from a
// subscription that is gone) and returns.
func (d *dispatcher) run(ch chan *nats.Msg) {
	for {
		select {
		case m := <-ch:
			d.handle(m)
		case <-d.idle:
			d.mu.Lock()
			if d.subs > 0 {
				d.mu.Unlock()
				continue
			}
			d.running = false
			for len(ch) > 0 {
				<-ch
			}
			d.mu.Unlock()
			return
		}
	}
}
