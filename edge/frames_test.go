package edge

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/herald-push/herald/streams"
)

func TestMessageFrameShape(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 23, 10, 0, 0, 123e6, time.UTC)
	p := 8
	env := streams.Envelope{ID: "01J", User: "alice", Time: at, Title: "Build failed", Body: "main is red", Priority: &p, Tags: []string{"ci"}, Data: json.RawMessage(`{"any":"json object"}`)}
	payload, err := env.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got := string(encodeMessage(Delivery{Seq: 4211, Payload: payload, Time: at}))
	want := `{"type":"message","id":"01J","user":"alice","time":"2026-11-23T10:00:00.123Z","title":"Build failed","body":"main is red","priority":8,"tags":["ci"],"data":{"any":"json object"},"seq":4211}`
	if got != want {
		t.Errorf("message frame\n got %s\nwant %s", got, want)
	}
	if w := string(encodeWelcome(Device{"alice", "phone"}, Start{}, 0)); w != `{"type":"welcome","user":"alice","device":"phone","from":null,"gap":false}` {
		t.Errorf("welcome = %s", w)
	}
	if w := string(encodeWelcome(Device{"alice", "phone"}, Start{From: 7}, 5)); w != `{"type":"welcome","user":"alice","device":"phone","from":7,"gap":false,"read":5}` {
		t.Errorf("welcome with a read position = %s", w)
	}
	if r := string(encodeRead(5, "laptop")); r != `{"type":"read","seq":5,"device":"laptop"}` {
		t.Errorf("read frame = %s", r)
	}
}
