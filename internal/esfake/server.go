package esfake

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvURL names the environment variable that points the tests at a real
// Elasticsearch instead of the fake.
const EnvURL = "TEST_ELASTICSEARCH_URL"

// defaultMaxContentLength is ES's http.max_content_length (100mb).
const defaultMaxContentLength = 100 << 20

// Server is a fake Elasticsearch 8 node listening on 127.0.0.1.
// All its methods are safe for concurrent use.
//
// What it does not imitate: documents are searchable at once (refresh is a
// no-op, so tests must still refresh for real clusters); every index has
// one shard and scores are all 1.0; the bulk update action, aliases,
// component templates, ingest pipelines (a named pipeline fails the item as
// a missing one does), rollover and ILM are absent; queries are limited to
// match_all, match_none, ids, term, terms, match, exists, range and bool;
// date formats beyond the ISO and epoch ones are only partly understood;
// [line:column] positions in reasons approximate Jackson's.
type Server struct {
	hs *httptest.Server

	mu          sync.Mutex
	templates   map[string]*indexTemplate
	indices     map[string]*index // concrete indices, backing indices included
	dataStreams map[string]*dataStream
	nextDocSeq  int64 // orders documents for search results

	failQueue    []int            // statuses of the next whole-request bulk failures
	itemRejects  map[string][]int // _id -> statuses for its next items
	bulkRequests int

	clusterUUID      string
	maxContentLength int64 // http.max_content_length; guarded by mu
	now              func() time.Time
}

// New starts a fake node on a random port of 127.0.0.1.
func New() *Server {
	s := &Server{
		templates:        map[string]*indexTemplate{},
		indices:          map[string]*index{},
		dataStreams:      map[string]*dataStream{},
		itemRejects:      map[string][]int{},
		clusterUUID:      randomID(22),
		maxContentLength: defaultMaxContentLength,
		now:              time.Now,
	}
	s.addBuiltinTemplates()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("esfake: listen on 127.0.0.1: %v", err))
	}
	s.hs = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	s.hs.Listener = ln
	s.hs.Start()
	return s
}

// URL is the base address of the fake, e.g. http://127.0.0.1:41234.
func (s *Server) URL() string { return s.hs.URL }

// Close stops the server and waits for the requests in flight.
func (s *Server) Close() { s.hs.Close() }

// Start gives a test the Elasticsearch to talk to. When TEST_ELASTICSEARCH_URL
// is set it returns that address and a nil fake; otherwise it starts a fake,
// closes it when the test ends, and returns its address and the fake. Tests
// that need fault injection skip when the fake is nil.
func Start(t testing.TB) (url string, fake *Server) {
	t.Helper()
	if u := os.Getenv(EnvURL); u != "" {
		return u, nil
	}
	fake = New()
	t.Cleanup(fake.Close)
	return fake.URL(), fake
}

// FailRequests makes the next n requests to a _bulk endpoint fail as a whole
// with status: 413 with an empty body (as ES answers a body over
// http.max_content_length), 429 with an es_rejected_execution_exception
// body, or any other status (5xx in particular) with an ES-shaped JSON error.
// The request body is read to its end first. Calls add up in order.
func (s *Server) FailRequests(status int, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failQueue = append(s.failQueue, status)
	}
}

// ClearFailures drops the whole-request failures still queued: the outage
// is over.
func (s *Server) ClearFailures() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failQueue = nil
}

// RejectItem makes the next `times` bulk items with this _id that reach the
// shard fail with status (429 es_rejected_execution_exception, 400
// document_parsing_exception, 500 illegal_state_exception, others a fitting
// type). The rejected item is not stored; afterwards the _id behaves
// normally. Items that fail before the shard (a bad index name, an index op
// on a data stream) do not use up a rejection.
func (s *Server) RejectItem(id string, status int, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range times {
		s.itemRejects[id] = append(s.itemRejects[id], status)
	}
}

// BulkRequests reports how many requests arrived at a _bulk endpoint,
// including those failed on purpose.
func (s *Server) BulkRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bulkRequests
}

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}

// request carries what the handlers need of one HTTP request.
type request struct {
	w      http.ResponseWriter
	r      *http.Request
	segs   []string
	query  url.Values
	start  time.Time
	compat string // "compatible-with" version asked for in Accept, if any
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	rq := &request{w: w, r: r, query: r.URL.Query(), start: time.Now()}
	if _, params, err := mime.ParseMediaType(r.Header.Get("Accept")); err == nil {
		rq.compat = params["compatible-with"]
	}
	defer func() {
		if p := recover(); p != nil {
			rq.writeError(newErr(500, "exception", "esfake: internal error: %v", p))
		}
	}()
	var segs []string
	for _, seg := range strings.Split(strings.Trim(r.URL.EscapedPath(), "/"), "/") {
		if seg == "" {
			continue
		}
		u, err := url.PathUnescape(seg)
		if err != nil {
			u = seg
		}
		segs = append(segs, u)
	}
	rq.segs = segs
	s.route(rq)
}

