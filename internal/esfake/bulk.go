package esfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
)

// bulkItem is one action of a bulk request (or of a single-document API).
type bulkItem struct {
	action   string // create, index or delete
	index    string
	id       string
	hasID    bool
	source   []byte
	pipeline string
	ifSeqNo  *int64
	ifTerm   *int64
}

type itemResult struct {
	action  string
	index   string
	id      string
	hasID   bool
	status  int
	version int64
	seqNo   int64
	result  string
	shards  obj
	err     *esError
}

func (r *itemResult) fields() obj {
	var id any
	if r.hasID {
		id = r.id
	}
	if r.err != nil {
		return obj{{"_index", r.index}, {"_id", id}, {"status", r.status}, {"error", r.err.body()}}
	}
	return obj{{"_index", r.index}, {"_id", id}, {"_version", r.version}, {"result", r.result},
		{"_shards", r.shards}, {"_seq_no", r.seqNo}, {"_primary_term", 1}, {"status", r.status}}
}

func (s *Server) handleBulk(rq *request, urlIndex string) {
	s.mu.Lock()
	s.bulkRequests++
	fail := 0
	if len(s.failQueue) > 0 {
		fail = s.failQueue[0]
		s.failQueue = s.failQueue[1:]
	}
	s.mu.Unlock()
	if fail != 0 {
		_, _ = io.Copy(io.Discard, rq.r.Body)
		rq.writeInjectedFailure(fail)
		return
	}
	body, e := s.readBody(rq)
	if e != nil {
		rq.bodyError(e)
		return
	}
	items, e := parseBulkBody(body, urlIndex)
	if e != nil {
		rq.writeError(e)
		return
	}
	if p := rq.query.Get("pipeline"); p != "" {
		for _, it := range items {
			if it.pipeline == "" {
				it.pipeline = p
			}
		}
	}
	requireDS := boolParam(rq, "require_data_stream")
	requireAlias := boolParam(rq, "require_alias")
	results := make([]any, len(items))
	hasErrors := false
	s.mu.Lock()
	for i, it := range items {
		var r *itemResult
		switch {
		case requireAlias:
			// The fake has no aliases, so every target misses.
			r = &itemResult{action: it.action, index: it.index, id: it.id, hasID: it.hasID}
			r.err = indexNotFound(it.index)
			r.err.Reason = fmt.Sprintf("no such index [%s] and [require_alias] request flag is [true] and [%s] is not an alias", it.index, it.index)
			r.status = 404
		case requireDS && !s.isOrWouldBeDataStream(it.index):
			r = &itemResult{action: it.action, index: it.index, id: it.id, hasID: it.hasID, status: 400,
				err: newErr(400, "illegal_argument_exception", "index [%s] is not a data stream and [require_data_stream] request flag is [true]", it.index)}
		default:
			r = s.execute(it)
		}
		if r.err != nil {
			hasErrors = true
		}
		results[i] = obj{{r.action, r.fields()}}
	}
	s.mu.Unlock()
	rq.writeJSON(200, obj{{"took", rq.tookMillis()}, {"errors", hasErrors}, {"items", results}})
}

func (s *Server) isOrWouldBeDataStream(name string) bool {
	if _, ok := s.dataStreams[name]; ok {
		return true
	}
	if _, ok := s.indices[name]; ok {
		return false
	}
	t := s.matchTemplate(name)
	return t != nil && t.dataStream
}

func (rq *request) writeInjectedFailure(status int) {
	var e *esError
	switch status {
	case 413:
		rq.writeEmpty(413)
		return
	case 429:
		e = newErr(429, "es_rejected_execution_exception",
			"rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=1048576, max_coordinating_and_primary_bytes=107374182] (injected by esfake)")
	case 503:
		e = newErr(503, "cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized]; (injected by esfake)")
	case 504:
		e = newErr(504, "timeout_exception", "request timed out (injected by esfake)")
	case 400:
		e = newErr(400, "illegal_argument_exception", "injected by esfake")
	case 401:
		e = newErr(401, "security_exception", "missing authentication credentials for REST request [/_bulk] (injected by esfake)")
	case 403:
		e = newErr(403, "security_exception", "action [indices:data/write/bulk] is unauthorized (injected by esfake)")
	default:
		e = newErr(status, "exception", "injected by esfake")
	}
	rq.writeError(e)
}

