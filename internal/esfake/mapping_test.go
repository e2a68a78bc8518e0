package esfake

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// step is one document written with create into a case's own data stream.
type step struct {
	doc        string
	wantStatus int
	wantType   string
	wantReason string // substring of the reason or its causes
}

const ts = `"@timestamp":"2024-05-01T10:00:00Z"`

func TestMappingRulesDecideItemStatus(t *testing.T) {
	e := setup(t)
	_, dsName := e.withTemplate()
	cases := []struct {
		name  string
		steps []step
	}{
		{"date field must parse", []step{
			{`{` + ts + `,"event":{"created":"yesterday"}}`, 400, "document_parsing_exception",
				"failed to parse field [event.created] of type [date] in document with id"},
			{`{` + ts + `,"event":{"created":"2024-05-01T09:59:59.123+02:00"}}`, 201, "", ""},
		}},
		{"@timestamp must be a date", []step{
			{`{"@timestamp":"01/05/2024"}`, 400, "document_parsing_exception", "failed to parse field [@timestamp] of type [date]"},
		}},
		{"epoch millis and date-only strings are dates", []step{
			{`{"@timestamp":1714557600000}`, 201, "", ""},
			{`{"@timestamp":"2024-05-01"}`, 201, "", ""},
		}},
		{"keyword refuses an object", []step{
			{`{` + ts + `,"event":{"kind":{"a":1}}}`, 400, "document_parsing_exception", "failed to parse field [event.kind] of type [keyword]"},
		}},
		{"keyword takes strings, numbers and booleans", []step{
			{`{` + ts + `,"event":{"id":12,"kind":true}}`, 201, "", ""},
			{`{` + ts + `,"event":{"id":["a","b"],"kind":"event"}}`, 201, "", ""},
		}},
		{"flattened takes objects up to depth_limit 20", []step{
			{`{` + ts + `,"payload":` + nested(20) + `}`, 201, "", ""},
			{`{` + ts + `,"payload":{"x":[1,"two",{"y":true}],"z":null}}`, 201, "", ""},
		}},
		{"flattened refuses nesting beyond depth_limit", []step{
			{`{` + ts + `,"payload":` + nested(21) + `}`, 400, "document_parsing_exception", "maximum depth limit of [20]"},
		}},
		{"flattened refuses a keyed term over 32766 bytes", []step{
			{`{` + ts + `,"payload":{"k":"` + strings.Repeat("v", 32764) + `"}}`, 201, "", ""},
			{`{` + ts + `,"payload":{"k":"` + strings.Repeat("v", 32765) + `"}}`, 400, "document_parsing_exception", "immense field whose keyed encoding is longer than the allowed max length of 32766 bytes"},
			{`{` + ts + `,"payload":{"` + strings.Repeat("k", 32766) + `":1}}`, 400, "document_parsing_exception", "immense field"},
			{`{` + ts + `,"payload":{"a":{"b":"` + strings.Repeat("é", 16382) + `"}}}`, 400, "document_parsing_exception", "immense field"},
		}},
		{"flattened ignore_above leaves long values unindexed", []step{
			{`{` + ts + `,"capped":{"k":"` + strings.Repeat("v", 40000) + `"}}`, 201, "", ""},
			{`{` + ts + `,"capped":{"k":"` + strings.Repeat("v", 10) + `"}}`, 201, "", ""},
			{`{` + ts + `,"capped":{"` + strings.Repeat("k", 32766) + `":1}}`, 400, "document_parsing_exception", "immense field"},
		}},
		{"dynamic long then a non-numeric string", []step{
			{`{` + ts + `,"count_x":5}`, 201, "", ""},
			{`{` + ts + `,"count_x":"12"}`, 201, "", ""},
			{`{` + ts + `,"count_x":"five"}`, 400, "document_parsing_exception", "failed to parse field [count_x] of type [long]"},
		}},
		{"dynamic float then a boolean", []step{
			{`{` + ts + `,"ratio_x":0.5}`, 201, "", ""},
			{`{` + ts + `,"ratio_x":true}`, 400, "document_parsing_exception", "failed to parse field [ratio_x] of type [float]"},
		}},
		{"dynamic template maps strings to keyword", []step{
			{`{` + ts + `,"tag_x":"abc"}`, 201, "", ""},
			{`{` + ts + `,"tag_x":42}`, 201, "", ""},
			{`{` + ts + `,"tag_x":{"nested":1}}`, 400, "document_parsing_exception", "failed to parse field [tag_x] of type [keyword]"},
		}},
		{"date detection maps date-like strings to date", []step{
			{`{` + ts + `,"seen_x":"2024-05-01T10:00:00Z"}`, 201, "", ""},
			{`{` + ts + `,"seen_x":"not a date"}`, 400, "document_parsing_exception", "failed to parse field [seen_x] of type [date]"},
		}},
		{"numeric strings are not date-detected", []step{
			{`{` + ts + `,"code_x":"2024"}`, 201, "", ""},
			{`{` + ts + `,"code_x":"abc"}`, 201, "", ""},
		}},
		{"dynamic object then a concrete value", []step{
			{`{` + ts + `,"obj_x":{"a":1}}`, 201, "", ""},
			{`{` + ts + `,"obj_x":"flat"}`, 400, "document_parsing_exception", "object mapping for [obj_x] tried to parse field [obj_x] as object, but found a concrete value"},
		}},
		{"an array takes its first element's type", []step{
			{`{` + ts + `,"arr_x":[1,"two"]}`, 400, "document_parsing_exception", "failed to parse field [arr_x] of type [long]"},
		}},
		{"dotted field names are objects", []step{
			{`{` + ts + `,"event.kind":"alert","dot_x.inner":1}`, 201, "", ""},
			{`{` + ts + `,"dot_x":{"inner":"no"}}`, 400, "document_parsing_exception", "failed to parse field [dot_x.inner] of type [long]"},
		}},
		{"a failed document adds no mapping", []step{
			{`{` + ts + `,"fresh_x":"word","event":{"created":"bad"}}`, 400, "document_parsing_exception", "event.created"},
			{`{` + ts + `,"fresh_x":7}`, 201, "", ""},
			{`{` + ts + `,"fresh_x":"word"}`, 400, "document_parsing_exception", "failed to parse field [fresh_x] of type [long]"},
		}},
		{"metadata fields are refused in the source", []step{
			{`{` + ts + `,"_id":"x"}`, 400, "document_parsing_exception", "Field [_id] is a metadata field"},
		}},
		{"a source that is not JSON", []step{
			{`{` + ts + `,"broken":}`, 400, "document_parsing_exception", ""},
		}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ds := dsName(fmt.Sprintf("case%d", i))
			for j, s := range c.steps {
				r := e.bulk(action("create", ds, fmt.Sprintf("d%d", j)), s.doc)
				_, it := r.item(0)
				if it.Status != s.wantStatus {
					t.Fatalf("step %d %s: status %d, want %d (error %+v)", j, s.doc, it.Status, s.wantStatus, it.Error)
				}
				if s.wantType == "" {
					if it.Error != nil || it.Result != "created" {
						t.Errorf("step %d: %+v", j, it)
					}
					continue
				}
				if it.Error == nil || it.Error.Type != s.wantType || !strings.Contains(it.Error.text(), s.wantReason) {
					t.Errorf("step %d: error %+v, want %s containing %q", j, it.Error, s.wantType, s.wantReason)
				}
				if r.Errors != true {
					t.Errorf("step %d: errors flag false", j)
				}
			}
		})
	}
}

