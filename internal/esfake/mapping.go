package esfake

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// mapping is an index's mapping: the root object plus the root-only
// parameters that steer dynamic mapping.
type mapping struct {
	root             *fieldMap
	dynamicTemplates []*dynTemplate
	dateDetection    bool
	numericDetection bool
	dynamicDates     []string       // dynamic_date_formats
	rootExtra        map[string]any // other root parameters, echoed back
	dsTimestamp      bool           // _data_stream_timestamp enabled
}

// fieldMap is one field of a mapping. Objects (object, nested) have props;
// leaves have a type and parameters.
type fieldMap struct {
	typ     string
	props   map[string]*fieldMap // object and nested
	dynamic string               // object: "", "true", "false", "strict" or "runtime"
	enabled bool                 // object: false means the content is not parsed
	fields  map[string]*fieldMap // multi-fields
	params  map[string]any       // the other mapping parameters, as given
	runtime bool                 // a dynamic runtime field: in _source only
}

func (f *fieldMap) isObject() bool { return f.typ == "object" || f.typ == "nested" }

func newObject() *fieldMap {
	return &fieldMap{typ: "object", props: map[string]*fieldMap{}, enabled: true}
}

func newMapping() *mapping {
	return &mapping{
		root:          newObject(),
		dateDetection: true,
		dynamicDates:  []string{"strict_date_optional_time", "yyyy/MM/dd HH:mm:ss Z||yyyy/MM/dd Z"},
		rootExtra:     map[string]any{},
	}
}

// knownTypes are the field types ES 8 knows; a mapping naming another type
// is refused as ES refuses it. The fake checks values only for some of them.
var knownTypes = []string{
	"object", "nested", "flattened", "keyword", "constant_keyword", "wildcard", "text", "match_only_text",
	"annotated_text", "search_as_you_type", "completion", "long", "integer", "short", "byte", "double", "float",
	"half_float", "scaled_float", "unsigned_long", "date", "date_nanos", "boolean", "binary", "ip", "version",
	"alias", "geo_point", "geo_shape", "point", "shape", "integer_range", "long_range", "float_range",
	"double_range", "date_range", "ip_range", "dense_vector", "sparse_vector", "rank_feature", "rank_features",
	"histogram", "aggregate_metric_double", "percolator", "join", "token_count", "murmur3", "semantic_text",
	"passthrough", "counted_keyword",
}

var rootKeys = []string{"properties", "dynamic", "dynamic_templates", "date_detection", "numeric_detection",
	"dynamic_date_formats", "_source", "_meta", "_routing", "runtime", "_data_stream_timestamp", "subobjects",
	"enabled", "_field_names", "_size", "_doc_count"}

func mappingErr(format string, args ...any) *esError {
	return newErr(400, "mapper_parsing_exception", format, args...)
}

// parseMapping reads a "mappings" object of a template or create-index body.
func parseMapping(raw map[string]any) (*mapping, *esError) {
	if len(raw) == 1 {
		if inner, ok := raw["_doc"].(map[string]any); ok {
			raw = inner
		}
	}
	m := newMapping()
	var unknown []string
	for k, v := range raw {
		switch k {
		case "properties":
			props, ok := v.(map[string]any)
			if !ok {
				return nil, mappingErr("Failed to parse mapping: Expected map for property [properties] on field [_doc] but got a %T", v)
			}
			if e := parseProps(m.root, "", props); e != nil {
				return nil, e
			}
		case "dynamic":
			d, e := dynamicValue(v, "_doc")
			if e != nil {
				return nil, e
			}
			m.root.dynamic = d
		case "dynamic_templates":
			list, ok := v.([]any)
			if !ok {
				return nil, mappingErr("Failed to parse mapping: Dynamic template syntax error. An array of named objects is expected.")
			}
			for _, item := range list {
				dt, e := parseDynTemplate(item)
				if e != nil {
					return nil, e
				}
				m.dynamicTemplates = append(m.dynamicTemplates, dt)
			}
		case "date_detection":
			m.dateDetection = truthy(v)
		case "numeric_detection":
			m.numericDetection = truthy(v)
		case "dynamic_date_formats":
			m.dynamicDates = nil
			switch x := v.(type) {
			case string:
				m.dynamicDates = []string{x}
			case []any:
				for _, f := range x {
					m.dynamicDates = append(m.dynamicDates, fmt.Sprint(f))
				}
			}
		case "_data_stream_timestamp":
			if o, ok := v.(map[string]any); ok {
				m.dsTimestamp = truthy(o["enabled"])
			}
		default:
			if !slices.Contains(rootKeys, k) {
				unknown = append(unknown, fmt.Sprintf("%s : %v", k, v))
				continue
			}
			m.rootExtra[k] = v
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, mappingErr("Failed to parse mapping: Root mapping definition has unsupported parameters:  [%s]", strings.Join(unknown, "] ["))
	}
	return m, nil
}

func truthy(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		return x == "true"
	}
	return false
}

