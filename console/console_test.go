package console

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	sse "github.com/tmaxmax/go-sse"

	"eventlistener/actors"
	"eventlistener/event"
	"eventlistener/sinks"
	"eventlistener/sinks/fallback"
	"eventlistener/sources"
)

func TestQuantilesComeFromTheNativeBuckets(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "eventlistener_http_request_seconds",
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9), NativeHistogramBucketFactor: 1.1}, []string{"route"})
	reg.MustRegister(h)
	obs := h.WithLabelValues("/v1/events")
	for i := 1; i <= 1000; i++ {
		obs.Observe(float64(i) / 1e6) // 1µs..1ms: an earlier second
	}
	before := read(reg, time.Now())
	for i := 1; i <= 1000; i++ {
		obs.Observe(float64(i) / 1000) // 1ms..1s: this second
	}
	after := read(reg, time.Now().Add(time.Second))
	s := sample(before, after, actors.NodeStatus{})
	if s.P50 == nil || s.P99 == nil {
		t.Fatal("no quantiles from the native histogram")
	}
	// Within the bucket factor of the true values (500 ms and 990 ms):
	// the first second's fast requests must not count.
	if math.Abs(*s.P50-500)/500 > 0.1 || math.Abs(*s.P99-990)/990 > 0.1 {
		t.Fatalf("p50 %.1f ms, p99 %.1f ms; want about 500 and 990", *s.P50, *s.P99)
	}
	if s := sample(after, after, actors.NodeStatus{}); s.P50 != nil {
		t.Fatalf("a second with no request has p50 %v, want none", *s.P50)
	}
}

// A reset, or buckets the library widened, never shows the whole history
// as one second's requests.
func TestQuantilesSurviveResetsAndWiderBuckets(t *testing.T) {
	// Schema 3 (8 buckets a doubling): 1,000 old observations near 1 ms.
	prev := native{schema: 3, count: 1000, counts: map[int]uint64{-80: 1000}}
	// Widened to schema 1: the old ones are in bucket ceil(-80/4) = -20;
	// 10 new observations near 1 s (bucket 0 at schema 1 is (0.7, 1]).
	cur := native{schema: 1, count: 1010, counts: map[int]uint64{-20: 1000, 0: 10}}
	d := cur.since(prev)
	if d.total() != 10 {
		t.Fatalf("after widening, the second holds %d observations, want 10", d.total())
	}
	if q, _ := d.quantile(0.5); q < 0.5 || q > 1 {
		t.Fatalf("p50 after widening = %v s, want about 0.85", q)
	}
	// A reset: fewer observations than before; all of them are new.
	reset := native{schema: 3, count: 5, counts: map[int]uint64{0: 5}}
	if d := reset.since(prev); d.total() != 5 {
		t.Fatalf("after a reset, the second holds %d observations, want 5", d.total())
	}
}

func TestTailFiltersAndSamples(t *testing.T) {
	tail := NewTail(5)
	sub, recent := tail.subscribe(Filter{Type: "order.*", Source: "shop"})
	defer tail.unsubscribe(sub)
	if len(recent) != 0 {
		t.Fatalf("recent events before any: %v", recent)
	}
	var evs []event.Event
	for i := range 1000 {
		typ, src := "order.created", "shop"
		switch i % 4 {
		case 1:
			typ = "user.created"
		case 2:
			src = "billing"
		}
		evs = append(evs, event.Event{ID: fmt.Sprint(i), Type: typ, Source: src, Data: json.RawMessage(`{"big":"` + strings.Repeat("é", 2000) + `"}`)})
	}
	tail.Offer(evs)
	if got := sub.matched.Load(); got != 500 {
		t.Fatalf("the filter matched %d events, want 500", got)
	}
	shown := sub.shown.Load()
	if shown < 1 || shown > 5 {
		t.Fatalf("the tail sent %d events at 5 a second, want 1 to 5", shown)
	}
	for range shown {
		e := <-sub.ch
		if !strings.HasPrefix(e.Type, "order.") || e.Source != "shop" {
			t.Fatalf("the tail sent %s from %s, which the filter does not match", e.Type, e.Source)
		}
		if e.Data != nil || len(e.Preview) > PreviewBytes || !strings.HasPrefix(e.Preview, `{"big":"é`) || e.Bytes != len(evs[0].Data) {
			t.Fatalf("large data not cut to a valid preview: %d bytes, data %d", len(e.Preview), len(e.Data))
		}
	}
	// A new stream starts with what was seen recently and matches.
	_, recent = tail.subscribe(Filter{Source: "shop"})
	if len(recent) != 1 || recent[0].ID != "0" {
		t.Fatalf("a new stream starts with %v, want the one recent event", recent)
	}
}

// fakeEngine is the engine as the console sees it.
type fakeEngine struct {
	mu       sync.Mutex
	ingested []event.Event
}