func injectedItemError(status int, ix *index, id string) *esError {
	switch status {
	case 429:
		return newErr(429, "es_rejected_execution_exception",
			"rejected execution of primary operation [shard_detail=[%s][0], shard_operation_bytes=1024, max_coordinating_and_primary_bytes=107374182] (injected by esfake)", ix.name)
	case 400:
		return newErr(400, "document_parsing_exception", "[1:1] failed to parse: injected by esfake for document with id '%s'", id).
			cause("illegal_argument_exception", "injected by esfake")
	case 409:
		return newErr(409, "version_conflict_engine_exception", "[%s]: version conflict, document already exists (current version [1])", id).shardMeta(ix)
	case 500:
		return newErr(500, "illegal_state_exception", "injected by esfake")
	case 503:
		return newErr(503, "unavailable_shards_exception",
			"[%s][0] primary shard is not active Timeout: [1m], request: [BulkShardRequest [[%s][0]] containing [1] requests] (injected by esfake)", ix.name, ix.name).shardMeta(ix)
	case 403:
		return newErr(403, "cluster_block_exception", "index [%s] blocked by: [FORBIDDEN/8/index write (api)]; (injected by esfake)", ix.name)
	case 404:
		return indexNotFound(ix.name)
	}
	return newErr(status, "exception", "injected by esfake")
}

var actionParams = []string{"_index", "_id", "routing", "op_type", "version", "version_type", "if_seq_no",
	"if_primary_term", "retry_on_conflict", "pipeline", "_source", "require_alias", "require_data_stream",
	"dynamic_templates", "list_executed_pipelines"}

func parseBulkBody(body []byte, urlIndex string) ([]*bulkItem, *esError) {
	if len(body) == 0 {
		return nil, newErr(400, "parse_exception", "request body is required")
	}
	if body[len(body)-1] != '\n' {
		return nil, newErr(400, "illegal_argument_exception", `The bulk request must be terminated by a newline [\n]`)
	}
	lines := bytes.Split(body[:len(body)-1], []byte{'\n'})
	var items []*bulkItem
	for i := 0; i < len(lines); {
		it, e := parseActionLine(lines[i], i+1)
		if e != nil {
			return nil, e
		}
		i++
		if it.action != "delete" {
			if i >= len(lines) {
				break // ES drops an action that has no source line
			}
			it.source = slices.Clone(lines[i])
			i++
		}
		if it.index == "" {
			it.index = urlIndex
		}
		items = append(items, it)
	}
	var problems []string
	for _, it := range items {
		if it.index == "" {
			problems = append(problems, "index is missing")
		}
		if it.hasID && it.id == "" {
			problems = append(problems, "if _id is specified it must not be empty")
		}
		if len(it.id) > 512 {
			problems = append(problems, fmt.Sprintf("id [%s] is too long, must be no longer than 512 bytes but was: %d", it.id, len(it.id)))
		}
		if it.action == "delete" && !it.hasID {
			problems = append(problems, "id is missing")
		}
		if it.action != "delete" && len(bytes.TrimSpace(it.source)) == 0 {
			problems = append(problems, "source is missing")
		}
	}
	if len(items) == 0 {
		problems = append(problems, "no requests added")
	}
	if len(problems) > 0 {
		msg := "Validation Failed: "
		for i, p := range problems {
			msg += fmt.Sprintf("%d: %s;", i+1, p)
		}
		return nil, newErr(400, "action_request_validation_exception", "%s", msg)
	}
	return items, nil
}

