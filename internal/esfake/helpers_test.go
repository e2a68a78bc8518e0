package esfake

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
)

// requestTimeout bounds every call a test makes.
const requestTimeout = 15 * time.Second

// env is one test's Elasticsearch: the fake, or a real cluster when
// TEST_ELASTICSEARCH_URL is set. Names it creates start with prefix, which
// is unique per test, and are removed when the test ends.
type env struct {
	t      *testing.T
	url    string
	fake   *Server
	es     *elasticsearch.Client
	prefix string
}

func setup(t *testing.T) *env {
	t.Helper()
	url, fake := Start(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	e := &env{t: t, url: url, fake: fake, prefix: "esfaketest-" + hex.EncodeToString(b)}
	e.es = e.client()
	return e
}

// needFake skips a test that injects faults when it runs on a real cluster.
func (e *env) needFake() {
	e.t.Helper()
	if e.fake == nil {
		e.t.Skip("needs the fake: fault injection")
	}
}

func (e *env) client(mods ...func(*elasticsearch.Config)) *elasticsearch.Client {
	e.t.Helper()
	cfg := elasticsearch.Config{Addresses: []string{e.url}}
	for _, m := range mods {
		m(&cfg)
	}
	c, err := elasticsearch.NewClient(cfg)
	if err != nil {
		e.t.Fatalf("new client: %v", err)
	}
	return c
}

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	t.Cleanup(cancel)
	return ctx
}

// do runs an esapi request and returns status and body.
func (e *env) do(req esapi.Request) (int, []byte, http.Header) {
	e.t.Helper()
	return doWith(e.t, e.es, req)
}

