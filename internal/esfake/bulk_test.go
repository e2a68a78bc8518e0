package esfake

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/elastic/go-elasticsearch/v8/esutil"
)

func TestTheClientAcceptsTheProductHeader(t *testing.T) {
	e := setup(t)
	status, body, header := e.do(esapi.InfoRequest{})
	if status != 200 {
		t.Fatalf("info: %d %s", status, body)
	}
	if got := header.Get("X-Elastic-Product"); got != "Elasticsearch" {
		t.Errorf("X-Elastic-Product = %q", got)
	}
	var info struct {
		Version struct {
			Number      string `json:"number"`
			BuildFlavor string `json:"build_flavor"`
		} `json:"version"`
		Tagline string `json:"tagline"`
	}
	if err := json.Unmarshal(body, &info); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(info.Version.Number, "8.") || info.Tagline != "You Know, for Search" {
		t.Errorf("info = %+v", info)
	}
	res, _ := e.raw("HEAD", "/", nil, nil)
	if res.StatusCode != 200 || res.Header.Get("X-Elastic-Product") != "Elasticsearch" {
		t.Errorf("HEAD /: %d %v", res.StatusCode, res.Header)
	}
}

func TestBulkAcceptsTheContentTypesOfTheClients(t *testing.T) {
	e := setup(t)
	idx := e.plainIndex("ctypes")
	cases := []struct {
		name        string
		contentType string
		accept      string
		wantStatus  int
	}{
		{"plain json, as go-elasticsearch sends", "application/json", "", 200},
		{"ndjson, as the docs say", "application/x-ndjson", "", 200},
		{"vendor json with compatible-with=8", "application/vnd.elasticsearch+json; compatible-with=8", "application/vnd.elasticsearch+json; compatible-with=8", 200},
		{"vendor ndjson with compatible-with=8", "application/vnd.elasticsearch+x-ndjson; compatible-with=8", "application/vnd.elasticsearch+json; compatible-with=8", 200},
		{"text/plain is refused", "text/plain", "", 406},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := action("create", idx, "ct"+string(rune('a'+i))) + "\n" + `{"n":1}` + "\n"
			h := map[string]string{"Content-Type": c.contentType}
			if c.accept != "" {
				h["Accept"] = c.accept
			}
			res, raw := e.raw("POST", "/_bulk", []byte(body), h)
			if res.StatusCode != c.wantStatus {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, c.wantStatus, raw)
			}
			if res.Header.Get("X-Elastic-Product") != "Elasticsearch" {
				t.Errorf("no product header on a %d", res.StatusCode)
			}
			if c.wantStatus == 200 {
				var r bulkResp
				if err := json.Unmarshal(raw, &r); err != nil || len(r.Items) != 1 || r.statuses()[0] != 201 {
					t.Errorf("response %s (%v)", raw, err)
				}
			}
		})
	}
	t.Run("client in compatibility mode", func(t *testing.T) {
		c := e.client(func(cfg *elasticsearch.Config) { cfg.EnableCompatibilityMode = true })
		r := e.bulkWith(c, action("create", idx, "compat"), `{"n":2}`)
		if got := r.statuses(); !slices.Equal(got, []int{201}) {
			t.Errorf("statuses %v", got)
		}
	})
}

func TestBulkItemsComeBackInRequestOrderWithTheirStatuses(t *testing.T) {
	e := setup(t)
	idx := e.plainIndex("order")
	r := e.bulk(
		action("create", idx, "a"), `{"n":1}`,
		action("index", idx, "b"), `{"n":2}`,
		action("create", idx, "a"), `{"n":3}`,
		action("index", idx, "a"), `{"n":4}`,
		action("delete", idx, "b"),
		action("delete", idx, "nope"),
		action("create", idx, ""), `{"n":5}`,
	)
	want := []struct {
		action, result string
		status         int
		version        int64
	}{
		{"create", "created", 201, 1},
		{"index", "created", 201, 1},
		{"create", "", 409, 0},
		{"index", "updated", 200, 2},
		{"delete", "deleted", 200, 2},
		{"delete", "not_found", 404, 1},
		{"create", "created", 201, 1},
	}
	if !r.Errors {
		t.Error("errors = false, want true (one item conflicts)")
	}
	if len(r.Items) != len(want) {
		t.Fatalf("%d items, want %d", len(r.Items), len(want))
	}
	for i, w := range want {
		act, it := r.item(i)
		if act != w.action || it.Status != w.status || it.Result != w.result || (w.version != 0 && it.Version != w.version) {
			t.Errorf("item %d = %s %+v, want %+v", i, act, it, w)
		}
		if it.Index != idx {
			t.Errorf("item %d _index = %q", i, it.Index)
		}
	}
	_, conflict := r.item(2)
	if conflict.Error == nil || conflict.Error.Type != "version_conflict_engine_exception" ||
		conflict.Error.Reason != "[a]: version conflict, document already exists (current version [1])" ||
		conflict.Error.Index != idx || conflict.Error.IndexUUID == "" {
		t.Errorf("conflict error = %+v", conflict.Error)
	}
	if conflict.Result != "" {
		t.Errorf("a failed item has result %q", conflict.Result)
	}
	_, generated := r.item(6)
	if generated.ID == nil || len(*generated.ID) < 10 {
		t.Errorf("create without _id got _id %v", generated.ID)
	}
	e.refresh(idx)
	if n := e.count(idx, ""); n != 2 {
		t.Errorf("count = %d, want 2: a and the generated one (b was deleted)", n)
	}
}

