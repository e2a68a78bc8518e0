package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"eventlistener/internal/testenv"
	"eventlistener/sources"
)

// producer adds entries to a stream and remembers the id each is stored
// under: its own (an event entry) or the one made from the entry id.
type producer struct {
	c   redis.UniversalClient
	key string

	mu    sync.Mutex
	ids   map[string]string    // event id -> entry id, of entries Redis acked
	at    map[string]time.Time // event id -> when XADD was sent
	n     int
	stop  chan struct{}
	done  chan struct{}
	fails int
}

func newProducer(c redis.UniversalClient, key string) *producer {
	return &producer{c: c, key: key, ids: map[string]string{}, at: map[string]time.Time{}}
}

// add adds one entry: even ones are events with their own id, odd ones
// plain fields.
func (p *producer) add(ctx context.Context) error {
	p.mu.Lock()
	i := p.n
	p.n++
	p.mu.Unlock()
	values := []any{"qty", "1", "sku", fmt.Sprint(i)}
	own := fmt.Sprintf("%s-ev-%d", p.key, i)
	if i%2 == 0 {
		values = []any{"event", fmt.Sprintf(`{"id":%q,"type":"order.created","data":{"n":%d}}`, own, i)}
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	sent := time.Now()
	entry, err := p.c.XAdd(cctx, &redis.XAddArgs{Stream: p.key, Values: values}).Result()
	if err != nil {
		return err
	}
	id := own
	if i%2 == 1 {
		id = sources.EntryEventID(p.key, entry, map[string]any{"qty": "1", "sku": fmt.Sprint(i)})
	}
	p.mu.Lock()
	p.ids[id], p.at[id] = entry, sent
	p.mu.Unlock()
	return nil
}

// run adds entries until halt, every, tolerating errors (a failover).
func (p *producer) run(every time.Duration) {
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.done)
		for {
			select {
			case <-p.stop:
				return
			default:
			}
			if err := p.add(context.Background()); err != nil {
				p.mu.Lock()
				p.fails++
				p.mu.Unlock()
				time.Sleep(10 * time.Millisecond)
			}
			if every > 0 {
				time.Sleep(every)
			}
		}
	}()
}

func (p *producer) halt() {
	close(p.stop)
	<-p.done
}

func (p *producer) acked() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]string, len(p.ids))
	for k, v := range p.ids {
		out[k] = v
	}
	return out
}

// storedIDs are the ids in the events table.
func storedIDs(t *testing.T, pg *testenv.PG) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	if pg.Psql(t, "SELECT to_regclass('events') IS NOT NULL") != "t" {
		return out // the engine makes the table in the background
	}
	for _, id := range strings.Split(pg.Psql(t, "SELECT id FROM events"), "\n") {
		if id != "" {
			out[id] = true
		}
	}
	return out
}

// waitAllStored waits until every id is in the events table, the table
// holds nothing else, and the group has nothing pending.
func waitAllStored(t *testing.T, pg *testenv.PG, c redis.UniversalClient, key string, ids map[string]string, within time.Duration) {
	t.Helper()
	waitStored(t, pg, c, key, ids, ids, within)
}