func dynamicValue(v any, field string) (string, *esError) {
	s := fmt.Sprint(v)
	switch s {
	case "true", "false", "strict", "runtime":
		return s, nil
	}
	return "", mappingErr("Failed to parse mapping: Could not convert [%s.dynamic] to boolean", field)
}

// parseProps adds the "properties" of an object; dotted names become
// nested objects, as in ES.
func parseProps(parent *fieldMap, path string, props map[string]any) *esError {
	names := slices.Sorted(maps.Keys(props))
	for _, name := range names {
		def, ok := props[name].(map[string]any)
		full := joinPath(path, name)
		if !ok {
			return mappingErr("Failed to parse mapping: Expected map for property [fields] on field [%s] but got a %T", full, props[name])
		}
		segs := strings.Split(name, ".")
		target, tpath := parent, path
		for _, seg := range segs[:len(segs)-1] {
			tpath = joinPath(tpath, seg)
			child := target.props[seg]
			if child == nil {
				child = newObject()
				target.props[seg] = child
			}
			if !child.isObject() {
				return mappingErr("Failed to parse mapping: can't merge a non object mapping [%s] with an object mapping", tpath)
			}
			target = child
		}
		last := segs[len(segs)-1]
		f, e := parseField(joinPath(tpath, last), def)
		if e != nil {
			return e
		}
		if old := target.props[last]; old != nil && old.isObject() && f.isObject() {
			maps.Copy(old.props, f.props)
			continue
		}
		target.props[last] = f
	}
	return nil
}

func parseField(full string, def map[string]any) (*fieldMap, *esError) {
	typ, _ := def["type"].(string)
	if typ == "" {
		if _, has := def["type"]; has {
			return nil, mappingErr("Failed to parse mapping: No type specified for field [%s]", full)
		}
		typ = "object"
	}
	if !slices.Contains(knownTypes, typ) {
		return nil, mappingErr("Failed to parse mapping: No handler for type [%s] declared on field [%s]", typ, full)
	}
	f := &fieldMap{typ: typ, params: map[string]any{}, enabled: true}
	if f.isObject() {
		f.props = map[string]*fieldMap{}
		for k, v := range def {
			switch k {
			case "type":
			case "properties":
				props, ok := v.(map[string]any)
				if !ok {
					return nil, mappingErr("Failed to parse mapping: Expected map for property [properties] on field [%s]", full)
				}
				if e := parseProps(f, full, props); e != nil {
					return nil, e
				}
			case "dynamic":
				d, e := dynamicValue(v, full)
				if e != nil {
					return nil, e
				}
				f.dynamic = d
			case "enabled":
				f.enabled = truthy(v)
			default:
				f.params[k] = v
			}
		}
		return f, nil
	}
	for k, v := range def {
		switch k {
		case "type":
		case "fields":
			sub, ok := v.(map[string]any)
			if !ok {
				return nil, mappingErr("Failed to parse mapping: Expected map for property [fields] on field [%s]", full)
			}
			f.fields = map[string]*fieldMap{}
			for name, sd := range sub {
				sdm, ok := sd.(map[string]any)
				if !ok {
					return nil, mappingErr("Failed to parse mapping: Expected map for property [fields] on field [%s]", full)
				}
				sf, e := parseField(full+"."+name, sdm)
				if e != nil {
					return nil, e
				}
				if sf.isObject() {
					return nil, mappingErr("Failed to parse mapping: Type [%s] cannot be used in multi field", sf.typ)
				}
				f.fields[name] = sf
			}
		case "properties":
			return nil, mappingErr("Failed to parse mapping: unknown parameter [properties] on mapper [%s] of type [%s]", full, typ)
		default:
			f.params[k] = v
		}
	}
	if typ == "date" || typ == "date_nanos" {
		if fm, ok := f.params["format"].(string); ok {
			if _, err := dateFormats(fm); err != nil {
				return nil, mappingErr("Failed to parse mapping: Invalid format: [%s]: %v", fm, err)
			}
		}
	}
	return f, nil
}

