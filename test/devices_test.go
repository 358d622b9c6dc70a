package test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/streams"
	"github.com/herald-push/herald/streams/streamstest"
)

// refusedWS dials a device that must be refused before the upgrade and
// returns the status and the JSON error.
func refusedWS(t *testing.T, base, user, device string) (int, herald.ErrorBody) {
	t.Helper()
	c, resp, err := tryDial(base, mint(t, user, device), device, "")
	if err == nil {
		c.Close()
		t.Fatalf("dial %s/%s: upgraded, want a refusal", user, device)
	}
	if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil {
		t.Fatalf("dial %s/%s: %v, want an HTTP refusal", user, device, err)
	}
	b, _ := io.ReadAll(resp.Body)
	var body herald.ErrorBody
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("dial %s/%s: status %d, body %q is not a JSON error: %v", user, device, resp.StatusCode, b, err)
	}
	return resp.StatusCode, body
}

// TestDevicesPerUserCap: a user's new device beyond edge.max_devices_per_user
// is refused before the upgrade with 429 too_many_devices, on the WebSocket
// and on SSE and on every edge; the user's known devices still connect, and
// other users are not affected.
func TestDevicesPerUserCap(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		c := newCluster(t, engine, func(cfg *config.Config) { cfg.Edge.MaxDevicesPerUser = 2 })
		e := newEdge(t, c)
		// A plain id and one whose key is escaped.
		for _, user := range []string{"alice", "émile@example.com"} {
			for _, dev := range []string{"phone", "laptop"} {
				dialSynced(t, e.url, user, dev, "").Close()
			}
			status, body := refusedWS(t, e.url, user, "tablet")
			if status != http.StatusTooManyRequests || body.Error.Code != herald.TooManyDevices || !strings.Contains(body.Error.Message, "edge.max_devices_per_user") {
				t.Fatalf("%s: third device: %d %+v, want 429 too_many_devices naming edge.max_devices_per_user", user, status, body)
			}
			_, resp, err := trySSE(e.url, mint(t, user, ""), "tablet", "", nil)
			if resp == nil || resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(err.Error(), `"too_many_devices"`) {
				t.Fatalf("%s: third device over SSE: %v %v, want 429 too_many_devices", user, resp, err)
			}
			// Known devices connect as before.
			dialSynced(t, e.url, user, "phone", "").Close()
		}
		// The devices are counted in JetStream, not per edge.
		e2 := newEdge(t, c)
		if status, body := refusedWS(t, e2.url, "alice", "watch"); status != http.StatusTooManyRequests || body.Error.Code != herald.TooManyDevices {
			t.Fatalf("third device on another edge: %d %+v", status, body)
		}
		dialSynced(t, e2.url, "alice", "laptop", "").Close()
		// Another user's new devices are not affected.
		dialSynced(t, e.url, "bob", "phone", "").Close()
		if n := counterValue(t, e.reg, "herald_edge_rejected_total", "too_many_devices"); n != 4 {
			t.Fatalf("herald_edge_rejected_total{code=too_many_devices} = %v, want 4", n)
		}
		// A deleted entry frees its device's slot.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		kv, err := c.js.KeyValue(ctx, streams.DevicesBucketName)
		if err != nil {
			t.Fatal(err)
		}
		if err := kv.Delete(ctx, streams.DeviceKey("alice", "laptop")); err != nil {
			t.Fatal(err)
		}
		dialSynced(t, e.url, "alice", "tablet", "").Close()
	})
}

// TestDevicesPerUserUnlimited: edge.max_devices_per_user = 0 admits any
// number of devices.
func TestDevicesPerUserUnlimited(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		c := newCluster(t, engine, func(cfg *config.Config) { cfg.Edge.MaxDevicesPerUser = 0 })
		e := newEdge(t, c)
		for _, dev := range []string{"a", "b", "c", "d"} {
			dialSynced(t, e.url, "alice", dev, "").Close()
		}
	})
}

// TestConsumerBudgetRefusesClearly: with the consumer engine, a stream at
// stream.max_consumers refuses a new device with 429 too_many_devices naming
// the setting, not with a 503 that asks to retry in a second; known devices
// still connect.
func TestConsumerBudgetRefusesClearly(t *testing.T) {
	t.Parallel()
	c := newCluster(t, config.DeliveryConsumer, func(cfg *config.Config) { cfg.Stream.MaxConsumers = 2 })
	e := newEdge(t, c)
	dialSynced(t, e.url, "alice", "phone", "").Close()
	dialSynced(t, e.url, "bob", "phone", "").Close()
	status, body := refusedWS(t, e.url, "carol", "phone")
	if status != http.StatusTooManyRequests || body.Error.Code != herald.TooManyDevices || !strings.Contains(body.Error.Message, "stream.max_consumers") {
		t.Fatalf("new device with the stream at max_consumers: %d %+v, want 429 too_many_devices naming stream.max_consumers", status, body)
	}
	dialSynced(t, e.url, "alice", "phone", "").Close()
}

// TestConsumerDevicesRecordedWithoutCap: consumer-engine devices get an
// entry in the devices bucket (which device status lists) also while there
// is no cap, so a cap set later counts them at once; known devices still
// connect.
func TestConsumerDevicesRecordedWithoutCap(t *testing.T) {
	t.Parallel()
	c := newCluster(t, config.DeliveryConsumer, func(cfg *config.Config) { cfg.Edge.MaxDevicesPerUser = 0 })
	e := newEdge(t, c)
	for _, dev := range []string{"a", "b"} {
		dialSynced(t, e.url, "alice", dev, "").Close()
	}
	capped := c.cfg
	capped.Edge.MaxDevicesPerUser = 2
	e2 := newEdgeOn(t, capped, streamstest.Connect(t, c.srv.ClientURL()))
	if status, body := refusedWS(t, e2.url, "alice", "c"); status != http.StatusTooManyRequests || body.Error.Code != herald.TooManyDevices {
		t.Fatalf("third device: %d %+v, want 429 too_many_devices", status, body)
	}
	dialSynced(t, e2.url, "alice", "a", "").Close() // known devices always connect
	dialSynced(t, e2.url, "alice", "b", "").Close()
}
