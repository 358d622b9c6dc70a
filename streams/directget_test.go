package streams_test

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald/streams"
)

func TestParseDirectGet(t *testing.T) {
	t.Parallel()
	msg := func(data string, kv ...string) *nats.Msg {
		m := &nats.Msg{Header: nats.Header{}, Data: []byte(data)}
		for i := 0; i < len(kv); i += 2 {
			m.Header.Add(kv[i], kv[i+1])
		}
		return m
	}
	const ts = "2026-11-23T10:00:00.123Z"
	cases := []struct {
		name    string
		m       *nats.Msg
		seq     uint64
		wantErr error
	}{
		{"message", msg("x", "Nats-Stream", "HERALD", "Nats-Sequence", "7", "Nats-Time-Stamp", ts, "Nats-Subject", "herald.user.a"), 7, nil},
		{"producer headers first", msg("x", "Nats-Sequence", "999", "Nats-Time-Stamp", "junk", "Nats-Sequence", "7", "Nats-Time-Stamp", ts), 7, nil},
		{"stored empty message with a status header", msg("", "Status", "404", "Nats-Sequence", "8", "Nats-Time-Stamp", ts), 8, nil},
		{"not found", msg("", "Status", "404", "Description", "Message Not Found"), 0, jetstream.ErrMsgNotFound},
		{"no stream", msg("", "Status", "503"), 0, streams.ErrNoStream},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := streams.ParseDirectGet(tc.m)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || got.Sequence != tc.seq || got.Time.IsZero() {
				t.Fatalf("got %+v, %v; want seq %d", got, err, tc.seq)
			}
		})
	}
	for _, m := range []*nats.Msg{msg("", "Status", "408", "Description", "Request Timeout"), msg(""), msg("x", "Nats-Sequence", "7", "Nats-Time-Stamp", "junk")} {
		if got, err := streams.ParseDirectGet(m); err == nil || errors.Is(err, jetstream.ErrMsgNotFound) {
			t.Errorf("parse %v = %+v, %v; want an error", m.Header, got, err)
		}
	}
}
