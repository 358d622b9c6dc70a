package edge

import (
	"context"
	"fmt"
	"strings"
	"time"

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

// countDevices counts user's keys in the devices bucket, up to max.
func countDevices(ctx context.Context, js jetstream.JetStream, user string, max int) (int, error) {
	entries, err := listDevices(ctx, js, user, max)
	return len(entries), err
}

// deviceEntry is one device's entry in the devices bucket.
type deviceEntry struct {
	device  string
	value   []byte    // the position, as the engine wrote it
	written time.Time // when it was written
}

// maxListedDevices bounds the devices listed for device status.
const maxListedDevices = 1000

// listDevices returns user's entries in the devices bucket, up to max. It
// reads them with direct gets, which any replica of the bucket answers, so
// that new devices do not add requests to the bucket's leader. The bucket
// keeps one message per key (history 1): its latest value, or a delete
// marker, which is not a device.
func listDevices(ctx context.Context, js jetstream.JetStream, user string, max int) ([]deviceEntry, error) {
	dg := streams.NewDirectGet(js, "KV_"+streams.DevicesBucketName)
	prefix := "$KV." + streams.DevicesBucketName + "."
	var out []deviceEntry
	for from := uint64(0); len(out) < max; {
		msgs, err := dg.Batch(ctx, prefix+streams.DeviceKeyFilter(user), from, max-len(out), 64<<10)
		if err != nil {
			return nil, err
		}
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			from = m.Sequence + 1
			if streams.LastHeader(m.Header, "KV-Operation") != "" { // DEL or PURGE
				continue
			}
			_, device, err := streams.ParseDeviceKey(strings.TrimPrefix(m.Subject, prefix))
			if err != nil {
				continue // not written by Herald
			}
			out = append(out, deviceEntry{device: device, value: m.Data, written: m.Time})
		}
	}
	return out, nil
}
