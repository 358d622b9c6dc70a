package client_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/edge/client"
	"github.com/herald-push/herald/edge/token"
)

// exampleEdge starts an embedded NATS server and an edge for the Example;
// stop shuts both down.
func exampleEdge() (url string, publish func(user, body string), stop func()) {
	h, err := startHarness(config.DeliveryLive, nil)
	if err != nil {
		panic(err)
	}
	e, err := h.startEdge("127.0.0.1:0")
	if err != nil {
		h.close()
		panic(err)
	}
	publish = func(user, body string) {
		if _, err := h.publish(user, body); err != nil {
			panic(err)
		}
	}
	return e.url, publish, h.close
}

// A device that prints each message and marks it processed. A new device
// receives what is published once it is connected; with a position in
// its store, it would first receive what it missed.
func Example() {
	edgeURL, publish, stop := exampleEdge()
	defer stop()

	connected := make(chan struct{}, 1)
	c, err := client.New(client.Options{
		URLs:   []string{edgeURL},
		Device: "phone",
		Token: func(context.Context) (string, error) {
			// Ask your backend; here the token is minted with the edge's secret.
			return token.Mint(testSecret, "alice", "phone", time.Hour)
		},
		OnEvent: func(e client.Event) {
			if e.Kind == client.EventConnected {
				select {
				case connected <- struct{}{}:
				default:
				}
			}
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()

	<-connected
	publish("alice", "hello")
	publish("alice", "world")
	for m := range c.Messages() {
		fmt.Println(m.Seq, m.Body)
		m.Done()
		if m.Body == "world" {
			cancel() // Run saves the position, closes the connection and Messages
		}
	}
	fmt.Println("Run:", <-errc)
	// Output:
	// 1 hello
	// 2 world
	// Run: <nil>
}

func ExampleFileStore() {
	dir, err := os.MkdirTemp("", "herald-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "position.json")
	ctx := context.Background()

	s := &client.FileStore{Path: path, User: "alice", Device: "phone"}
	_ = s.Save(ctx, 4211)
	b, _ := os.ReadFile(path)
	fmt.Print(string(b))

	// A client started later on the same file resumes after 4211.
	seq, err := (&client.FileStore{Path: path, User: "alice", Device: "phone"}).Load(ctx)
	fmt.Println(seq, err)
	// Another device refuses the file.
	_, err = (&client.FileStore{Path: path, User: "alice", Device: "laptop"}).Load(ctx)
	fmt.Println(err != nil)
	// Output:
	// {"user":"alice","device":"phone","seq":4211}
	// 4211 <nil>
	// true
}