func parseActionLine(line []byte, n int) (*bulkItem, *esError) {
	malformed := func(format string, args ...any) *esError {
		return newErr(400, "illegal_argument_exception", "Malformed action/metadata line [%d], "+format, append([]any{n}, args...)...)
	}
	trimmed := bytes.TrimSpace(line)
	if len(trimmed) == 0 {
		return nil, malformed("expected START_OBJECT or END_OBJECT but found [null]")
	}
	tree, jerr := parseTree(trimmed)
	if jerr != nil {
		p := &docParser{src: trimmed}
		return nil, newErr(400, "x_content_parse_exception", "%s %s", p.location(jerr.pos), jerr.msg)
	}
	if tree.kind != jObj {
		return nil, malformed("expected START_OBJECT or END_OBJECT but found [%s]", tree.tokenName())
	}
	switch len(tree.keys) {
	case 0:
		return nil, malformed("expected FIELD_NAME but found [END_OBJECT]")
	case 1:
	default:
		return nil, malformed("expected END_OBJECT but found [FIELD_NAME]")
	}
	it := &bulkItem{action: tree.keys[0]}
	switch it.action {
	case "create", "index", "delete":
	case "update":
		return nil, newErr(400, "illegal_argument_exception", "esfake does not implement the bulk [update] action (line [%d])", n)
	default:
		return nil, malformed("expected field [create], [delete], [index] or [update] but found [%s]", it.action)
	}
	meta := tree.elems[0]
	if meta.kind != jObj {
		return nil, malformed("expected START_OBJECT but found [%s]", meta.tokenName())
	}
	for i, k := range meta.keys {
		v := meta.elems[i]
		if !slices.Contains(actionParams, k) {
			return nil, newErr(400, "illegal_argument_exception", "Action/metadata line [%d] contains an unknown parameter [%s]", n, k)
		}
		if k == "dynamic_templates" || k == "_source" {
			continue
		}
		if v.kind == jObj || v.kind == jArr {
			return nil, newErr(400, "illegal_argument_exception",
				"Malformed action/metadata line [%d], expected a simple value for field [%s] but found [%s]", n, k, v.tokenName())
		}
		switch k {
		case "_index":
			it.index = v.text
		case "_id":
			if v.kind != jNull {
				it.id, it.hasID = v.text, true
			}
		case "op_type":
			switch v.text {
			case "create":
				if it.action == "index" {
					it.action = "create"
				}
			case "index":
			default:
				return nil, newErr(400, "illegal_argument_exception", "opType must be 'create' or 'index', found: [%s]", v.text)
			}
		case "pipeline":
			it.pipeline = v.text
		case "if_seq_no", "if_primary_term":
			x, err := strconv.ParseInt(v.text, 10, 64)
			if err != nil {
				return nil, newErr(400, "illegal_argument_exception", "Malformed action/metadata line [%d], [%s] must be a number", n, k)
			}
			if k == "if_seq_no" {
				it.ifSeqNo = &x
			} else {
				it.ifTerm = &x
			}
		}
	}
	return it, nil
}

