package testenv

import (
	"context"
	"testing"
	"time"
)

func TestRedisClusterServesAndFailsOver(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := RedisCluster(t)
	t.Logf("RedisCluster(t) took %v", time.Since(start))
	ctx := context.Background()
	cc := c.Client(t)
	// Keys of every master's slots are served.
	for _, k := range []string{"a", "b", "c", "d", "e", "f"} {
		if err := cc.Set(ctx, k, "v", 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
	}
	masters := map[string]bool{}
	for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		masters[c.MasterOf(t, k).Addr] = true
	}
	if len(masters) < 2 {
		t.Fatalf("eight keys on %d masters", len(masters))
	}

	old := c.MasterOf(t, "a")
	old.Kill()
	killed := time.Now()
	promoted := c.WaitPromoted(t, old, "a", 30*time.Second)
	t.Logf("%s took over from %s %v after the kill", promoted.Addr, old.Addr, time.Since(killed).Round(time.Millisecond))
	if promoted == old {
		t.Fatal("the killed master still serves the key")
	}
	// The client learns the new map within a second (see Client).
	deadline := time.Now().Add(10 * time.Second)
	for err := cc.Set(ctx, "a", "w", 0).Err(); err != nil; err = cc.Set(ctx, "a", "w", 0).Err() {
		if time.Now().After(deadline) {
			t.Fatalf("SET after the failover: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The old master comes back as a replica of the new one.
	old.Start()
	if err := c.stateOK(); err != nil {
		t.Fatal(err)
	}
}