func (f *fakeEngine) Node(context.Context) actors.NodeStatus {
	return actors.NodeStatus{Accepting: true, Ready: true, WAL: actors.WALStatus{Dir: "/secret/wal"},
		Sinks: []actors.SinkStatus{{Name: "mem", Breaker: "closed", Reachable: true, LastError: "dial tcp 10.0.0.1: refused"}}}
}
func (f *fakeEngine) ClusterView() actors.Cluster {
	return actors.Cluster{Alone: true, Reason: actors.ErrAlone.Error()}
}
func (f *fakeEngine) Status() actors.NodeStatus { return f.Node(context.Background()) }
func (f *fakeEngine) Ingest(evs []event.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ingested = append(f.ingested, evs...)
	return nil
}

type memSink struct {
	mu     sync.Mutex
	stored map[string]bool
	down   bool // every write fails as a store that is down does
	writes int
}

func (s *memSink) Name() string               { return "mem" }
func (s *memSink) Ping(context.Context) error { return nil }
func (s *memSink) Close() error               { return nil }
func (s *memSink) Write(_ context.Context, evs []event.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	if s.down {
		return sinks.MarkRetryable(errors.New("connection refused"))
	}
	for _, e := range evs {
		s.stored[e.ID] = true
	}
	return nil
}

const testToken = "0123456789abcdef"

func newTestConsole(t *testing.T, maxStreams int) (*Console, *httptest.Server, *fakeEngine, *memSink, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "fallback")
	eng := &fakeEngine{}
	sink := &memSink{stored: map[string]bool{}}
	c := New(Options{Engine: eng, Gatherer: prometheus.NewRegistry(), Sinks: map[string]sinks.Sink{"mem": sink}, FallbackDir: dir,
		Authorize: func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer "+testToken }, TokenSet: true,
		Interval: 20 * time.Millisecond, MaxStreams: maxStreams})
	e := echo.New()
	c.Register(e)
	srv := httptest.NewServer(e)
	go c.Run()
	t.Cleanup(func() { srv.Close(); c.Close() })
	return c, srv, eng, sink, dir
}

func get(t *testing.T, url string, token string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestStatsStreamHidesDetailsWithoutTheToken(t *testing.T) {
	_, srv, _, _, _ := newTestConsole(t, 4)
	for _, tc := range []struct {
		token  string
		hidden bool
	}{{"", true}, {"wrong-token-wrong", true}, {testToken, false}} {
		res := get(t, srv.URL+"/v1/stats/stream", tc.token)
		if ct := res.Header.Get("Content-Type"); res.StatusCode != 200 || ct != "text/event-stream" {
			t.Fatalf("stream: %d %s", res.StatusCode, ct)
		}
		var types []string
		var last SampleBody
		for ev, err := range sse.Read(res.Body, &sse.ReadConfig{MaxEventSize: 1 << 20}) {
			if err != nil {
				t.Fatal(err)
			}
			types = append(types, ev.Type)
			if ev.Type == "sample" {
				if err := json.Unmarshal([]byte(ev.Data), &last); err != nil {
					t.Fatal(err)
				}
			}
			if len(types) == 3 {
				break
			}
		}
		res.Body.Close()
		if types[0] != "history" || types[1] != "sample" || types[2] != "sample" {
			t.Fatalf("stream sent %v, want history then samples", types)
		}
		st := last.State
		if hidden := st.Node.WAL.Dir == "hidden" && st.Sinks[0].LastError == "hidden"; hidden != tc.hidden || st.Admin.Authorized == tc.hidden {
			t.Fatalf("token %q: WAL dir %q, last error %q, authorized %v; want hidden %v", tc.token, st.Node.WAL.Dir, st.Sinks[0].LastError, st.Admin.Authorized, tc.hidden)
		}
	}
}

func TestStreamsAreBounded(t *testing.T) {
	_, srv, _, _, _ := newTestConsole(t, 2)
	var open []*http.Response
	for range 2 {
		res := get(t, srv.URL+"/v1/stats/stream", "")
		if res.StatusCode != 200 {
			t.Fatalf("stream %d", res.StatusCode)
		}
		open = append(open, res)
	}
	res := get(t, srv.URL+"/v1/tail/stream", testToken)
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Fatalf("a third stream got %d, want 503 with Retry-After", res.StatusCode)
	}
	open[0].Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		res := get(t, srv.URL+"/v1/tail/stream", testToken)
		res.Body.Close()
		if res.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a closed stream's slot was not given back")
		}
		time.Sleep(20 * time.Millisecond)
	}
	open[1].Body.Close()
}

func TestTailNeedsTheTokenWhenOneIsSet(t *testing.T) {
	_, srv, _, _, _ := newTestConsole(t, 4)
	res := get(t, srv.URL+"/v1/tail/stream", "")
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("tail without the token: %d, want 401", res.StatusCode)
	}
}

