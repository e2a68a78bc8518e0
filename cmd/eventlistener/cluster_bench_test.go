package main

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"eventlistener/internal/testenv"
)

// BenchmarkClusterThroughHAProxy measures events stored per second through
// HAProxy with 1, 2 and 3 nodes sharing one PostgreSQL and one Redis: 8
// clients post NDJSON requests of 1,000 events for 5 s, and the clock
// stops when the last row is in. Everything shares this machine's cores,
// and PostgreSQL runs with fsync off (testenv): the figures are a ratio
// between node counts, not a capacity.
//
//	go test -run '^$' -bench ClusterThroughHAProxy -benchtime 1x ./cmd/eventlistener/
func BenchmarkClusterThroughHAProxy(b *testing.B) {
	for _, n := range []int{1, 2, 3} {
		b.Run(fmt.Sprint("nodes=", n), func(b *testing.B) {
			for range b.N {
				eps := clusterRun(b, n, 5*time.Second)
				b.ReportMetric(eps, "events/s")
			}
		})
	}
}

func clusterRun(b *testing.B, n int, d time.Duration) float64 {
	pg := testenv.Postgres(b)
	r := testenv.RedisServer(b)
	// The engine as it ships, not the race-detecting build of the tests.
	bin, err := plainBinary()
	if err != nil {
		b.Fatal(err)
	}
	addrs := make([]string, n)
	for i := range n {
		addrs[i] = freeAddr(b)
		startBinaryAt(b, bin, b.TempDir(), addrs[i], "--database-url", pg.URL, "--redis-url", "redis://"+r.Addr, "--node-id", fmt.Sprint("node-", i))
	}
	hap := testenv.HAProxy(b, testenv.HAProxyConfig{Backends: map[string][]string{"el": addrs},
		HTTPCheck: true, HTTPCheckPath: "/readyz"})
	front := "http://" + hap.FrontendAddrs["el"] + "/v1/events"
	var body bytes.Buffer
	for i := range 1000 {
		fmt.Fprintf(&body, `{"type":"bench","data":{"i":%d,"payload":"%s"}}`+"\n", i, strings.Repeat("x", 100))
	}
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(start) < d {
				res, err := http.Post(front, "application/x-ndjson", bytes.NewReader(body.Bytes()))
				if err != nil {
					continue
				}
				res.Body.Close()
				if res.StatusCode == http.StatusAccepted {
					mu.Lock()
					accepted += 1000
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for {
		got, _ := strconv.Atoi(pg.Psql(b, `SELECT count(*) FROM events`))
		if got >= accepted {
			break
		}
		if time.Since(start) > d+2*time.Minute {
			b.Fatalf("%d of %d events stored after two minutes", got, accepted)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return float64(accepted) / time.Since(start).Seconds()
}
