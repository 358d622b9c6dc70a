package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/edge/token"
	"github.com/herald-push/herald/streams"
	"github.com/herald-push/herald/streams/streamstest"
)

// BenchmarkFanout measures publish→deliver latency and deliveries/s with
// 200 users × 2 devices on one edge: b.N messages spread over the users,
// each delivered to both devices, which ack every message.
//
//	go test -run xxx -bench Fanout -benchtime 20000x ./test/
//
// BenchmarkScale in cmd/herald compares both engines at 10k connected
// devices (2000 msg/s, server memory per device, connect and shutdown
// times); `herald bench` runs the same scenarios against any deployment.
func BenchmarkFanout(b *testing.B) {
	for _, engine := range benchEngines {
		b.Run(engine, func(b *testing.B) { benchFanout(b, engine, 200, 2) })
	}
}

// benchEngines lists the engines the benchmarks compare.
var benchEngines = []string{config.DeliveryConsumer, config.DeliveryLive}

func benchFanout(b *testing.B, engine string, users, devices int) {
	cfg := config.Default()
	cfg.Auth.JWTSecret = testSecret
	cfg.Edge.Delivery = engine
	srv := streamstest.RunServer(b)
	nc := streamstest.Connect(b, srv.ClientURL())
	streamstest.Apply(b, nc, cfg.Stream) // the stream and the devices bucket
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}
	hs := newEdgeOn(b, cfg, streamstest.Connect(b, srv.ClientURL())).hs

	total := b.N * devices
	lat := make(chan time.Duration, total)
	var wg sync.WaitGroup
	var conns []*websocket.Conn
	ready := make(chan struct{}, users*devices)
	for u := 0; u < users; u++ {
		for d := 0; d < devices; d++ {
			user, dev := fmt.Sprintf("u%d", u), fmt.Sprintf("d%d", d)
			tok, err := token.Mint(testSecret, user, dev, time.Hour)
			if err != nil {
				b.Fatal(err)
			}
			h := http.Header{"Authorization": {"Bearer " + tok}}
			conn, _, err := websocket.DefaultDialer.Dial(strings.Replace(hs.URL, "http", "ws", 1)+"/v1/ws?device="+dev, h)
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, conn)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					_, msg, err := conn.ReadMessage()
					if err != nil {
						return
					}
					var f struct {
						Type string    `json:"type"`
						Seq  uint64    `json:"seq"`
						Time time.Time `json:"time"`
					}
					if json.Unmarshal(msg, &f) != nil {
						continue
					}
					switch f.Type {
					case "synced":
						ready <- struct{}{}
					case "message":
						lat <- time.Since(f.Time)
						_ = conn.WriteJSON(map[string]any{"type": "ack", "seq": f.Seq})
					}
				}
			}()
		}
	}
	b.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
	})
	for i := 0; i < users*devices; i++ {
		<-ready
	}
	body := strings.Repeat("x", 128)
	b.ResetTimer()
	start := time.Now()
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		user := fmt.Sprintf("u%d", i%users)
		e := streams.Envelope{User: user, Time: time.Now(), Body: body}
		p, err := e.Encode()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := js.PublishAsync(streams.Subjects{}.User(user), p); err != nil {
			b.Fatal(err)
		}
		if i%500 == 499 {
			select {
			case <-js.PublishAsyncComplete():
			case <-ctx.Done():
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(60 * time.Second):
		b.Fatal("publishes not acked within 60s")
	}
	all := make([]time.Duration, 0, total)
	timeout := time.After(120 * time.Second)
	for len(all) < total {
		select {
		case d := <-lat:
			all = append(all, d)
		case <-timeout:
			b.Fatalf("delivered %d of %d", len(all), total)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(all)
	b.ReportMetric(float64(total)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}
