package client_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/herald-push/herald/ingest/client"
)

// A producer publishes a message that expires in a day, retried safely
// with its idempotency key, and tells a refusal from a network error.
func Example() {
	c, err := client.New(client.Options{URL: "http://127.0.0.1:8080", Credential: "the-producer-key-0123"})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := c.Publish(ctx, "alice", client.Message{Title: "Build 42", Body: "passed", TTL: 24 * time.Hour, IdempotencyKey: "build-42"})
	var refused *client.Error
	switch {
	case errors.As(err, &refused):
		fmt.Println("refused:", refused.Status, refused.Code)
	case err != nil:
		fmt.Println("not sent:", err)
	default:
		fmt.Println("stored as seq", p.Seq)
	}
}
