package esfake

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// index is a concrete index: a plain one or a data stream's backing index.
// It has one shard, like an ES 8 index created with default settings.
type index struct {
	name       string
	uuid       string
	dataStream string // owning data stream, "" for a plain index
	created    time.Time
	settings   map[string]string // flat keys, all starting with "index."
	mapping    *mapping
	docs       map[string]*storedDoc
	tombstones map[string]int64 // versions of deleted documents
	nextSeqNo  int64
}

type storedDoc struct {
	id      string
	source  json.RawMessage
	parsed  any // source decoded with UseNumber, for queries
	version int64
	seqNo   int64
	order   int64 // arrival order across the whole fake
}

type dataStream struct {
	name     string
	template string
	indices  []*index // backing indices, oldest first; the last is the write index
}

func (d *dataStream) writeIndex() *index { return d.indices[len(d.indices)-1] }

type indexTemplate struct {
	name       string
	patterns   []string
	priority   int64
	raw        map[string]any // the body as stored
	dataStream bool
	mapping    *mapping          // template.mappings, parsed; nil when absent
	settings   map[string]string // template.settings, flattened
}

func (ix *index) intSetting(key string, def int) int {
	if v, ok := ix.settings[key]; ok {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}

func (ix *index) replicas() int { return ix.intSetting("index.number_of_replicas", 1) }

func (ix *index) shardsHeader() obj {
	return obj{{"total", 1 + ix.replicas()}, {"successful", 1}, {"failed", 0}}
}

func (s *Server) newIndex(name string, tpl *indexTemplate, m *mapping, settings map[string]string) *index {
	ix := &index{
		name:       name,
		uuid:       randomID(22),
		created:    s.now(),
		settings:   map[string]string{},
		docs:       map[string]*storedDoc{},
		tombstones: map[string]int64{},
	}
	if tpl != nil {
		for k, v := range tpl.settings {
			ix.settings[k] = v
		}
		if tpl.mapping != nil {
			m = tpl.mapping.merge(m)
		}
	}
	for k, v := range settings {
		ix.settings[k] = v
	}
	if m == nil {
		m = newMapping()
	} else {
		m = m.clone()
	}
	ix.mapping = m
	s.indices[name] = ix
	return ix
}

func backingIndexName(ds string, t time.Time, generation int) string {
	return fmt.Sprintf(".ds-%s-%s-%06d", ds, t.UTC().Format("2006.01.02"), generation)
}

func (s *Server) createDataStream(name string, tpl *indexTemplate) (*dataStream, *esError) {
	if e := validateIndexName(name); e != nil {
		return nil, e
	}
	if strings.HasPrefix(name, ".ds-") {
		return nil, newErr(400, "illegal_argument_exception", "data_stream [%s] must not start with '.ds-'", name)
	}
	m := newMapping()
	if tpl.mapping != nil {
		m = tpl.mapping.clone()
	}
	m.ensureTimestamp()
	ix := s.newIndex(backingIndexName(name, s.now(), 1), nil, m, nil)
	for k, v := range tpl.settings {
		ix.settings[k] = v
	}
	ix.settings["index.hidden"] = "true"
	ix.dataStream = name
	ds := &dataStream{name: name, template: tpl.name, indices: []*index{ix}}
	s.dataStreams[name] = ds
	return ds, nil
}

// matchTemplate is the template ES would apply to a new index or data
// stream called name: the highest priority one with a matching pattern.
func (s *Server) matchTemplate(name string) *indexTemplate {
	var best *indexTemplate
	names := make([]string, 0, len(s.templates))
	for n := range s.templates {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t := s.templates[n]
		hit := false
		for _, p := range t.patterns {
			if globMatch(p, name) {
				hit = true
				break
			}
		}
		if hit && (best == nil || t.priority > best.priority) {
			best = t
		}
	}
	return best
}

func validateIndexName(name string) *esError {
	invalid := func(msg string) *esError {
		return newErr(400, "invalid_index_name_exception", "Invalid index name [%s], %s", name, msg).
			with("index_uuid", "_na_").with("index", name)
	}
	switch {
	case name == "":
		return invalid("must not be empty")
	case strings.ToLower(name) != name:
		return invalid("must be lowercase")
	case name == "." || name == "..":
		return invalid("must not be '.' or '..'")
	case strings.Contains(name, "#"):
		return invalid("must not contain '#'")
	case strings.Contains(name, ":"):
		return invalid("must not contain ':'")
	case strings.ContainsAny(name, "\\/*?\"<>| ,"):
		return invalid("must not contain the following characters [' ','\"','*',',','/','<','>','?','\\','|']")
	case strings.HasPrefix(name, "_") || strings.HasPrefix(name, "-") || strings.HasPrefix(name, "+"):
		return invalid("must not start with '_', '-', or '+'")
	case len(name) > 255:
		return invalid(fmt.Sprintf("index name is too long, (%d > 255)", len(name)))
	}
	return nil
}

// globMatch matches ES simple patterns, where only '*' is special.
func globMatch(pattern, s string) bool {
	p, t := 0, 0
	star, mark := -1, 0
	for t < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, t
			p++
		case p < len(pattern) && pattern[p] == s[t]:
			p++
			t++
		case star >= 0:
			p = star + 1
			mark++
			t = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// globsOverlap reports whether some name matches both patterns. It walks
// the product of the two patterns' automata.
func globsOverlap(a, b string) bool {
	type st struct{ i, j int }
	seen := map[st]bool{}
	stack := []st{{0, 0}}
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[c] {
			continue
		}
		seen[c] = true
		i, j := c.i, c.j
		if i == len(a) && j == len(b) {
			return true
		}
		aStar := i < len(a) && a[i] == '*'
		bStar := j < len(b) && b[j] == '*'
		if aStar {
			stack = append(stack, st{i + 1, j})
		}
		if bStar {
			stack = append(stack, st{i, j + 1})
		}
		switch {
		case i < len(a) && j < len(b) && !aStar && !bStar && a[i] == b[j]:
			stack = append(stack, st{i + 1, j + 1})
		case aStar && j < len(b) && !bStar:
			stack = append(stack, st{i, j + 1})
		case bStar && i < len(a) && !aStar:
			stack = append(stack, st{i + 1, j})
		}
	}
	return false
}

func isWildcard(s string) bool { return strings.Contains(s, "*") }

func splitNames(expr string) []string {
	var out []string
	for _, p := range strings.Split(expr, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// resolveRead turns an index expression of a read API (names, data
// streams, wildcards, comma lists, _all) into concrete indices, the way ES
// does with expand_wildcards=open: wildcards skip hidden indices unless
// the pattern itself starts with a dot.
func (s *Server) resolveRead(expr string, ignoreUnavailable bool) ([]*index, *esError) {
	parts := splitNames(expr)
	if len(parts) == 0 || (len(parts) == 1 && parts[0] == "_all") {
		parts = []string{"*"}
	}
	seen := map[string]bool{}
	var out []*index
	add := func(ix *index) {
		if !seen[ix.name] {
			seen[ix.name] = true
			out = append(out, ix)
		}
	}
	for _, p := range parts {
		if isWildcard(p) {
			for name, ix := range s.indices {
				if ix.dataStream != "" && !strings.HasPrefix(p, ".") {
					continue
				}
				if strings.HasPrefix(name, ".") && !strings.HasPrefix(p, ".") {
					continue
				}
				if globMatch(p, name) {
					add(ix)
				}
			}
			for name, ds := range s.dataStreams {
				if globMatch(p, name) {
					for _, ix := range ds.indices {
						add(ix)
					}
				}
			}
			continue
		}
		if ds, ok := s.dataStreams[p]; ok {
			for _, ix := range ds.indices {
				add(ix)
			}
			continue
		}
		if ix, ok := s.indices[p]; ok {
			add(ix)
			continue
		}
		if !ignoreUnavailable {
			return nil, indexNotFound(p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

func boolParam(rq *request, name string) bool {
	v, ok := rq.query[name]
	return ok && (len(v) == 0 || v[0] == "" || v[0] == "true")
}

// ---- index templates ----

var builtinTemplates = []struct{ name, pattern string }{
	{"logs", "logs-*-*"},
	{"metrics", "metrics-*-*"},
	{"synthetics", "synthetics-*-*"},
}

// addBuiltinTemplates installs stand-ins for the data stream templates ES 8
// ships at priority 100, so that writes to logs-*-* and the like become data
// streams here as they do there. Their mappings are simplified.
func (s *Server) addBuiltinTemplates() {
	for _, b := range builtinTemplates {
		raw := map[string]any{
			"index_patterns": []any{b.pattern},
			"priority":       json.Number("100"),
			"data_stream":    map[string]any{},
			"_meta":          map[string]any{"managed": true, "description": "esfake stand-in for the built-in " + b.name + " template"},
			"template": map[string]any{
				"mappings": map[string]any{
					"dynamic_templates": []any{map[string]any{"strings_as_keyword": map[string]any{
						"match_mapping_type": "string",
						"mapping":            map[string]any{"type": "keyword", "ignore_above": json.Number("1024")},
					}}},
					"properties": map[string]any{"@timestamp": map[string]any{"type": "date"}},
				},
			},
		}
		t, e := parseTemplate(b.name, raw)
		if e != nil {
			panic("esfake: built-in template: " + e.Reason)
		}
		s.templates[b.name] = t
	}
}

var templateKeys = []string{"index_patterns", "template", "composed_of", "priority", "version", "_meta",
	"data_stream", "allow_auto_create", "ignore_missing_component_templates", "deprecated"}

func parseTemplate(name string, body map[string]any) (*indexTemplate, *esError) {
	t := &indexTemplate{name: name, raw: body}
	for k := range body {
		if !slices.Contains(templateKeys, k) {
			return nil, newErr(400, "x_content_parse_exception", "[1:2] [index_template] unknown field [%s]", k)
		}
	}
	switch p := body["index_patterns"].(type) {
	case string:
		t.patterns = []string{p}
	case []any:
		for _, x := range p {
			str, ok := x.(string)
			if !ok {
				return nil, newErr(400, "x_content_parse_exception", "[1:2] [index_template] failed to parse field [index_patterns]")
			}
			t.patterns = append(t.patterns, str)
		}
	}
	if len(t.patterns) == 0 {
		return nil, newErr(400, "action_request_validation_exception", "Validation Failed: 1: index patterns are missing;")
	}
	if p, ok := body["priority"]; ok && p != nil {
		n, err := strconv.ParseInt(fmt.Sprint(p), 10, 64)
		if err != nil {
			return nil, newErr(400, "x_content_parse_exception", "[1:2] [index_template] failed to parse field [priority]")
		}
		if n < 0 {
			return nil, newErr(400, "action_request_validation_exception", "Validation Failed: 1: index template priority must be >= 0;")
		}
		t.priority = n
	}
	if c, ok := body["composed_of"].([]any); ok && len(c) > 0 {
		var names []string
		for _, x := range c {
			names = append(names, fmt.Sprint(x))
		}
		ignored, _ := body["ignore_missing_component_templates"].([]any)
		var missing []string
		for _, n := range names {
			if !slices.ContainsFunc(ignored, func(v any) bool { return fmt.Sprint(v) == n }) {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			return nil, newErr(400, "invalid_index_template_exception",
				"index_template [%s] invalid, cause [index template [%s] specifies component templates [%s] that do not exist] (esfake keeps no component templates)",
				name, name, strings.Join(missing, ", "))
		}
	}
	if ds, ok := body["data_stream"]; ok && ds != nil {
		if _, isObj := ds.(map[string]any); !isObj {
			return nil, newErr(400, "x_content_parse_exception", "[1:2] [index_template] failed to parse field [data_stream]")
		}
		t.dataStream = true
	}
	if tb, ok := body["template"]; ok && tb != nil {
		tm, isObj := tb.(map[string]any)
		if !isObj {
			return nil, newErr(400, "x_content_parse_exception", "[1:2] [index_template] failed to parse field [template]")
		}
		for k := range tm {
			if !slices.Contains([]string{"settings", "mappings", "aliases", "lifecycle", "data_stream_options"}, k) {
				return nil, newErr(400, "x_content_parse_exception", "[1:2] [template] unknown field [%s]", k)
			}
		}
		if st, ok := tm["settings"].(map[string]any); ok {
			t.settings = normalizeSettings(st)
		}
		if mp, ok := tm["mappings"].(map[string]any); ok {
			m, e := parseMapping(mp)
			if e != nil {
				return nil, e
			}
			t.mapping = m
		}
	}
	if t.dataStream && t.mapping != nil {
		if f := t.mapping.root.props["@timestamp"]; f != nil && f.typ != "date" && f.typ != "date_nanos" {
			return nil, newErr(400, "illegal_argument_exception",
				"data stream timestamp field [@timestamp] is of type [%s], but [date,date_nanos] is expected", f.typ)
		}
	}
	return t, nil
}

// normalizeSettings flattens settings to "index."-prefixed keys with string
// values, as ES stores them.
func normalizeSettings(m map[string]any) map[string]string {
	flat := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				key := k
				if prefix != "" {
					key = prefix + "." + k
				}
				walk(key, c)
			}
		case nil:
		case []any:
			var parts []string
			for _, e := range x {
				parts = append(parts, fmt.Sprint(e))
			}
			flat[prefix] = strings.Join(parts, ",")
		default:
			flat[prefix] = fmt.Sprint(x)
		}
	}
	walk("", m)
	out := map[string]string{}
	for k, v := range flat {
		if !strings.HasPrefix(k, "index.") {
			k = "index." + k
		}
		out[k] = v
	}
	return out
}

func nestSettings(flat map[string]string) map[string]any {
	out := map[string]any{}
	for k, v := range flat {
		parts := strings.Split(k, ".")
		m := out
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = v
	}
	return out
}

func (t *indexTemplate) view() obj {
	o := obj{{"index_patterns", t.patterns}}
	var tmpl obj
	if tb, ok := t.raw["template"].(map[string]any); ok {
		if len(t.settings) > 0 {
			tmpl = append(tmpl, kv{"settings", nestSettings(t.settings)})
		}
		if mp, ok := tb["mappings"]; ok {
			tmpl = append(tmpl, kv{"mappings", mp})
		}
		for _, k := range []string{"aliases", "lifecycle", "data_stream_options"} {
			if v, ok := tb[k]; ok {
				tmpl = append(tmpl, kv{k, v})
			}
		}
		o = append(o, kv{"template", tmpl})
	}
	composed := t.raw["composed_of"]
	if composed == nil {
		composed = []any{}
	}
	o = append(o, kv{"composed_of", composed})
	if p, ok := t.raw["priority"]; ok && p != nil {
		o = append(o, kv{"priority", t.priority})
	}
	for _, k := range []string{"version", "_meta"} {
		if v, ok := t.raw[k]; ok {
			o = append(o, kv{k, v})
		}
	}
	if t.dataStream {
		ds := obj{{"hidden", false}, {"allow_custom_routing", false}}
		for k, v := range t.raw["data_stream"].(map[string]any) {
			if k == "hidden" || k == "allow_custom_routing" {
				for i := range ds {
					if ds[i].Key == k {
						ds[i].Val = v
					}
				}
				continue
			}
			ds = append(ds, kv{k, v})
		}
		o = append(o, kv{"data_stream", ds})
	}
	for _, k := range []string{"allow_auto_create", "ignore_missing_component_templates", "deprecated"} {
		if v, ok := t.raw[k]; ok {
			o = append(o, kv{k, v})
		}
	}
	return o
}

func (s *Server) handlePutTemplate(rq *request, name string) {
	body, e := s.jsonBody(rq)
	if e != nil {
		rq.bodyError(e)
		return
	}
	if body == nil {
		rq.writeError(newErr(400, "parse_exception", "request body is required"))
		return
	}
	t, e := parseTemplate(name, body)
	if e != nil {
		rq.writeError(e)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, exists := s.templates[name]; exists && boolParam(rq, "create") {
		rq.writeError(newErr(400, "illegal_argument_exception", "index template [%s] already exists", name))
		return
	}
	var clashNames, clashPatterns []string
	others := make([]string, 0, len(s.templates))
	for n := range s.templates {
		others = append(others, n)
	}
	sort.Strings(others)
	for _, n := range others {
		o := s.templates[n]
		if n == name || o.priority != t.priority {
			continue
		}
		overlap := false
		for _, p := range t.patterns {
			for _, q := range o.patterns {
				if globsOverlap(p, q) {
					overlap = true
				}
			}
		}
		if overlap {
			clashNames = append(clashNames, n)
			clashPatterns = append(clashPatterns, fmt.Sprintf("%s => [%s]", n, strings.Join(o.patterns, ", ")))
		}
	}
	if len(clashNames) > 0 {
		rq.writeError(newErr(400, "illegal_argument_exception",
			"index template [%s] has index patterns [%s] matching patterns from existing templates [%s] with patterns (%s) that have the same priority [%d], multiple index templates may not match during index creation, please use a different priority",
			name, strings.Join(t.patterns, ", "), strings.Join(clashNames, ","), strings.Join(clashPatterns, ","), t.priority))
		return
	}
	s.templates[name] = t
	rq.writeJSON(200, obj{{"acknowledged", true}})
}

func (s *Server) handleGetTemplates(rq *request, expr string) {
	s.mu.Lock()
	var names []string
	var missing string
	if expr == "" || expr == "*" || expr == "_all" {
		for n := range s.templates {
			names = append(names, n)
		}
	} else {
		for _, p := range splitNames(expr) {
			found := false
			for n := range s.templates {
				if globMatch(p, n) {
					names = append(names, n)
					found = true
				}
			}
			if !found && !isWildcard(p) && missing == "" {
				missing = p
			}
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	list := []any{}
	for _, n := range names {
		list = append(list, obj{{"name", n}, {"index_template", s.templates[n].view()}})
	}
	s.mu.Unlock()
	if missing != "" {
		if rq.r.Method == "HEAD" {
			rq.writeEmpty(404)
			return
		}
		rq.writeError(newErr(404, "resource_not_found_exception", "index template matching [%s] not found", missing))
		return
	}
	if rq.r.Method == "HEAD" {
		rq.writeEmpty(200)
		return
	}
	rq.writeJSON(200, obj{{"index_templates", list}})
}

func (s *Server) handleDeleteTemplate(rq *request, expr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for _, p := range splitNames(expr) {
		found := false
		for n := range s.templates {
			if globMatch(p, n) {
				names = append(names, n)
				found = true
			}
		}
		if !found && !isWildcard(p) {
			rq.writeError(newErr(404, "index_template_missing_exception", "index_template [%s] missing", p))
			return
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	var inUse []string
	for dsName := range s.dataStreams {
		if t := s.matchTemplate(dsName); t != nil && slices.Contains(names, t.name) {
			inUse = append(inUse, dsName)
		}
	}
	if len(inUse) > 0 {
		slices.Sort(inUse)
		rq.writeError(newErr(400, "illegal_argument_exception",
			"unable to remove composable templates [%s] as they are in use by a data streams [%s]",
			strings.Join(names, ", "), strings.Join(inUse, ", ")))
		return
	}
	for _, n := range names {
		delete(s.templates, n)
	}
	rq.writeJSON(200, obj{{"acknowledged", true}})
}

// ---- data streams ----

func (s *Server) resolveDataStreams(expr string) ([]*dataStream, *esError) {
	parts := splitNames(expr)
	if len(parts) == 0 || (len(parts) == 1 && parts[0] == "_all") {
		parts = []string{"*"}
	}
	var out []*dataStream
	seen := map[string]bool{}
	for _, p := range parts {
		found := false
		for n, ds := range s.dataStreams {
			if globMatch(p, n) {
				found = true
				if !seen[n] {
					seen[n] = true
					out = append(out, ds)
				}
			}
		}
		if !found && !isWildcard(p) {
			return nil, indexNotFound(p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

func (s *Server) handleGetDataStreams(rq *request, expr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	list, e := s.resolveDataStreams(expr)
	if e != nil {
		rq.writeError(e)
		return
	}
	out := []any{}
	for _, ds := range list {
		var idx []any
		for _, ix := range ds.indices {
			idx = append(idx, obj{{"index_name", ix.name}, {"index_uuid", ix.uuid}, {"prefer_ilm", true}, {"managed_by", "Unmanaged"}})
		}
		status := "GREEN"
		if ds.writeIndex().replicas() > 0 {
			status = "YELLOW"
		}
		out = append(out, obj{
			{"name", ds.name},
			{"timestamp_field", obj{{"name", "@timestamp"}}},
			{"indices", idx},
			{"generation", len(ds.indices)},
			{"status", status},
			{"template", ds.template},
			{"next_generation_managed_by", "Unmanaged"},
			{"prefer_ilm", true},
			{"hidden", false},
			{"system", false},
			{"allow_custom_routing", false},
			{"replicated", false},
			{"rollover_on_write", false},
		})
	}
	rq.writeJSON(200, obj{{"data_streams", out}})
}

func (s *Server) handlePutDataStream(rq *request, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.dataStreams[name]; ok {
		rq.writeError(newErr(400, "resource_already_exists_exception", "data_stream [%s] already exists", name))
		return
	}
	if e := validateIndexName(name); e != nil {
		rq.writeError(e)
		return
	}
	if ix, ok := s.indices[name]; ok {
		rq.writeError(newErr(400, "resource_already_exists_exception", "index [%s/%s] already exists", name, ix.uuid).
			with("index_uuid", ix.uuid).with("index", name))
		return
	}
	t := s.matchTemplate(name)
	if t == nil || !t.dataStream {
		rq.writeError(newErr(400, "illegal_argument_exception", "no matching index template found for data stream [%s]", name))
		return
	}
	if _, e := s.createDataStream(name, t); e != nil {
		rq.writeError(e)
		return
	}
	rq.writeJSON(200, obj{{"acknowledged", true}})
}

func (s *Server) handleDeleteDataStreams(rq *request, expr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	list, e := s.resolveDataStreams(expr)
	if e != nil {
		rq.writeError(e)
		return
	}
	for _, ds := range list {
		for _, ix := range ds.indices {
			delete(s.indices, ix.name)
		}
		delete(s.dataStreams, ds.name)
	}
	rq.writeJSON(200, obj{{"acknowledged", true}})
}

// ---- indices ----

func (s *Server) handleCreateIndex(rq *request, name string) {
	body, e := s.jsonBody(rq)
	if e != nil {
		rq.bodyError(e)
		return
	}
	var m *mapping
	var settings map[string]string
	for k, v := range body {
		switch k {
		case "settings":
			if sm, ok := v.(map[string]any); ok {
				settings = normalizeSettings(sm)
			}
		case "mappings":
			mm, ok := v.(map[string]any)
			if !ok {
				rq.writeError(newErr(400, "mapper_parsing_exception", "Failed to parse mapping: mappings must be an object"))
				return
			}
			if m, e = parseMapping(mm); e != nil {
				rq.writeError(e)
				return
			}
		case "aliases":
		default:
			rq.writeError(newErr(400, "illegal_argument_exception", "unknown key [%s] for create index", k))
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ix, ok := s.indices[name]; ok {
		rq.writeError(newErr(400, "resource_already_exists_exception", "index [%s/%s] already exists", name, ix.uuid).
			with("index_uuid", ix.uuid).with("index", name))
		return
	}
	if _, ok := s.dataStreams[name]; ok {
		rq.writeError(newErr(400, "resource_already_exists_exception", "data stream [%s] already exists", name))
		return
	}
	if e := validateIndexName(name); e != nil {
		rq.writeError(e)
		return
	}
	t := s.matchTemplate(name)
	if t != nil && t.dataStream {
		rq.writeError(newErr(400, "illegal_argument_exception",
			"cannot create index with name [%s], because it matches with template [%s] that creates data streams only, use create data stream api instead", name, t.name))
		return
	}
	s.newIndex(name, t, m, settings)
	rq.writeJSON(200, obj{{"acknowledged", true}, {"shards_acknowledged", true}, {"index", name}})
}

func (ix *index) settingsView() map[string]any {
	flat := map[string]string{
		"index.number_of_shards":   "1",
		"index.number_of_replicas": "1",
		"index.uuid":               ix.uuid,
		"index.provided_name":      ix.name,
		"index.creation_date":      strconv.FormatInt(ix.created.UnixMilli(), 10),
		"index.version.created":    "8512000",
	}
	for k, v := range ix.settings {
		flat[k] = v
	}
	return nestSettings(flat)
}

func (s *Server) handleGetIndex(rq *request, expr string, head bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	list, e := s.resolveRead(expr, boolParam(rq, "ignore_unavailable"))
	if head {
		if e != nil || len(list) == 0 {
			rq.writeEmpty(404)
		} else {
			rq.writeEmpty(200)
		}
		return
	}
	if e != nil {
		rq.writeError(e)
		return
	}
	out := obj{}
	for _, ix := range list {
		o := obj{{"aliases", obj{}}, {"mappings", ix.mapping.view()}, {"settings", ix.settingsView()}}
		if ix.dataStream != "" {
			o = append(o, kv{"data_stream", ix.dataStream})
		}
		out = append(out, kv{ix.name, o})
	}
	rq.writeJSON(200, out)
}

func (s *Server) handleGetMapping(rq *request, expr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	list, e := s.resolveRead(expr, boolParam(rq, "ignore_unavailable"))
	if e != nil {
		rq.writeError(e)
		return
	}
	out := obj{}
	for _, ix := range list {
		out = append(out, kv{ix.name, obj{{"mappings", ix.mapping.view()}}})
	}
	rq.writeJSON(200, out)
}

func (s *Server) handleDeleteIndex(rq *request, expr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var victims []*index
	for _, p := range splitNames(expr) {
		if isWildcard(p) || p == "_all" {
			// action.destructive_requires_name defaults to true in ES 8.
			rq.writeError(newErr(400, "illegal_argument_exception", "Wildcard expressions or all indices are not allowed"))
			return
		}
		if _, ok := s.dataStreams[p]; ok {
			rq.writeError(newErr(400, "illegal_argument_exception",
				"The provided expression [%s] matches a data stream, specify the corresponding concrete indices instead.", p))
			return
		}
		ix, ok := s.indices[p]
		if !ok {
			if boolParam(rq, "ignore_unavailable") {
				continue
			}
			rq.writeError(indexNotFound(p))
			return
		}
		if ix.dataStream != "" {
			if ds := s.dataStreams[ix.dataStream]; ds != nil && ds.writeIndex() == ix {
				rq.writeError(newErr(400, "illegal_argument_exception",
					"index [%s] is the write index for data stream [%s] and cannot be deleted", ix.name, ds.name))
				return
			}
		}
		victims = append(victims, ix)
	}
	for _, ix := range victims {
		delete(s.indices, ix.name)
		if ds := s.dataStreams[ix.dataStream]; ds != nil {
			ds.indices = slices.DeleteFunc(ds.indices, func(x *index) bool { return x == ix })
		}
	}
	rq.writeJSON(200, obj{{"acknowledged", true}})
}

func (s *Server) handleRefresh(rq *request, expr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	list, e := s.resolveRead(expr, boolParam(rq, "ignore_unavailable"))
	if e != nil {
		rq.writeError(e)
		return
	}
	total := 0
	for _, ix := range list {
		total += 1 + ix.replicas()
	}
	rq.writeJSON(200, obj{{"_shards", obj{{"total", total}, {"successful", len(list)}, {"failed", 0}}}})
}