func joinPath(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

func (f *fieldMap) clone() *fieldMap {
	c := *f
	if f.props != nil {
		c.props = make(map[string]*fieldMap, len(f.props))
		for k, v := range f.props {
			c.props[k] = v.clone()
		}
	}
	if f.fields != nil {
		c.fields = make(map[string]*fieldMap, len(f.fields))
		for k, v := range f.fields {
			c.fields[k] = v.clone()
		}
	}
	return &c
}

func (m *mapping) clone() *mapping {
	c := *m
	c.root = m.root.clone()
	c.dynamicTemplates = slices.Clone(m.dynamicTemplates)
	c.dynamicDates = slices.Clone(m.dynamicDates)
	c.rootExtra = maps.Clone(m.rootExtra)
	return &c
}

// merge lays other's fields over a copy of m (for create-index bodies over
// a template).
func (m *mapping) merge(other *mapping) *mapping {
	c := m.clone()
	if other == nil {
		return c
	}
	var mergeObj func(dst, src *fieldMap)
	mergeObj = func(dst, src *fieldMap) {
		for k, v := range src.props {
			if d := dst.props[k]; d != nil && d.isObject() && v.isObject() {
				mergeObj(d, v)
				continue
			}
			dst.props[k] = v.clone()
		}
		if src.dynamic != "" {
			dst.dynamic = src.dynamic
		}
	}
	mergeObj(c.root, other.root)
	c.dynamicTemplates = append(c.dynamicTemplates, other.dynamicTemplates...)
	maps.Copy(c.rootExtra, other.rootExtra)
	return c
}

// ensureTimestamp is what a data stream adds to its backing indices'
// mapping: @timestamp as a date when the template does not map it.
func (m *mapping) ensureTimestamp() {
	if m.root.props["@timestamp"] == nil {
		m.root.props["@timestamp"] = &fieldMap{typ: "date", params: map[string]any{}, enabled: true}
	}
	m.dsTimestamp = true
}

// countFields counts mappers the way index.mapping.total_fields.limit
// does: objects, leaves and multi-fields, not the root.
func (f *fieldMap) countFields() int {
	n := 0
	for _, c := range f.props {
		n += 1 + len(c.fields) + c.countFields()
	}
	return n
}

// view renders the mapping as GET _mapping shows it.
func (m *mapping) view() obj {
	var o obj
	if m.root.dynamic != "" {
		o = append(o, kv{"dynamic", dynamicView(m.root.dynamic)})
	}
	if m.dsTimestamp {
		o = append(o, kv{"_data_stream_timestamp", obj{{"enabled", true}}})
	}
	for _, k := range slices.Sorted(maps.Keys(m.rootExtra)) {
		o = append(o, kv{k, m.rootExtra[k]})
	}
	if len(m.dynamicTemplates) > 0 {
		var list []any
		for _, dt := range m.dynamicTemplates {
			list = append(list, obj{{dt.name, dt.raw}})
		}
		o = append(o, kv{"dynamic_templates", list})
	}
	if !m.dateDetection {
		o = append(o, kv{"date_detection", false})
	}
	if m.numericDetection {
		o = append(o, kv{"numeric_detection", true})
	}
	if len(m.root.props) > 0 {
		o = append(o, kv{"properties", propsView(m.root.props)})
	}
	return o
}

func dynamicView(d string) any {
	switch d {
	case "true":
		return true
	case "false":
		return false
	}
	return d
}

func propsView(props map[string]*fieldMap) obj {
	var o obj
	for _, k := range slices.Sorted(maps.Keys(props)) {
		o = append(o, kv{k, props[k].view()})
	}
	return o
}

func (f *fieldMap) view() obj {
	var o obj
	if f.isObject() {
		if f.typ == "nested" {
			o = append(o, kv{"type", "nested"})
		}
		if f.dynamic != "" {
			o = append(o, kv{"dynamic", dynamicView(f.dynamic)})
		}
		if !f.enabled {
			o = append(o, kv{"enabled", false})
		}
		for _, k := range slices.Sorted(maps.Keys(f.params)) {
			o = append(o, kv{k, f.params[k]})
		}
		if len(f.props) > 0 {
			o = append(o, kv{"properties", propsView(f.props)})
		}
		return o
	}
	o = append(o, kv{"type", f.typ})
	for _, k := range slices.Sorted(maps.Keys(f.params)) {
		o = append(o, kv{k, f.params[k]})
	}
	if len(f.fields) > 0 {
		o = append(o, kv{"fields", propsView(f.fields)})
	}
	return o
}

func (f *fieldMap) intParam(name string, def int) int {
	if v, ok := f.params[name]; ok {
		if n, err := strconv.Atoi(fmt.Sprint(v)); err == nil {
			return n
		}
	}
	return def
}

func (f *fieldMap) boolParam(name string, def bool) bool {
	v, ok := f.params[name]
	if !ok {
		return def
	}
	return truthy(v)
}

// ---- dynamic templates ----

type dynTemplate struct {
	name         string
	raw          map[string]any
	mappingTypes []string // match_mapping_type; empty matches any
	match        []string
	unmatch      []string
	pathMatch    []string
	pathUnmatch  []string
	regex        bool
	mapping      map[string]any
	runtime      bool
}

func stringList(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
		return out
	}
	return nil
}

