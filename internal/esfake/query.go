package esfake

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// matcher decides whether a document of an index matches a query.
type matcher func(ix *index, d *storedDoc) bool

func queryErr(format string, args ...any) *esError {
	return newErr(400, "parsing_exception", format, args...)
}

// realQueries are ES query types the fake does not implement; naming one
// gets a clear "not implemented" rather than ES's "unknown query".
var realQueries = []string{"prefix", "wildcard", "regexp", "fuzzy", "query_string", "simple_query_string",
	"match_phrase", "match_phrase_prefix", "multi_match", "nested", "has_child", "has_parent", "geo_distance",
	"geo_bounding_box", "script", "script_score", "function_score", "constant_score", "dis_max", "boosting",
	"more_like_this", "terms_set", "combined_fields", "intervals", "knn", "pinned", "rank_feature",
	"distance_feature", "percolate", "span_term", "match_bool_prefix", "semantic", "sparse_vector"}

func compileQuery(q any) (matcher, *esError) {
	qm, ok := q.(map[string]any)
	if !ok {
		return nil, queryErr("[_na] query malformed, must start with start_object")
	}
	if len(qm) != 1 {
		if len(qm) == 0 {
			return func(*index, *storedDoc) bool { return true }, nil
		}
		return nil, queryErr("[%s] malformed query, expected [END_OBJECT] but found [FIELD_NAME]", firstKey(qm))
	}
	name := firstKey(qm)
	body := qm[name]
	switch name {
	case "match_all":
		return func(*index, *storedDoc) bool { return true }, nil
	case "match_none":
		return func(*index, *storedDoc) bool { return false }, nil
	case "ids":
		b, _ := body.(map[string]any)
		vals, _ := b["values"].([]any)
		set := map[string]bool{}
		for _, v := range vals {
			set[scalarString(v)] = true
		}
		return func(_ *index, d *storedDoc) bool { return set[d.id] }, nil
	case "term":
		field, val, opts, e := fieldQuery(name, body, "value")
		if e != nil {
			return nil, e
		}
		ci := truthy(opts["case_insensitive"])
		return func(ix *index, d *storedDoc) bool { return termMatch(ix, d, field, val, ci) }, nil
	case "terms":
		b, ok := body.(map[string]any)
		if !ok {
			return nil, queryErr("[terms] query malformed, no start_object after query name")
		}
		var field string
		var vals []any
		for k, v := range b {
			if k == "boost" || k == "_name" {
				continue
			}
			field = k
			vals, ok = v.([]any)
			if !ok {
				return nil, queryErr("[terms] query does not support [%s]", k)
			}
		}
		if field == "" {
			return nil, queryErr("[terms] query malformed, no field")
		}
		return func(ix *index, d *storedDoc) bool {
			for _, v := range vals {
				if termMatch(ix, d, field, v, false) {
					return true
				}
			}
			return false
		}, nil
	case "match":
		field, val, opts, e := fieldQuery(name, body, "query")
		if e != nil {
			return nil, e
		}
		and := strings.EqualFold(fmt.Sprint(opts["operator"]), "and")
		return func(ix *index, d *storedDoc) bool { return matchQuery(ix, d, field, val, and) }, nil
	case "exists":
		b, _ := body.(map[string]any)
		field, _ := b["field"].(string)
		if field == "" {
			return nil, queryErr("[exists] must be provided with a [field]")
		}
		return func(ix *index, d *storedDoc) bool { return len(fieldValues(ix, d, field)) > 0 }, nil
	case "range":
		return compileRange(body)
	case "bool":
		return compileBool(body)
	}
	if slices.Contains(realQueries, name) {
		return nil, queryErr("esfake does not implement the [%s] query", name)
	}
	return nil, queryErr("unknown query [%s]", name)
}

func firstKey(m map[string]any) string {
	for k := range m {
		return k
	}
	return ""
}

// fieldQuery reads {"field": value} or {"field": {"<valueKey>": value, ...}}.
func fieldQuery(name string, body any, valueKey string) (string, any, map[string]any, *esError) {
	b, ok := body.(map[string]any)
	if !ok || len(b) == 0 {
		return "", nil, nil, queryErr("[%s] query malformed, no start_object after query name", name)
	}
	var field string
	for k := range b {
		if k != "boost" && k != "_name" {
			if field != "" {
				return "", nil, nil, queryErr("[%s] query doesn't support multiple fields, found [%s] and [%s]", name, field, k)
			}
			field = k
		}
	}
	switch v := b[field].(type) {
	case map[string]any:
		val, ok := v[valueKey]
		if !ok {
			return "", nil, nil, queryErr("[%s] query does not support [%s] without [%s]", name, field, valueKey)
		}
		return field, val, v, nil
	case []any:
		return "", nil, nil, queryErr("[%s] query does not support array of values", name)
	default:
		return field, v, map[string]any{}, nil
	}
}

