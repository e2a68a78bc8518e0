package esfake

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/elastic/go-elasticsearch/v8/esutil"
)

func noRetry(cfg *elasticsearch.Config) { cfg.DisableRetry = true }

func TestFailRequestsFailsWholeBulkRequests(t *testing.T) {
	e := setup(t)
	e.needFake()
	idx := e.plainIndex("whole")
	c := e.client(noRetry)
	cases := []struct {
		name      string
		status    int
		emptyBody bool
		errType   string
	}{
		{"413 has an empty body, as ES sends it", 413, true, ""},
		{"429 carries es_rejected_execution_exception", 429, false, "es_rejected_execution_exception"},
		{"503 carries an ES error", 503, false, "cluster_block_exception"},
		{"500 carries an ES error", 500, false, "exception"},
	}
	for i, cs := range cases {
		t.Run(cs.name, func(t *testing.T) {
			before := e.fake.BulkRequests()
			e.fake.FailRequests(cs.status, 1)
			body := action("create", idx, fmt.Sprintf("w%d", i)) + "\n{}\n"
			status, raw, header := doWith(t, c, esapi.BulkRequest{Body: strings.NewReader(body)})
			if status != cs.status {
				t.Fatalf("status %d, want %d: %s", status, cs.status, raw)
			}
			if header.Get("X-Elastic-Product") != "Elasticsearch" {
				t.Error("no product header")
			}
			if cs.emptyBody {
				if header.Get("Content-Length") != "0" || len(raw) != 0 {
					t.Errorf("Content-Length %q, body %q; want an empty body", header.Get("Content-Length"), raw)
				}
			} else {
				er := decodeErr(t, raw)
				if er.Status != cs.status || er.Error.Type != cs.errType || len(er.Error.RootCause) != 1 || er.Error.RootCause[0].Type != cs.errType {
					t.Errorf("body %s", raw)
				}
			}
			if got := e.fake.BulkRequests() - before; got != 1 {
				t.Errorf("BulkRequests grew by %d, want 1", got)
			}
			r := e.bulkWith(c, action("create", idx, fmt.Sprintf("w%d", i)), "{}")
			if r.statuses()[0] != 201 {
				t.Errorf("the request after the failures: %v (was the failed one stored?)", r.statuses())
			}
		})
	}
}

func TestTheTransportRetries503(t *testing.T) {
	e := setup(t)
	e.needFake()
	idx := e.plainIndex("retry")
	e.fake.FailRequests(503, 2)
	before := e.fake.BulkRequests()
	r := e.bulk(action("create", idx, "r1"), "{}")
	if r.statuses()[0] != 201 {
		t.Fatalf("statuses %v", r.statuses())
	}
	if got := e.fake.BulkRequests() - before; got != 3 {
		t.Errorf("%d bulk requests, want 3 (two 503s, then success)", got)
	}
}

func TestTheTransportDoesNotRetry429(t *testing.T) {
	e := setup(t)
	e.needFake()
	idx := e.plainIndex("noretry")
	e.fake.FailRequests(429, 1)
	status, _, _ := e.do(esapi.BulkRequest{Body: strings.NewReader(action("create", idx, "x") + "\n{}\n")})
	if status != 429 || e.fake.BulkRequests() != 1 {
		t.Errorf("status %d after %d requests", status, e.fake.BulkRequests())
	}
}

func TestTooLargeBodiesGet413(t *testing.T) {
	e := setup(t)
	e.needFake()
	e.fake.mu.Lock()
	e.fake.maxContentLength = 64
	e.fake.mu.Unlock()
	body := action("create", e.plainIndex("big"), "x") + "\n" + `{"pad":"` + strings.Repeat("x", 100) + `"}` + "\n"
	res, raw := e.raw("POST", "/_bulk", []byte(body), map[string]string{"Content-Type": "application/json"})
	if res.StatusCode != 413 || len(raw) != 0 {
		t.Errorf("%d %q", res.StatusCode, raw)
	}
}

func TestRejectItemFailsTheNextItemsWithThatID(t *testing.T) {
	e := setup(t)
	e.needFake()
	_, dsName := e.withTemplate()
	cases := []struct {
		name    string
		status  int
		errType string
	}{
		{"429 queue full", 429, "es_rejected_execution_exception"},
		{"400 bad document", 400, "document_parsing_exception"},
		{"500 internal error", 500, "illegal_state_exception"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ds := dsName(fmt.Sprint(c.status))
			e.fake.RejectItem("r1", c.status, 2)
			doc := `{"@timestamp":"2024-05-01T10:00:00Z"}`
			for attempt := 1; attempt <= 2; attempt++ {
				r := e.bulk(action("create", ds, "r1"), doc, action("create", ds, fmt.Sprintf("ok%d", attempt)), doc)
				if got := r.statuses(); !slices.Equal(got, []int{c.status, 201}) {
					t.Fatalf("attempt %d: statuses %v", attempt, got)
				}
				_, it := r.item(0)
				if it.Error == nil || it.Error.Type != c.errType || it.Result != "" || !r.Errors {
					t.Errorf("attempt %d: item %+v", attempt, it)
				}
				if backingIndexRe.FindStringSubmatch(it.Index) == nil {
					t.Errorf("attempt %d: _index %q", attempt, it.Index)
				}
			}
			r := e.bulk(action("create", ds, "r1"), doc)
			if got := r.statuses(); !slices.Equal(got, []int{201}) {
				t.Fatalf("after the rejections: statuses %v", got)
			}
			e.refresh(ds)
			if n := e.count(ds, `{"query":{"ids":{"values":["r1"]}}}`); n != 1 {
				t.Errorf("r1 stored %d times", n)
			}
		})
	}
}

func TestConcurrentBulkIndexers(t *testing.T) {
	e := setup(t)
	idx := e.plainIndex("concurrent")
	const writers, perWriter = 4, 50
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bi, err := esutil.NewBulkIndexer(esutil.BulkIndexerConfig{Client: e.es, Index: idx, NumWorkers: 2, FlushBytes: 512})
			if err != nil {
				t.Error(err)
				return
			}
			for i := range perWriter {
				_ = bi.Add(ctx, esutil.BulkIndexerItem{
					Action: "create", DocumentID: fmt.Sprintf("w%d-%d", w, i),
					Body: strings.NewReader(fmt.Sprintf(`{"w":%d,"i":%d}`, w, i)),
					OnFailure: func(_ context.Context, item esutil.BulkIndexerItem, res esutil.BulkIndexerResponseItem, err error) {
						mu.Lock()
						failures = append(failures, fmt.Sprintf("%s: %d %s %v", item.DocumentID, res.Status, res.Error.Type, err))
						mu.Unlock()
					},
				})
			}
			if err := bi.Close(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("failures: %v", failures)
	}
	e.refresh(idx)
	if n := e.count(idx, ""); n != writers*perWriter {
		t.Errorf("count = %d, want %d", n, writers*perWriter)
	}
}
