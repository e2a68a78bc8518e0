package esfake

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/elastic/go-elasticsearch/v8/esapi"
)

func TestCountAndSearchReadBack(t *testing.T) {
	e := setup(t)
	idx := e.plainIndex("read")
	_, dsName := e.withTemplate()
	ds := dsName("read")
	e.bulk(
		action("create", idx, "1"), `{"kind":"alert","msg":"Disk Full on host","n":1}`,
		action("create", idx, "2"), `{"kind":"event","msg":"user login","n":2}`,
		action("create", idx, "3"), `{"kind":"event","msg":"user logout","n":3}`,
		action("create", idx, e.prefix+"-u"), `{"kind":"unique"}`,
		action("create", ds, "a"), `{"@timestamp":"2024-05-01T10:00:00Z","event":{"kind":"alert","id":"a"}}`,
		action("create", ds, "b"), `{"@timestamp":"2024-05-01T11:00:00Z","event":{"kind":"event","id":"b"},"payload":{"user":{"name":"bob"}}}`,
	)
	e.refresh(idx)
	e.refresh(ds)

	counts := []struct {
		name, index, query string
		want               int
	}{
		{"no body counts everything", idx, "", 4},
		{"match_all", idx, `{"query":{"match_all":{}}}`, 4},
		{"_all covers every index", "_all", `{"query":{"ids":{"values":["` + e.prefix + `-u"]}}}`, 1},
		{"a wildcard covers indices and data streams", e.prefix + "-*", `{"query":{"ids":{"values":["` + e.prefix + `-u","a","b"]}}}`, 3},
		{"ids", idx, `{"query":{"ids":{"values":["1","3","nope"]}}}`, 2},
		{"term on a dynamic keyword subfield", idx, `{"query":{"term":{"kind.keyword":"event"}}}`, 2},
		{"term on a text field matches a lowercase token", idx, `{"query":{"term":{"msg":"disk"}}}`, 1},
		{"term on a text field is not analyzed", idx, `{"query":{"term":{"msg":"Disk"}}}`, 0},
		{"term on a long", idx, `{"query":{"term":{"n":2}}}`, 1},
		{"term with a value object", idx, `{"query":{"term":{"kind.keyword":{"value":"alert"}}}}`, 1},
		{"term on an unmapped field", idx, `{"query":{"term":{"nope":"x"}}}`, 0},
		{"data stream by name", ds, "", 2},
		{"term on a keyword in a data stream", ds, `{"query":{"term":{"event.kind":"alert"}}}`, 1},
		{"term on a flattened key", ds, `{"query":{"term":{"payload.user.name":"bob"}}}`, 1},
		{"bool filter with range on a date", ds, `{"query":{"bool":{"filter":[{"range":{"@timestamp":{"gte":"2024-05-01T10:30:00Z"}}}]}}}`, 1},
	}
	for _, c := range counts {
		t.Run("count/"+c.name, func(t *testing.T) {
			if got := e.count(c.index, c.query); got != c.want {
				t.Errorf("count = %d, want %d", got, c.want)
			}
		})
	}

	t.Run("search by ids returns the sources", func(t *testing.T) {
		r := e.search(idx, `{"query":{"ids":{"values":["1","2"]}},"size":10}`)
		if r.Hits.Total.Value != 2 || r.Hits.Total.Relation != "eq" || len(r.Hits.Hits) != 2 {
			t.Fatalf("hits %+v", r.Hits)
		}
		var ids []string
		for _, h := range r.Hits.Hits {
			ids = append(ids, h.ID)
			var src map[string]any
			if err := json.Unmarshal(h.Source, &src); err != nil || src["kind"] == nil || h.Index != idx {
				t.Errorf("hit %+v", h)
			}
		}
		sort.Strings(ids)
		if !slices.Equal(ids, []string{"1", "2"}) {
			t.Errorf("ids %v", ids)
		}
	})
	t.Run("search size limits the hits, not the total", func(t *testing.T) {
		r := e.search(idx, `{"query":{"match_all":{}},"size":1}`)
		if r.Hits.Total.Value != 4 || len(r.Hits.Hits) != 1 {
			t.Errorf("hits %+v", r.Hits)
		}
	})
	t.Run("search a data stream reports the backing index", func(t *testing.T) {
		r := e.search(ds, `{"query":{"term":{"event.id":"b"}}}`)
		if len(r.Hits.Hits) != 1 || backingIndexRe.FindStringSubmatch(r.Hits.Hits[0].Index) == nil {
			t.Errorf("hits %+v", r.Hits)
		}
	})
	t.Run("search sorted by a date field", func(t *testing.T) {
		r := e.search(ds, `{"query":{"match_all":{}},"sort":[{"@timestamp":"desc"}]}`)
		if len(r.Hits.Hits) != 2 || r.Hits.Hits[0].ID != "b" {
			t.Errorf("hits %+v", r.Hits)
		}
	})
	t.Run("get a document", func(t *testing.T) {
		status, body, _ := e.do(esapi.GetRequest{Index: idx, DocumentID: "2"})
		if status != 200 || !strings.Contains(string(body), `"found":true`) || !strings.Contains(string(body), `"user login"`) {
			t.Errorf("%d %s", status, body)
		}
		status, body, _ = e.do(esapi.GetRequest{Index: idx, DocumentID: "nope"})
		if status != 404 || !strings.Contains(string(body), `"found":false`) {
			t.Errorf("%d %s", status, body)
		}
	})
	t.Run("missing index", func(t *testing.T) {
		missing := e.prefix + "-missing"
		for _, req := range []esapi.Request{
			esapi.CountRequest{Index: []string{missing}},
			esapi.SearchRequest{Index: []string{missing}, Body: strings.NewReader(`{"query":{"match_all":{}}}`)},
			esapi.IndicesRefreshRequest{Index: []string{missing}},
		} {
			status, body, _ := e.do(req)
			er := decodeErr(t, body)
			if status != 404 || er.Error.Type != "index_not_found_exception" || er.Error.Index != missing {
				t.Errorf("%T: %d %s", req, status, body)
			}
		}
	})
	t.Run("delete index removes its data", func(t *testing.T) {
		status, body, _ := e.do(esapi.IndicesDeleteRequest{Index: []string{idx}})
		if status != 200 {
			t.Fatalf("%d %s", status, body)
		}
		status, _, _ = e.do(esapi.CountRequest{Index: []string{idx}})
		if status != 404 {
			t.Errorf("count after delete: %d", status)
		}
	})
}

func TestUnknownRoutesGetESErrors(t *testing.T) {
	e := setup(t)
	cases := []struct {
		name, method, path string
		want               int // the fake's answer; a real cluster only has to answer an ES-shaped 4xx
	}{
		{"no handler for the path", "GET", "/_esfake/no_such_endpoint", 400},
		{"a lone segment is an index name", "GET", "/_esfake_no_such_index", 404},
		{"bulk takes only POST and PUT", "GET", "/_bulk", 405},
		{"bulk does not take DELETE", "DELETE", "/_bulk", 405},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, body := e.raw(c.method, c.path, nil, nil)
			if e.fake != nil && res.StatusCode != c.want {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, c.want, body)
			}
			if res.StatusCode < 400 || res.StatusCode >= 500 {
				t.Fatalf("status %d: %s", res.StatusCode, body)
			}
			var r struct {
				Error  any `json:"error"`
				Status int `json:"status"`
			}
			if err := json.Unmarshal(body, &r); err != nil || r.Error == nil || r.Status != res.StatusCode {
				t.Errorf("body %s", body)
			}
			if res.Header.Get("X-Elastic-Product") != "Elasticsearch" {
				t.Error("no product header")
			}
		})
	}
}
