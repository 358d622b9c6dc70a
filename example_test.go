package herald_test

import (
	"encoding/json"
	"fmt"

	"github.com/herald-push/herald"
)

func ExampleParseServerFrame() {
	for _, b := range []string{
		`{"type":"welcome","user":"alice","device":"phone","from":4211,"gap":true}`,
		`{"type":"message","id":"01J","user":"alice","time":"2026-11-23T10:00:00.123Z","title":"Build failed","priority":8,"seq":4211}`,
		`{"type":"synced","seq":4211}`,
	} {
		f, err := herald.ParseServerFrame([]byte(b))
		if err != nil {
			fmt.Println(err)
			continue
		}
		switch f.Type {
		case herald.TypeWelcome:
			fmt.Println("welcome from", *f.From, "gap", f.Gap)
		case herald.TypeMessage:
			fmt.Println("message", f.Seq, f.Title)
		case herald.TypeSynced:
			fmt.Println("synced up to", f.Seq)
		}
	}
	// Output:
	// welcome from 4211 gap true
	// message 4211 Build failed
	// synced up to 4211
}

func ExampleAppendAck() {
	fmt.Println(string(herald.AppendAck(nil, 4211)))
	f, err := herald.ParseClientFrame(herald.AppendAck(nil, 4211))
	fmt.Println(f.Type, f.Seq, err)
	// Output:
	// {"type":"ack","seq":4211}
	// ack 4211 <nil>
}

func ExampleWelcomeFrame() {
	from := uint64(4211)
	b, _ := json.Marshal(herald.WelcomeFrame{User: "alice", Device: "phone", From: &from})
	fmt.Println(string(b))
	// Output: {"type":"welcome","user":"alice","device":"phone","from":4211,"gap":false}
}

func ExampleCloseCode() {
	fmt.Println(herald.CloseGoingAway)
	fmt.Println(int(herald.CloseUnauthorized), herald.CloseUnauthorized.Reason())
	// Output:
	// 1001 shutting_down
	// 4001 token_expired
}
