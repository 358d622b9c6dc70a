package streams

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestIDs(t *testing.T) {
	t.Parallel()
	g := NewIDGen()
	at := time.Date(2026, 11, 23, 10, 0, 0, 123e6, time.UTC)
	var ids []string
	seen := map[string]bool{}
	for i := range 10000 {
		// Many ids per millisecond, and one step back in time.
		ts := at.Add(time.Duration(i/1000) * time.Millisecond)
		if i == 5000 {
			ts = at
		}
		id := g.Next(ts)
		if len(id) != idLen || strings.Trim(id, crockford) != "" || seen[id] {
			t.Fatalf("id %d = %q: bad length, alphabet or repeated", i, id)
		}
		seen[id] = true
		ids = append(ids, id)
	}
	if !sort.StringsAreSorted(ids) {
		t.Error("ids are not increasing")
	}
	// The first 10 characters encode the millisecond timestamp.
	ms, err := decodeTime(ids[0])
	if err != nil || ms != at.UnixMilli() {
		t.Errorf("timestamp of %s = %d, %v; want %d", ids[0], ms, err, at.UnixMilli())
	}
	// Fresh generators at a later millisecond sort after.
	if later := NewIDGen().Next(at.Add(time.Hour)); later <= ids[len(ids)-1] {
		t.Errorf("%s sorts before %s", later, ids[len(ids)-1])
	}
}

func TestEncodeID(t *testing.T) {
	t.Parallel()
	cases := []struct {
		ms     uint64
		hi     uint16
		lo     uint64
		want   string
		reason string
	}{
		{0, 0, 0, strings.Repeat("0", 26), "zero"},
		{1<<48 - 1, 1<<16 - 1, 1<<64 - 1, "7" + strings.Repeat("Z", 25), "max"},
		{0, 0, 1, strings.Repeat("0", 25) + "1", "one"},
		{1, 0, 0, "000000000100000000000000000"[:26], "ms 1"},
	}
	for _, tc := range cases {
		if got := encodeID(tc.ms, tc.hi, tc.lo); got != tc.want {
			t.Errorf("%s: encodeID = %s, want %s", tc.reason, got, tc.want)
		}
	}
}

// decodeTime reads the 48-bit millisecond timestamp of an id.
func decodeTime(id string) (int64, error) {
	var v int64
	for _, c := range id[:10] {
		i := strings.IndexRune(crockford, c)
		if i < 0 {
			return 0, fmt.Errorf("bad digit %q", c)
		}
		v = v<<5 | int64(i)
	}
	return v, nil // 10 digits are the top 50 bits of 130: 2 zero bits, then the 48-bit time
}
