package main

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"eventlistener/internal/esfake"
	"eventlistener/internal/testenv"
)

// Three nodes behind a real HAProxy, sharing PostgreSQL, Elasticsearch (the
// test server) and Redis, under load from 8 clients that retry what was
// not acknowledged: one node, the duty holder, is killed mid-run. HAProxy
// takes it out, the others carry the load, the duties move, and once it is
// back every event that got a 202 is stored once in both stores.
func TestClusterSurvivesANodeKilledUnderLoad(t *testing.T) {
	pg := testenv.Postgres(t)
	esURL, _ := esfake.Start(t)
	r := testenv.RedisServer(t)
	index := fmt.Sprintf("events-cluster-%d", time.Now().UnixNano())
	const n = 3
	addrs, dirs, nodes := make([]string, n), make([]string, n), make([]*proc, n)
	args := func(i int) []string {
		return []string{"--database-url", pg.URL, "--elasticsearch-url", esURL, "--elasticsearch-index", index,
			"--redis-url", "redis://" + r.Addr, "--node-id", fmt.Sprint("node-", i),
			"--node-heartbeat", "500ms", "--duty-lease", "900ms", "--batch-idle", "20ms"}
	}
	for i := range n {
		addrs[i], dirs[i] = freeAddr(t), t.TempDir()
		nodes[i] = startServeAt(t, dirs[i], addrs[i], args(i)...)
	}
	hap := testenv.HAProxy(t, testenv.HAProxyConfig{Backends: map[string][]string{"el": addrs},
		HTTPCheck: true, HTTPCheckPath: "/readyz", CheckInterval: 100 * time.Millisecond})
	front := "http://" + hap.FrontendAddrs["el"] + "/v1/events"
	waitNodes(t, nodes[0], "node-0", "node-1", "node-2")

	// 8 clients post 20 events a request through HAProxy, each request
	// again until it gets its 202 (503, 502, a dropped connection).
	var acked sync.Map
	var posts, retries atomic.Int64
	stop := make(chan struct{})
	var clients sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for c := range 8 {
		clients.Add(1)
		go func() {
			defer clients.Done()
			for req := 0; ; req++ {
				select {
				case <-stop:
					return
				default:
				}
				var body bytes.Buffer
				ids := make([]string, 20)
				for i := range ids {
					ids[i] = fmt.Sprintf("c%d-r%d-e%d", c, req, i)
					fmt.Fprintf(&body, `{"id":%q,"type":"cluster.test","data":{"c":%d}}`+"\n", ids[i], c)
				}
				for {
					res, err := client.Post(front, "application/x-ndjson", bytes.NewReader(body.Bytes()))
					if err == nil {
						res.Body.Close()
						if res.StatusCode == http.StatusAccepted {
							break
						}
					}
					retries.Add(1)
					time.Sleep(20 * time.Millisecond)
				}
				posts.Add(1)
				for _, id := range ids {
					acked.Store(id, true)
				}
			}
		}()
	}

	time.Sleep(1500 * time.Millisecond)
	holder, _ := dutyHolder(t, nodes, -1)
	before := posts.Load()
	nodes[holder].cmd.Process.Kill()
	<-nodes[holder].done
	killedAt := time.Now()
	survivor := nodes[(holder+1)%n]
	var others []string
	for i := range n {
		if i != holder {
			others = append(others, fmt.Sprint("node-", i))
		}
	}
	waitNodes(t, survivor, others...)
	// The duties move to a survivor within a few seconds.
	dutyHolder(t, nodes, holder)
	tookOver := time.Since(killedAt)
	time.Sleep(1500 * time.Millisecond)
	if posts.Load()-before < 20 {
		t.Fatalf("the two nodes left carried %d requests in 1.5 s", posts.Load()-before)
	}
	// The killed node comes back where HAProxy expects it, on its WAL.
	nodes[holder] = startServeAt(t, dirs[holder], addrs[holder], args(holder)...)
	waitNodes(t, survivor, "node-0", "node-1", "node-2")
	time.Sleep(time.Second)
	close(stop)
	clients.Wait()

	want := 0
	acked.Range(func(_, _ any) bool { want++; return true })
	t.Logf("%d requests acknowledged (%d events), %d retries; the duties moved %s after the kill",
		posts.Load(), want, retries.Load(), tookOver.Round(10*time.Millisecond))
	// Every acknowledged event, once (the id is the primary key; a request
	// whose answer was lost in the kill and was sent again is stored once
	// too), and Elasticsearch holds as many.
	var missing int
	deadline := time.Now().Add(30 * time.Second)
	for {
		stored := map[string]bool{}
		for _, id := range strings.Fields(pg.Psql(t, `SELECT id FROM events`)) {
			stored[id] = true
		}
		missing = 0
		acked.Range(func(k, _ any) bool {
			if !stored[k.(string)] {
				missing++
			}
			return true
		})
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if missing > 0 {
		t.Fatalf("%d acknowledged events are not in PostgreSQL", missing)
	}
	rows := pg.Psql(t, `SELECT count(*) FROM events`)
	var total int
	fmt.Sscan(rows, &total)
	waitDocs(t, esURL, index, total)
	for _, p := range nodes {
		p.stop(t)
	}
}
