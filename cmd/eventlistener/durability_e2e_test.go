package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"eventlistener/internal/esfake"
	"eventlistener/internal/testenv"
)

// node is GET /v1/node, the parts these tests read.
type node struct {
	Ready bool `json:"ready"`
	WAL   struct {
		Bytes int64 `json:"bytes"`
	} `json:"wal"`
	Sinks []struct {
		Name      string `json:"name"`
		Ready     bool   `json:"ready"`
		Breaker   string `json:"breaker"`
		LagEvents uint64 `json:"lag_events"`
	} `json:"sinks"`
}

func (p *proc) node(t *testing.T) node {
	t.Helper()
	res, err := http.Get(p.admin + "/v1/node")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var n node
	if err := json.NewDecoder(res.Body).Decode(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitDrained waits until every sink has finished what the WAL holds.
func (p *proc) waitDrained(t *testing.T, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		n := p.node(t)
		behind := false
		for _, s := range n.Sinks {
			behind = behind || s.LagEvents > 0 || !s.Ready
		}
		if !behind {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sinks still behind after %v: %+v", within, n.Sinks)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ndjson is n events with ids prefix0, prefix1, ...
func ndjson(prefix string, n int) []byte {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "{\"id\":\"%s%d\",\"type\":\"t\"}\n", prefix, i)
	}
	return []byte(b.String())
}

// loader posts from several clients until stopped, NDJSON of 20 events and
// single events, and remembers every id that got a 202.
type loader struct {
	mu      sync.Mutex
	acked   map[string]bool
	stop    atomic.Bool
	wg      sync.WaitGroup
	refused atomic.Int64
}

func newLoader() *loader { return &loader{acked: map[string]bool{}} }

func (l *loader) run(url, round string, clients int) {
	l.stop.Store(false)
	for w := range clients {
		l.wg.Go(func() {
			client := &http.Client{Timeout: 10 * time.Second}
			for i := 0; !l.stop.Load(); i++ {
				var body, ctype string
				if w%2 == 0 {
					var b strings.Builder
					for j := range 20 {
						fmt.Fprintf(&b, "{\"id\":\"%s-w%d-%d-%d\",\"type\":\"t\",\"data\":{\"i\":%d}}\n", round, w, i, j, i)
					}
					body, ctype = b.String(), "application/x-ndjson"
				} else {
					body, ctype = fmt.Sprintf(`{"id":"%s-w%d-%d","type":"t"}`, round, w, i), "application/json"
				}
				res, err := client.Post(url+"/v1/events", ctype, strings.NewReader(body))
				if err != nil {
					if l.stop.Load() {
						return
					}
					time.Sleep(5 * time.Millisecond)
					continue // killed or not up: not acknowledged
				}
				var r response
				json.NewDecoder(res.Body).Decode(&r)
				res.Body.Close()
				if res.StatusCode != 202 {
					l.refused.Add(1)
					continue
				}
				l.mu.Lock()
				for _, id := range r.IDs {
					l.acked[id] = true
				}
				l.mu.Unlock()
			}
		})
	}
}

func (l *loader) halt() {
	l.stop.Store(true)
	l.wg.Wait()
}

// TestKillUnderLoadLosesNothingAcked kills the engine with SIGKILL at random
// moments while eight clients post; after each restart it goes on. In the
// end every event that got a 202 is in PostgreSQL exactly once and in
// Elasticsearch. (A kill cannot catch a missing fsync, as the page cache
// survives it: the WAL's power-cut test does that.)
func TestKillUnderLoadLosesNothingAcked(t *testing.T) {
	pg := testenv.Postgres(t)
	esURL, _ := esfake.Start(t)
	index := fmt.Sprintf("events-kill-%d", time.Now().UnixNano())
	dir := t.TempDir()
	args := []string{"--database-url", pg.URL, "--elasticsearch-url", esURL, "--elasticsearch-index", index,
		"--batch-idle", "20ms", "--log-level", "info"}
	l := newLoader()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	const kills = 20
	for k := range kills {
		p := startServeIn(t, dir, args...)
		l.run(p.url, fmt.Sprint("k", k), 8)
		time.Sleep(time.Duration(50+rng.IntN(400)) * time.Millisecond)
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		l.halt()
	}
	p := startServeIn(t, dir, args...)
	p.waitDrained(t, 60*time.Second)
	p.stop(t)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.acked) < kills*50 {
		t.Fatalf("only %d events acknowledged over %d kills: the test did not load the engine", len(l.acked), kills)
	}
	stored := map[string]bool{}
	for _, id := range strings.Split(pg.Psql(t, "SELECT id FROM events"), "\n") {
		stored[id] = true
	}
	missing := 0
	for id := range l.acked {
		if !stored[id] {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged events are not in PostgreSQL after %d kills", missing, len(l.acked), kills)
	}
	rows := pg.Psql(t, "SELECT count(*), count(DISTINCT id) FROM events")
	var n, distinct int
	fmt.Sscanf(rows, "%d|%d", &n, &distinct)
	if n != distinct {
		t.Fatalf("PostgreSQL holds %d rows for %d ids", n, distinct)
	}
	waitDocs(t, esURL, index, n)
	// Elasticsearch holds the same set: sample acknowledged ids.
	checked := 0
	for id := range l.acked {
		if checked == 200 {
			break
		}
		checked++
		res, err := http.Get(esURL + "/" + index + "/_doc/" + id)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("acknowledged event %s is not in Elasticsearch (%d)", id, res.StatusCode)
		}
	}
	t.Logf("%d events acknowledged over %d kills, all stored once (%d rows, some never acknowledged)", len(l.acked), kills, n)
}

// TestPostgresHungDoesNotSlowElasticsearch holds PostgreSQL's table locked
// while events arrive: Elasticsearch gets them at once; PostgreSQL gets them
// exactly once after the lock goes.
func TestPostgresHungDoesNotSlowElasticsearch(t *testing.T) {
	pg := testenv.Postgres(t)
	esURL, _ := esfake.Start(t)
	index := fmt.Sprintf("events-hung-%d", time.Now().UnixNano())
	p := startServe(t, "--database-url", pg.URL, "--elasticsearch-url", esURL, "--elasticsearch-index", index,
		"--batch-idle", "10ms", "--write-timeout", "1s")
	if res := p.post(t, []byte(`{"id":"first","type":"t"}`), "Content-Type: application/json"); res.Status != 202 {
		t.Fatalf("first post: %d", res.Status)
	}
	waitRows(t, pg, 1)

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE events IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for r := range 30 {
		if res := p.post(t, ndjson(fmt.Sprintf("h%d-", r), 100), "Content-Type: application/x-ndjson"); res.Status != 202 {
			t.Fatalf("post %d with PostgreSQL hung: %d %s", r, res.Status, res.Error)
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitDocs(t, esURL, index, 3001)
	t.Logf("Elasticsearch held all 3,001 events %v after the first post, PostgreSQL hung", time.Since(start).Round(time.Millisecond))
	if got := pg.Psql(t, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"); got == "0" {
		t.Log("no write was waiting on the lock at this moment")
	}
	time.Sleep(1500 * time.Millisecond) // past --write-timeout: attempts time out and are retried
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	waitRows(t, pg, 3001)
	if got := pg.Psql(t, "SELECT count(*), count(DISTINCT id) FROM events"); got != "3001|3001" {
		t.Fatalf("rows after the lock went: %s", got)
	}
	p.waitDrained(t, 20*time.Second)
	p.stop(t)
	if n := len(fallbackRecords(t, p.dataDir+"/fallback")); n != 0 {
		t.Fatalf("%d records in the fallback log after a hang", n)
	}
}

// TestElasticsearchDownDoesNotSlowPostgres is the same the other way round:
// Elasticsearch answers 503 for a while.
func TestElasticsearchDownDoesNotSlowPostgres(t *testing.T) {
	pg := testenv.Postgres(t)
	esURL, fake := esfake.Start(t)
	if fake == nil {
		t.Skip("needs the fake Elasticsearch to inject failures")
	}
	index := fmt.Sprintf("events-esdown-%d", time.Now().UnixNano())
	p := startServe(t, "--database-url", pg.URL, "--elasticsearch-url", esURL, "--elasticsearch-index", index, "--batch-idle", "10ms")
	fake.FailRequests(503, 1_000_000)
	for r := range 30 {
		if res := p.post(t, ndjson(fmt.Sprintf("e%d-", r), 100), "Content-Type: application/x-ndjson"); res.Status != 202 {
			t.Fatalf("post %d with Elasticsearch down: %d %s", r, res.Status, res.Error)
		}
	}
	waitRows(t, pg, 3000)
	n := p.node(t)
	for _, s := range n.Sinks {
		if s.Name == "elasticsearch" && s.LagEvents == 0 {
			t.Fatalf("Elasticsearch is down but its sink says it is not behind: %+v", s)
		}
	}
	fake.ClearFailures()
	waitDocs(t, esURL, index, 3000)
	p.waitDrained(t, 20*time.Second)
	p.stop(t)
}

// TestRestartWhilePostgresDown starts the engine with its database down: it
// starts, takes events, and stores them once the database is back.
func TestRestartWhilePostgresDown(t *testing.T) {
	pg := testenv.Postgres(t)
	pg.Stop()
	p := startServe(t, "--database-url", pg.URL, "--batch-idle", "10ms") // waits for /readyz
	if res := p.post(t, ndjson("d", 500), "Content-Type: application/x-ndjson"); res.Status != 202 {
		t.Fatalf("post with PostgreSQL down: %d %s", res.Status, res.Error)
	}
	if n := p.node(t); n.Sinks[0].Ready {
		t.Fatalf("sink reported ready with its database down: %+v", n.Sinks[0])
	}
	pg.Start()
	waitRows(t, pg, 500)
	p.stop(t)
}

// TestAckStored: ?ack=stored answers once both stores hold the events, and
// 504 when a store is down past --ack-timeout; those events arrive later.
func TestAckStored(t *testing.T) {
	pg := testenv.Postgres(t)
	esURL, _ := esfake.Start(t)
	index := fmt.Sprintf("events-ack-%d", time.Now().UnixNano())
	p := startServe(t, "--database-url", pg.URL, "--elasticsearch-url", esURL, "--elasticsearch-index", index,
		"--ack-timeout", "1s")
	post := func(body string) (int, map[string]string) {
		res, err := http.Post(p.url+"/v1/events?ack=stored", "application/x-ndjson", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var r struct{ Sinks map[string]string }
		json.NewDecoder(res.Body).Decode(&r)
		return res.StatusCode, r.Sinks
	}
	code, sinks := post("{\"id\":\"s1\",\"type\":\"t\"}\n{\"id\":\"s2\",\"type\":\"t\"}\n")
	if code != 200 || sinks["postgres"] != "done" || sinks["elasticsearch"] != "done" {
		t.Fatalf("ack=stored = %d %v", code, sinks)
	}
	// Already there when the answer came: no waiting.
	if got := pg.Psql(t, "SELECT count(*) FROM events WHERE id IN ('s1','s2')"); got != "2" {
		t.Fatalf("200 before PostgreSQL held the events: %s rows", got)
	}
	http.Post(esURL+"/"+index+"/_refresh", "application/json", nil)
	for _, id := range []string{"s1", "s2"} {
		res, err := http.Get(esURL + "/" + index + "/_doc/" + id)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("200 before Elasticsearch held %s: %v %v", id, res, err)
		}
		res.Body.Close()
	}
	pg.Stop()
	start := time.Now()
	code, sinks = post("{\"id\":\"s3\",\"type\":\"t\"}\n")
	if code != 504 || sinks["postgres"] != "pending" || sinks["elasticsearch"] != "done" {
		t.Fatalf("ack=stored with PostgreSQL down = %d %v, want 504 with postgres pending", code, sinks)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("504 took %v with --ack-timeout 1s", took)
	}
	pg.Start()
	waitRows(t, pg, 3)
	p.stop(t)
}

// TestSIGTERMWithStoreDown: a stop with a store down ends within
// --shutdown-timeout and exits 0 (nothing is lost: it is in the WAL); the
// next start delivers it.
func TestSIGTERMWithStoreDown(t *testing.T) {
	pg := testenv.Postgres(t)
	dir := t.TempDir()
	p := startServeIn(t, dir, "--database-url", pg.URL, "--batch-idle", "10ms", "--shutdown-timeout", "2s")
	pg.Stop()
	if res := p.post(t, ndjson("t", 300), "Content-Type: application/x-ndjson"); res.Status != 202 {
		t.Fatalf("post: %d %s", res.Status, res.Error)
	}
	start := time.Now()
	p.stop(t)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("stop took %v with --shutdown-timeout 2s", took)
	}
	if !strings.Contains(p.out.String(), "stays in the WAL") {
		t.Fatalf("the stop did not say where the events are:\n%s", p.out.String())
	}
	pg.Start()
	p = startServeIn(t, dir, "--database-url", pg.URL, "--batch-idle", "10ms")
	waitRows(t, pg, 300)
	p.stop(t)
	if n := len(fallbackRecords(t, dir+"/fallback")); n != 0 {
		t.Fatalf("%d records in the fallback log", n)
	}
}