func (s *Server) route(rq *request) {
	segs := rq.segs
	n := len(segs)
	first, second := "", ""
	if n > 0 {
		first = segs[0]
	}
	if n > 1 {
		second = segs[1]
	}
	switch {
	case n == 0:
		rq.allow([]string{"GET", "HEAD"}, func() { s.handleRoot(rq) })
	case n == 1 && first == "_bulk":
		rq.allow([]string{"POST", "PUT"}, func() { s.handleBulk(rq, "") })
	case n == 2 && second == "_bulk" && isIndexSeg(first):
		rq.allow([]string{"POST", "PUT"}, func() { s.handleBulk(rq, first) })
	case first == "_index_template" && n == 1:
		rq.allow([]string{"GET"}, func() { s.handleGetTemplates(rq, "") })
	case first == "_index_template" && n == 2:
		rq.allowMap(map[string]func(){
			"PUT":    func() { s.handlePutTemplate(rq, second) },
			"POST":   func() { s.handlePutTemplate(rq, second) },
			"GET":    func() { s.handleGetTemplates(rq, second) },
			"HEAD":   func() { s.handleGetTemplates(rq, second) },
			"DELETE": func() { s.handleDeleteTemplate(rq, second) },
		})
	case first == "_data_stream" && n == 1:
		rq.allow([]string{"GET"}, func() { s.handleGetDataStreams(rq, "") })
	case first == "_data_stream" && n == 2:
		rq.allowMap(map[string]func(){
			"GET":    func() { s.handleGetDataStreams(rq, second) },
			"PUT":    func() { s.handlePutDataStream(rq, second) },
			"DELETE": func() { s.handleDeleteDataStreams(rq, second) },
		})
	case n == 1 && first == "_refresh":
		rq.allow([]string{"GET", "POST"}, func() { s.handleRefresh(rq, "") })
	case n == 1 && (first == "_count" || first == "_search"):
		rq.allow([]string{"GET", "POST"}, func() { s.handleSearch(rq, "", first == "_count") })
	case n == 2 && first == "_cluster" && second == "health":
		rq.allow([]string{"GET"}, func() { s.handleClusterHealth(rq) })
	case n == 1:
		// As in ES, any other single segment is an index name (GET /_foo
		// answers index_not_found_exception).
		rq.allowMap(map[string]func(){
			"PUT":    func() { s.handleCreateIndex(rq, first) },
			"GET":    func() { s.handleGetIndex(rq, first, false) },
			"HEAD":   func() { s.handleGetIndex(rq, first, true) },
			"DELETE": func() { s.handleDeleteIndex(rq, first) },
		})
	case n == 2 && isIndexSeg(first) && second == "_refresh":
		rq.allow([]string{"GET", "POST"}, func() { s.handleRefresh(rq, first) })
	case n == 2 && isIndexSeg(first) && (second == "_count" || second == "_search"):
		rq.allow([]string{"GET", "POST"}, func() { s.handleSearch(rq, first, second == "_count") })
	case n == 2 && isIndexSeg(first) && second == "_mapping":
		rq.allow([]string{"GET"}, func() { s.handleGetMapping(rq, first) })
	case n == 2 && isIndexSeg(first) && second == "_doc":
		rq.allow([]string{"POST"}, func() { s.handleSingleWrite(rq, first, "create", "", false) })
	case n == 3 && isIndexSeg(first) && second == "_doc":
		id := segs[2]
		rq.allowMap(map[string]func(){
			"PUT":    func() { s.handleSingleWrite(rq, first, "index", id, true) },
			"POST":   func() { s.handleSingleWrite(rq, first, "index", id, true) },
			"GET":    func() { s.handleGetDoc(rq, first, id, false) },
			"HEAD":   func() { s.handleGetDoc(rq, first, id, true) },
			"DELETE": func() { s.handleSingleWrite(rq, first, "delete", id, true) },
		})
	case n == 3 && isIndexSeg(first) && second == "_create":
		id := segs[2]
		rq.allow([]string{"PUT", "POST"}, func() { s.handleSingleWrite(rq, first, "create", id, true) })
	default:
		// What ES 8 answers for a path no handler serves.
		rq.writeJSON(400, obj{
			{"error", fmt.Sprintf("no handler found for uri [%s] and method [%s]", rq.r.URL.RequestURI(), rq.r.Method)},
			{"status", 400},
		})
	}
}

