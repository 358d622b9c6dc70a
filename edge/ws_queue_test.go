package edge

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestReadFrame(t *testing.T) {
	small := make([]byte, smallFrame)
	for _, tc := range []struct {
		name  string
		n     int
		limit int
		err   error
	}{
		{"empty", 0, 4096, nil},
		{"ack", 25, 4096, nil},
		{"fills small", smallFrame, 4096, nil},
		{"larger than small", smallFrame + 1, 4096, nil},
		{"at the limit", 4096, 4096, nil},
		{"over the limit", 4097, 4096, errFrameTooBig},
		{"tiny limit, at it", 10, 10, nil},
		{"tiny limit, over it", 11, 10, errFrameTooBig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := strings.Repeat("a", tc.n)
			buf := small[:min(smallFrame, tc.limit+1)]
			got, err := readFrame(strings.NewReader(in), buf, tc.limit)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err == nil && !bytes.Equal(got, []byte(in)) {
				t.Errorf("frame of %d bytes, want %d", len(got), tc.n)
			}
		})
	}
}

// TestWSQueueBound checks that the send queue refuses frames beyond its
// bound, counts frames taken but not yet written, and keeps a small spare
// slice for the next batch.
func TestWSQueueBound(t *testing.T) {
	c := newWSConn(nil, nil, wsOptions{sendQueue: 3})
	for i := range 3 {
		if !c.enqueue([]byte{byte(i)}) {
			t.Fatalf("enqueue %d refused", i)
		}
	}
	if c.enqueue([]byte("x")) {
		t.Fatal("a fourth frame was queued")
	}
	batch := c.take()
	if len(batch) != 3 || batch[0][0] != 0 || batch[2][0] != 2 {
		t.Fatalf("take = %v", batch)
	}
	if c.enqueue([]byte("x")) {
		t.Fatal("frames taken but not written still count")
	}
	for i := range batch {
		c.written(batch, i == len(batch)-1)
	}
	if !c.enqueue([]byte("y")) {
		t.Fatal("the queue did not free up after the writes")
	}
	if got := c.take(); len(got) != 1 || string(got[0]) != "y" || cap(got) != cap(batch) {
		t.Errorf("take = %q (cap %d), want the spare slice with y", got, cap(got))
	}
}