func TestPlainIndexDynamicMapping(t *testing.T) {
	e := setup(t)
	idx := e.plainIndex("dynamic")
	r := e.bulk(
		action("index", idx, "1"), `{"name":"Alice Smith","n":1,"when":"2024-05-01T10:00:00Z","ok":true}`,
		action("index", idx, "2"), `{"name":7,"n":"x"}`,
		action("index", idx, "3"), `{"ok":"maybe"}`,
		action("index", idx, "4"), `{"when":12}`,
	)
	want := []int{201, 400, 400, 201}
	for i, w := range want {
		if _, it := r.item(i); it.Status != w {
			t.Errorf("item %d: status %d, want %d (%+v)", i, it.Status, w, it.Error)
		}
	}
	if _, it := r.item(1); it.Error == nil || !strings.Contains(it.Error.Reason, "[n] of type [long]") {
		t.Errorf("item 1 error %+v", it.Error)
	}
	if _, it := r.item(2); it.Error == nil || !strings.Contains(it.Error.Reason, "[ok] of type [boolean]") {
		t.Errorf("item 2 error %+v", it.Error)
	}
}

func TestStrictDateOptionalTime(t *testing.T) {
	cases := []struct {
		in   string
		want string // RFC 3339 in UTC, "" when refused
	}{
		{"2024-05-01T10:00:00Z", "2024-05-01T10:00:00Z"},
		{"2024-05-01T10:00:00.123456789+02:00", "2024-05-01T08:00:00.123456789Z"},
		{"2024-05-01T10:00:00,5-0130", "2024-05-01T11:30:00.5Z"},
		{"2024-05-01T10:00", "2024-05-01T10:00:00Z"},
		{"2024-05-01", "2024-05-01T00:00:00Z"},
		{"2024-05", "2024-05-01T00:00:00Z"},
		{"2024", "2024-01-01T00:00:00Z"},
		{"2024-02-30", ""},
		{"2024-5-1", ""},
		{"2024-05-01 10:00:00", ""},
		{"24-05-01", ""},
		{"2024-05-01T25:00:00Z", ""},
		{"yesterday", ""},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, ok := parseDate(c.in, "strict_date_optional_time")
			if c.want == "" {
				if ok {
					t.Errorf("accepted as %v", got)
				}
				return
			}
			if !ok || got.Format(time.RFC3339Nano) != c.want {
				t.Errorf("got %v %v, want %s", got.Format(time.RFC3339Nano), ok, c.want)
			}
		})
	}
	if got, ok := parseDate("1714557600000", defaultDateFormat); !ok || got.Unix() != 1714557600 {
		t.Errorf("epoch millis: %v %v", got, ok)
	}
	if _, ok := parseDate("2015/09/02", "yyyy/MM/dd HH:mm:ss Z||yyyy/MM/dd Z"); !ok {
		t.Error("the default dynamic date formats refuse 2015/09/02")
	}
}

func TestGlobs(t *testing.T) {
	match := []struct {
		p, s string
		want bool
	}{
		{"events-*", "events-app", true},
		{"events-*", "events", false},
		{"logs-*-*", "logs-app-default", true},
		{"logs-*-*", "logs-app", false},
		{"*", "anything", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
	}
	for _, c := range match {
		if got := globMatch(c.p, c.s); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v", c.p, c.s, got)
		}
	}
	overlap := []struct {
		a, b string
		want bool
	}{
		{"events-*", "events-app-*", true},
		{"events-*", "logs-*-*", false},
		{"*-x", "a-*", true},
		{"abc", "abd", false},
		{"a*", "*b", true},
	}
	for _, c := range overlap {
		if got := globsOverlap(c.a, c.b); got != c.want {
			t.Errorf("globsOverlap(%q, %q) = %v", c.a, c.b, got)
		}
	}
}
