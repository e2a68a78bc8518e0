package sources

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"eventlistener/event"
	infraredis "eventlistener/infra/redis"
	"eventlistener/internal/testenv"
)

func newTestStreams(t *testing.T, addr, consumer string, tweak func(*StreamsConfig)) *Streams {
	t.Helper()
	cfg := StreamsConfig{Options: infraredis.Options{URL: "redis://" + addr}, Keys: []string{"orders"}, Consumer: consumer,
		Block: 100 * time.Millisecond}
	if tweak != nil {
		tweak(&cfg)
	}
	return NewStreams(cfg, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
}

func xadd(t *testing.T, c *goredis.Client, key string, values ...any) string {
	t.Helper()
	id, err := c.XAdd(context.Background(), &goredis.XAddArgs{Stream: key, Values: values}).Result()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func pendingOf(t *testing.T, c *goredis.Client, key string) int64 {
	t.Helper()
	p, err := c.XPending(context.Background(), key, DefaultStreams.Group).Result()
	if err != nil {
		t.Fatal(err)
	}
	return p.Count
}

func distinctIDs(evs []event.Event) map[string]int {
	ids := map[string]int{}
	for _, e := range evs {
		ids[e.ID]++
	}
	return ids
}

// Entries written before the group existed are all stored, once each,
// and acked; an entry that is an event keeps its id, the others get one
// from the stream and the entry id.
func TestStreamsStoreEveryEntryAndAckIt(t *testing.T) {
	r := testenv.RedisServer(t)
	c := r.Client(t)
	const n = 2000
	var fieldsID string
	var fieldsValues map[string]any
	for i := range n {
		switch i % 2 {
		case 0:
			xadd(t, c, "orders", "event", fmt.Sprintf(`{"id":"ev-%d","type":"order.created","data":{"n":%d}}`, i, i))
		default:
			id := xadd(t, c, "orders", "sku", fmt.Sprint(i), "qty", "2")
			if fieldsID == "" {
				fieldsID, fieldsValues = id, map[string]any{"sku": fmt.Sprint(i), "qty": "2"}
			}
		}
	}
	var col collector
	s := newTestStreams(t, r.Addr, "node-a", nil)
	run(t, s, col.env())
	waitFor(t, "every entry", 20*time.Second, func() bool { return col.count() >= n })
	waitFor(t, "nothing pending", 5*time.Second, func() bool { return pendingOf(t, c, "orders") == 0 })
	evs := col.all()
	ids := distinctIDs(evs)
	if len(evs) != n || len(ids) != n {
		t.Fatalf("%d events, %d distinct ids; want %d of each", len(evs), len(ids), n)
	}
	if ids["ev-0"] != 1 {
		t.Fatal("the event entry lost its own id")
	}
	want := EntryEventID("orders", fieldsID, fieldsValues)
	var found *event.Event
	for i := range evs {
		if evs[i].ID == want {
			found = &evs[i]
		}
	}
	if found == nil || found.Type != "redis.message" || found.Source != "redis-stream://orders" || found.Subject != fieldsID ||
		string(found.Data) != `{"qty":"2","sku":"1"}` {
		t.Fatalf("the fields entry became %+v", found)
	}
	st := s.Status().(*StreamsStatus)
	if st.Streams[0].Stored != n || !st.Streams[0].Reading || st.Consumer != "node-a" {
		t.Fatalf("status = %+v", st)
	}
}

// A malformed entry goes to the dead-letter stream with its error and is
// acked; the entries around it are stored.
func TestStreamsMalformedEntriesGoToTheDeadLetterStream(t *testing.T) {
	r := testenv.RedisServer(t)
	c := r.Client(t)
	xadd(t, c, "orders", "event", `{"id":"good-1","type":"t"}`)
	badID := xadd(t, c, "orders", "event", `{"id":"bad","type":""}`)
	xadd(t, c, "orders", "event", `{"id":"good-2","type":"t"}`)
	xadd(t, c, "orders", "big", string(make([]byte, 300)))
	xadd(t, c, "orders", "event", `{"id":"good-3","type":"t"}`)
	var col collector
	s := newTestStreams(t, r.Addr, "node-a", func(c *StreamsConfig) { c.MaxEventBytes = 100 })
	run(t, s, col.env())
	waitFor(t, "the good entries", 10*time.Second, func() bool { return col.count() >= 3 })
	waitFor(t, "nothing pending", 5*time.Second, func() bool { return pendingOf(t, c, "orders") == 0 })
	dead, err := c.XRange(context.Background(), "orders:dead", "-", "+").Result()
	if err != nil || len(dead) != 2 {
		t.Fatalf("dead letters: %v %v", dead, err)
	}
	d := dead[0].Values
	if d[DeadIDField] != badID || d[DeadStreamField] != "orders" || d["event"] != `{"id":"bad","type":""}` || d[DeadErrorField] == "" {
		t.Fatalf("dead letter = %v", d)
	}
	t.Logf("dead letters' errors: %q, %q", d[DeadErrorField], dead[1].Values[DeadErrorField])
	if st := s.Status().(*StreamsStatus).Streams[0]; st.Dead != 2 || st.Stored != 3 {
		t.Fatalf("status = %+v", st)
	}
}

// What a consumer that went away left pending is claimed after the idle
// time, and stored.
func TestStreamsClaimWhatADeadConsumerLeftPending(t *testing.T) {
	r := testenv.RedisServer(t)
	c := r.Client(t)
	ctx := context.Background()
	if err := c.XGroupCreateMkStream(ctx, "orders", DefaultStreams.Group, "0").Err(); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		xadd(t, c, "orders", "n", fmt.Sprint(i))
	}
	// "gone" reads them and dies before it acks.
	if _, err := c.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: DefaultStreams.Group, Consumer: "gone", Streams: []string{"orders", ">"}, Count: 100, Block: -1}).Result(); err != nil {
		t.Fatal(err)
	}
	if p := pendingOf(t, c, "orders"); p != 50 {
		t.Fatalf("pending = %d", p)
	}
	var col collector
	s := newTestStreams(t, r.Addr, "node-a", func(c *StreamsConfig) { c.ClaimIdle = 300 * time.Millisecond })
	start := time.Now()
	run(t, s, col.env())
	waitFor(t, "the claimed entries", 10*time.Second, func() bool { return col.count() >= 50 })
	waitFor(t, "nothing pending", 5*time.Second, func() bool { return pendingOf(t, c, "orders") == 0 })
	t.Logf("claimed and stored %v after the start", time.Since(start).Round(time.Millisecond))
	if st := s.Status().(*StreamsStatus).Streams[0]; st.Claimed != 50 || len(distinctIDs(col.all())) != 50 {
		t.Fatalf("status = %+v, %d events", st, col.count())
	}
}

