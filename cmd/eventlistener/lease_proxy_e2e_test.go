package main

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"eventlistener/infra/haproxy"
	"eventlistener/internal/testenv"
)

// Two nodes without a VIP share Redis and watch one HAProxy; the duty
// holder is frozen past its lease again and again while a server is
// disabled and enabled: each change is stored once, by whichever node
// held the duties, and none is lost.
func TestProxyChangesStoredOnceAcrossLeaseHandovers(t *testing.T) {
	pg := testenv.Postgres(t)
	r := testenv.RedisServer(t)
	backend := testenv.TestHTTPServer(t)
	hap := testenv.HAProxy(t, testenv.HAProxyConfig{Backends: map[string][]string{"web": {backend.Addr}}, CheckInterval: 100 * time.Millisecond})
	runtime := &haproxy.Client{RuntimeAddr: hap.SocketPath}
	nodes := make([]*proc, 2)
	for i := range nodes {
		nodes[i] = startServe(t, "--database-url", pg.URL, "--redis-url", "redis://"+r.Addr, "--node-id", fmt.Sprint("node-", i),
			"--haproxy-stats-url", hap.StatsURL, "--haproxy-poll-interval", "100ms",
			"--duty-lease", "900ms", "--node-heartbeat", "500ms", "--batch-idle", "20ms")
	}
	holder := func(exclude int) int {
		t.Helper()
		i, _ := dutyHolder(t, nodes, exclude)
		return i
	}
	disabled := false
	toggle := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		if disabled {
			err = runtime.EnableServer(ctx, "web", "s1")
		} else {
			err = runtime.DisableServer(ctx, "web", "s1")
		}
		if err != nil {
			t.Fatal(err)
		}
		disabled = !disabled
	}

	h := holder(-1)
	time.Sleep(500 * time.Millisecond) // both nodes have polled HAProxy
	const rounds = 4
	for range rounds {
		toggle() // seen by the holder
		time.Sleep(300 * time.Millisecond)
		nodes[h].cmd.Process.Signal(syscall.SIGSTOP)
		next := holder(h)
		toggle() // seen by the new holder, and by the frozen one when it wakes
		time.Sleep(300 * time.Millisecond)
		nodes[h].cmd.Process.Signal(syscall.SIGCONT)
		time.Sleep(500 * time.Millisecond)
		h = next
	}
	// Each change stored once, in order: MAINT and UP alternate.
	want := strings.TrimSuffix(strings.Repeat("MAINT,UP,", rounds), ",")
	waitQuery(t, pg, `SELECT string_agg(data->>'new_status', ',' ORDER BY time) FROM events
		WHERE type = 'haproxy.server.status_changed' AND subject = 'web/s1'`, want)
	for _, p := range nodes {
		p.stop(t)
	}
}
