package main

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"eventlistener/internal/testenv"
)

// nodesOf asks a node's GET /v1/nodes for the ids of the cluster.
func nodesOf(t *testing.T, p *proc) []string {
	t.Helper()
	res, err := http.Get(p.admin + "/v1/nodes")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var c struct {
		Alone bool
		Nodes []struct{ ID, Addr, Role string }
	}
	if res.StatusCode != 200 || json.Unmarshal(raw, &c) != nil {
		t.Fatalf("GET /v1/nodes: %d %s", res.StatusCode, raw)
	}
	var ids []string
	for _, n := range c.Nodes {
		ids = append(ids, n.ID)
	}
	return ids
}

func waitNodes(t *testing.T, p *proc, want ...string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := nodesOf(t, p)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /v1/nodes lists %v, want %v", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Nodes sharing a Redis see each other: a node killed drops out when its
// entry expires, a restarted one takes its entry back, a stopped one
// leaves at once.
func TestNodeRegistry(t *testing.T) {
	r := testenv.RedisServer(t)
	args := []string{"--redis-url", "redis://" + r.Addr, "--node-heartbeat", "500ms", "--batch-idle", "10ms"}
	a := startServe(t, append(args, "--node-id", "node-a")...)
	bDir := t.TempDir()
	b := startServeIn(t, bDir, append(args, "--node-id", "node-b")...)
	waitNodes(t, a, "node-a", "node-b")
	waitNodes(t, b, "node-a", "node-b")

	b.cmd.Process.Kill() // no goodbye: its entry expires (five heartbeats)
	<-b.done
	waitNodes(t, a, "node-a")
	b = startServeIn(t, bDir, append(args, "--node-id", "node-b")...)
	waitNodes(t, a, "node-a", "node-b")
	if !strings.Contains(b.out.String(), "node registry: this node is registered") {
		t.Errorf("the restarted node did not log its registration:\n%s", b.out.String())
	}

	a.stop(t) // a clean stop leaves the registry at once
	if got := nodesOf(t, b); !slices.Equal(got, []string{"node-b"}) {
		t.Fatalf("right after node-a stopped, node-b lists %v", got)
	}
	b.stop(t)
}

// Without Redis a node runs alone and says so.
func TestNodeAlone(t *testing.T) {
	p := startServe(t)
	res, err := http.Get(p.admin + "/v1/nodes")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(raw), `"alone":true`) || !strings.Contains(string(raw), "no Redis is configured") {
		t.Fatalf("GET /v1/nodes without Redis: %d %s", res.StatusCode, raw)
	}
	if !strings.Contains(p.out.String(), "this node runs alone") {
		t.Errorf("the log does not say the node runs alone")
	}
	p.stop(t)
}
