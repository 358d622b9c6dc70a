package edge

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestReadFrame(t *testing.T) {
	t.Parallel()
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