func parseDynTemplate(item any) (*dynTemplate, *esError) {
	named, ok := item.(map[string]any)
	if !ok || len(named) != 1 {
		return nil, mappingErr("Failed to parse mapping: Dynamic template syntax error. An array of named objects is expected.")
	}
	for name, body := range named {
		b, ok := body.(map[string]any)
		if !ok {
			return nil, mappingErr("Failed to parse mapping: Dynamic template syntax error. An array of named objects is expected.")
		}
		dt := &dynTemplate{name: name, raw: b}
		for k, v := range b {
			switch k {
			case "match_mapping_type":
				dt.mappingTypes = stringList(v)
				for _, t := range dt.mappingTypes {
					if !slices.Contains([]string{"*", "string", "long", "double", "boolean", "date", "object", "binary"}, t) {
						return nil, mappingErr("Failed to parse mapping: No field type matched on [%s], possible values are [object, string, long, double, boolean, date, binary]", t)
					}
				}
			case "match":
				dt.match = stringList(v)
			case "unmatch":
				dt.unmatch = stringList(v)
			case "path_match":
				dt.pathMatch = stringList(v)
			case "path_unmatch":
				dt.pathUnmatch = stringList(v)
			case "match_pattern":
				dt.regex = fmt.Sprint(v) == "regex"
			case "mapping":
				dt.mapping, _ = v.(map[string]any)
			case "runtime":
				dt.runtime = true
			default:
				return nil, mappingErr("Failed to parse mapping: Illegal dynamic template parameter: [%s]", k)
			}
		}
		if dt.mapping == nil && !dt.runtime {
			return nil, mappingErr("Failed to parse mapping: template [%s] must have either mapping or runtime set", name)
		}
		return dt, nil
	}
	return nil, nil
}

