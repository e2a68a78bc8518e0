package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"eventlistener/event"
	"eventlistener/internal/esfake"
	"eventlistener/internal/testenv"
	"eventlistener/sinks"
	"eventlistener/sinks/fallback"
)

func TestEveryFormatIsStoredInBothStores(t *testing.T) {
	pg := testenv.Postgres(t)
	esURL, _ := esfake.Start(t)
	index := fmt.Sprintf("events-e2e-%d", time.Now().UnixNano())
	p := startServe(t, "--database-url", pg.URL, "--elasticsearch-url", esURL, "--elasticsearch-index", index,
		"--batch-idle", "20ms")

	ce := `{"specversion":"1.0","id":"ce-%d","source":"/shop","type":"ce.t","time":"2026-05-01T10:00:00Z","datacontenttype":"application/json","data":{"n":%d}}`
	tests := []struct {
		name    string
		body    []byte
		headers []string
		ids     []string
	}{
		{"one JSON event", []byte(`{"id":"json-1","type":"t","source":"s","subject":"sub","time":"2026-05-01T10:00:00Z","data":{"a":1}}`),
			[]string{"Content-Type: application/json"}, []string{"json-1"}},
		{"JSON array", []byte(`[{"id":"arr-1","type":"t"},{"id":"arr-2","type":"t","data":[1,2]}]`),
			[]string{"Content-Type: application/json; charset=utf-8"}, []string{"arr-1", "arr-2"}},
		{"NDJSON", []byte("{\"id\":\"nd-1\",\"type\":\"t\"}\n{\"id\":\"nd-2\",\"type\":\"t\",\"data\":\"text\"}\n"),
			[]string{"Content-Type: application/x-ndjson"}, []string{"nd-1", "nd-2"}},
		{"CloudEvents structured", []byte(fmt.Sprintf(ce, 1, 1)),
			[]string{"Content-Type: application/cloudevents+json"}, []string{"ce-1"}},
		{"CloudEvents batched", []byte("[" + fmt.Sprintf(ce, 2, 2) + "," + fmt.Sprintf(ce, 3, 3) + "]"),
			[]string{"Content-Type: application/cloudevents-batch+json"}, []string{"ce-2", "ce-3"}},
		{"CloudEvents binary", []byte(`{"n":4}`),
			[]string{"Content-Type: application/json", "Ce-Specversion: 1.0", "Ce-Id: ce-4", "Ce-Source: /shop", "Ce-Type: ce.t"}, []string{"ce-4"}},
		{"gzip NDJSON", gz([]byte("{\"id\":\"gz-1\",\"type\":\"t\"}\n")),
			[]string{"Content-Type: application/x-ndjson", "Content-Encoding: gzip"}, []string{"gz-1"}},
	}
	total := 0
	for _, tt := range tests {
		r := p.post(t, tt.body, tt.headers...)
		if r.Status != http.StatusAccepted || r.Accepted != len(tt.ids) || strings.Join(r.IDs, ",") != strings.Join(tt.ids, ",") {
			t.Fatalf("%s: answer %d %+v, want 202 with ids %v", tt.name, r.Status, r, tt.ids)
		}
		total += len(tt.ids)
	}
	waitRows(t, pg, total)
	row := pg.Psql(t, `SELECT type, source, subject, time AT TIME ZONE 'UTC', data->>'a' FROM events WHERE id = 'json-1'`)
	if row != "t|s|sub|2026-05-01 10:00:00|1" {
		t.Errorf("json-1 row = %q", row)
	}
	if got := pg.Psql(t, `SELECT source || ' ' || (data->>'n') FROM events WHERE id = 'ce-4'`); got != "/shop 4" {
		t.Errorf("binary CloudEvent row = %q", got)
	}
	if got := pg.Psql(t, `SELECT source FROM events WHERE id = 'arr-1'`); got != "http" {
		t.Errorf("default source = %q, want http", got)
	}
	waitDocs(t, esURL, index, total)
	p.stop(t)
}

