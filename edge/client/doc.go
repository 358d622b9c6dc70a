// Package client is the Go client of Herald's device protocol (SPEC §6 and
// §11): it connects to an edge's WebSocket as one device of a user, hands
// the application each message once and in seq order, and keeps the
// device's position so that nothing is lost across reconnects and
// restarts.
//
// A client dials the first of its URLs, with a token from its TokenSource
// and since = the position in its PositionStore (none for position 0: then
// a device the edge knows resumes after its last ack, and a new one
// receives what is published from then on). It reconnects with capped
// exponential backoff and jitter, and moves to the next URL when a dial
// fails or an edge shuts down (close 1001). It asks its TokenSource for a
// new token when an edge closes with 4001 and shortly before the token's
// exp (read from the JWT's payload, never verified), and then reconnects
// with the new one.
//
// Start from this:
//
//	c, err := client.New(client.Options{
//		URLs:   []string{"wss://push-1.example.com", "wss://push-2.example.com"},
//		Device: "phone",
//		Token:  func(ctx context.Context) (string, error) { return myBackend.HeraldToken(ctx) },
//		Store:  &client.FileStore{Path: "herald-position.json"},
//	})
//	if err != nil { … }
//	errc := make(chan error, 1)
//	go func() { errc <- c.Run(ctx) }()
//	for m := range c.Messages() { // closed when Run returns
//		show(m.Title, m.Body)
//		m.Done() // processed: acked, and saved as the position to resume from
//	}
//	err = <-errc // nil once ctx ended
//
// # Positions and acks
//
// The application marks a message processed with Message.Done (or
// Client.Processed, which is cumulative: marking N marks every earlier
// message too). The processed position is what the client saves in its
// PositionStore and sends as since when it reconnects, and it is what the
// client acks: SPEC §6 lets a client ack on delivery, but acking only what
// was processed means that a position kept by the edge (a client with a
// MemoryStore that restarts) never passes a message the application did not
// handle. Acks are cumulative and debounced: one ack (and one Save) per
// Options.AckEvery marks (default 64) or Options.AckDelay after the first
// unacked mark (default 100 ms). The edge has at most its window W
// (default 256) of unacked messages in flight per device, so an
// application that never calls Done stops receiving after W messages.
//
// Messages are at least once: after a reconnect the edge resends what the
// application had not marked processed, and the client drops every seq it
// has already handed out. After a restart, messages received but not yet
// saved as processed are delivered again.
//
// When the welcome says gap (messages after the position were already
// removed by retention), the client reports it in an EventConnected with
// Gap set and goes on from the first retained message: the application
// should refresh from its backend.
//
// # Updates, deletes and read state
//
// A producer can update or retract a message it sent (SPEC §10): the edge
// delivers a new message whose Op is herald.OpUpdate (replace the message
// whose ID is Ref with this one) or herald.OpDelete (remove it). An
// expiring message has Expires set; the edge never delivers it after that.
//
// The read position is the person's, shared by all of the user's devices:
// Client.Read(seq) says that the user has seen everything up to seq, and
// every other device of the user gets an EventRead with it (Seq, and
// Device, the one that read). EventConnected carries the position at
// connect time in Read. Read is not Done: Done is this device's delivery.
//
// # Concurrency
//
// Run owns every goroutine the client starts and returns after they have
// stopped: its own goroutine dials, reads frames and sends each message on
// Messages; one committer goroutine saves positions and writes acks; each
// connection has one goroutine that closes it (on ctx's end or a token
// refresh). Messages is buffered (Options.Buffer); when it is full, the
// reader waits, which in turn holds the edge at its window. Run closes
// Messages when it returns. Processed, Read and Message.Done are safe from any
// goroutine and never block. Options.OnEvent is called on Run's goroutine,
// in order, and no frame is read while it runs: it must return quickly.
// A Client runs once: a second Run returns an error.
package client
