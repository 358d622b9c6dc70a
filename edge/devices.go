package edge

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald/streams"
)

// checkDeviceCap admits a new device of user unless the user has max
// devices already (max ≤ 0: no cap). Devices are the user's keys in the
// devices bucket, so a device counts until its entry expires (the device
// TTL after its last use). The count and the new device's first write are
// not atomic: first connects of one user that race each other can pass the
// cap together, by at most the number racing.
func checkDeviceCap(ctx context.Context, js jetstream.JetStream, user string, max int) error {
	if max <= 0 {
		return nil
	}
	n, err := countDevices(ctx, js, user, max)
	if err != nil {
		return unavailable("count the devices of "+streams.LogUser(user), err)
	}
	if n >= max {
		return fmt.Errorf("%w: %d of %d", ErrTooManyDevices, n, max)
	}
	return nil
}

// countDevices counts user's keys in the devices bucket, up to max. It reads
// them with direct gets, which any replica of the bucket answers, so that
// new devices do not add requests to the bucket's leader. The bucket keeps
// one message per key (history 1): its latest value, or a delete marker,
// which does not count.
func countDevices(ctx context.Context, js jetstream.JetStream, user string, max int) (int, error) {
	dg := streams.NewDirectGet(js, "KV_"+streams.DevicesBucketName)
	subject := "$KV." + streams.DevicesBucketName + "." + streams.DeviceKeyFilter(user)
	n := 0
	for from := uint64(0); n < max; {
		msgs, err := dg.Batch(ctx, subject, from, max-n, 64<<10)
		if err != nil {
			return 0, err
		}
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			if streams.LastHeader(m.Header, "KV-Operation") == "" { // not DEL or PURGE
				n++
			}
			from = m.Sequence + 1
		}
	}
	return n, nil
}