func TestWholeBulkRequestErrors(t *testing.T) {
	e := setup(t)
	idx := e.plainIndex("malformed")
	cases := []struct {
		name       string
		body       string
		path       string
		wantTypes  []string
		wantReason string
	}{
		{"body without the final newline", action("create", idx, "x") + "\n" + `{"n":1}`, "/_bulk",
			[]string{"illegal_argument_exception"}, `The bulk request must be terminated by a newline [\n]`},
		{"action line that is not JSON", `{"create" x}` + "\n" + `{"n":1}` + "\n", "/_bulk",
			[]string{"x_content_parse_exception", "json_parse_exception", "parse_exception", "illegal_argument_exception"}, ""},
		{"unknown action", `{"frobnicate":{"_index":"` + idx + `"}}` + "\n" + `{"n":1}` + "\n", "/_bulk",
			[]string{"illegal_argument_exception"}, "Malformed action/metadata line [1]"},
		{"unknown action parameter", `{"create":{"_index":"` + idx + `","_bogus":1}}` + "\n" + `{"n":1}` + "\n", "/_bulk",
			[]string{"illegal_argument_exception"}, "unknown parameter [_bogus]"},
		{"no index anywhere", `{"create":{"_id":"1"}}` + "\n" + `{"n":1}` + "\n", "/_bulk",
			[]string{"action_request_validation_exception"}, "index is missing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, raw := e.raw("POST", c.path, []byte(c.body), map[string]string{"Content-Type": "application/json"})
			if res.StatusCode != 400 {
				t.Fatalf("status %d, want 400: %s", res.StatusCode, raw)
			}
			er := decodeErr(t, raw)
			if er.Status != 400 || !slices.Contains(c.wantTypes, er.Error.Type) || !strings.Contains(er.Error.Reason, c.wantReason) {
				t.Errorf("error = %+v", er)
			}
			if len(er.Error.RootCause) == 0 {
				t.Errorf("no root_cause in %s", raw)
			}
		})
	}
	t.Run("index from the URL applies to actions without _index", func(t *testing.T) {
		res, raw := e.raw("POST", "/"+idx+"/_bulk", []byte(`{"create":{"_id":"u1"}}`+"\n"+`{"n":1}`+"\n"),
			map[string]string{"Content-Type": "application/json"})
		var r bulkResp
		if res.StatusCode != 200 || json.Unmarshal(raw, &r) != nil || r.statuses()[0] != 201 {
			t.Fatalf("%d %s", res.StatusCode, raw)
		}
		if _, it := r.item(0); it.Index != idx {
			t.Errorf("_index = %q", it.Index)
		}
	})
}

func TestGzipBulkBodies(t *testing.T) {
	e := setup(t)
	idx := e.plainIndex("gzip")
	c := e.client(func(cfg *elasticsearch.Config) { cfg.CompressRequestBody = true })
	r := e.bulkWith(c, action("create", idx, "g1"), `{"n":1}`, action("create", idx, "g2"), `{"n":2}`)
	if got := r.statuses(); !slices.Equal(got, []int{201, 201}) {
		t.Fatalf("statuses %v", got)
	}

	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write([]byte(action("create", idx, "g3") + "\n" + `{"n":3}` + "\n"))
	_ = zw.Close()
	res, raw := e.raw("POST", "/_bulk", buf.Bytes(), map[string]string{
		"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"})
	if res.StatusCode != 200 || !strings.Contains(string(raw), `"status":201`) {
		t.Fatalf("raw gzip bulk: %d %s", res.StatusCode, raw)
	}
	e.refresh(idx)
	if n := e.count(idx, ""); n != 3 {
		t.Errorf("count = %d, want 3", n)
	}
}

func TestTheBulkIndexerReadsItemResults(t *testing.T) {
	e := setup(t)
	idx := e.plainIndex("indexer")
	e.bulk(action("create", idx, "dup"), `{"n":0}`)

	var mu sync.Mutex
	failures := map[string]string{}
	ok := 0
	bi, err := esutil.NewBulkIndexer(esutil.BulkIndexerConfig{Client: e.es, Index: idx, NumWorkers: 1, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t)
	for _, doc := range []struct{ id, body string }{
		{"fresh", `{"n":1}`},
		{"dup", `{"n":2}`},
		{"bad", `{"n":"not a number"}`},
	} {
		err := bi.Add(ctx, esutil.BulkIndexerItem{
			Action: "create", DocumentID: doc.id, Body: strings.NewReader(doc.body),
			OnSuccess: func(context.Context, esutil.BulkIndexerItem, esutil.BulkIndexerResponseItem) {
				mu.Lock()
				ok++
				mu.Unlock()
			},
			OnFailure: func(_ context.Context, item esutil.BulkIndexerItem, res esutil.BulkIndexerResponseItem, err error) {
				mu.Lock()
				failures[item.DocumentID] = res.Error.Type
				mu.Unlock()
			},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := bi.Close(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if ok != 1 || failures["dup"] != "version_conflict_engine_exception" || failures["bad"] != "document_parsing_exception" {
		t.Errorf("ok=%d failures=%v", ok, failures)
	}
}

func TestFilterPathKeepsOnlyTheNamedParts(t *testing.T) {
	e := setup(t)
	idx := e.plainIndex("filter")
	body := action("create", idx, "f1") + "\n{}\n" + action("create", idx, "f1") + "\n{}\n"
	status, raw, _ := e.do(esapi.BulkRequest{Body: strings.NewReader(body), FilterPath: []string{"items.*.error.type", "errors"}})
	if status != 200 {
		t.Fatalf("%d %s", status, raw)
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	items, _ := got["items"].([]any)
	if got["errors"] != true || len(items) != 1 || got["took"] != nil {
		t.Errorf("filtered response = %s", raw)
	}
}

var backingIndexRe = regexp.MustCompile(`^\.ds-(.+)-\d{4}\.\d{2}\.\d{2}-000001$`)
