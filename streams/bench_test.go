package streams_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/herald-push/herald/streams"
)

// benchEnvelope is a typical message: a title, a 128-byte body, a tag and
// a small data object.
func benchEnvelope() streams.Envelope {
	p := 8
	return streams.Envelope{
		ID: "01J9ZK3V6Q2W8E4R5T6Y7U8I9O", User: "alice", Time: time.Date(2026, 11, 23, 10, 0, 0, 123e6, time.UTC),
		Title: "Build failed", Body: strings.Repeat("x", 128), Priority: &p, Tags: []string{"ci"},
		Data: json.RawMessage(`{"build":42,"branch":"main"}`),
	}
}

func BenchmarkEnvelopeEncode(b *testing.B) {
	e := benchEnvelope()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEnvelopeDecode is the edge's per-delivery decode of a stored
// envelope (valid JSON, then Validate).
func BenchmarkEnvelopeDecode(b *testing.B) {
	e := benchEnvelope()
	payload, err := e.Encode()
	if err != nil {
		b.Fatal(err)
	}
	stored := time.Now()
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if d := streams.Decode(payload, 42, stored); d.Seq != 42 {
			b.Fatal("bad decode")
		}
	}
}

// BenchmarkEnvelopeDecodeRaw is the fallback for a payload that is not an
// envelope (published straight to NATS).
func BenchmarkEnvelopeDecodeRaw(b *testing.B) {
	payload := []byte(strings.Repeat("plain text ", 12))
	stored := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		_ = streams.Decode(payload, 42, stored)
	}
}

func BenchmarkSubject(b *testing.B) {
	for _, tc := range []struct{ name, user string }{
		{"plain", "alice-1234"},
		{"encoded", "alice@example.com"},
	} {
		s := streams.Subjects{}
		b.Run("user/"+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = s.User(tc.user)
			}
		})
		subj := s.User(tc.user)
		b.Run("inverse/"+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.UserFromSubject(subj); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDeviceKey(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = streams.DeviceKey("alice@example.com", "phone:1")
	}
}