func compileBool(body any) (matcher, *esError) {
	b, ok := body.(map[string]any)
	if !ok {
		return nil, queryErr("[bool] query malformed, no start_object after query name")
	}
	clauses := map[string][]matcher{}
	for _, occ := range []string{"must", "filter", "should", "must_not"} {
		raw, ok := b[occ]
		if !ok {
			continue
		}
		list, isList := raw.([]any)
		if !isList {
			list = []any{raw}
		}
		for _, c := range list {
			m, e := compileQuery(c)
			if e != nil {
				return nil, e
			}
			clauses[occ] = append(clauses[occ], m)
		}
	}
	for k := range b {
		if !slices.Contains([]string{"must", "filter", "should", "must_not", "minimum_should_match", "boost", "_name"}, k) {
			return nil, queryErr("[bool] query does not support [%s]", k)
		}
	}
	minShould := 0
	if len(clauses["should"]) > 0 && len(clauses["must"]) == 0 && len(clauses["filter"]) == 0 {
		minShould = 1
	}
	if v, ok := b["minimum_should_match"]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(fmt.Sprint(v)))
		if err != nil {
			return nil, queryErr("esfake supports only integer minimum_should_match, got [%v]", v)
		}
		minShould = n
	}
	return func(ix *index, d *storedDoc) bool {
		for _, m := range clauses["must"] {
			if !m(ix, d) {
				return false
			}
		}
		for _, m := range clauses["filter"] {
			if !m(ix, d) {
				return false
			}
		}
		for _, m := range clauses["must_not"] {
			if m(ix, d) {
				return false
			}
		}
		hits := 0
		for _, m := range clauses["should"] {
			if m(ix, d) {
				hits++
			}
		}
		return hits >= minShould
	}, nil
}

// ---- field access ----

type fieldRef struct {
	ft        *fieldMap // nil when unmapped
	srcPath   []string
	flattened bool
	flatKey   string // keyed access inside a flattened field
	special   string // _id or _index
}

func resolveField(m *mapping, name string) fieldRef {
	if name == "_id" || name == "_index" {
		return fieldRef{special: name}
	}
	segs := strings.Split(name, ".")
	cur := m.root
	for i, seg := range segs {
		child := cur.props[seg]
		if child == nil || child.runtime {
			return fieldRef{}
		}
		if child.isObject() {
			if i == len(segs)-1 {
				return fieldRef{ft: child, srcPath: segs}
			}
			cur = child
			continue
		}
		rest := segs[i+1:]
		switch {
		case len(rest) == 0:
			return fieldRef{ft: child, srcPath: segs, flattened: child.typ == "flattened"}
		case child.typ == "flattened":
			return fieldRef{ft: child, srcPath: segs[:i+1], flattened: true, flatKey: strings.Join(rest, ".")}
		case child.fields[strings.Join(rest, ".")] != nil:
			return fieldRef{ft: child.fields[strings.Join(rest, ".")], srcPath: segs[:i+1]}
		}
		return fieldRef{}
	}
	return fieldRef{}
}

// collectPath gathers the values at path in a decoded source, honouring
// dotted keys and looking through arrays.
func collectPath(v any, path []string, out *[]any) {
	if len(path) == 0 {
		switch x := v.(type) {
		case nil:
		case []any:
			for _, e := range x {
				collectPath(e, nil, out)
			}
		default:
			*out = append(*out, x)
		}
		return
	}
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			ks := strings.Split(k, ".")
			if len(ks) <= len(path) && slices.Equal(ks, path[:len(ks)]) {
				collectPath(c, path[len(ks):], out)
			}
		}
	case []any:
		for _, e := range x {
			collectPath(e, path, out)
		}
	}
}