func TestReplayFromTheConsole(t *testing.T) {
	c, srv, eng, sink, dir := newTestConsole(t, 4)
	l, err := fallback.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var failed []sinks.Failed
	for i := range 30 {
		failed = append(failed, sinks.Failed{Event: event.Event{ID: fmt.Sprint("ev-", i), Type: "t", Source: "s",
			Time: time.Now().UTC(), ReceivedAt: time.Now().UTC(), Data: json.RawMessage(`{}`)}, Err: errors.New("down")})
	}
	if _, err := l.Write("mem", "b1", failed); err != nil {
		t.Fatal(err)
	}
	// Another sink's file is not the replay's business: left as it is.
	other, err := l.Write("other", "b2", failed[:3])
	if err != nil {
		t.Fatal(err)
	}
	post := func(path, token string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b := new(strings.Builder)
		bufio.NewReader(res.Body).WriteTo(b)
		return res.StatusCode, b.String()
	}
	if code, body := post("/v1/sinks/mem/replay", ""); code != http.StatusUnauthorized {
		t.Fatalf("replay without the token: %d %s, want 401", code, body)
	}
	if code, _ := post("/v1/sinks/nope/replay", testToken); code != http.StatusNotFound {
		t.Fatalf("replay of an unknown sink: %d, want 404", code)
	}
	if len(sink.stored) != 0 {
		t.Fatal("a refused replay sent events")
	}
	if code, body := post("/v1/sinks/mem/replay", testToken); code != http.StatusAccepted || !strings.Contains(body, `"records":30`) {
		t.Fatalf("replay: %d %s, want 202 with 30 records", code, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := c.replays.status()
		if st.State != "running" {
			if st.State != "done" || st.Sent != 30 || st.Done != 30 || len(sink.stored) != 30 {
				t.Fatalf("replay ended %+v with %d stored, want done with 30 sent", st, len(sink.stored))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the replay did not finish")
		}
		time.Sleep(10 * time.Millisecond)
	}
	got, _ := c.backlog.Count()
	if got["mem"].Events != 0 {
		t.Fatalf("backlog after the replay: %+v", got["mem"])
	}
	// Recorded when it starts and when it ends, saying who.
	var results []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		eng.mu.Lock()
		results = results[:0]
		for _, e := range eng.ingested {
			var d struct{ Result, Who string }
			json.Unmarshal(e.Data, &d)
			if e.Type == ReplayActionType && d.Who == "admin@127.0.0.1" {
				results = append(results, d.Result)
			}
		}
		eng.mu.Unlock()
		if len(results) == 2 || time.Now().After(deadline) {
			break
		}
	}
	if strings.Join(results, ",") != "running,done" {
		t.Fatalf("the replay was recorded as %v, want running then done, with who", results)
	}
	if _, err := os.Stat(filepath.Join(dir, fallback.ReplayedDir)); err != nil {
		t.Fatalf("the replayed file was not moved aside: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, other)); err != nil {
		t.Fatalf("another sink's file was touched by mem's replay: %v", err)
	}
	if files, _ := fallback.Files([]string{dir}); len(files) != 1 {
		t.Fatalf("after the replay the folder holds %v, want only the other sink's file", files)
	}
}

// A store that is down stops the replay at the first file: the others are
// left in place, not rewritten.
func TestReplayStopsWhileTheStoreIsDown(t *testing.T) {
	c, _, _, sink, dir := newTestConsole(t, 4)
	c.replays.retry = sinks.Retry{Initial: time.Millisecond, Max: time.Millisecond, MaxElapsed: 20 * time.Millisecond}
	sink.down = true
	l, _ := fallback.Open(dir)
	for i := range 3 {
		ev := event.Event{ID: fmt.Sprint("ev-", i), Type: "t", Source: "s", Time: time.Now().UTC(), ReceivedAt: time.Now().UTC(), Data: json.RawMessage(`{}`)}
		if _, err := l.Write("mem", fmt.Sprint("b", i), []sinks.Failed{{Event: ev, Err: errors.New("down")}}); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := fallback.Files([]string{dir})
	if _, err := c.replays.start(context.Background(), "mem", "test"); err != nil {
		t.Fatal(err)
	}
	c.replays.wg.Wait()
	st := c.replays.status()
	if st.State != "failed" || st.Files != 1 || !strings.Contains(st.Error, "2 files left in place") {
		t.Fatalf("replay with the store down: %+v; want failed after one file, two left", st)
	}
	after, _ := fallback.Files([]string{dir})
	for _, f := range before[1:] {
		if !slices.Contains(after, f) {
			t.Fatalf("%s was rewritten although the replay had stopped: %v", f, after)
		}
	}
	got, _ := c.backlog.Count()
	if got["mem"].Events != 3 {
		t.Fatalf("backlog after a failed replay: %+v, want the 3 events still", got["mem"])
	}
}

func TestThePageIsServed(t *testing.T) {
	_, srv, _, _, _ := newTestConsole(t, 4)
	for path, want := range map[string]string{"/": "text/html", "/console/app.js": "javascript", "/console/vendor/uPlot.iife.min.js": "javascript",
		"/console/app.css": "text/css"} {
		res := get(t, srv.URL+path, "")
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(res.Header.Get("Content-Type"), want) {
			t.Fatalf("%s: %d %s", path, res.StatusCode, res.Header.Get("Content-Type"))
		}
	}
}

// The vendored uPlot is the version the lock file pins.
func TestVendoredUPlotMatchesTheLockFile(t *testing.T) {
	var lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	b, err := os.ReadFile("web/package-lock.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &lock); err != nil {
		t.Fatal(err)
	}
	v := lock.Packages["node_modules/uplot"].Version
	js, err := os.ReadFile("web/vendor/uPlot.iife.min.js")
	if err != nil {
		t.Fatal(err)
	}
	if v == "" || !strings.Contains(string(js[:min(200, len(js))]), "(v"+v+")") {
		t.Fatalf("web/vendor/uPlot.iife.min.js is not uPlot %s from the lock file: run scripts/build-console", v)
	}
}

// A page on another site whose name points at this address (DNS
// rebinding) is refused; IP addresses, localhost and allowed names work.
func TestTheConsoleAnswersOnlyToItsOwnHosts(t *testing.T) {
	c, srv, _, _, _ := newTestConsole(t, 4)
	c.opt.AllowedHosts = []string{"console.example.org"}
	for host, want := range map[string]int{"127.0.0.1:8081": 200, "localhost:8081": 200, "[::1]:8081": 200,
		"console.example.org": 200, "evil.example.com:8081": 403, "127.0.0.1.evil.example.com": 403} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/stats", nil)
		req.Host = host
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, res.StatusCode, want)
		}
	}
}