func (dt *dynTemplate) patternMatch(patterns []string, s string) bool {
	for _, p := range patterns {
		if dt.regex {
			if re, err := regexp.Compile(p); err == nil && re.MatchString(s) {
				return true
			}
		} else if globMatch(p, s) {
			return true
		}
	}
	return false
}

func (dt *dynTemplate) matches(name, path, detected string) bool {
	if len(dt.mappingTypes) > 0 && !slices.Contains(dt.mappingTypes, "*") && !slices.Contains(dt.mappingTypes, detected) {
		return false
	}
	if len(dt.mappingTypes) == 0 && detected == "object" {
		// A template without match_mapping_type only takes objects when
		// its mapping makes one.
		if t, _ := dt.mapping["type"].(string); t != "" && t != "object" && t != "nested" && t != "flattened" {
			return false
		}
	}
	if len(dt.match) > 0 && !dt.patternMatch(dt.match, name) {
		return false
	}
	if len(dt.unmatch) > 0 && dt.patternMatch(dt.unmatch, name) {
		return false
	}
	if len(dt.pathMatch) > 0 && !dt.patternMatch(dt.pathMatch, path) {
		return false
	}
	if len(dt.pathUnmatch) > 0 && dt.patternMatch(dt.pathUnmatch, path) {
		return false
	}
	return true
}

// defaultDynamicType is the field type ES gives a detected JSON type when a
// dynamic template's mapping names none.
func defaultDynamicType(detected string) string {
	switch detected {
	case "string":
		return "text"
	case "double":
		return "float"
	}
	return detected
}

// substitute replaces {name} and {dynamic_type} in a template mapping.
func substitute(v any, name, dynType string) any {
	switch x := v.(type) {
	case string:
		return strings.NewReplacer("{name}", name, "{dynamic_type}", dynType).Replace(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[strings.NewReplacer("{name}", name, "{dynamic_type}", dynType).Replace(k)] = substitute(e, name, dynType)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = substitute(e, name, dynType)
		}
		return out
	}
	return v
}

// dynamicField builds the mapping ES would add for a new field whose first
// value has the detected type ("string", "long", "double", "boolean",
// "date", "object"); dateFormat is set for dates detected by a format
// other than strict_date_optional_time.
func (m *mapping) dynamicField(name, path, detected, dateFormat string) (*fieldMap, *esError) {
	for _, dt := range m.dynamicTemplates {
		if !dt.matches(name, path, detected) {
			continue
		}
		if dt.runtime {
			return &fieldMap{typ: "runtime", runtime: true, params: map[string]any{}, enabled: true}, nil
		}
		def, _ := substitute(dt.mapping, name, defaultDynamicType(detected)).(map[string]any)
		if _, ok := def["type"]; !ok {
			def["type"] = defaultDynamicType(detected)
			if detected == "object" {
				def["type"] = "object"
			}
		}
		f, e := parseField(path, def)
		if e != nil {
			return nil, e
		}
		return f, nil
	}
	switch detected {
	case "object":
		return newObject(), nil
	case "string":
		return &fieldMap{typ: "text", params: map[string]any{}, enabled: true, fields: map[string]*fieldMap{
			"keyword": {typ: "keyword", params: map[string]any{"ignore_above": json.Number("256")}, enabled: true},
		}}, nil
	case "date":
		f := &fieldMap{typ: "date", params: map[string]any{}, enabled: true}
		if dateFormat != "" {
			f.params["format"] = dateFormat
		}
		return f, nil
	}
	return &fieldMap{typ: defaultDynamicType(detected), params: map[string]any{}, enabled: true}, nil
}
