package esfake

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ---- a JSON tree that remembers where each token starts ----

type jkind uint8

const (
	jObj jkind = iota + 1
	jArr
	jStr
	jNum
	jBool
	jNull
)

type jnode struct {
	kind  jkind
	pos   int    // byte offset where the token starts
	end   int    // containers: byte offset of the closing bracket
	text  string // string value, number literal, "true" or "false"
	keys  []string
	elems []*jnode // object values (parallel to keys) or array elements
}

type jsonErr struct {
	pos int
	msg string
}

func (e *jsonErr) Error() string { return e.msg }

type treeReader struct {
	src []byte
	dec *json.Decoder
}

// parseTree parses one JSON value and requires only whitespace after it.
func parseTree(src []byte) (*jnode, *jsonErr) {
	tr := &treeReader{src: src, dec: json.NewDecoder(bytes.NewReader(src))}
	tr.dec.UseNumber()
	n, err := tr.value(0)
	if err != nil {
		return nil, err
	}
	if p := tr.next(); p < len(src) {
		return nil, &jsonErr{p, "Unexpected character after the end of the document"}
	}
	return n, nil
}

// next is the offset of the next token: past whitespace, ',' and ':'.
func (tr *treeReader) next() int {
	off := int(tr.dec.InputOffset())
	for off < len(tr.src) {
		switch tr.src[off] {
		case ' ', '\t', '\n', '\r', ',', ':':
			off++
			continue
		}
		break
	}
	return off
}

func (tr *treeReader) token() (json.Token, int, *jsonErr) {
	pos := tr.next()
	tok, err := tr.dec.Token()
	if err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, int(se.Offset), &jsonErr{int(se.Offset), se.Error()}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, len(tr.src), &jsonErr{len(tr.src), "Unexpected end-of-input"}
		}
		return nil, pos, &jsonErr{pos, err.Error()}
	}
	return tok, pos, nil
}

func (tr *treeReader) value(depth int) (*jnode, *jsonErr) {
	if depth > 1000 {
		return nil, &jsonErr{tr.next(), "document nested too deeply"}
	}
	tok, pos, err := tr.token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			n := &jnode{kind: jObj, pos: pos}
			for tr.dec.More() {
				ktok, kpos, err := tr.token()
				if err != nil {
					return nil, err
				}
				key, _ := ktok.(string)
				if slices.Contains(n.keys, key) {
					return nil, &jsonErr{kpos, fmt.Sprintf("Duplicate field '%s'", key)}
				}
				v, err := tr.value(depth + 1)
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, key)
				n.elems = append(n.elems, v)
			}
			_, n.end, err = tr.token()
			return n, err
		case '[':
			n := &jnode{kind: jArr, pos: pos}
			for tr.dec.More() {
				v, err := tr.value(depth + 1)
				if err != nil {
					return nil, err
				}
				n.elems = append(n.elems, v)
			}
			_, n.end, err = tr.token()
			return n, err
		}
		return nil, &jsonErr{pos, fmt.Sprintf("Unexpected close marker '%s'", t)}
	case string:
		return &jnode{kind: jStr, pos: pos, text: t}, nil
	case json.Number:
		return &jnode{kind: jNum, pos: pos, text: string(t)}, nil
	case bool:
		return &jnode{kind: jBool, pos: pos, text: strconv.FormatBool(t)}, nil
	case nil:
		return &jnode{kind: jNull, pos: pos}, nil
	}
	return nil, &jsonErr{pos, "unexpected token"}
}

// tokenName is the Jackson name of a node's first token.
func (n *jnode) tokenName() string {
	switch n.kind {
	case jObj:
		return "START_OBJECT"
	case jArr:
		return "START_ARRAY"
	case jStr:
		return "VALUE_STRING"
	case jNum:
		if isIntegerLiteral(n.text) {
			return "VALUE_NUMBER_INT"
		}
		return "VALUE_NUMBER_FLOAT"
	case jBool:
		if n.text == "true" {
			return "VALUE_TRUE"
		}
		return "VALUE_FALSE"
	}
	return "VALUE_NULL"
}

