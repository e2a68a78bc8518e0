package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"eventlistener/internal/testenv"
)

// nodeRedis reads the redis part of GET /v1/node.
func nodeRedis(t *testing.T, p *proc) (subscribed bool, master string) {
	t.Helper()
	res, err := http.Get(p.admin + "/v1/node")
	if err != nil {
		return false, ""
	}
	defer res.Body.Close()
	var st struct {
		Subscribed bool
		Master     string
	}
	raw, _ := io.ReadAll(res.Body)
	sourceStatus(t, raw, "redis", &st)
	return st.Subscribed, st.Master
}

func waitSubscribed(t *testing.T, p *proc, master string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if ok, m := nodeRedis(t, p); ok && (master == "" || m == master) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	ok, m := nodeRedis(t, p)
	t.Fatalf("not subscribed on %s: subscribed=%v master=%s", master, ok, m)
}

func TestRedisMessagesAreStored(t *testing.T) {
	pg := testenv.Postgres(t)
	r := testenv.RedisServer(t)
	rc := r.Client(t)
	ctx := context.Background()
	notes := rc.Subscribe(ctx, "batches")
	defer notes.Close()
	if _, err := notes.Receive(ctx); err != nil { // the subscription confirmation
		t.Fatal(err)
	}
	p := startServe(t, "--database-url", pg.URL, "--batch-idle", "20ms", "--redis-url", "redis://"+r.Addr,
		"--redis-channels", "orders, metrics.*", "--redis-notify-channel", "batches")
	waitSubscribed(t, p, r.Addr)

	msgs := []struct{ channel, payload string }{
		{"orders", `{"id":"r-json","type":"order.created","data":{"n":1}}`},
		{"orders", `{"specversion":"1.0","id":"r-ce","source":"/shop","type":"ce.t","data":{"n":2}}`},
		{"orders", `{"type":"t","time":"yesterday"}`}, // cannot become an event
		{"orders", `plain text`},
		{"orders", `{"not":"an envelope"}`},
		{"metrics.cpu", `{"id":"r-pattern","type":"metric","data":0.5}`},
		{"other", `{"id":"r-unsubscribed","type":"t"}`},
	}
	for _, m := range msgs {
		if err := rc.Publish(ctx, m.channel, m.payload).Err(); err != nil {
			t.Fatal(err)
		}
	}
	waitRows(t, pg, 5)
	rows := pg.Psql(t, `SELECT id, type, source, coalesce(data::text, '') FROM events ORDER BY received_at, id`)
	for _, want := range []string{
		"r-json|order.created|redis://orders|{\"n\": 1}",
		"r-ce|ce.t|/shop|{\"n\": 2}",
		"|redis.message|redis://orders|\"plain text\"",
		"|redis.message|redis://orders|{\"not\": \"an envelope\"}",
		"r-pattern|metric|redis://metrics.cpu|0.5",
	} {
		found := false
		for _, row := range strings.Split(rows, "\n") {
			if strings.HasSuffix(row, want) || row == want {
				found = true
			}
		}
		if !found {
			t.Errorf("no row like %q in:\n%s", want, rows)
		}
	}
	if strings.Contains(rows, "r-unsubscribed") {
		t.Errorf("a message on a channel not subscribed was stored")
	}
	waitMetric(t, p, `eventlistener_redis_bad_messages_total{subscription="orders"} 1`)
	waitMetric(t, p, `eventlistener_redis_messages_total{subscription="metrics.*"} 1`)
	waitMetric(t, p, `eventlistener_redis_subscription_up 1`)

	// Batch notifications tell what was stored.
	stored := 0
	deadline := time.Now().Add(10 * time.Second)
	for stored < 5 && time.Now().Before(deadline) {
		m, err := notes.ReceiveTimeout(ctx, time.Second)
		if err != nil {
			continue
		}
		var note struct {
			Batch            string
			Sink             string
			Events           int
			Stored, Fallback int
		}
		if msg, ok := m.(*redis.Message); ok && json.Unmarshal([]byte(msg.Payload), &note) == nil {
			if note.Batch == "" || note.Events == 0 || note.Sink != "postgres" {
				t.Fatalf("notification %s", msg.Payload)
			}
			stored += note.Stored
		}
	}
	if stored != 5 {
		t.Fatalf("notifications report %d events stored, want 5", stored)
	}
	p.stop(t)
}