// flatLeaves lists the leaves of a flattened value with their dotted keys.
func flatLeaves(v any, prefix string, out *[][2]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			flatLeaves(c, joinPath(prefix, k), out)
		}
	case []any:
		for _, e := range x {
			flatLeaves(e, prefix, out)
		}
	case nil:
	default:
		*out = append(*out, [2]string{prefix, scalarString(x)})
	}
}

func scalarString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// fieldValues are the indexed values of a field in a document; values a
// keyword's ignore_above leaves out of the index are skipped.
func fieldValues(ix *index, d *storedDoc, field string) []any {
	ref := resolveField(ix.mapping, field)
	switch ref.special {
	case "_id":
		return []any{d.id}
	case "_index":
		return []any{ix.name}
	}
	if ref.ft == nil {
		return nil
	}
	var vals []any
	collectPath(d.parsed, ref.srcPath, &vals)
	if ref.flattened {
		var leaves [][2]string
		for _, v := range vals {
			flatLeaves(v, "", &leaves)
		}
		vals = nil
		for _, l := range leaves {
			if ref.flatKey == "" || l[0] == ref.flatKey {
				vals = append(vals, l[1])
			}
		}
		return vals
	}
	if ref.ft.isObject() {
		var leaves [][2]string
		for _, v := range vals {
			flatLeaves(v, "", &leaves)
		}
		if len(leaves) > 0 {
			return []any{true}
		}
		return nil
	}
	if limit := ref.ft.intParam("ignore_above", -1); limit >= 0 {
		vals = slices.DeleteFunc(vals, func(v any) bool {
			s, ok := v.(string)
			return ok && len([]rune(s)) > limit
		})
	}
	return vals
}

func fieldType(ix *index, field string) string {
	ref := resolveField(ix.mapping, field)
	switch {
	case ref.special != "":
		return "keyword"
	case ref.ft == nil:
		return ""
	case ref.flattened:
		return "keyword"
	}
	return ref.ft.typ
}

func isTextType(t string) bool {
	switch t {
	case "text", "match_only_text", "annotated_text", "search_as_you_type":
		return true
	}
	return false
}

// analyze approximates the standard analyzer: lowercase word tokens.
func analyze(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_'
	})
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case float64:
		return x, true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f, err == nil
	}
	return 0, false
}

func toBool(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		switch x {
		case "true":
			return true, true
		case "false", "":
			return false, true
		}
	}
	return false, false
}

func dateKey(v any, format string) (float64, bool) {
	t, ok := parseDate(scalarString(v), format)
	if !ok {
		return 0, false
	}
	return millis(t), true
}

func termMatch(ix *index, d *storedDoc, field string, q any, ci bool) bool {
	typ := fieldType(ix, field)
	if typ == "" {
		return false
	}
	vals := fieldValues(ix, d, field)
	ref := resolveField(ix.mapping, field)
	qs := scalarString(q)
	for _, v := range vals {
		switch {
		case isTextType(typ):
			if slices.Contains(analyze(scalarString(v)), qs) {
				return true
			}
		case isNumericType(typ):
			a, ok1 := toFloat(v)
			b, ok2 := toFloat(q)
			if ok1 && ok2 {
				if typ == "float" || typ == "half_float" {
					a, b = float64(float32(a)), float64(float32(b))
				}
				if typ != "double" && typ != "float" && typ != "half_float" && typ != "scaled_float" {
					a, b = math.Trunc(a), math.Trunc(b)
				}
				if a == b {
					return true
				}
			}
		case typ == "date" || typ == "date_nanos":
			a, ok1 := dateKey(v, ref.ft.dateFormat())
			b, ok2 := dateKey(q, ref.ft.dateFormat())
			if ok1 && ok2 && a == b {
				return true
			}
		case typ == "boolean":
			a, ok1 := toBool(v)
			b, ok2 := toBool(q)
			if ok1 && ok2 && a == b {
				return true
			}
		case typ == "ip":
			a, err1 := netip.ParseAddr(scalarString(v))
			if pfx, err := netip.ParsePrefix(qs); err == nil {
				if err1 == nil && pfx.Contains(a) {
					return true
				}
				continue
			}
			b, err2 := netip.ParseAddr(qs)
			if err1 == nil && err2 == nil && a == b {
				return true
			}
		default:
			s := scalarString(v)
			if s == qs || (ci && strings.EqualFold(s, qs)) {
				return true
			}
		}
	}
	return false
}