// preview renders a value as ES does in "Preview of field's value": the
// text of a scalar, Java's Map/List toString for containers.
func (n *jnode) preview() string {
	switch n.kind {
	case jObj:
		var b strings.Builder
		b.WriteByte('{')
		for i, k := range n.keys {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(k)
			b.WriteByte('=')
			b.WriteString(n.elems[i].preview())
		}
		b.WriteByte('}')
		return b.String()
	case jArr:
		parts := make([]string, len(n.elems))
		for i, e := range n.elems {
			parts[i] = e.preview()
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case jNull:
		return "null"
	}
	return n.text
}

func isIntegerLiteral(s string) bool { return !strings.ContainsAny(s, ".eE") }

// ---- document parsing against a mapping ----

// docParser checks one document the way ES's DocumentParser does on the
// primary shard, adding dynamic fields to m (a copy of the index mapping).
type docParser struct {
	src         []byte
	id          string
	m           *mapping
	fieldLimit  int
	depthLimit  int
	fieldCount  int
	addedFields int
}

// location renders a byte offset as Jackson's [line:column].
func (p *docParser) location(off int) string {
	if off > len(p.src) {
		off = len(p.src)
	}
	line, col := 1, 1
	for _, r := range string(p.src[:off]) {
		if r == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return fmt.Sprintf("[%d:%d]", line, col)
}

func (p *docParser) fail(off int, format string, args ...any) *esError {
	return newErr(400, "document_parsing_exception", p.location(off)+" "+format, args...)
}

// failFieldValue is FieldMapper's "failed to parse field" error.
func (p *docParser) failFieldValue(f *fieldMap, path string, v *jnode, causeType, causeReason string) *esError {
	off := v.pos
	if v.kind == jObj || v.kind == jArr {
		off = v.end
	}
	typ := f.typ
	return p.fail(off, "failed to parse field [%s] of type [%s] in document with id '%s'. Preview of field's value: '%s'",
		path, typ, p.id, v.preview()).cause(causeType, causeReason)
}

// failParse wraps an error raised outside a field mapper, as
// DocumentParser does: "[l:c] failed to parse: <message>".
func (p *docParser) failParse(off int, causeType, msg string) *esError {
	return p.fail(off, "failed to parse: %s", msg).cause(causeType, msg)
}

var metadataFields = []string{"_id", "_index", "_routing", "_source", "_seq_no", "_primary_term", "_version",
	"_ignored", "_ignored_source", "_field_names", "_nested_path", "_data_stream_timestamp", "_tsid", "_feature"}

func (p *docParser) parseDocument(root *jnode) *esError {
	p.fieldCount = p.m.root.countFields()
	return p.parseObject(root, p.m.root, "", p.m.root.dynamicOr("true"), 0)
}

func (f *fieldMap) dynamicOr(inherited string) string {
	if f.dynamic != "" {
		return f.dynamic
	}
	return inherited
}

func (p *docParser) parseObject(obj *jnode, om *fieldMap, path string, dyn string, depth int) *esError {
	for i, key := range obj.keys {
		val := obj.elems[i]
		if strings.TrimSpace(key) == "" {
			if key == "" {
				return p.failParse(val.pos, "illegal_argument_exception", "field name cannot be an empty string")
			}
			return p.failParse(val.pos, "illegal_argument_exception", "field name cannot contain only whitespace: ['"+key+"']")
		}
		if path == "" && slices.Contains(metadataFields, key) {
			return p.fail(val.pos, "Field [%s] is a metadata field and cannot be added inside a document. Use the index API request parameters.", key)
		}
		segs := strings.Split(key, ".")
		if slices.Contains(segs, "") {
			if strings.Trim(key, ".") == "" {
				return p.failParse(val.pos, "illegal_argument_exception", "field name cannot contain only dots")
			}
			return p.failParse(val.pos, "illegal_argument_exception",
				fmt.Sprintf("field name starting or ending with a [.] makes object resolution ambiguous: [%s]", key))
		}
		parent, ppath, pdyn, pdepth := om, path, dyn, depth
		skip := false
		for k, seg := range segs[:len(segs)-1] {
			full := joinPath(ppath, seg)
			child := parent.props[seg]
			if child == nil {
				switch pdyn {
				case "strict":
					return p.strictErr(val.pos, seg, ppath)
				case "false", "runtime":
					skip = true
				}
				if skip {
					break
				}
				var e *esError
				if child, e = p.addDynamic(parent, seg, full, "object", "", pdepth+1, val.pos); e != nil {
					return e
				}
			}
			if child.typ == "flattened" {
				// The rest of the dotted name is a key inside the flattened field.
				virtual := val
				for j := len(segs) - 1; j > k; j-- {
					virtual = &jnode{kind: jObj, pos: val.pos, end: val.pos, keys: []string{segs[j]}, elems: []*jnode{virtual}}
				}
				if e := p.parseValue(child, full, seg, pdyn, pdepth+1, virtual); e != nil {
					return e
				}
				skip = true
				break
			}
			if child.runtime || (child.isObject() && !child.enabled) {
				skip = true
				break
			}
			if !child.isObject() {
				return p.failParse(val.pos, "illegal_argument_exception", fmt.Sprintf(
					"Could not dynamically add mapping for field [%s]. Existing mapping for [%s] must be of type object but found [%s].",
					joinPath(path, key), full, child.typ))
			}
			parent, ppath, pdyn, pdepth = child, full, child.dynamicOr(pdyn), pdepth+1
		}
		if skip {
			continue
		}
		if e := p.parseField(parent, segs[len(segs)-1], ppath, pdyn, pdepth, val); e != nil {
			return e
		}
	}
	return nil
}

func (p *docParser) strictErr(off int, name, parentPath string) *esError {
	within := parentPath
	if within == "" {
		within = "_doc"
	}
	return newErr(400, "strict_dynamic_mapping_exception",
		"%s mapping set to strict, dynamic introduction of [%s] within [%s] is not allowed", p.location(off), name, within)
}

// firstValue is the first non-null scalar or object inside a value,
// looking through arrays; it decides a dynamic field's type.
func firstValue(v *jnode) *jnode {
	switch v.kind {
	case jNull:
		return nil
	case jArr:
		for _, e := range v.elems {
			if f := firstValue(e); f != nil {
				return f
			}
		}
		return nil
	}
	return v
}

func (p *docParser) parseField(parent *fieldMap, name, parentPath, dyn string, depth int, val *jnode) *esError {
	full := joinPath(parentPath, name)
	f := parent.props[name]
	if f == nil {
		sample := firstValue(val)
		if sample == nil {
			return nil // null or empty array: no mapping is added
		}
		switch dyn {
		case "strict":
			return p.strictErr(val.pos, name, parentPath)
		case "false", "runtime":
			return nil
		}
		detected, dateFmt := p.detect(sample)
		var e *esError
		if f, e = p.addDynamic(parent, name, full, detected, dateFmt, depth+1, val.pos); e != nil {
			return e
		}
	}
	return p.parseValue(f, full, name, dyn, depth+1, val)
}

// detect is ES's dynamic type detection for a value.
func (p *docParser) detect(v *jnode) (detected, dateFormat string) {
	switch v.kind {
	case jObj:
		return "object", ""
	case jBool:
		return "boolean", ""
	case jNum:
		if isIntegerLiteral(v.text) {
			if _, err := strconv.ParseInt(v.text, 10, 64); err == nil {
				return "long", ""
			}
		}
		return "double", ""
	}
	text := v.text
	_, longErr := strconv.ParseInt(text, 10, 64)
	_, floatErr := strconv.ParseFloat(text, 64)
	if p.m.numericDetection {
		if longErr == nil {
			return "long", ""
		}
		if floatErr == nil {
			return "double", ""
		}
	}
	// ES refuses to date-detect pure numbers.
	if p.m.dateDetection && longErr != nil && floatErr != nil {
		for _, spec := range p.m.dynamicDates {
			if _, ok := parseDate(text, spec); ok {
				if spec == "strict_date_optional_time" {
					return "date", ""
				}
				return "date", spec
			}
		}
	}
	return "string", ""
}

func (p *docParser) addDynamic(parent *fieldMap, name, full, detected, dateFmt string, depth, off int) (*fieldMap, *esError) {
	f, e := p.m.dynamicField(name, full, detected, dateFmt)
	if e != nil {
		return nil, p.failParse(off, "mapper_parsing_exception", e.Reason)
	}
	if f.runtime {
		parent.props[name] = f
		return f, nil
	}
	added := 1 + len(f.fields)
	if p.fieldCount+added > p.fieldLimit {
		return nil, p.failParse(off, "illegal_argument_exception",
			fmt.Sprintf("Limit of total fields [%d] has been exceeded while adding new fields [%d]", p.fieldLimit, p.addedFields+added))
	}
	if f.isObject() && depth+1 > p.depthLimit {
		return nil, p.failParse(off, "illegal_argument_exception",
			fmt.Sprintf("Limit of mapping depth [%d] has been exceeded due to object field [%s]", p.depthLimit, full))
	}
	p.fieldCount += added
	p.addedFields += added
	parent.props[name] = f
	return f, nil
}

// objectTypes take JSON objects as a leaf value.
var objectTypes = []string{"geo_point", "geo_shape", "point", "shape", "integer_range", "long_range", "float_range",
	"double_range", "date_range", "ip_range", "sparse_vector", "rank_features", "histogram",
	"aggregate_metric_double", "percolator", "join", "runtime", "semantic_text", "passthrough"}

func (p *docParser) parseValue(f *fieldMap, full, name, dyn string, depth int, val *jnode) *esError {
	if val.kind == jNull || f.runtime {
		return nil
	}
	if f.isObject() {
		switch val.kind {
		case jObj:
			if !f.enabled {
				return nil
			}
			return p.parseObject(val, f, full, f.dynamicOr(dyn), depth)
		case jArr:
			for _, e := range val.elems {
				if err := p.parseValue(f, full, name, dyn, depth, e); err != nil {
					return err
				}
			}
			return nil
		}
		if !f.enabled {
			return nil
		}
		return p.fail(val.pos, "object mapping for [%s] tried to parse field [%s] as object, but found a concrete value", full, name)
	}
	if val.kind == jArr {
		for _, e := range val.elems {
			if err := p.parseValue(f, full, name, dyn, depth, e); err != nil {
				return err
			}
		}
		return nil
	}
	if f.typ == "flattened" {
		if val.kind != jObj {
			return p.failFieldValue(f, full, val, "parsing_exception",
				"Failed to parse object: expecting token of type [START_OBJECT] but found ["+val.tokenName()+"]")
		}
		limit := f.intParam("depth_limit", 20)
		if deep := tooDeep(val, 1, limit); deep != nil {
			return p.failFieldValue(f, full, deep, "illegal_argument_exception",
				fmt.Sprintf("The provided [flattened] field [%s] exceeds the maximum depth limit of [%d].", full, limit))
		}
		if msg := immenseKeyed(val, "", f.intParam("ignore_above", math.MaxInt32)); msg != "" {
			return p.failFieldValue(f, full, val, "illegal_argument_exception",
				fmt.Sprintf("Flattened field [%s] contains one immense field whose keyed encoding is longer than the allowed max length of %d bytes. %s", full, maxTermBytes, msg))
		}
		return nil
	}
	if val.kind == jObj {
		if slices.Contains(objectTypes, f.typ) || !slices.Contains(knownTypes, f.typ) {
			return nil
		}
		if isNumericType(f.typ) {
			return p.failFieldValue(f, full, val, "x_content_parse_exception",
				"Current token (START_OBJECT) not numeric, can not use numeric value accessors")
		}
		return p.failFieldValue(f, full, val, "illegal_state_exception",
			"Can't get text on a START_OBJECT at "+strings.Trim(p.location(val.pos), "[]"))
	}
	if ct, cr := checkScalar(f, val); ct != "" {
		if f.boolParam("ignore_malformed", false) {
			return nil
		}
		return p.failFieldValue(f, full, val, ct, cr)
	}
	for sub, sf := range f.fields {
		if ct, cr := checkScalar(sf, val); ct != "" && !sf.boolParam("ignore_malformed", false) {
			return p.failFieldValue(sf, full+"."+sub, val, ct, cr)
		}
	}
	return nil
}

// maxTermBytes is Lucene's IndexWriter.MAX_TERM_LENGTH.
const maxTermBytes = 32766

// immenseKeyed finds a leaf of a flattened value whose keyed term (its
// dotted key, a NUL, its text) is longer than Lucene takes, as
// FlattenedFieldParser refuses it; a leaf longer than ignoreAbove (in UTF-16
// units, as Java counts) is not indexed and so not checked. It returns ""
// or the rest of Elasticsearch's message.
func immenseKeyed(v *jnode, path string, ignoreAbove int) string {
	switch v.kind {
	case jObj:
		for i, k := range v.keys {
			if msg := immenseKeyed(v.elems[i], joinPath(path, k), ignoreAbove); msg != "" {
				return msg
			}
		}
	case jArr:
		for _, e := range v.elems {
			if msg := immenseKeyed(e, path, ignoreAbove); msg != "" {
				return msg
			}
		}
	case jNull:
	default:
		if utf16Len(v.text) > ignoreAbove {
			return ""
		}
		if len(path)+1+len(v.text) > maxTermBytes {
			start := path
			for i := range start {
				if i > 50 {
					start = start[:i]
					break
				}
			}
			return fmt.Sprintf("Key length: %d, value length: %d for key starting with [%s]", utf16Len(path), utf16Len(v.text), start)
		}
	}
	return ""
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n++
		if r > 0xFFFF {
			n++
		}
	}
	return n
}

// tooDeep finds the first object nested deeper than limit inside a
// flattened value whose root object is at depth 1.
func tooDeep(v *jnode, depth, limit int) *jnode {
	var walk func(n *jnode, d int) *jnode
	walk = func(n *jnode, d int) *jnode {
		for _, e := range n.elems {
			switch e.kind {
			case jObj:
				if d+1 > limit {
					return e
				}
				if r := walk(e, d+1); r != nil {
					return r
				}
			case jArr:
				if r := walk(e, d); r != nil {
					return r
				}
			}
		}
		return nil
	}
	return walk(v, depth)
}

func isNumericType(t string) bool {
	switch t {
	case "long", "integer", "short", "byte", "unsigned_long", "double", "float", "half_float", "scaled_float":
		return true
	}
	return false
}

var intRanges = map[string][2]*big.Int{
	"long":          {big.NewInt(math.MinInt64), big.NewInt(math.MaxInt64)},
	"integer":       {big.NewInt(math.MinInt32), big.NewInt(math.MaxInt32)},
	"short":         {big.NewInt(math.MinInt16), big.NewInt(math.MaxInt16)},
	"byte":          {big.NewInt(math.MinInt8), big.NewInt(math.MaxInt8)},
	"unsigned_long": {big.NewInt(0), new(big.Int).SetUint64(math.MaxUint64)},
}

var rangeNames = map[string]string{"long": "a long", "integer": "an integer", "short": "a short", "byte": "a byte", "unsigned_long": "unsigned long"}

// checkScalar checks a scalar against a leaf type; it returns the type and
// reason of the cause when the value does not fit.
func checkScalar(f *fieldMap, v *jnode) (causeType, causeReason string) {
	switch f.typ {
	case "long", "integer", "short", "byte", "unsigned_long":
		return checkInteger(f, v)
	case "double", "float", "half_float", "scaled_float":
		return checkFloat(f, v)
	case "boolean":
		switch {
		case v.kind == jBool:
			return "", ""
		case v.kind == jStr && (v.text == "true" || v.text == "false" || v.text == ""):
			return "", ""
		}
		return "illegal_argument_exception", fmt.Sprintf("Failed to parse value [%s] as only [true] or [false] are allowed.", v.text)
	case "date", "date_nanos":
		if v.kind == jNum && !isIntegerLiteral(v.text) && strings.ContainsAny(v.text, "eE") {
			return "illegal_argument_exception", fmt.Sprintf("failed to parse date field [%s] with format [%s]", v.text, f.dateFormat())
		}
		t, ok := parseDate(v.text, f.dateFormat())
		if !ok {
			return "illegal_argument_exception", fmt.Sprintf("failed to parse date field [%s] with format [%s]", v.text, f.dateFormat())
		}
		if f.typ == "date_nanos" && !t.IsZero() && (t.Before(time.Unix(0, 0)) || t.Year() > 2262) {
			return "illegal_argument_exception", fmt.Sprintf("date[%s] is before the epoch in 1970 and cannot be stored in nanosecond resolution", t.Format(time.RFC3339Nano))
		}
	case "ip":
		if v.kind != jStr {
			return "illegal_argument_exception", fmt.Sprintf("'%s' is not an IP string literal.", v.text)
		}
		if _, err := netip.ParseAddr(v.text); err != nil {
			return "illegal_argument_exception", fmt.Sprintf("'%s' is not an IP string literal.", v.text)
		}
	}
	return "", ""
}

func checkInteger(f *fieldMap, v *jnode) (string, string) {
	coerce := f.boolParam("coerce", true)
	switch v.kind {
	case jBool:
		return "x_content_parse_exception", fmt.Sprintf("Current token (%s) not numeric, can not use numeric value accessors", v.tokenName())
	case jStr:
		if v.text == "" {
			return "", "" // empty strings count as null for numbers
		}
		if !coerce {
			return "illegal_argument_exception", fmt.Sprintf("[%s] cannot be coerced", v.text)
		}
	}
	text := v.text
	var n *big.Int
	if bi, ok := new(big.Int).SetString(text, 10); ok {
		n = bi
	} else {
		fl, ok := new(big.Float).SetString(strings.TrimSpace(text))
		if !ok || fl.IsInf() {
			return "illegal_argument_exception", fmt.Sprintf("For input string: \"%s\"", text)
		}
		if !coerce && !fl.IsInt() {
			return "illegal_argument_exception", fmt.Sprintf("Value [%s] has a decimal part", text)
		}
		n, _ = fl.Int(nil)
	}
	r := intRanges[f.typ]
	if n.Cmp(r[0]) < 0 || n.Cmp(r[1]) > 0 {
		return "illegal_argument_exception", fmt.Sprintf("Value [%s] is out of range for %s", text, rangeNames[f.typ])
	}
	return "", ""
}

func checkFloat(f *fieldMap, v *jnode) (string, string) {
	switch v.kind {
	case jBool:
		return "x_content_parse_exception", fmt.Sprintf("Current token (%s) not numeric, can not use numeric value accessors", v.tokenName())
	case jStr:
		if v.text == "" {
			return "", ""
		}
		if !f.boolParam("coerce", true) {
			return "illegal_argument_exception", fmt.Sprintf("[%s] cannot be coerced", v.text)
		}
	}
	x, err := strconv.ParseFloat(strings.TrimSpace(v.text), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return "illegal_argument_exception", fmt.Sprintf("For input string: \"%s\"", v.text)
	}
	limit := math.MaxFloat64
	switch f.typ {
	case "float":
		limit = math.MaxFloat32
	case "half_float":
		limit = 65504
	}
	if math.IsNaN(x) || math.IsInf(x, 0) || math.Abs(x) > limit {
		shown := "Infinity"
		if math.IsNaN(x) {
			shown = "NaN"
		} else if x < 0 {
			shown = "-Infinity"
		}
		return "illegal_argument_exception", fmt.Sprintf("[%s] supports only finite values, but got [%s]", f.typ, shown)
	}
	return "", ""
}

// checkTimestamp is the data stream rule: exactly one @timestamp value.
func (p *docParser) checkTimestamp(root *jnode) *esError {
	var values []*jnode
	for i, k := range root.keys {
		if k != "@timestamp" {
			continue
		}
		var collect func(n *jnode)
		collect = func(n *jnode) {
			switch n.kind {
			case jNull:
			case jArr:
				for _, e := range n.elems {
					collect(e)
				}
			default:
				values = append(values, n)
			}
		}
		collect(root.elems[i])
	}
	switch {
	case len(values) == 0:
		return p.failParse(root.end, "illegal_argument_exception", "data stream timestamp field [@timestamp] is missing")
	case len(values) > 1:
		return p.failParse(root.end, "illegal_argument_exception", "data stream timestamp field [@timestamp] encountered multiple values")
	}
	return nil
}