// execute runs one write the way ES does: resolve (and auto-create) the
// target, apply the coordinating node's data stream rules, then the
// shard's parsing, mapping and version checks. s.mu must be held.
func (s *Server) execute(it *bulkItem) *itemResult {
	r := &itemResult{action: it.action, index: it.index, id: it.id, hasID: it.hasID}
	fail := func(e *esError) *itemResult {
		r.status, r.err = e.Status, e
		return r
	}
	if it.pipeline != "" && it.pipeline != "_none" {
		return fail(newErr(400, "illegal_argument_exception", "pipeline with id [%s] does not exist", it.pipeline))
	}
	var ix *index
	var ds *dataStream
	if d, ok := s.dataStreams[it.index]; ok {
		ds, ix = d, d.writeIndex()
	} else if x, ok := s.indices[it.index]; ok {
		ix = x
		if x.dataStream != "" {
			switch {
			case it.action == "create":
				return fail(newErr(400, "illegal_argument_exception",
					"index request with op_type=create targeting backing indices is disallowed, target corresponding data stream [%s] instead", x.dataStream))
			case it.action == "index" && it.ifSeqNo == nil:
				return fail(newErr(400, "illegal_argument_exception",
					"index request with op_type=index and no if_primary_term and if_seq_no set targeting backing indices is disallowed, target corresponding data stream [%s] instead", x.dataStream))
			}
		}
	} else if it.action == "delete" {
		return fail(indexNotFound(it.index))
	} else {
		if e := validateIndexName(it.index); e != nil {
			return fail(e)
		}
		t := s.matchTemplate(it.index)
		if t != nil {
			if v, ok := t.raw["allow_auto_create"].(bool); ok && !v {
				e := indexNotFound(it.index)
				e.Reason = fmt.Sprintf("no such index [%s] and composable template [%s] forbids index auto creation", it.index, t.name)
				return fail(e)
			}
		}
		if t != nil && t.dataStream {
			d, e := s.createDataStream(it.index, t)
			if e != nil {
				return fail(e)
			}
			ds, ix = d, d.writeIndex()
		} else {
			ix = s.newIndex(it.index, t, nil, nil)
		}
	}
	if ds != nil && it.action != "create" {
		return fail(newErr(400, "illegal_argument_exception", "only write ops with an op_type of create are allowed in data streams"))
	}
	r.index = ix.name
	if !r.hasID {
		r.id, r.hasID = randomID(20), true
	}
	if q := s.itemRejects[r.id]; len(q) > 0 {
		st := q[0]
		if len(q) == 1 {
			delete(s.itemRejects, r.id)
		} else {
			s.itemRejects[r.id] = q[1:]
		}
		return fail(injectedItemError(st, ix, r.id))
	}
	existing := ix.docs[r.id]
	if it.ifSeqNo != nil || it.ifTerm != nil {
		if e := checkSeqNo(it, ix, existing, r.id); e != nil {
			return fail(e)
		}
	}
	r.shards = ix.shardsHeader()
	if it.action == "delete" {
		r.seqNo = ix.nextSeqNo
		ix.nextSeqNo++
		if existing == nil {
			r.version = ix.tombstones[r.id] + 1
			r.status, r.result = 404, "not_found"
			return r
		}
		r.version = existing.version + 1
		delete(ix.docs, r.id)
		ix.tombstones[r.id] = r.version
		r.status, r.result = 200, "deleted"
		return r
	}

	tree, jerr := parseTree(it.source)
	p := &docParser{
		src:        it.source,
		id:         r.id,
		m:          ix.mapping.clone(),
		fieldLimit: ix.intSetting("index.mapping.total_fields.limit", 1000),
		depthLimit: ix.intSetting("index.mapping.depth.limit", 20),
	}
	if jerr != nil {
		loc := p.location(jerr.pos)
		return fail(newErr(400, "document_parsing_exception", "%s failed to parse", loc).
			cause("x_content_parse_exception", loc+" "+jerr.msg))
	}
	if tree.kind != jObj {
		return fail(p.failParse(tree.pos, "illegal_argument_exception", "Malformed content, must start with an object"))
	}
	if e := p.parseDocument(tree); e != nil {
		return fail(e)
	}
	if p.m.dsTimestamp {
		if e := p.checkTimestamp(tree); e != nil {
			return fail(e)
		}
	}
	// Mapping updates are applied before the engine write, so they stay
	// even when the write then conflicts, as in ES.
	ix.mapping = p.m
	if it.action == "create" && existing != nil {
		return fail(newErr(409, "version_conflict_engine_exception",
			"[%s]: version conflict, document already exists (current version [%d])", r.id, existing.version).shardMeta(ix))
	}
	var parsed any
	dec := json.NewDecoder(bytes.NewReader(it.source))
	dec.UseNumber()
	_ = dec.Decode(&parsed)
	r.seqNo = ix.nextSeqNo
	ix.nextSeqNo++
	s.nextDocSeq++
	d := &storedDoc{id: r.id, source: json.RawMessage(bytes.TrimSpace(it.source)), parsed: parsed, seqNo: r.seqNo, order: s.nextDocSeq}
	if existing != nil {
		d.version = existing.version + 1
		r.status, r.result = 200, "updated"
	} else {
		d.version = ix.tombstones[r.id] + 1
		r.status, r.result = 201, "created"
	}
	delete(ix.tombstones, r.id)
	ix.docs[r.id] = d
	r.version = d.version
	return r
}