// waitStored waits until every id of want is in the events table, the
// table holds only ids of allowed (nil: anything else too), and the group
// has nothing pending.
func waitStored(t *testing.T, pg *testenv.PG, c redis.UniversalClient, key string, want, allowed map[string]string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		missing, pending := 0, int64(-1)
		if pg.Psql(t, "SELECT to_regclass('events') IS NOT NULL") == "t" {
			stored := storedIDs(t, pg)
			for id := range want {
				if !stored[id] {
					missing++
				}
			}
			if missing == 0 {
				for id := range stored {
					if _, ok := allowed[id]; !ok && allowed != nil {
						t.Fatalf("the table holds %s, which is none of the %d entries'", id, len(allowed))
					}
				}
				if p, err := c.XPending(context.Background(), key, "eventlistener").Result(); err == nil {
					pending = p.Count
				}
				if pending == 0 {
					return
				}
			}
		} else {
			missing = len(want)
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %d of %d entries not stored, %d pending", within, missing, len(want), pending)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var streamArgs = []string{"--batch-idle", "20ms", "--redis-streams", "orders", "--log-level", "info"}

// Entries written while the engine was stopped, the stream and the group
// not there yet, are all stored once it starts; malformed ones go to the
// dead-letter stream.
func TestStreamsEntriesWrittenBeforeTheStartAreStored(t *testing.T) {
	pg := testenv.Postgres(t)
	r := testenv.RedisServer(t)
	c := r.Client(t)
	ctx := context.Background()
	prod := newProducer(c, "orders")
	for range 10000 {
		if err := prod.add(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, bad := range []string{`{"type":""}`, `{"id":"x","type":"t","time":"yesterday"}`} {
		if err := c.XAdd(ctx, &redis.XAddArgs{Stream: "orders", Values: []any{"event", bad}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	p := startServe(t, append([]string{"--database-url", pg.URL, "--redis-url", "redis://" + r.Addr, "--node-id", "a"}, streamArgs...)...)
	start := time.Now()
	waitAllStored(t, pg, c, "orders", prod.acked(), 60*time.Second)
	t.Logf("10000 entries stored %v after the start", time.Since(start).Round(time.Millisecond))
	if n, err := c.XLen(ctx, "orders:dead").Result(); err != nil || n != 2 {
		t.Fatalf("dead letters: %d, %v", n, err)
	}
	waitMetric(t, p, `eventlistener_redis_stream_entries_total{outcome="dead",stream="orders"} 2`)
	waitMetric(t, p, `eventlistener_redis_stream_pending{stream="orders"} 0`)
	var st sources.StreamsStatus
	sourceStatus(t, getNode(t, p), "redis-streams", &st)
	if st.Consumer != "a" || len(st.Streams) != 1 || st.Streams[0].Stored != 10000 || st.Streams[0].Dead != 2 {
		t.Fatalf("status: %+v", st)
	}
	p.stop(t)
}

// kill -9 of the engine while entries flow, three times, and a restart:
// every entry is stored once and nothing stays pending.
func TestStreamsKillMidStreamStoresEveryEntryOnce(t *testing.T) {
	pg := testenv.Postgres(t)
	r := testenv.RedisServer(t)
	c := r.Client(t)
	prod := newProducer(c, "orders")
	prod.run(0)
	dir := t.TempDir()
	args := append([]string{"--database-url", pg.URL, "--redis-url", "redis://" + r.Addr, "--node-id", "a",
		"--redis-stream-batch", "200"}, streamArgs...)
	for k := range 3 {
		p := startServeIn(t, dir, args...)
		// Until some of this run's entries are stored.
		before := len(storedIDs(t, pg))
		deadline := time.Now().Add(20 * time.Second)
		for len(storedIDs(t, pg)) < before+2000 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		t.Logf("kill %d: %d rows", k+1, len(storedIDs(t, pg)))
	}
	prod.halt()
	p := startServeIn(t, dir, args...)
	ids := prod.acked()
	waitAllStored(t, pg, c, "orders", ids, 60*time.Second)
	t.Logf("%d entries over 3 kills: each stored once, none pending", len(ids))
	p.stop(t)
}

// Two nodes in one group share the entries; one is killed: the other
// claims what it left pending (delivered, not yet in its WAL), while what
// it had acked waits in its WAL until it runs again (as a 202 does), and
// then every entry is stored once.
func TestStreamsTwoNodesShareAndClaimWhatTheDeadLeft(t *testing.T) {
	pg := testenv.Postgres(t)
	r := testenv.RedisServer(t)
	c := r.Client(t)
	ctx := context.Background()
	common := append([]string{"--database-url", pg.URL, "--redis-url", "redis://" + r.Addr, "--redis-stream-batch", "100",
		"--redis-stream-claim-idle", "1s"}, streamArgs...)
	dirA := t.TempDir()
	a := startServeIn(t, dirA, append([]string{"--node-id", "a"}, common...)...)
	b := startServe(t, append([]string{"--node-id", "b"}, common...)...)
	prod := newProducer(c, "orders")
	prod.run(0)
	deadline := time.Now().Add(20 * time.Second)
	for len(storedIDs(t, pg)) < 5000 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	a.cmd.Process.Signal(syscall.SIGKILL)
	<-a.done
	onA := func() int64 {
		p, err := c.XPending(ctx, "orders", "eventlistener").Result()
		if err != nil {
			t.Fatal(err)
		}
		return p.Consumers["a"]
	}
	leftOnA := onA()
	killed := time.Now()
	for onA() > 0 {
		if time.Since(killed) > 10*time.Second {
			t.Fatalf("%d entries still pending on the killed node 10s later", onA())
		}
		time.Sleep(20 * time.Millisecond)
	}
	claimedIn := time.Since(killed)
	prod.halt()
	ids := prod.acked()
	var st sources.StreamsStatus
	sourceStatus(t, getNode(t, b), "redis-streams", &st)
	if st.Streams[0].Claimed < leftOnA {
		t.Fatalf("a left %d pending, b claimed %d", leftOnA, st.Streams[0].Claimed)
	}
	inWAL := len(ids) - len(storedIDs(t, pg))
	a = startServeIn(t, dirA, append([]string{"--node-id", "a"}, common...)...)
	waitAllStored(t, pg, c, "orders", ids, 60*time.Second)
	sourceStatus(t, getNode(t, b), "redis-streams", &st)
	t.Logf("%d entries; the killed node left %d pending, claimed by the other within %v; about %d waited in its WAL for its restart; b stored %d; every entry stored once",
		len(ids), leftOnA, claimedIn.Round(time.Millisecond), inWAL, st.Streams[0].Stored)
	if st.Streams[0].Stored == 0 || st.Streams[0].Stored == int64(len(ids)) {
		t.Fatalf("b stored %d of %d: the group did not share them", st.Streams[0].Stored, len(ids))
	}
	a.stop(t)
	b.stop(t)
}

// A Sentinel failover while entries flow: every entry the new master holds
// is stored, once, and nothing stays pending. (What Redis acked to the
// producer and the replica never got is Redis's loss: counted, reported.)
func TestStreamsThroughASentinelFailover(t *testing.T) {
	pg := testenv.Postgres(t)
	s := testenv.RedisSentinels(t)
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.MasterName, SentinelAddrs: s.Addrs})
	t.Cleanup(func() { c.Close() })
	p := startServe(t, append([]string{"--database-url", pg.URL, "--redis-sentinels", strings.Join(s.Addrs, ","),
		"--redis-master-name", s.MasterName, "--node-id", "a"}, streamArgs...)...)
	prod := newProducer(c, "orders")
	prod.run(time.Millisecond)
	deadline := time.Now().Add(20 * time.Second)
	for len(storedIDs(t, pg)) < 1000 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	old := s.MasterAddr(t)
	s.Failover(t)
	after := len(prod.acked())
	// A marker added once the sentinels agree on the new master: how long
	// until it is stored is the gap a producer sees.
	ctx := context.Background()
	switched := time.Now()
	for c.XAdd(ctx, &redis.XAddArgs{Stream: "orders", Values: []any{"event", `{"id":"marker","type":"t"}`}}).Err() != nil {
		time.Sleep(5 * time.Millisecond)
	}
	for !storedIDs(t, pg)["marker"] {
		if time.Since(switched) > 30*time.Second {
			t.Fatal("the marker added after the failover is not stored 30s later")
		}
		time.Sleep(10 * time.Millisecond)
	}
	gap := time.Since(switched)
	time.Sleep(2 * time.Second)
	prod.halt()
	ids := prod.acked()
	ids["marker"] = ""
	want := keptBy(t, c, "orders", ids)
	want["marker"] = ""
	lostByRedis := len(ids) - len(want)
	waitStored(t, pg, c, "orders", want, ids, 60*time.Second)
	storedLost := len(storedIDs(t, pg)) - len(want)
	t.Logf("failover from %s: an entry added once the sentinels agreed was stored %v later", old, gap.Round(time.Millisecond))
	t.Logf("failover from %s: %d entries acked by Redis (%d before the failover ended), %d kept by the new master and all stored once; %d acked by the old master and lost by Redis in the failover (asynchronous replication), %d of which the engine had read and stored before; %d XADDs failed during it",
		old, len(ids), after, len(want), lostByRedis, storedLost, prod.fails)
	p.stop(t)
}

// keptBy is the part of ids (event id -> entry id) whose entries the
// stream holds now.
func keptBy(t *testing.T, c redis.UniversalClient, key string, ids map[string]string) map[string]string {
	t.Helper()
	held, err := c.XRange(context.Background(), key, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	inRedis := map[string]bool{}
	for _, m := range held {
		inRedis[m.ID] = true
	}
	kept := map[string]string{}
	for id, entry := range ids {
		if inRedis[entry] {
			kept[id] = entry
		}
	}
	return kept
}