// waitMetric polls /metrics until it holds the line want.
func waitMetric(t *testing.T, p *proc, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		res, err := http.Get(p.admin + "/metrics")
		if err == nil {
			raw, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if strings.Contains(string(raw), want+"\n") {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("metrics never showed %q", want)
}

func waitDocs(t *testing.T, url, index string, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var got string
	for time.Now().Before(deadline) {
		http.Post(url+"/"+index+"/_refresh", "application/json", nil)
		res, err := http.Post(url+"/"+index+"/_count", "application/json", strings.NewReader(`{"query":{"match_all":{}}}`))
		if err == nil {
			var c struct{ Count int }
			json.NewDecoder(res.Body).Decode(&c)
			res.Body.Close()
			if c.Count == want {
				return
			}
			got = strconv.Itoa(c.Count)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("elasticsearch holds %s documents, want %d", got, want)
}

func TestResentIDsMakeNoDuplicates(t *testing.T) {
	pg := testenv.Postgres(t)
	esURL, _ := esfake.Start(t)
	index := fmt.Sprintf("events-e2e-%d", time.Now().UnixNano())
	p := startServe(t, "--database-url", pg.URL, "--elasticsearch-url", esURL, "--elasticsearch-index", index, "--batch-idle", "20ms")
	var body strings.Builder
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&body, "{\"id\":\"dup-%d\",\"type\":\"t\"}\n", i)
	}
	for round := 0; round < 3; round++ {
		if r := p.post(t, []byte(body.String()), "Content-Type: application/x-ndjson"); r.Status != 202 {
			t.Fatalf("round %d: %d %s", round, r.Status, r.Error)
		}
		// Each round is stored before the next is sent, so the later rounds
		// are whole batches of ids both stores already hold.
		waitMetric(t, p, fmt.Sprintf(`eventlistener_sink_events_total{outcome="stored",sink="postgres"} %d`, 100*(round+1)))
		waitMetric(t, p, fmt.Sprintf(`eventlistener_sink_events_total{outcome="stored",sink="elasticsearch"} %d`, 100*(round+1)))
	}
	p.stop(t)
	waitRows(t, pg, 100)
	waitDocs(t, esURL, index, 100)
	if recs := fallbackRecords(t, filepath.Join(p.dataDir, "fallback")); len(recs) != 0 {
		t.Fatalf("resent ids went to the fallback log: %d records", len(recs))
	}
}

// An outage needs no replay: what is accepted meanwhile waits in the WAL and
// reaches PostgreSQL once it is back, exactly once, with nothing in the
// fallback log.
func TestPostgresOutageHealsWithoutReplay(t *testing.T) {
	pg := testenv.Postgres(t)
	p := startServe(t, "--database-url", pg.URL, "--batch-idle", "10ms")
	const perRequest, requests = 50, 20
	post := func(from, to int) {
		for r := from; r < to; r++ {
			var b strings.Builder
			for i := 0; i < perRequest; i++ {
				fmt.Fprintf(&b, "{\"id\":\"r%d-%d\",\"type\":\"t\",\"data\":{\"r\":%d}}\n", r, i, r)
			}
			if res := p.post(t, []byte(b.String()), "Content-Type: application/x-ndjson"); res.Status != 202 {
				t.Fatalf("request %d: %d %s", r, res.Status, res.Error)
			}
		}
	}
	post(0, 5)
	waitRows(t, pg, 5*perRequest)
	pg.Stop()
	post(5, requests) // accepted while the database is down
	if res, err := http.Get(p.url + "/readyz"); err != nil || res.StatusCode != 200 {
		t.Fatalf("readyz with PostgreSQL down: %v %v; a store outage must not take the node out", res, err)
	}
	time.Sleep(500 * time.Millisecond)
	pg.Start()
	waitRows(t, pg, requests*perRequest)
	if got := pg.Psql(t, "SELECT count(*), count(DISTINCT id) FROM events"); got != fmt.Sprintf("%d|%d", requests*perRequest, requests*perRequest) {
		t.Fatalf("rows = %s", got)
	}
	p.stop(t)
	if recs := fallbackRecords(t, filepath.Join(p.dataDir, "fallback")); len(recs) != 0 {
		t.Fatalf("an outage put %d records in the fallback log", len(recs))
	}
}

// Replay sends the fallback log's records again, and a second replay sends
// nothing twice.
func TestReplayFallbackFiles(t *testing.T) {
	pg := testenv.Postgres(t)
	dir := t.TempDir()
	fb, err := fallback.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var failed []sinks.Failed
	now := time.Now().UTC()
	for i := range 300 {
		failed = append(failed, sinks.Failed{Event: event.Event{ID: fmt.Sprint("f", i), Type: "t", Source: "test", Time: now, ReceivedAt: now},
			Err: errors.New("spilled")})
	}
	if _, err := fb.Write("postgres", "batch-1", failed); err != nil {
		t.Fatal(err)
	}
	if out, code := runCLI(t, "migrate", "--database-url", pg.URL); code != 0 {
		t.Fatalf("migrate: %d %s", code, out)
	}
	out, code := runCLI(t, "replay", "--database-url", pg.URL, dir)
	if code != 0 || !strings.Contains(out, "300 events sent") {
		t.Fatalf("replay exit %d:\n%s", code, out)
	}
	waitRows(t, pg, 300)
	out, code = runCLI(t, "replay", "--database-url", pg.URL, dir)
	if code != 0 || !strings.Contains(out, "0 events sent") {
		t.Fatalf("second replay exit %d:\n%s", code, out)
	}
	if got := pg.Psql(t, "SELECT count(*), count(DISTINCT id) FROM events"); got != "300|300" {
		t.Fatalf("rows after two replays = %s", got)
	}

	// A last line cut short is not sent, and the replay says so with its
	// exit status; the whole records of the file are sent.
	name, err := fb.Write("postgres", "batch-2", failed[:1])
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"sink":"postgres","event":{"id":"cut","ty`)
	f.Close()
	pg.Psql(t, "DELETE FROM events")
	// While another replay holds the folder, a replay is refused.
	unlock, err := fallback.LockDirs([]string{filepath.Join(dir, name)})
	if err != nil {
		t.Fatal(err)
	}
	out, code = runCLI(t, "replay", "--database-url", pg.URL, dir)
	unlock()
	if code != 1 || !strings.Contains(out, "another replay is running on "+dir) {
		t.Fatalf("replay while another holds the folder: exit %d:\n%s", code, out)
	}
	out, code = runCLI(t, "replay", "--database-url", pg.URL, dir)
	if code != 1 || !strings.Contains(out, "1 events sent") || !strings.Contains(out, "1 last lines were cut short") {
		t.Fatalf("replay of a file with a truncated last line: exit %d:\n%s", code, out)
	}
	if got := pg.Psql(t, "SELECT count(*) FROM events"); got != "1" {
		t.Fatalf("rows = %s, want the one whole record", got)
	}
}

// A store that refuses one event (what the API accepts is storable, so this
// is a store's own rule: a constraint, a mapping an operator changed) costs
// that event alone a fallback record owed to that store; a 429 is retried.
func TestElasticsearchItemErrors(t *testing.T) {
	pg := testenv.Postgres(t)
	esURL, fake := esfake.Start(t)
	if fake == nil {
		t.Skip("needs the test server to make Elasticsearch refuse one item")
	}
	index := fmt.Sprintf("events-e2e-%d", time.Now().UnixNano())
	if out, code := runCLI(t, "migrate", "--database-url", pg.URL); code != 0 {
		t.Fatalf("migrate: %d %s", code, out)
	}
	pg.Psql(t, `ALTER TABLE events ADD CONSTRAINT refuse_one CHECK (id <> 'pg-refused')`)
	p := startServe(t, "--database-url", pg.URL, "--elasticsearch-url", esURL, "--elasticsearch-index", index, "--batch-idle", "20ms")
	fake.RejectItem("busy-1", http.StatusTooManyRequests, 2)
	fake.RejectItem("es-refused", http.StatusBadRequest, 1)
	body := "{\"id\":\"ok-1\",\"type\":\"t\"}\n{\"id\":\"es-refused\",\"type\":\"t\"}\n" +
		"{\"id\":\"busy-1\",\"type\":\"t\"}\n{\"id\":\"pg-refused\",\"type\":\"t\"}\n{\"id\":\"ok-2\",\"type\":\"t\"}\n"
	if r := p.post(t, []byte(body), "Content-Type: application/x-ndjson"); r.Status != 202 {
		t.Fatalf("post: %d %s", r.Status, r.Error)
	}
	waitRows(t, pg, 4)           // PostgreSQL refuses pg-refused alone
	waitDocs(t, esURL, index, 4) // Elasticsearch refuses es-refused alone, and took busy-1 after its 429s
	p.stop(t)
	recs := fallbackRecords(t, filepath.Join(p.dataDir, "fallback"))
	owed := map[string]string{}
	for _, r := range recs {
		owed[r.Event.ID] = r.Sink + ": " + r.Error
	}
	if len(recs) != 2 || !strings.HasPrefix(owed["es-refused"], "elasticsearch: ") || !strings.Contains(owed["es-refused"], "400") ||
		!strings.HasPrefix(owed["pg-refused"], "postgres: ") || !strings.Contains(owed["pg-refused"], "refuse_one") {
		t.Fatalf("fallback = %v, want es-refused owed to elasticsearch (400) and pg-refused owed to postgres", owed)
	}
}

func TestSIGTERMUnderLoadLosesNothing(t *testing.T) {
	pg := testenv.Postgres(t)
	p := startServe(t, "--database-url", pg.URL, "--batch-idle", "50ms", "--batch-max-events", "200")
	var mu sync.Mutex
	accepted := map[string]bool{}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second}
			for i := 0; !stop.Load(); i++ {
				var b strings.Builder
				for j := 0; j < 20; j++ {
					fmt.Fprintf(&b, "{\"id\":\"w%d-%d-%d\",\"type\":\"t\"}\n", w, i, j)
				}
				res, err := client.Post(p.url+"/v1/events", "application/x-ndjson", strings.NewReader(b.String()))
				if err != nil {
					continue // the listener closed: not accepted
				}
				var r response
				json.NewDecoder(res.Body).Decode(&r)
				res.Body.Close()
				if res.StatusCode == 202 {
					mu.Lock()
					for _, id := range r.IDs {
						accepted[id] = true
					}
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(700 * time.Millisecond)
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatal("eventlistener did not stop within 60s of SIGTERM")
	}
	stop.Store(true)
	wg.Wait()
	if p.err != nil {
		t.Fatalf("exit after SIGTERM: %v", p.err)
	}
	if len(accepted) == 0 {
		t.Fatal("no request was accepted before SIGTERM")
	}
	stored := map[string]bool{}
	for _, id := range strings.Split(pg.Psql(t, "SELECT id FROM events"), "\n") {
		stored[id] = true
	}
	for _, r := range fallbackRecords(t, filepath.Join(p.dataDir, "fallback")) {
		stored[r.Event.ID] = true
	}
	missing := 0
	for id := range accepted {
		if !stored[id] {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d accepted events were lost", missing, len(accepted))
	}
	t.Logf("%d accepted events all stored", len(accepted))
}

func TestBadInputStoresNothing(t *testing.T) {
	pg := testenv.Postgres(t)
	p := startServe(t, "--database-url", pg.URL, "--batch-idle", "10ms", "--max-body-bytes", "64KiB",
		"--api-keys", "shop:0123456789abcdef0123")
	key := "Authorization: Bearer 0123456789abcdef0123"
	big := strings.Repeat(`{"type":"t","data":"`+strings.Repeat("x", 1000)+`"}`+"\n", 100)
	tests := []struct {
		name    string
		body    string
		headers []string
		status  int
		index   int // -1: none
	}{
		{"no API key", `{"id":"bad-1","type":"t"}`, []string{"Content-Type: application/json"}, 401, -1},
		{"wrong API key", `{"id":"bad-1","type":"t"}`, []string{"Content-Type: application/json", "X-Api-Key: nope-nope-nope-nope"}, 401, -1},
		{"one bad event among good", "{\"id\":\"bad-1\",\"type\":\"t\"}\n{\"id\":\"bad-2\"}\n", []string{"Content-Type: application/x-ndjson", key}, 400, 1},
		{"not JSON", `{"id":"bad-1",`, []string{"Content-Type: application/json", key}, 400, -2},
		{"unknown content type", `id=bad-1`, []string{"Content-Type: application/x-www-form-urlencoded", key}, 415, -1},
		{"too large", big, []string{"Content-Type: application/x-ndjson", key}, 413, -1},
		{"too large after decompression", string(gz([]byte(big))), []string{"Content-Type: application/x-ndjson", "Content-Encoding: gzip", key}, 413, -1},
		{"bad time", `{"id":"bad-1","type":"t","time":"yesterday"}`, []string{"Content-Type: application/json", key}, 400, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := p.post(t, []byte(tt.body), tt.headers...)
			if r.Status != tt.status || r.Error == "" {
				t.Fatalf("answer %d %q, want %d with an error message", r.Status, r.Error, tt.status)
			}
			if tt.index >= 0 && (r.Index == nil || *r.Index != tt.index) {
				t.Fatalf("index = %v, want %d", r.Index, tt.index)
			}
		})
	}
	// A good request with the key gets through and names its source.
	if r := p.post(t, []byte(`{"id":"good-1","type":"t"}`), "Content-Type: application/json", key); r.Status != 202 {
		t.Fatalf("good request: %d %s", r.Status, r.Error)
	}
	waitRows(t, pg, 1)
	if got := pg.Psql(t, "SELECT id, source FROM events"); got != "good-1|shop" {
		t.Fatalf("stored %q, want only good-1 from source shop", got)
	}
	p.stop(t)
}

// Producers reach the ingest listener only: metrics, node state, proxy
// actions and the profiler are on the admin listener.
func TestAdminRoutesAreOnTheAdminListener(t *testing.T) {
	p := startServe(t, "--admin-token", "0123456789abcdef0123")
	get := func(url string) int {
		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, path := range []string{"/metrics", "/v1/node", "/debug/pprof/"} {
		if code := get(p.url + path); code != http.StatusNotFound {
			t.Errorf("ingest listener: GET %s = %d, want 404", path, code)
		}
	}
	if code := get(p.admin + "/metrics"); code != http.StatusOK {
		t.Errorf("admin listener: GET /metrics = %d", code)
	}
	waitMetric(t, p, "eventlistener_admin_connections_max 64")
	if code := get(p.admin + "/v1/node"); code != http.StatusOK {
		t.Errorf("admin listener: GET /v1/node = %d", code)
	}
	if code := get(p.admin + "/debug/pprof/"); code != http.StatusUnauthorized {
		t.Errorf("admin listener: GET /debug/pprof/ without the token = %d, want 401", code)
	}
	for _, url := range []string{p.url, p.admin} {
		if code := get(url + "/readyz"); code != http.StatusOK {
			t.Errorf("GET %s/readyz = %d", url, code)
		}
	}
	p.stop(t)
}

func TestNoStoreWritesFiles(t *testing.T) {
	p := startServe(t, "--batch-idle", "10ms")
	if r := p.post(t, []byte(`[{"id":"f-1","type":"t"},{"id":"f-2","type":"t"}]`), "Content-Type: application/json"); r.Status != 202 {
		t.Fatalf("%d %s", r.Status, r.Error)
	}
	p.stop(t)
	files, _ := filepath.Glob(filepath.Join(p.dataDir, "events", "events-*.ndjson"))
	if len(files) != 1 {
		t.Fatalf("event files: %v", files)
	}
	raw, _ := os.ReadFile(files[0])
	if strings.Count(string(raw), "\n") != 2 || !strings.Contains(string(raw), `"id":"f-2"`) {
		t.Fatalf("event file:\n%s", raw)
	}
}

func TestInvalidSettingsStopTheStart(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--batch-max-events", "0"}, "--batch-max-events"},
		{[]string{"serve", "--batch-max-bytes", "lots"}, "--batch-max-bytes"},
		{[]string{"serve", "--http-addr", "nonsense"}, "--http-addr"},
		{[]string{"serve", "--admin-addr", "nonsense"}, "--admin-addr"},
		{[]string{"serve", "--elasticsearch-url", "ftp://x"}, "--elasticsearch-url"},
		{[]string{"serve", "--api-keys", "justakey"}, "--api-keys"},
		{[]string{"serve", "--database-url", "mysql://x"}, "--database-url"},
		{[]string{"replay", "--sink", "kafka"}, "--sink"},
		{[]string{"serve", "--redis-channels", "a"}, "--redis-channels needs"},
		{[]string{"serve", "--redis-sentinels", "127.0.0.1:26379", "--redis-channels", "a"}, "--redis-master-name"},
		{[]string{"serve", "--redis-url", "redis://127.0.0.1:1", "--node-heartbeat", "1ms"}, "--node-heartbeat"},
		{[]string{"serve", "--redis-url", "redis://127.0.0.1:1", "--cluster-name", "a:b"}, "--cluster-name"},
		{[]string{"serve", "--redis-url", "redis://127.0.0.1:1", "--redis-cluster", "127.0.0.1:2"}, "exclude each other"},
		{[]string{"serve", "--redis-cluster", "nohostport", "--redis-channels", "a"}, "--redis-cluster"},
		{[]string{"serve", "--redis-url", "redis://127.0.0.1:1", "--redis-channels", "a", "--redis-sharded"}, "--redis-sharded needs --redis-cluster"},
		{[]string{"serve", "--redis-cluster", "127.0.0.1:2", "--redis-channels", "a.*", "--redis-sharded"}, "is a pattern"},
		{[]string{"serve", "--redis-streams", "s"}, "--redis-streams needs"},
		{[]string{"serve", "--redis-url", "redis://127.0.0.1:1", "--redis-streams", "s", "--redis-group-start", "middle"}, "--redis-group-start"},
		{[]string{"serve", "--redis-url", "redis://127.0.0.1:1", "--redis-streams", "s", "--redis-stream-claim-idle", "10ms"}, "--redis-stream-claim-idle"},
		{[]string{"serve", "--redis-url", "redis://127.0.0.1:1", "--redis-streams", "s", "--redis-stream-batch", "0"}, "--redis-stream-batch"},
		{[]string{"serve", "--vip", "10.0.0"}, "--vip"},
		{[]string{"serve", "--haproxy-stats-url", "ftp://x/stats"}, "--haproxy-stats-url"},
		{[]string{"serve", "--haproxy-poll-interval", "1ms", "--haproxy-runtime-addr", "127.0.0.1:1"}, "--haproxy-poll-interval"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, code := runCLI(t, append(tt.args, "--data-dir", t.TempDir())...)
			if code == 0 || !strings.Contains(out, tt.want) {
				t.Fatalf("exit %d, output:\n%s\nwant a failure naming %s", code, out, tt.want)
			}
		})
	}
}

func TestHelpShowsDefaultsAndEnvironment(t *testing.T) {
	out, code := runCLI(t, "serve", "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"--batch-max-events", "(default: 1000)", "EVENTLISTENER_HTTP_ADDR", "DATABASE_URL", "ELASTICSEARCH_URL", "--shutdown-timeout"} {
		if !strings.Contains(out, want) {
			t.Errorf("serve --help lacks %q:\n%s", want, out)
		}
	}
}
