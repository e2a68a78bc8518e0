package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"eventlistener/internal/testenv"
)

// A Redis Cluster of three masters with replicas: pub/sub messages
// (classic on one node, sharded on the other) and stream entries are
// stored; the master that owns the stream and the sharded channel is
// killed, and both go on after its replica is promoted. The gaps are
// measured and reported.
func TestRedisClusterPubSubAndStreamsSurviveAMasterKill(t *testing.T) {
	pg := testenv.Postgres(t)
	rc := testenv.RedisCluster(t)
	cc := rc.Client(t)
	ctx := context.Background()
	seeds := strings.Join(rc.Addrs, ",")
	// One hash tag: the stream and the sharded channel live on one shard.
	const stream, sharded, classic = "{s}orders", "{s}jobs", "news"
	common := []string{"--database-url", pg.URL, "--redis-cluster", seeds, "--batch-idle", "20ms", "--log-level", "info"}
	a := startServe(t, append([]string{"--node-id", "a", "--redis-channels", classic, "--redis-streams", stream}, common...)...)
	// Another cluster name: its own duty lease, so it runs its subscriber too.
	b := startServe(t, append([]string{"--node-id", "b", "--cluster-name", "other", "--redis-channels", sharded, "--redis-sharded"}, common...)...)

	// Pub/sub runs on the duty holder only: publish until the messages
	// arrive (the lease settles first). It returns when the first stored
	// one was published.
	publishUntilStored := func(publish func(context.Context, string, any) *redis.IntCmd, channel, prefix string, within time.Duration) (time.Time, error) {
		deadline := time.Now().Add(within)
		sent := map[string]time.Time{}
		for i := 0; ; i++ {
			id := fmt.Sprintf("%s-%d", prefix, i)
			if publish(ctx, channel, fmt.Sprintf(`{"id":%q,"type":"t"}`, id)).Err() == nil {
				sent[id] = time.Now()
			}
			stored := storedIDs(t, pg)
			for j := 0; j <= i; j++ {
				if at, ok := sent[fmt.Sprintf("%s-%d", prefix, j)]; ok && stored[fmt.Sprintf("%s-%d", prefix, j)] {
					return at, nil
				}
			}
			if time.Now().After(deadline) {
				return time.Time{}, fmt.Errorf("no message on %s stored within %v", channel, within)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	must := func(at time.Time, err error) time.Time {
		if err != nil {
			t.Fatal(err)
		}
		return at
	}
	must(publishUntilStored(cc.Publish, classic, "news-before", 30*time.Second))
	must(publishUntilStored(cc.SPublish, sharded, "jobs-before", 30*time.Second))
	prod := newProducer(cc, stream)
	for range 1000 {
		if err := prod.add(ctx); err != nil {
			t.Fatal(err)
		}
	}
	waitStored(t, pg, cc, stream, prod.acked(), nil, 30*time.Second)

	// Kill the master of the stream's shard.
	old := rc.MasterOf(t, stream)
	prod.run(time.Millisecond)
	killed := time.Now()
	old.Kill()
	promoted := rc.WaitPromoted(t, old, stream, 30*time.Second)
	promotedIn := time.Since(killed)
	// The three probes at once: each publishes from the kill on, and the
	// gap is until the first message that gets stored was published.
	type probe struct {
		at  time.Time
		err error
	}
	news, jobs := make(chan probe, 1), make(chan probe, 1)
	go func() {
		at, err := publishUntilStored(cc.Publish, classic, "news-after", 30*time.Second)
		news <- probe{at, err}
	}()
	go func() {
		at, err := publishUntilStored(cc.SPublish, sharded, "jobs-after", 30*time.Second)
		jobs <- probe{at, err}
	}()
	// The stream: the producer's entries; the first stored after the kill.
	streamAt := time.Time{}
	for deadline := time.Now().Add(30 * time.Second); streamAt.IsZero(); {
		stored := storedIDs(t, pg)
		prod.mu.Lock()
		for id, at := range prod.at {
			if at.After(killed) && stored[id] && (streamAt.IsZero() || at.Before(streamAt)) {
				streamAt = at
			}
		}
		prod.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("no entry added after the kill was stored within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	n, j := <-news, <-jobs
	newsAt, jobsAt := must(n.at, n.err), must(j.at, j.err)
	// Later entries are stored too, and stored once (checked below).
	time.Sleep(time.Second)
	prod.halt()
	ids := prod.acked()
	want := keptBy(t, cc, stream, ids)
	waitStored(t, pg, cc, stream, want, nil, 60*time.Second)
	a.stop(t)
	b.stop(t)
	t.Logf("master %s killed; replica %s promoted %v later", old.Addr, promoted.Addr, promotedIn.Round(time.Millisecond))
	t.Logf("gaps after the kill (until the first message or entry that was stored had been sent): classic pub/sub %v, sharded pub/sub %v, the stream %v",
		newsAt.Sub(killed).Round(time.Millisecond), jobsAt.Sub(killed).Round(time.Millisecond), streamAt.Sub(killed).Round(time.Millisecond))
	t.Logf("stream: %d entries acked by Redis, %d kept after the failover, all stored; %d lost by Redis with its master; %d XADDs failed during the outage",
		len(ids), len(want), len(ids)-len(want), prod.fails)
}