func checkSeqNo(it *bulkItem, ix *index, existing *storedDoc, id string) *esError {
	var seq, term int64 = -2, 0
	if it.ifSeqNo != nil {
		seq = *it.ifSeqNo
	}
	if it.ifTerm != nil {
		term = *it.ifTerm
	}
	if existing == nil {
		return newErr(409, "version_conflict_engine_exception",
			"[%s]: version conflict, required seqNo [%d], primary term [%d]. but no document was found", id, seq, term).shardMeta(ix)
	}
	if existing.seqNo != seq || term != 1 {
		return newErr(409, "version_conflict_engine_exception",
			"[%s]: version conflict, required seqNo [%d], primary term [%d]. current document has seqNo [%d] and primary term [1]",
			id, seq, term, existing.seqNo).shardMeta(ix)
	}
	return nil
}

// handleSingleWrite serves PUT/POST /{index}/_doc[/{id}], /{index}/_create/{id}
// and DELETE /{index}/_doc/{id}.
func (s *Server) handleSingleWrite(rq *request, target, action, id string, hasID bool) {
	if action == "index" && rq.query.Get("op_type") == "create" {
		action = "create"
	}
	it := &bulkItem{action: action, index: target, id: id, hasID: hasID, pipeline: rq.query.Get("pipeline")}
	for _, k := range []string{"if_seq_no", "if_primary_term"} {
		if v := rq.query.Get(k); v != "" {
			x, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				rq.writeError(newErr(400, "illegal_argument_exception", "[%s] must be a number", k))
				return
			}
			if k == "if_seq_no" {
				it.ifSeqNo = &x
			} else {
				it.ifTerm = &x
			}
		}
	}
	if action != "delete" {
		body, e := s.readBody(rq)
		if e != nil {
			rq.bodyError(e)
			return
		}
		if len(bytes.TrimSpace(body)) == 0 {
			rq.writeError(newErr(400, "parse_exception", "request body is required"))
			return
		}
		it.source = body
	}
	s.mu.Lock()
	r := s.execute(it)
	s.mu.Unlock()
	if r.err != nil {
		rq.writeError(r.err)
		return
	}
	f := r.fields()
	rq.writeJSON(r.status, f[:len(f)-1]) // no "status" field outside bulk
}

func (s *Server) handleGetDoc(rq *request, target, id string, head bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var candidates []*index
	if ds, ok := s.dataStreams[target]; ok {
		candidates = ds.indices
	} else if ix, ok := s.indices[target]; ok {
		candidates = []*index{ix}
	} else {
		if head {
			rq.writeEmpty(404)
			return
		}
		rq.writeError(indexNotFound(target))
		return
	}
	for _, ix := range candidates {
		if d, ok := ix.docs[id]; ok {
			if head {
				rq.writeEmpty(200)
				return
			}
			rq.writeJSON(200, obj{{"_index", ix.name}, {"_id", id}, {"_version", d.version}, {"_seq_no", d.seqNo},
				{"_primary_term", 1}, {"found", true}, {"_source", d.source}})
			return
		}
	}
	if head {
		rq.writeEmpty(404)
		return
	}
	rq.writeJSON(404, obj{{"_index", candidates[len(candidates)-1].name}, {"_id", id}, {"found", false}})
}