// isIndexSeg tells whether a first path segment can be an index
// expression in front of an API such as _search.
func isIndexSeg(seg string) bool { return !strings.HasPrefix(seg, "_") || seg == "_all" }

// allow runs fn if the method is one of methods, else answers 405 the way
// ES does.
func (rq *request) allow(methods []string, fn func()) {
	if slices.Contains(methods, rq.r.Method) {
		fn()
		return
	}
	rq.methodNotAllowed(methods)
}

func (rq *request) allowMap(m map[string]func()) {
	if fn, ok := m[rq.r.Method]; ok {
		fn()
		return
	}
	var methods []string
	for k := range m {
		methods = append(methods, k)
	}
	slices.Sort(methods)
	rq.methodNotAllowed(methods)
}

func (rq *request) methodNotAllowed(methods []string) {
	rq.w.Header().Set("Allow", strings.Join(methods, ","))
	rq.writeJSON(405, obj{
		{"error", fmt.Sprintf("Incorrect HTTP method for uri [%s] and method [%s], allowed: [%s]",
			rq.r.URL.RequestURI(), rq.r.Method, strings.Join(methods, ", "))},
		{"status", 405},
	})
}

func (rq *request) writeJSON(status int, v any) {
	body, err := marshal(v)
	if err != nil {
		status = 500
		body, _ = marshal(newErr(500, "exception", "esfake: encoding the response: %v", err).response())
	}
	if fp := rq.query.Get("filter_path"); fp != "" && err == nil {
		body = filterPath(body, fp)
	}
	if _, ok := rq.query["pretty"]; ok {
		var b bytes.Buffer
		if json.Indent(&b, body, "", "  ") == nil {
			body = b.Bytes()
		}
	}
	ct := "application/json"
	if rq.compat != "" {
		ct = "application/vnd.elasticsearch+json;compatible-with=" + rq.compat
	}
	rq.w.Header().Set("Content-Type", ct)
	rq.w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	rq.w.WriteHeader(status)
	if rq.r.Method != http.MethodHead {
		_, _ = rq.w.Write(body)
	}
}

func (rq *request) writeError(e *esError) { rq.writeJSON(e.Status, e.response()) }

// writeEmpty answers with a status and no body at all.
func (rq *request) writeEmpty(status int) {
	rq.w.Header().Set("Content-Length", "0")
	rq.w.WriteHeader(status)
}

func (rq *request) tookMillis() int64 { return time.Since(rq.start).Milliseconds() }

// errTooLarge marks a body over http.max_content_length.
var errTooLarge = newErr(413, "", "")

// readBody checks Content-Type, undoes Content-Encoding and enforces the
// size limit. The x-ndjson types are accepted everywhere, as ES reads them
// as JSON.
func (s *Server) readBody(rq *request) ([]byte, *esError) {
	r := rq.r
	s.mu.Lock()
	limit := s.maxContentLength
	s.mu.Unlock()
	raw, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, newErr(400, "illegal_argument_exception", "esfake: reading the request body: %v", err)
	}
	if int64(len(raw)) > limit {
		_, _ = io.Copy(io.Discard, r.Body)
		return nil, errTooLarge
	}
	var body []byte
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		body = raw
	case "gzip", "x-gzip", "deflate":
		var zr io.Reader
		if enc == "deflate" {
			zr, err = zlib.NewReader(bytes.NewReader(raw))
		} else {
			zr, err = gzip.NewReader(bytes.NewReader(raw))
		}
		if err == nil {
			body, err = io.ReadAll(io.LimitReader(zr, limit+1))
		}
		if err != nil {
			return nil, newErr(400, "illegal_argument_exception", "esfake: cannot decompress the %s request body: %v", enc, err)
		}
		if int64(len(body)) > limit {
			return nil, errTooLarge
		}
	default:
		return nil, newErr(400, "illegal_argument_exception", "esfake: unsupported Content-Encoding [%s]", enc)
	}
	if len(body) == 0 {
		return body, nil
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil, &esError{Status: 406, Reason: "Content-Type header is missing"}
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, &esError{Status: 406, Reason: fmt.Sprintf("Content-Type header [%s] is not supported", ct)}
	}
	switch mt {
	case "application/json", "application/x-ndjson":
	case "application/vnd.elasticsearch+json", "application/vnd.elasticsearch+x-ndjson":
		if v := params["compatible-with"]; v != "7" && v != "8" {
			return nil, newErr(400, "media_type_header_exception", "Invalid media-type value on headers [Content-Type]").
				cause("status_exception", fmt.Sprintf("A compatible version is required on both Content-Type and Accept headers if either one has requested a compatible version. Content-Type=%s", ct))
		}
	default:
		return nil, &esError{Status: 406, Reason: fmt.Sprintf("Content-Type header [%s] is not supported", ct)}
	}
	return body, nil
}

