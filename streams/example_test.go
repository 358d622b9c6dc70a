package streams_test

import (
	"fmt"
	"time"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/streams"
)

func ExampleToken() {
	fmt.Println(streams.Token("alice"))
	fmt.Println(streams.Token("émile@example.com"))
	// Output:
	// alice
	// ~w6ltaWxlQGV4YW1wbGUuY29t
}

func ExampleUserFromToken() {
	user, err := streams.UserFromToken("~YS5iKmM-ZA")
	fmt.Println(user, err)
	// Output: a.b*c>d <nil>
}

func ExampleSubjects_User() {
	fmt.Println(streams.Subjects{}.User("alice"))
	fmt.Println(streams.Subjects{Prefix: "acme"}.User("a.b"))
	// Output:
	// herald.user.alice
	// acme.user.~YS5i
}

func ExampleValidateDevice() {
	fmt.Println(streams.ValidateDevice("phone-1"))
	fmt.Println(streams.ValidateDevice("my phone"))
	// Output:
	// <nil>
	// invalid device id: device id may only contain A-Z a-z 0-9 _ . : -
}

func ExampleLogUser() {
	fmt.Println(streams.LogUser("alice"))
	// Output: u:2bd806c97f0e
}

// ExampleSubjects_NewMsg is the write of a producer that publishes straight
// to NATS (docs/producer-api.md): js.PublishMsg(ctx, msg) stores it.
func ExampleSubjects_NewMsg() {
	env := herald.Envelope{ID: "deploy-42", User: "alice", Time: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), Title: "Deployed", Body: "v1.4.2"}
	if err := env.Validate(); err != nil {
		panic(err)
	}
	payload, err := env.Encode()
	if err != nil {
		panic(err)
	}
	msg := streams.Subjects{}.NewMsg("alice", env.ID, payload, streams.Lifecycle{})
	fmt.Println(msg.Subject)
	fmt.Println(msg.Header.Get("Nats-Msg-Id"))
	fmt.Println(string(msg.Data))
	// Output:
	// herald.user.alice
	// alice:deploy-42
	// {"id":"deploy-42","user":"alice","time":"2026-11-23T10:00:00Z","title":"Deployed","body":"v1.4.2","priority":5}
}
