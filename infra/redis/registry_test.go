package redis

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"eventlistener/internal/testenv"
)

func TestRegistry(t *testing.T) {
	srv := testenv.RedisServer(t)
	ctx := context.Background()
	const ttl = 300 * time.Millisecond
	reg, err := NewRegistry(Options{URL: "redis://" + srv.Addr}, "el-test", ttl)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	sub := reg.Subscribe(ctx)
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil { // the subscription's confirmation
		t.Fatal(err)
	}
	events := sub.Channel()
	next := func(want string) NodeEvent {
		t.Helper()
		select {
		case m := <-events:
			var e NodeEvent
			if err := json.Unmarshal([]byte(m.Payload), &e); err != nil {
				t.Fatal(err)
			}
			if e.Event+" "+e.Node != want {
				t.Fatalf("announced %s %s (%s), want %s", e.Event, e.Node, e.Reason, want)
			}
			return e
		case <-time.After(5 * time.Second):
			t.Fatalf("nothing announced, want %s", want)
		}
		return NodeEvent{}
	}
	list := func() []string {
		t.Helper()
		nodes, err := reg.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, n := range nodes {
			ids = append(ids, n.ID)
		}
		return ids
	}

	start := time.Now().UTC()
	a := Node{ID: "a", Addr: "10.0.0.1:8080", StartedAt: start, Role: "duty holder", Accepting: true, Pending: 7,
		Sinks: []NodeSink{{Name: "postgres", Breaker: "closed", Lag: 7}}, UpdatedAt: start}
	b := Node{ID: "b", Addr: "10.0.0.2:8080", StartedAt: start, Role: "member", UpdatedAt: start}
	for _, n := range []Node{a, b} {
		if up, err := reg.Heartbeat(ctx, n); err != nil || !up {
			t.Fatalf("first heartbeat of %s: announced %v, %v", n.ID, up, err)
		}
		next("node.up " + n.ID)
	}
	// Heartbeats of the same run announce nothing.
	if up, err := reg.Heartbeat(ctx, a); err != nil || up {
		t.Fatalf("second heartbeat: announced %v, %v", up, err)
	}
	nodes, _ := reg.List(ctx)
	if len(nodes) != 2 || nodes[0].ID != "a" || nodes[0].Pending != 7 || nodes[0].Sinks[0].Lag != 7 || !nodes[0].Accepting || !nodes[0].StartedAt.Equal(start) {
		t.Fatalf("listed %+v", nodes)
	}

	// b stops cleanly: gone at once.
	if err := reg.Leave(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	next("node.down b")
	if ids := list(); len(ids) != 1 || ids[0] != "a" {
		t.Fatalf("after b left: %v", ids)
	}

	// a dies: its entry expires, and the first List after takes it out
	// and announces it, once.
	time.Sleep(2 * ttl)
	if ids := list(); len(ids) != 0 {
		t.Fatalf("after a's entry expired: %v", ids)
	}
	if e := next("node.down a"); e.Reason == "" {
		t.Fatal("node.down without a reason")
	}
	list()
	select {
	case m := <-events:
		t.Fatalf("announced again: %s", m.Payload)
	case <-time.After(200 * time.Millisecond):
	}

	// a restarts under the same id: one entry, announced as a restart.
	a.StartedAt, a.UpdatedAt = time.Now().UTC(), time.Now().UTC()
	if _, err := reg.Heartbeat(ctx, a); err != nil {
		t.Fatal(err)
	}
	next("node.up a")
	a.StartedAt = a.StartedAt.Add(time.Second) // restarted again before its entry expired
	if _, err := reg.Heartbeat(ctx, a); err != nil {
		t.Fatal(err)
	}
	if e := next("node.up a"); e.Reason != "restarted: took its entry back" {
		t.Fatalf("a restart announced as %q", e.Reason)
	}
	if ids := list(); len(ids) != 1 {
		t.Fatalf("a restarted node has %d entries, want 1", len(ids))
	}
}