// Entries the engine did not take stay pending, and the next run (the
// node started again) takes them from this consumer's own pending list.
func TestStreamsLeaveWhatTheEngineRefusedPending(t *testing.T) {
	r := testenv.RedisServer(t)
	c := r.Client(t)
	for i := range 20 {
		xadd(t, c, "orders", "n", fmt.Sprint(i))
	}
	var refused atomic.Int64
	refuse := func(context.Context, []event.Event) error { refused.Add(1); return errors.New("the WAL failed") }
	s := newTestStreams(t, r.Addr, "node-a", nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx, Env{Ingest: refuse}) }()
	waitFor(t, "a refusal", 10*time.Second, func() bool { return refused.Load() > 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if p := pendingOf(t, c, "orders"); p != 20 {
		t.Fatalf("pending after the refusals = %d, want 20", p)
	}
	// Started again (ClaimIdle is long: these are its own entries).
	var col collector
	run(t, s, col.env())
	waitFor(t, "the pending entries", 10*time.Second, func() bool { return col.count() >= 20 })
	waitFor(t, "nothing pending", 5*time.Second, func() bool { return pendingOf(t, c, "orders") == 0 })
}

// Two consumers in one group share the entries: each is stored once.
func TestStreamsTwoConsumersShareTheEntries(t *testing.T) {
	r := testenv.RedisServer(t)
	c := r.Client(t)
	var col collector
	a := newTestStreams(t, r.Addr, "node-a", func(c *StreamsConfig) { c.Batch = 10 })
	b := newTestStreams(t, r.Addr, "node-b", func(c *StreamsConfig) { c.Batch = 10 })
	run(t, a, col.env())
	run(t, b, col.env())
	const n = 3000
	for i := range n {
		xadd(t, c, "orders", "n", fmt.Sprint(i))
	}
	waitFor(t, "every entry", 20*time.Second, func() bool { return col.count() >= n })
	waitFor(t, "nothing pending", 5*time.Second, func() bool { return pendingOf(t, c, "orders") == 0 })
	sa, sb := a.Status().(*StreamsStatus).Streams[0].Stored, b.Status().(*StreamsStatus).Streams[0].Stored
	if len(distinctIDs(col.all())) != n || col.count() != n || sa == 0 || sb == 0 {
		t.Fatalf("%d events (%d distinct), a stored %d, b %d; want %d once each, both busy", col.count(), len(distinctIDs(col.all())), sa, sb, n)
	}
	t.Logf("a stored %d, b %d", sa, sb)
	raw, _ := json.Marshal(a.Status())
	t.Logf("status: %s", raw)
}

// An entry's event id is the same at every delivery, and differs for
// another entry given the same entry id (a failover that lost the first).
func TestEntryEventIDs(t *testing.T) {
	a := EntryEventID("orders", "1-0", map[string]any{"sku": "1", "qty": "2"})
	if b := EntryEventID("orders", "1-0", map[string]any{"qty": "2", "sku": "1"}); a != b {
		t.Fatalf("the same entry: %s and %s", a, b)
	}
	for _, other := range []string{
		EntryEventID("orders", "1-0", map[string]any{"sku": "1", "qty": "3"}),
		EntryEventID("orders", "1-1", map[string]any{"sku": "1", "qty": "2"}),
		EntryEventID("order", "s1-0", map[string]any{"sku": "1", "qty": "2"}),
		EntryEventID("orders", "1-0", map[string]any{"sku": "1qty", "": "2"}),
	} {
		if other == a {
			t.Fatalf("another entry got the id %s", a)
		}
	}
}
