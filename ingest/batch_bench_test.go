package ingest_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// tinyItemsBody returns a batch body of about size bytes made of the
// smallest items, `{}`: the shape of a body that is cheap to send and was
// expensive to decode.
func tinyItemsBody(size int) []byte {
	var b bytes.Buffer
	b.Grow(size + 16)
	b.WriteString(`{"messages":[{}`)
	for b.Len() < size-2 {
		b.WriteString(`,{}`)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// fullBatchBody returns a batch of n valid messages with a body of pad
// bytes each.
func fullBatchBody(n, pad int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"messages":[`)
	body := strings.Repeat("x", pad)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"user":"u%d","body":"%d %s"}`, i%50, i, body)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// BenchmarkBatchMemory reports what one batch request costs the handler
// (B/op is the bytes allocated per request): an 8 MiB body of tiny items,
// refused for exceeding ingest.max_batch, a full batch of 1000 small
// messages, and one of 1000 messages of 8 KiB (an 8 MiB body), both stored
// in JetStream.
//
//	go test -run xxx -bench BatchMemory -benchtime 20x ./ingest/
func BenchmarkBatchMemory(b *testing.B) {
	f := newFixture(b, fixtureOpts{})
	mux := f.mux()
	for _, bc := range []struct {
		name   string
		body   []byte
		status int
	}{
		{"8MiB-tiny-items", tinyItemsBody(8 << 20), http.StatusRequestEntityTooLarge},
		{"1000-small-messages", fullBatchBody(1000, 10), http.StatusOK},
		{"1000-8KiB-messages", fullBatchBody(1000, 8<<10-60), http.StatusOK},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.body)))
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/v1/messages", bytes.NewReader(bc.body))
				req.Header.Set("Authorization", "Bearer "+producerKey)
				rec := httptest.NewRecorder()
				mux.ServeHTTP(rec, req)
				if rec.Code != bc.status {
					b.Fatalf("status %d, want %d: %.200s", rec.Code, bc.status, rec.Body.Bytes())
				}
			}
		})
	}
}