func doWith(t testing.TB, c *elasticsearch.Client, req esapi.Request) (int, []byte, http.Header) {
	t.Helper()
	res, err := req.Do(ctxFor(t), c)
	if err != nil {
		t.Fatalf("request failed: %v", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	return res.StatusCode, body, res.Header
}

// raw sends a plain HTTP request, for headers and bodies the client will
// not produce.
func (e *env) raw(method, path string, body []byte, header map[string]string) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequestWithContext(ctxFor(e.t), method, e.url+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := (&http.Client{Timeout: requestTimeout}).Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return res, b
}

type errBody struct {
	Type      string    `json:"type"`
	Reason    string    `json:"reason"`
	Index     string    `json:"index"`
	IndexUUID string    `json:"index_uuid"`
	CausedBy  *errBody  `json:"caused_by"`
	RootCause []errBody `json:"root_cause"`
}

// text is the reason with its causes, for substring checks that should
// not depend on where ES put a message.
func (b *errBody) text() string {
	if b == nil {
		return ""
	}
	return b.Reason + " | " + b.CausedBy.text()
}

type errResp struct {
	Error  errBody `json:"error"`
	Status int     `json:"status"`
}

func decodeErr(t testing.TB, body []byte) errResp {
	t.Helper()
	var r errResp
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("error body is not ES-shaped JSON: %v: %s", err, body)
	}
	return r
}

type respItem struct {
	Index   string   `json:"_index"`
	ID      *string  `json:"_id"`
	Version int64    `json:"_version"`
	Result  string   `json:"result"`
	Status  int      `json:"status"`
	SeqNo   *int64   `json:"_seq_no"`
	Error   *errBody `json:"error"`
}

type bulkResp struct {
	Took   *int                  `json:"took"`
	Errors bool                  `json:"errors"`
	Items  []map[string]respItem `json:"items"`
}

func (r bulkResp) item(i int) (string, respItem) {
	for action, it := range r.Items[i] {
		return action, it
	}
	return "", respItem{}
}

func (r bulkResp) statuses() []int {
	var out []int
	for i := range r.Items {
		_, it := r.item(i)
		out = append(out, it.Status)
	}
	return out
}

// bulk sends an NDJSON body through the client's Bulk API and expects 200.
func (e *env) bulk(lines ...string) bulkResp {
	e.t.Helper()
	return e.bulkWith(e.es, lines...)
}

func (e *env) bulkWith(c *elasticsearch.Client, lines ...string) bulkResp {
	e.t.Helper()
	body := strings.Join(lines, "\n") + "\n"
	status, raw, _ := doWith(e.t, c, esapi.BulkRequest{Body: strings.NewReader(body)})
	if status != 200 {
		e.t.Fatalf("bulk: status %d: %s", status, raw)
	}
	var r bulkResp
	if err := json.Unmarshal(raw, &r); err != nil {
		e.t.Fatalf("bulk response: %v: %s", err, raw)
	}
	if len(r.Items) == 0 {
		e.t.Fatalf("bulk response has no items: %s", raw)
	}
	return r
}

func action(op, index, id string) string {
	if id == "" {
		return fmt.Sprintf(`{%q:{"_index":%q}}`, op, index)
	}
	return fmt.Sprintf(`{%q:{"_index":%q,"_id":%q}}`, op, index, id)
}

// dsTemplate is the template the sinks are meant to use: a data stream
// with ECS-like mappings, strings as keywords and a flattened payload.
func dsTemplate(pattern string) string {
	return `{"index_patterns":["` + pattern + `"],"data_stream":{},"priority":200,
 "template":{"settings":{"number_of_replicas":0},"mappings":{
   "dynamic_templates":[{"strings":{"match_mapping_type":"string","mapping":{"type":"keyword","ignore_above":1024}}}],
   "properties":{"@timestamp":{"type":"date"},"message":{"type":"match_only_text"},
     "event":{"properties":{"id":{"type":"keyword"},"kind":{"type":"keyword"},"created":{"type":"date"}}},
     "payload":{"type":"flattened"},"capped":{"type":"flattened","ignore_above":10}}}}}`
}

// withTemplate installs dsTemplate for "<prefix>-ds-*" and returns a
// function that names a data stream under it; the data streams and the
// template are deleted when the test ends.
func (e *env) withTemplate() (tmplName string, dsName func(suffix string) string) {
	e.t.Helper()
	tmplName = e.prefix + "-tpl"
	status, body, _ := e.do(esapi.IndicesPutIndexTemplateRequest{Name: tmplName, Body: strings.NewReader(dsTemplate(e.prefix + "-ds-*"))})
	if status != 200 {
		e.t.Fatalf("put template: %d %s", status, body)
	}
	var streams []string
	e.t.Cleanup(func() {
		if len(streams) > 0 {
			e.cleanupDo(esapi.IndicesDeleteDataStreamRequest{Name: streams})
		}
		e.cleanupDo(esapi.IndicesDeleteIndexTemplateRequest{Name: tmplName})
	})
	return tmplName, func(suffix string) string {
		n := e.prefix + "-ds-" + suffix
		streams = append(streams, n)
		return n
	}
}

// cleanupDo sends a best-effort request while a test is being cleaned up.
func (e *env) cleanupDo(req esapi.Request) {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	if res, err := req.Do(ctx, e.es); err == nil {
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
}

// plainIndex names a plain index that is deleted when the test ends.
func (e *env) plainIndex(suffix string) string {
	n := e.prefix + "-" + suffix
	e.t.Cleanup(func() { e.cleanupDo(esapi.IndicesDeleteRequest{Index: []string{n}}) })
	return n
}

func (e *env) refresh(index string) {
	e.t.Helper()
	status, body, _ := e.do(esapi.IndicesRefreshRequest{Index: []string{index}})
	if status != 200 {
		e.t.Fatalf("refresh %s: %d %s", index, status, body)
	}
}

// count runs _count with an optional query body.
func (e *env) count(index, query string) int {
	e.t.Helper()
	req := esapi.CountRequest{Index: []string{index}}
	if query != "" {
		req.Body = strings.NewReader(query)
	}
	status, body, _ := e.do(req)
	if status != 200 {
		e.t.Fatalf("count %s %s: %d %s", index, query, status, body)
	}
	var r struct {
		Count *int `json:"count"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Count == nil {
		e.t.Fatalf("count response %s: %v", body, err)
	}
	return *r.Count
}

type searchResp struct {
	Hits struct {
		Total struct {
			Value    int    `json:"value"`
			Relation string `json:"relation"`
		} `json:"total"`
		Hits []struct {
			Index  string          `json:"_index"`
			ID     string          `json:"_id"`
			Source json.RawMessage `json:"_source"`
		} `json:"hits"`
	} `json:"hits"`
}

func (e *env) search(index, body string) searchResp {
	e.t.Helper()
	status, raw, _ := e.do(esapi.SearchRequest{Index: []string{index}, Body: strings.NewReader(body)})
	if status != 200 {
		e.t.Fatalf("search %s %s: %d %s", index, body, status, raw)
	}
	var r searchResp
	if err := json.Unmarshal(raw, &r); err != nil {
		e.t.Fatalf("search response %s: %v", raw, err)
	}
	return r
}

// nested builds {"a":{"a":...{"a":"leaf"}}} with depth objects.
func nested(depth int) string {
	return strings.Repeat(`{"a":`, depth) + `"leaf"` + strings.Repeat("}", depth)
}
