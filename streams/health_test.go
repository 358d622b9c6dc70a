package streams_test

import (
	"testing"
	"time"

	"github.com/herald-push/herald/streams"
)

func TestReplicaState(t *testing.T) {
	for _, tc := range []struct {
		name             string
		offline, current bool
		active           time.Duration
		leader           bool
		want             string
	}{
		{"current", false, true, 200 * time.Millisecond, true, streams.ReplicaCurrent},
		{"current, active 0", false, true, 0, true, streams.ReplicaCurrent},
		{"catching up", false, false, 300 * time.Millisecond, true, streams.ReplicaBehind},
		{"offline as the cluster says", true, false, time.Second, true, streams.ReplicaOffline},
		// A server killed without a goodbye: not offline in the cluster
		// info, but unheard.
		{"never heard from by this leader", false, false, 0, true, streams.ReplicaOffline},
		{"unheard for longer than 5 s", false, false, 12 * time.Second, true, streams.ReplicaOffline},
		{"current as the info says, unheard for 9 s", false, true, 9 * time.Second, true, streams.ReplicaOffline},
		// During an election the info comes from a follower: active says
		// nothing.
		{"no leader, never heard", false, false, 0, false, streams.ReplicaBehind},
		{"no leader, offline as the cluster says", true, false, 0, false, streams.ReplicaOffline},
	} {
		if got := streams.ReplicaState(tc.offline, tc.current, tc.active, tc.leader); got != tc.want {
			t.Errorf("%s: ReplicaState(%v, %v, %v, leader %v) = %s, want %s", tc.name, tc.offline, tc.current, tc.active, tc.leader, got, tc.want)
		}
	}
}