// A stream outlives the server's read and write timeouts, which are for
// requests: it sets its own deadline per write.
func TestStreamsOutliveTheServersTimeouts(t *testing.T) {
	c, _, _, _, _ := newTestConsole(t, 4)
	e := echo.New()
	c.Register(e)
	srv := httptest.NewUnstartedServer(e)
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = 200*time.Millisecond, 300*time.Millisecond
	srv.Start()
	defer srv.Close()
	res := get(t, srv.URL+"/v1/stats/stream?history=0", "")
	defer res.Body.Close()
	start, n := time.Now(), 0
	for _, err := range sse.Read(res.Body, &sse.ReadConfig{MaxEventSize: 1 << 20}) {
		if err != nil {
			t.Fatalf("the stream broke after %s: %v", time.Since(start), err)
		}
		if n++; time.Since(start) > time.Second {
			return
		}
	}
	t.Fatalf("the stream ended after %s and %d messages, past the server's timeouts", time.Since(start), n)
}

// Hiding makes a copy: the full state, which admin streams share, keeps
// every detail.
func TestHideLeavesTheFullStateAlone(t *testing.T) {
	full := State{
		Node: actors.NodeStatus{WAL: actors.WALStatus{Dir: "/data/wal"},
			Sources: []actors.SourceStatus{{Name: "haproxy", LastCrash: "dial 10.0.0.10", Status: &sources.ProxyStatus{Error: "dial 10.0.0.9"}}}},
		Sinks: []SinkView{{SinkStatus: actors.SinkStatus{Name: "postgres", LastError: "password for alice"}}},
		Redis: &RedisView{PubSubStatus: sources.PubSubStatus{LastError: "redis 10.0.0.7"}},
		Proxy: &sources.ProxySnapshot{Error: "haproxy 10.0.0.8"},
	}
	proxyErr := func(st State) string { return st.Node.Sources[0].Status.(*sources.ProxyStatus).Error }
	pub := hide(full)
	for _, s := range []string{pub.Node.WAL.Dir, proxyErr(pub), pub.Node.Sources[0].LastCrash, pub.Sinks[0].LastError, pub.Redis.LastError, pub.Proxy.Error} {
		if s != "hidden" {
			t.Errorf("a detail reads %q without the token", s)
		}
	}
	if full.Node.WAL.Dir != "/data/wal" || proxyErr(full) != "dial 10.0.0.9" || full.Node.Sources[0].LastCrash != "dial 10.0.0.10" || full.Sinks[0].LastError != "password for alice" ||
		full.Redis.LastError != "redis 10.0.0.7" || full.Proxy.Error != "haproxy 10.0.0.8" {
		t.Errorf("hiding changed the full state: %+v", full)
	}
}
