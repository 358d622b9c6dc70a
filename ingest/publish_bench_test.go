package ingest_test

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// BenchmarkPublishParallel sends single publishes from GOMAXPROCS×4
// concurrent producers through the HTTP handler to embedded NATS, spread
// over 200 users: the handler's throughput rather than one request's
// latency (BenchmarkPublish).
//
//	go test -run xxx -bench PublishParallel -benchtime 20000x ./ingest/
func BenchmarkPublishParallel(b *testing.B) {
	f := newFixture(b, fixtureOpts{})
	body := `{"body":"` + strings.Repeat("x", 128) + `","data":{"n":1}}`
	var n atomic.Int64
	b.SetParallelism(4)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			user := "u" + strconv.Itoa(int(n.Add(1)%200))
			req, err := http.NewRequest(http.MethodPost, f.url+userPath(user), strings.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			req.Header.Set("Authorization", "Bearer "+producerKey)
			req.Header.Set("Content-Type", "application/json")
			res, err := f.client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusCreated {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