// failoverRun publishes numbered events every 5 ms on both data nodes (so
// whichever is master has it, and the gap measured is the engine's, not a
// publisher's), runs switchMaster, and checks that what was published once
// the engine was subscribed on the new master is stored. It logs the gap
// from the switch to the first message stored that was published after it.
func failoverRun(t *testing.T, switchMaster func(s *testenv.Sentinels) string) {
	pg := testenv.Postgres(t)
	s := testenv.RedisSentinels(t)
	// A steady stream never goes idle: a short max age keeps batching out of
	// the gap measured.
	p := startServe(t, "--database-url", pg.URL, "--batch-idle", "10ms", "--batch-max-age", "20ms",
		"--redis-sentinels", strings.Join(s.Addrs, ","), "--redis-master-name", s.MasterName, "--redis-channels", "events")
	waitSubscribed(t, p, s.MasterAddr(t))

	var pubs []*redis.Client
	for _, n := range s.Nodes {
		c := redis.NewClient(&redis.Options{Addr: n.Addr, DialTimeout: 100 * time.Millisecond, ReadTimeout: 200 * time.Millisecond,
			WriteTimeout: 200 * time.Millisecond, MaxRetries: -1, DialerRetries: 1})
		defer c.Close()
		pubs = append(pubs, c)
	}
	var (
		mu        sync.Mutex
		published = map[int]time.Time{} // seq → when PUBLISH returned
		stop      atomic.Bool
		wg        sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for seq := 0; !stop.Load(); seq++ {
			for _, pub := range pubs {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				n, err := pub.Publish(ctx, "events", fmt.Sprintf(`{"id":"m-%06d","type":"t"}`, seq)).Result()
				cancel()
				// PUBLISH reaches a node's subscribers and its replicas'
				// (replication): n > 0 means someone, the engine, got it.
				if err == nil && n > 0 {
					mu.Lock()
					if _, ok := published[seq]; !ok {
						published[seq] = time.Now()
					}
					mu.Unlock()
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	time.Sleep(300 * time.Millisecond)
	newMaster := switchMaster(s)
	switched := time.Now()
	waitSubscribed(t, p, newMaster)
	resubscribed := time.Now()
	// The engine's connection really is on the new master.
	var node *testenv.Redis
	for _, n := range s.Nodes {
		if n.Addr == newMaster {
			node = n
		}
	}
	if node == nil {
		t.Fatalf("new master %s is not one of the nodes", newMaster)
	}
	if subs, err := node.Client(t).PubSubNumSub(context.Background(), "events").Result(); err != nil || subs["events"] < 1 {
		t.Fatalf("PUBSUB NUMSUB events on the new master = %v, %v: the engine is not subscribed there", subs, err)
	}

	// The gap: from the switch until the first message published after it
	// is stored.
	var gap time.Duration
	deadline := time.Now().Add(20 * time.Second)
	for gap == 0 && time.Now().Before(deadline) {
		mu.Lock()
		first := -1
		for seq, at := range published {
			if at.After(switched) && (first < 0 || seq < first) {
				first = seq
			}
		}
		mu.Unlock()
		if first >= 0 && pg.Psql(t, fmt.Sprintf("SELECT count(*) FROM events WHERE id = 'm-%06d'", first)) == "1" {
			gap = time.Since(switched)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if gap == 0 {
		t.Fatal("no message published after the switch was stored")
	}
	// Every message published once the engine was subscribed on the new
	// master is stored.
	mu.Lock()
	var after []string
	for seq, at := range published {
		if at.After(resubscribed) {
			after = append(after, fmt.Sprintf("'m-%06d'", seq))
		}
	}
	mu.Unlock()
	if len(after) == 0 {
		t.Fatal("nothing was published after the resubscription")
	}
	deadline = time.Now().Add(20 * time.Second)
	var got string
	for time.Now().Before(deadline) {
		got = pg.Psql(t, "SELECT count(*) FROM events WHERE id IN ("+strings.Join(after, ",")+")")
		if got == fmt.Sprint(len(after)) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got != fmt.Sprint(len(after)) {
		t.Fatalf("%s of %d messages published after the resubscription are stored", got, len(after))
	}
	t.Logf("new master %s; subscribed there %v after the switch; first message published after the switch stored %v after it; %d later messages all stored",
		newMaster, resubscribed.Sub(switched).Round(time.Millisecond), gap.Round(time.Millisecond), len(after))
	p.stop(t)
	if testing.Verbose() {
		t.Logf("switch known to the test at %s; engine log:\n%s", switched.Format("15:04:05.000"), p.out.String())
	}
}

func TestRedisForcedFailover(t *testing.T) {
	failoverRun(t, func(s *testenv.Sentinels) string { return s.Failover(t) })
}

func TestRedisMasterKilled(t *testing.T) {
	failoverRun(t, func(s *testenv.Sentinels) string {
		old := s.MasterAddr(t)
		s.Master(t).Kill()
		return s.WaitNewMaster(t, old, 30*time.Second)
	})
}