func matchQuery(ix *index, d *storedDoc, field string, q any, and bool) bool {
	typ := fieldType(ix, field)
	if !isTextType(typ) {
		return termMatch(ix, d, field, q, false)
	}
	want := analyze(scalarString(q))
	if len(want) == 0 {
		return false
	}
	var have []string
	for _, v := range fieldValues(ix, d, field) {
		have = append(have, analyze(scalarString(v))...)
	}
	found := 0
	for _, w := range want {
		if slices.Contains(have, w) {
			found++
		}
	}
	if and {
		return found == len(want)
	}
	return found > 0
}

var dateMathRe = regexp.MustCompile(`^now((?:[+-]\d+[yMwdhHms])*)(?:/([yMwdhHms]))?$`)

// resolveDateBound reads a range bound of a date field, with simple date
// math on "now".
func resolveDateBound(v any, format string) (float64, bool) {
	s := scalarString(v)
	m := dateMathRe.FindStringSubmatch(s)
	if m == nil {
		return dateKey(v, format)
	}
	t := time.Now().UTC()
	for _, op := range regexp.MustCompile(`[+-]\d+[yMwdhHms]`).FindAllString(m[1], -1) {
		n, _ := strconv.Atoi(op[1 : len(op)-1])
		if op[0] == '-' {
			n = -n
		}
		switch op[len(op)-1] {
		case 'y':
			t = t.AddDate(n, 0, 0)
		case 'M':
			t = t.AddDate(0, n, 0)
		case 'w':
			t = t.AddDate(0, 0, 7*n)
		case 'd':
			t = t.AddDate(0, 0, n)
		case 'h', 'H':
			t = t.Add(time.Duration(n) * time.Hour)
		case 'm':
			t = t.Add(time.Duration(n) * time.Minute)
		case 's':
			t = t.Add(time.Duration(n) * time.Second)
		}
	}
	switch m[2] {
	case "y":
		t = time.Date(t.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
	case "M":
		t = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	case "d":
		t = t.Truncate(24 * time.Hour)
	case "h", "H":
		t = t.Truncate(time.Hour)
	case "m":
		t = t.Truncate(time.Minute)
	case "s":
		t = t.Truncate(time.Second)
	}
	return millis(t), true
}

func compileRange(body any) (matcher, *esError) {
	b, ok := body.(map[string]any)
	if !ok || len(b) != 1 {
		return nil, queryErr("[range] query malformed, expected one field")
	}
	field := firstKey(b)
	spec, ok := b[field].(map[string]any)
	if !ok {
		return nil, queryErr("[range] query malformed, no start_object after field name")
	}
	for k := range spec {
		if !slices.Contains([]string{"gt", "gte", "lt", "lte", "format", "boost", "time_zone", "relation", "from", "to", "include_lower", "include_upper"}, k) {
			return nil, queryErr("[range] query does not support [%s]", k)
		}
	}
	return func(ix *index, d *storedDoc) bool {
		typ := fieldType(ix, field)
		if typ == "" {
			return false
		}
		ref := resolveField(ix.mapping, field)
		key := func(v any, bound bool) (any, bool) {
			switch {
			case typ == "date" || typ == "date_nanos":
				format := ref.ft.dateFormat()
				if f, ok := spec["format"].(string); ok && bound {
					format = f
				}
				if bound {
					return resolveDateBound(v, format)
				}
				return dateKey(v, ref.ft.dateFormat())
			case isNumericType(typ):
				return toFloat(v)
			}
			return scalarString(v), true
		}
		less := func(a, b any) int {
			switch x := a.(type) {
			case float64:
				return cmpFloat(x, b.(float64))
			}
			return strings.Compare(a.(string), b.(string))
		}
		for _, v := range fieldValues(ix, d, field) {
			k, ok := key(v, false)
			if !ok {
				continue
			}
			in := true
			for op, bv := range spec {
				if op != "gt" && op != "gte" && op != "lt" && op != "lte" || bv == nil {
					continue
				}
				bk, ok := key(bv, true)
				if !ok {
					in = false
					break
				}
				c := less(k, bk)
				switch op {
				case "gt":
					in = in && c > 0
				case "gte":
					in = in && c >= 0
				case "lt":
					in = in && c < 0
				case "lte":
					in = in && c <= 0
				}
			}
			if in {
				return true
			}
		}
		return false
	}, nil
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ---- the _count and _search endpoints ----

type sortSpec struct {
	field string
	desc  bool
}

func parseSort(v any) ([]sortSpec, *esError) {
	list, ok := v.([]any)
	if !ok {
		list = []any{v}
	}
	var out []sortSpec
	for _, e := range list {
		switch x := e.(type) {
		case string:
			out = append(out, sortSpec{field: x, desc: x == "_score"})
		case map[string]any:
			for f, o := range x {
				sp := sortSpec{field: f, desc: f == "_score"}
				switch ov := o.(type) {
				case string:
					sp.desc = ov == "desc"
				case map[string]any:
					if ord, ok := ov["order"].(string); ok {
						sp.desc = ord == "desc"
					}
				}
				out = append(out, sp)
			}
		default:
			return nil, queryErr("[sort] malformed")
		}
	}
	return out, nil
}

type hit struct {
	ix   *index
	doc  *storedDoc
	keys []any // sort values
}

func sortKey(ix *index, d *storedDoc, sp sortSpec) any {
	switch sp.field {
	case "_doc":
		return float64(d.order)
	case "_score":
		return float64(1)
	}
	typ := fieldType(ix, sp.field)
	ref := resolveField(ix.mapping, sp.field)
	var best any
	for _, v := range fieldValues(ix, d, sp.field) {
		var k any
		switch {
		case typ == "date" || typ == "date_nanos":
			f, ok := dateKey(v, ref.ft.dateFormat())
			if !ok {
				continue
			}
			k = f
		case isNumericType(typ):
			f, ok := toFloat(v)
			if !ok {
				continue
			}
			k = f
		case typ == "boolean":
			b, _ := toBool(v)
			k = float64(0)
			if b {
				k = float64(1)
			}
		default:
			k = scalarString(v)
		}
		if best == nil || (compareKeys(k, best) < 0) != sp.desc {
			best = k
		}
	}
	return best
}

func compareKeys(a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	fa, aNum := a.(float64)
	fb, bNum := b.(float64)
	if aNum && bNum {
		return cmpFloat(fa, fb)
	}
	return strings.Compare(scalarString(a), fmt.Sprint(b))
}

func intParam(rq *request, body map[string]any, name string, def int) (int, *esError) {
	v := def
	if raw, ok := body[name]; ok {
		n, err := strconv.Atoi(fmt.Sprint(raw))
		if err != nil {
			return 0, queryErr("[%s] must be an integer", name)
		}
		v = n
	}
	if raw := rq.query.Get(name); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil {
			return 0, newErr(400, "illegal_argument_exception", "Failed to parse int parameter [%s] with value [%s]", name, raw)
		}
		v = n
	}
	return v, nil
}

func (s *Server) handleSearch(rq *request, target string, count bool) {
	body, e := s.jsonBody(rq)
	if e != nil {
		rq.bodyError(e)
		return
	}
	if rq.query.Get("q") != "" {
		rq.writeError(queryErr("esfake does not implement the [q] URI parameter; send a query body"))
		return
	}
	var query any = map[string]any{"match_all": map[string]any{}}
	for k, v := range body {
		switch k {
		case "query":
			query = v
		case "size", "from", "sort", "_source", "track_total_hits", "timeout", "version", "seq_no_primary_term", "track_scores":
			if count && k != "query" {
				rq.writeError(queryErr("request does not support [%s]", k))
				return
			}
		default:
			if count {
				rq.writeError(queryErr("request does not support [%s]", k))
			} else {
				rq.writeError(queryErr("esfake does not implement the search body key [%s]", k))
			}
			return
		}
	}
	match, e := compileQuery(query)
	if e != nil {
		rq.writeError(e)
		return
	}
	size, e := intParam(rq, body, "size", 10)
	if e != nil {
		rq.writeError(e)
		return
	}
	from, e := intParam(rq, body, "from", 0)
	if e != nil {
		rq.writeError(e)
		return
	}
	if !count && from+size > 10000 {
		rq.writeError(newErr(400, "illegal_argument_exception",
			"Result window is too large, from + size must be less than or equal to: [10000] but was [%d]. See the scroll api for a more efficient way to request large data sets. This limit can be set by changing the [index.max_result_window] index level setting.", from+size))
		return
	}
	var sorts []sortSpec
	if sv, ok := body["sort"]; ok {
		if sorts, e = parseSort(sv); e != nil {
			rq.writeError(e)
			return
		}
	}
	withSource := true
	if sv, ok := body["_source"]; ok {
		b, isBool := sv.(bool)
		if !isBool {
			rq.writeError(queryErr("esfake supports only true or false for [_source]"))
			return
		}
		withSource = b
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	indices, e := s.resolveRead(target, boolParam(rq, "ignore_unavailable"))
	if e != nil {
		rq.writeError(e)
		return
	}
	var hits []hit
	for _, ix := range indices {
		docs := make([]*storedDoc, 0, len(ix.docs))
		for _, d := range ix.docs {
			docs = append(docs, d)
		}
		sort.Slice(docs, func(i, j int) bool { return docs[i].order < docs[j].order })
		for _, d := range docs {
			if match(ix, d) {
				hits = append(hits, hit{ix: ix, doc: d})
			}
		}
	}
	shards := obj{{"total", len(indices)}, {"successful", len(indices)}, {"skipped", 0}, {"failed", 0}}
	if count {
		rq.writeJSON(200, obj{{"count", len(hits)}, {"_shards", shards}})
		return
	}
	for _, sp := range sorts {
		if sp.field == "_doc" || sp.field == "_score" {
			continue
		}
		known := false
		for _, ix := range indices {
			typ := fieldType(ix, sp.field)
			if isTextType(typ) {
				rq.writeError(newErr(400, "illegal_argument_exception",
					"Fielddata is disabled on [%s] in [%s]. Text fields are not optimised for operations that require per-document field data like aggregations and sorting, so these operations are disabled by default. Please use a keyword field instead.", sp.field, ix.name))
				return
			}
			known = known || typ != ""
		}
		if !known && len(indices) > 0 {
			rq.writeError(newErr(400, "query_shard_exception", "No mapping found for [%s] in order to sort on", sp.field))
			return
		}
	}
	if len(sorts) > 0 {
		for i := range hits {
			for _, sp := range sorts {
				hits[i].keys = append(hits[i].keys, sortKey(hits[i].ix, hits[i].doc, sp))
			}
		}
		sort.SliceStable(hits, func(i, j int) bool {
			for k, sp := range sorts {
				c := compareKeys(hits[i].keys[k], hits[j].keys[k])
				if c == 0 {
					continue
				}
				if hits[i].keys[k] == nil || hits[j].keys[k] == nil {
					return c < 0 // missing values sort last either way
				}
				return (c < 0) != sp.desc
			}
			return false
		})
	}
	total := len(hits)
	if from > len(hits) {
		from = len(hits)
	}
	page := hits[from:min(len(hits), from+max(size, 0))]
	out := []any{}
	for _, h := range page {
		o := obj{{"_index", h.ix.name}, {"_id", h.doc.id}}
		if len(sorts) > 0 {
			o = append(o, kv{"_score", nil})
		} else {
			o = append(o, kv{"_score", 1.0})
		}
		if withSource {
			o = append(o, kv{"_source", h.doc.source})
		}
		if len(sorts) > 0 {
			var vals []any
			for _, k := range h.keys {
				if f, ok := k.(float64); ok && f == math.Trunc(f) && math.Abs(f) < 1<<62 {
					vals = append(vals, int64(f))
				} else if k == nil {
					vals = append(vals, nil)
				} else {
					vals = append(vals, k)
				}
			}
			o = append(o, kv{"sort", vals})
		}
		out = append(out, o)
	}
	var maxScore any
	if len(hits) > 0 && len(sorts) == 0 {
		maxScore = 1.0
	}
	hitsObj := obj{}
	trackTotal := any(json.Number("10000"))
	if v, ok := body["track_total_hits"]; ok {
		trackTotal = v
	}
	if tt := rq.query.Get("track_total_hits"); tt != "" {
		trackTotal = tt
	}
	switch tt := fmt.Sprint(trackTotal); tt {
	case "false":
	default:
		value, relation := total, "eq"
		if n, err := strconv.Atoi(tt); err == nil && total > n {
			value, relation = n, "gte"
		}
		if boolParam(rq, "rest_total_hits_as_int") {
			hitsObj = append(hitsObj, kv{"total", value})
		} else {
			hitsObj = append(hitsObj, kv{"total", obj{{"value", value}, {"relation", relation}}})
		}
	}
	hitsObj = append(hitsObj, kv{"max_score", maxScore}, kv{"hits", out})
	rq.writeJSON(200, obj{{"took", rq.tookMillis()}, {"timed_out", false}, {"_shards", shards}, {"hits", hitsObj}})
}