// bodyError answers a readBody failure.
func (rq *request) bodyError(e *esError) {
	switch {
	case e == errTooLarge:
		rq.writeEmpty(413)
	case e.Type == "":
		// 406 answers are a bare {"error":"..","status":406} in ES.
		rq.writeJSON(e.Status, obj{{"error", e.Reason}, {"status", e.Status}})
	default:
		rq.writeError(e)
	}
}

// jsonBody reads an optional JSON object body.
func (s *Server) jsonBody(rq *request) (map[string]any, *esError) {
	body, e := s.readBody(rq)
	if e != nil {
		return nil, e
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, newErr(400, "x_content_parse_exception", "esfake: the request body is not a JSON object: %v", err)
	}
	return m, nil
}

func (s *Server) handleRoot(rq *request) {
	rq.writeJSON(200, obj{
		{"name", "esfake"},
		{"cluster_name", "esfake"},
		{"cluster_uuid", s.clusterUUID},
		{"version", obj{
			{"number", "8.15.0"},
			{"build_flavor", "default"},
			{"build_type", "docker"},
			{"build_hash", "esfake"},
			{"build_date", "2024-08-05T10:05:34.233336849Z"},
			{"build_snapshot", false},
			{"lucene_version", "9.11.1"},
			{"minimum_wire_compatibility_version", "7.17.0"},
			{"minimum_index_compatibility_version", "7.0.0"},
		}},
		{"tagline", "You Know, for Search"},
	})
}

func (s *Server) handleClusterHealth(rq *request) {
	s.mu.Lock()
	n, status := len(s.indices), "green"
	unassigned := 0
	for _, ix := range s.indices {
		if r := ix.replicas(); r > 0 {
			status = "yellow"
			unassigned += r
		}
	}
	s.mu.Unlock()
	pct := 100.0
	if n+unassigned > 0 {
		pct = 100 * float64(n) / float64(n+unassigned)
	}
	rq.writeJSON(200, obj{
		{"cluster_name", "esfake"}, {"status", status}, {"timed_out", false},
		{"number_of_nodes", 1}, {"number_of_data_nodes", 1},
		{"active_primary_shards", n}, {"active_shards", n},
		{"relocating_shards", 0}, {"initializing_shards", 0},
		{"unassigned_shards", unassigned}, {"delayed_unassigned_shards", 0},
		{"number_of_pending_tasks", 0}, {"number_of_in_flight_fetch", 0},
		{"task_max_waiting_in_queue_millis", 0},
		{"active_shards_percent_as_number", pct},
	})
}

// filterPath keeps only the parts of a JSON body named by a filter_path
// list ("items.*.error,took"); '*' matches one key, '**' any depth. Like
// ES, it drops objects and arrays left empty.
func filterPath(body []byte, spec string) []byte {
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return body
	}
	var paths [][]string
	for _, p := range splitNames(spec) {
		if strings.HasPrefix(p, "-") {
			continue // exclusions are not supported
		}
		paths = append(paths, strings.Split(p, "."))
	}
	out, ok := filterValue(v, paths)
	if !ok {
		return []byte("{}")
	}
	b, err := marshal(out)
	if err != nil {
		return body
	}
	return b
}

func filterValue(v any, paths [][]string) (any, bool) {
	for _, p := range paths {
		if len(p) == 0 || (len(p) == 1 && p[0] == "**") {
			return v, true
		}
	}
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, c := range x {
			var sub [][]string
			for _, p := range paths {
				switch {
				case p[0] == "**":
					sub = append(sub, p)
					if len(p) > 1 && globMatch(p[1], k) {
						sub = append(sub, p[2:])
					}
				case globMatch(p[0], k):
					sub = append(sub, p[1:])
				}
			}
			if len(sub) == 0 {
				continue
			}
			if fv, ok := filterValue(c, sub); ok {
				out[k] = fv
			}
		}
		return out, len(out) > 0
	case []any:
		var out []any
		for _, e := range x {
			if fv, ok := filterValue(e, paths); ok {
				out = append(out, fv)
			}
		}
		return out, len(out) > 0
	}
	return nil, false
}
