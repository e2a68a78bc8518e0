package api

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"eventlistener/event"
)

var testNow = time.Date(2025, 1, 2, 3, 4, 5, 600, time.UTC)

const testSource = "test-key"

// hdr builds a header from name/value pairs; names are canonicalized.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func testOptions() DecodeOptions {
	return DecodeOptions{MaxBytes: 1 << 20, Now: testNow, DefaultSource: testSource}
}

// ev is an expected event; an empty ID means "a generated UUIDv7", a zero
// Time means testNow.
type ev struct {
	ID, Type, Source, Subject string
	Time                      time.Time
	Data                      string // "" means nil
}

var fullObject = `{"id":"e1","type":"order.created","source":"/shop","subject":"o-1","time":"2024-05-06T07:08:09.123456789Z","data":{"a": [1, 2.5e3, "x"] , "b":null}}`

var fullEvent = ev{ID: "e1", Type: "order.created", Source: "/shop", Subject: "o-1",
	Time: time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC), Data: `{"a": [1, 2.5e3, "x"] , "b":null}`}

const ceObject = `{"specversion":"1.0","type":"com.example.someevent","source":"/mycontext","id":"C234-1234-1234","time":"2018-04-05T17:31:00Z","datacontenttype":"application/json","data":{"appinfoA":"abc"}}`

var ceEvent = ev{ID: "C234-1234-1234", Type: "com.example.someevent", Source: "/mycontext",
	Time: time.Date(2018, 4, 5, 17, 31, 0, 0, time.UTC), Data: `{"appinfoA":"abc"}`}

func checkEvents(t *testing.T, got []event.Event, want []ev) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if w.ID == "" {
			u, err := uuid.Parse(g.ID)
			if err != nil || u.Version() != 7 || g.ID != u.String() {
				t.Errorf("event %d: id %q is not a generated UUIDv7 (%v)", i, g.ID, err)
			}
		} else if g.ID != w.ID {
			t.Errorf("event %d: id %q, want %q", i, g.ID, w.ID)
		}
		if g.Type != w.Type {
			t.Errorf("event %d: type %q, want %q", i, g.Type, w.Type)
		}
		if g.Source != w.Source {
			t.Errorf("event %d: source %q, want %q", i, g.Source, w.Source)
		}
		if g.Subject != w.Subject {
			t.Errorf("event %d: subject %q, want %q", i, g.Subject, w.Subject)
		}
		wt := w.Time
		if wt.IsZero() {
			wt = testNow
		}
		if !g.Time.Equal(wt) {
			t.Errorf("event %d: time %v, want %v", i, g.Time, wt)
		}
		if !g.ReceivedAt.Equal(testNow) {
			t.Errorf("event %d: received_at %v, want %v", i, g.ReceivedAt, testNow)
		}
		switch {
		case w.Data == "" && g.Data != nil:
			t.Errorf("event %d: data %q, want none", i, g.Data)
		case w.Data != "" && string(g.Data) != w.Data:
			t.Errorf("event %d: data %q, want %q", i, g.Data, w.Data)
		}
		if g.Data != nil {
			if !json.Valid(g.Data) {
				t.Errorf("event %d: data %q is not valid JSON", i, g.Data)
			}
			if cap(g.Data) != len(g.Data) {
				t.Errorf("event %d: data has spare capacity %d; appending would overwrite another event", i, cap(g.Data)-len(g.Data))
			}
		}
	}
}

func TestDecode(t *testing.T) {
	id255 := strings.Repeat("i", event.MaxIDLength)
	tests := []struct {
		name   string
		header http.Header
		body   string
		max    int64 // 0: 1 MiB
		want   []ev
	}{
		// Plain JSON.
		{name: "json object", header: hdr("Content-Type", "application/json"), body: fullObject, want: []ev{fullEvent}},
		{name: "json charset", header: hdr("Content-Type", "application/json; charset=utf-8"), body: fullObject, want: []ev{fullEvent}},
		{name: "json charset upper case quoted", header: hdr("Content-Type", `Application/JSON; Charset="UTF-8"`), body: fullObject, want: []ev{fullEvent}},
		{name: "no content type", header: hdr(), body: fullObject, want: []ev{fullEvent}},
		{name: "json identity encoding", header: hdr("Content-Type", "application/json", "Content-Encoding", "identity"), body: fullObject, want: []ev{fullEvent}},
		{name: "json minimal", header: hdr(), body: `{"type":"t"}`, want: []ev{{Type: "t", Source: testSource}}},
		{name: "json whitespace and BOM", header: hdr(), body: "\xEF\xBB\xBF \r\n\t{ \"type\" : \"t\" ,\n\"source\":\"s\" }\n ", want: []ev{{Type: "t", Source: "s"}}},
		{name: "json array", header: hdr(), body: `[` + fullObject + `, {"type":"b","source":""}]`, want: []ev{fullEvent, {Type: "b", Source: testSource}}},
		{name: "json empty array", header: hdr(), body: ` [ ] `, want: []ev{}},
		{name: "json nulls are absent", header: hdr(),
			body: `{"id":null,"type":"t","source":null,"subject":null,"time":null,"data":null,"data_base64":null,"specversion":null}`,
			want: []ev{{Type: "t", Source: testSource}}},
		{name: "json data null with data_base64", header: hdr(), body: `{"type":"t","data":null,"data_base64":"aGk="}`,
			want: []ev{{Type: "t", Source: testSource, Data: `"aGk="`}}},
		{name: "json data_base64", header: hdr(), body: `{"type":"t","data_base64":"aGVsbG8\/AA=="}`,
			want: []ev{{Type: "t", Source: testSource, Data: `"aGVsbG8/AA=="`}}},
		{name: "json data_base64 empty", header: hdr(), body: `{"type":"t","data_base64":""}`,
			want: []ev{{Type: "t", Source: testSource, Data: `""`}}},
		{name: "json data kept byte for byte", header: hdr(),
			body: `{"type":"t","data":  [ 1.0, -0, 1e300, 1E-2, "\u00e9\/\n", true, false, null, {}, [] ]  }`,
			want: []ev{{Type: "t", Source: testSource, Data: `[ 1.0, -0, 1e300, 1E-2, "\u00e9\/\n", true, false, null, {}, [] ]`}}},
		{name: "json data scalar", header: hdr(), body: `{"type":"t","data":"x"}`, want: []ev{{Type: "t", Source: testSource, Data: `"x"`}}},
		{name: "json string escapes", header: hdr(),
			body: `{"type":"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00€","source":"ü"}`,
			want: []ev{{Type: "a\"b\\c/d\b\f\n\r\té😀€", Source: "ü"}}},
		{name: "json escaped field name", header: hdr(), body: `{"\u0074ype":"t"}`, want: []ev{{Type: "t", Source: testSource}}},
		{name: "json time with offset", header: hdr(), body: `{"type":"t","time":"2024-02-29T23:59:59.5+02:00"}`,
			want: []ev{{Type: "t", Source: testSource, Time: time.Date(2024, 2, 29, 21, 59, 59, 500000000, time.UTC)}}},
		{name: "json specversion 1.0", header: hdr(), body: `{"type":"t","specversion":"1.0"}`, want: []ev{{Type: "t", Source: testSource}}},
		{name: "json dropped attributes", header: hdr(),
			body: `{"type":"t","datacontenttype":"text/plain","dataschema":"http://x","ext":{"deep":[1,{"x":null}]},"Type":5,"received_at":"x"}`,
			want: []ev{{Type: "t", Source: testSource}}},
		{name: "json id of 255 bytes", header: hdr(), body: `{"id":"` + id255 + `","type":"t"}`, want: []ev{{ID: id255, Type: "t", Source: testSource}}},
		{name: "json deep data at the limit", header: hdr(),
			body: `{"type":"t","data":` + strings.Repeat("[", event.MaxDataDepth) + strings.Repeat("]", event.MaxDataDepth) + `}`,
			want: []ev{{Type: "t", Source: testSource, Data: strings.Repeat("[", event.MaxDataDepth) + strings.Repeat("]", event.MaxDataDepth)}}},

		// NDJSON.
		{name: "ndjson", header: hdr("Content-Type", "application/x-ndjson"),
			body: fullObject + "\n\n{\"type\":\"b\"}\r\n  \r\n{\"type\":\"c\",\"id\":\"x\"}\n",
			want: []ev{fullEvent, {Type: "b", Source: testSource}, {ID: "x", Type: "c", Source: testSource}}},
		{name: "ndjson no trailing newline", header: hdr("Content-Type", "application/x-ndjson"), body: `{"type":"a"}` + "\n" + `{"type":"b"}`,
			want: []ev{{Type: "a", Source: testSource}, {Type: "b", Source: testSource}}},
		{name: "ndjson charset", header: hdr("Content-Type", "application/x-ndjson; charset=utf-8"), body: fullObject, want: []ev{fullEvent}},
		{name: "application/ndjson", header: hdr("Content-Type", "application/ndjson"), body: fullObject, want: []ev{fullEvent}},
		{name: "application/jsonl", header: hdr("Content-Type", "application/jsonl"), body: fullObject + "\n", want: []ev{fullEvent}},
		{name: "ndjson empty", header: hdr("Content-Type", "application/x-ndjson"), body: "\n\r\n", want: []ev{}},

		// Structured and batched CloudEvents.
		{name: "structured", header: hdr("Content-Type", "application/cloudevents+json"), body: ceObject, want: []ev{ceEvent}},
		{name: "structured charset", header: hdr("Content-Type", "application/cloudevents+json; charset=utf-8"), body: ceObject, want: []ev{ceEvent}},
		{name: "structured data_base64", header: hdr("Content-Type", "application/cloudevents+json"),
			body: `{"specversion":"1.0","type":"t","source":"s","id":"1","datacontenttype":"image/png","data_base64":"iVBORw0KGgo="}`,
			want: []ev{{ID: "1", Type: "t", Source: "s", Data: `"iVBORw0KGgo="`}}},
		{name: "batch", header: hdr("Content-Type", "application/cloudevents-batch+json"), body: "[" + ceObject + "," + ceObject + "]", want: []ev{ceEvent, ceEvent}},
		{name: "batch charset", header: hdr("Content-Type", "application/cloudevents-batch+json; charset=UTF-8"), body: "[" + ceObject + "]", want: []ev{ceEvent}},
		{name: "batch empty", header: hdr("Content-Type", "application/cloudevents-batch+json"), body: "[]", want: []ev{}},

		// Binary mode.
		{name: "binary json", header: hdr("Content-Type", "application/json", "Ce-Specversion", "1.0", "Ce-Id", "b1", "Ce-Type", "t", "Ce-Source", "/s",
			"Ce-Subject", "sub", "Ce-Time", "2020-01-02T03:04:05Z", "Ce-Datacontenttype", "ignored", "Ce-Myext", "x"),
			body: " {\"k\": [1, 2]}\n", want: []ev{{ID: "b1", Type: "t", Source: "/s", Subject: "sub", Time: time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC), Data: `{"k": [1, 2]}`}}},
		{name: "binary no content type", header: hdr("Ce-Specversion", "1.0", "Ce-Id", "b1", "Ce-Type", "t", "Ce-Source", "/s"),
			body: `42`, want: []ev{{ID: "b1", Type: "t", Source: "/s", Data: `42`}}},
		{name: "binary +json", header: hdr("Content-Type", "application/vnd.x+json; charset=utf-8", "Ce-Specversion", "1.0", "Ce-Id", "b1", "Ce-Type", "t", "Ce-Source", "/s"),
			body: `"hi"`, want: []ev{{ID: "b1", Type: "t", Source: "/s", Data: `"hi"`}}},
		{name: "binary text/json empty body", header: hdr("Content-Type", "text/json", "Ce-Specversion", "1.0", "Ce-Id", "b1", "Ce-Type", "t", "Ce-Source", "/s"),
			body: ``, want: []ev{{ID: "b1", Type: "t", Source: "/s"}}},
		{name: "binary json null body", header: hdr("Content-Type", "application/json", "Ce-Specversion", "1.0", "Ce-Id", "b1", "Ce-Type", "t", "Ce-Source", "/s"),
			body: `null`, want: []ev{{ID: "b1", Type: "t", Source: "/s"}}},
		{name: "binary text", header: hdr("Content-Type", "text/plain; charset=iso-8859-1", "Ce-Specversion", "1.0", "Ce-Id", "b1", "Ce-Type", "t", "Ce-Source", "/s"),
			body: "say \"hi\"\\\n\t\x01é", want: []ev{{ID: "b1", Type: "t", Source: "/s", Data: `"say \"hi\"\\\n\t\u0001é"`}}},
		{name: "binary ndjson content type is data", header: hdr("Content-Type", "application/x-ndjson", "Ce-Specversion", "1.0", "Ce-Id", "b1", "Ce-Type", "t", "Ce-Source", "/s"),
			body: "{}\n{}\n", want: []ev{{ID: "b1", Type: "t", Source: "/s", Data: `"{}\n{}\n"`}}},
		{name: "binary bytes", header: hdr("Content-Type", "application/octet-stream", "Ce-Specversion", "1.0", "Ce-Id", "b1", "Ce-Type", "t", "Ce-Source", "/s"),
			body: "\xff\x00\x01", want: []ev{{ID: "b1", Type: "t", Source: "/s", Data: `"/wAB"`}}},
		{name: "binary text with NUL is bytes", header: hdr("Content-Type", "text/plain", "Ce-Specversion", "1.0", "Ce-Id", "b1", "Ce-Type", "t", "Ce-Source", "/s"),
			body: "a\x00", want: []ev{{ID: "b1", Type: "t", Source: "/s", Data: `"YQA="`}}},
		{name: "binary text empty body", header: hdr("Content-Type", "text/plain", "Ce-Specversion", "1.0", "Ce-Id", "b1", "Ce-Type", "t", "Ce-Source", "/s"),
			body: "", want: []ev{{ID: "b1", Type: "t", Source: "/s"}}},
		{name: "binary percent-encoded", header: hdr("Content-Type", "application/json", "Ce-Specversion", "1.0", "Ce-Id", "a%20b", "Ce-Type", "t%22%25+", "Ce-Source", "/s%C3%A9"),
			body: `{}`, want: []ev{{ID: "a b", Type: `t"%+`, Source: "/sé", Data: `{}`}}},

		// Size.
		{name: "exactly MaxBytes", header: hdr(), max: int64(len(`{"type":"t"}`)), body: `{"type":"t"}`, want: []ev{{Type: "t", Source: testSource}}},
	}
	for _, tc := range tests {
		for _, gz := range []bool{false, true} {
			name := tc.name
			if gz {
				name += " gzip"
			}
			t.Run(name, func(t *testing.T) {
				h := tc.header.Clone()
				body := []byte(tc.body)
				if gz {
					h.Set("Content-Encoding", "gzip")
					body = gzipBytes(t, body)
				}
				opt := testOptions()
				if tc.max != 0 {
					opt.MaxBytes = tc.max
				}
				got, err := Decode(h, bytes.NewReader(body), opt)
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if got == nil {
					t.Fatal("Decode returned a nil slice")
				}
				checkEvents(t, got, tc.want)
			})
		}
	}
}

func TestDecodeXGzip(t *testing.T) {
	got, err := Decode(hdr("Content-Encoding", "x-gzip"), bytes.NewReader(gzipBytes(t, []byte(fullObject))), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	checkEvents(t, got, []ev{fullEvent})
}

// ce is a valid binary-mode header with kv set on it.
func ce(kv ...string) http.Header {
	h := hdr("Content-Type", "application/json", "Ce-Specversion", "1.0", "Ce-Id", "b1", "Ce-Type", "t", "Ce-Source", "/s")
	for i := 0; i < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func TestDecodeErrors(t *testing.T) {
	ndjson := hdr("Content-Type", "application/x-ndjson")
	structured := hdr("Content-Type", "application/cloudevents+json")
	batch := hdr("Content-Type", "application/cloudevents-batch+json")
	tests := []struct {
		name   string
		header http.Header
		body   string
		max    int64
		status int
		index  int
		want   []string // substrings of the message
	}{
		// 415.
		{name: "text/plain", header: hdr("Content-Type", "text/plain"), body: fullObject, status: 415, index: -1,
			want: []string{`"text/plain"`, "application/json", "application/x-ndjson", "application/cloudevents+json", "application/cloudevents-batch+json"}},
		{name: "bad content type", header: hdr("Content-Type", "/;;"), body: fullObject, status: 415, index: -1, want: []string{"Content-Type"}},
		{name: "cloudevents xml", header: hdr("Content-Type", "application/cloudevents+xml"), body: "<x/>", status: 415, index: -1, want: []string{"cloudevents+xml"}},
		{name: "cloudevents batch xml", header: hdr("Content-Type", "application/cloudevents-batch+xml"), body: "<x/>", status: 415, index: -1, want: []string{"cloudevents-batch+xml"}},
		{name: "latin1 charset", header: hdr("Content-Type", "application/json; charset=latin1"), body: fullObject, status: 415, index: -1, want: []string{"latin1", "UTF-8"}},
		{name: "brotli", header: hdr("Content-Encoding", "br"), body: fullObject, status: 415, index: -1, want: []string{`"br"`, "gzip"}},
		{name: "gzip twice", header: hdr("Content-Encoding", "gzip, gzip"), body: fullObject, status: 415, index: -1, want: []string{"gzip, gzip"}},

		// 413.
		{name: "MaxBytes+1", header: hdr(), max: int64(len(`{"type":"t"}`)) - 1, body: `{"type":"t"}`, status: 413, index: -1, want: []string{"larger than 11 bytes"}},

		// Body shape.
		{name: "empty body", header: hdr(), body: "", status: 400, index: -1, want: []string{"empty"}},
		{name: "only whitespace", header: hdr(), body: " \n", status: 400, index: -1, want: []string{"empty"}},
		{name: "string", header: hdr(), body: `"x"`, status: 400, index: -1, want: []string{"JSON object or an array", "got a string"}},
		{name: "number", header: hdr(), body: `5`, status: 400, index: -1, want: []string{"got a number"}},
		{name: "not JSON", header: hdr(), body: `x`, status: 400, index: -1, want: []string{"invalid JSON", "'x'"}},
		{name: "array of number", header: hdr(), body: `[1]`, status: 400, index: 0, want: []string{"event 0", "must be a JSON object, got a number"}},
		{name: "array second not object", header: hdr(), body: `[{"type":"a"},"b"]`, status: 400, index: 1, want: []string{"event 1", "got a string"}},
		{name: "array trailing comma", header: hdr(), body: `[{"type":"a"},]`, status: 400, index: -1, want: []string{"invalid JSON", "']'"}},
		{name: "array missing comma", header: hdr(), body: `[{"type":"a"} {"type":"b"}]`, status: 400, index: -1, want: []string{"after event 0"}},
		{name: "truncated object", header: hdr(), body: `{"type":"a"`, status: 400, index: 0, want: []string{"event 0", "unexpected end of input"}},
		{name: "truncated string", header: hdr(), body: `{"type":"a`, status: 400, index: 0, want: []string{"unexpected end of input"}},
		{name: "truncated array", header: hdr(), body: `[{"type":"a"},{"type":`, status: 400, index: 1, want: []string{"event 1", "unexpected end of input"}},
		{name: "truncated after element", header: hdr(), body: `[{"type":"a"}`, status: 400, index: -1, want: []string{"unexpected end of input"}},
		{name: "trailing data", header: hdr(), body: `{"type":"a"} {}`, status: 400, index: -1, want: []string{"unexpected data after the top-level value"}},
		{name: "structured array", header: structured, body: "[" + ceObject + "]", status: 400, index: -1, want: []string{"one JSON object", "cloudevents-batch+json", "got an array"}},
		{name: "batch object", header: batch, body: ceObject, status: 400, index: -1, want: []string{"JSON array", "got an object"}},
		{name: "batch empty body", header: batch, body: "", status: 400, index: -1, want: []string{"empty"}},

		// Fields.
		{name: "id of 256 bytes", header: hdr(), body: `{"id":"` + strings.Repeat("i", 256) + `","type":"t"}`, status: 400, index: 0, want: []string{`"id"`, "255", "256"}},
		{name: "empty id", header: hdr(), body: `[{"type":"t"},{"id":"","type":"t"}]`, status: 400, index: 1, want: []string{"event 1", `"id" must not be empty`}},
		{name: "missing type", header: hdr(), body: `{"id":"x"}`, status: 400, index: 0, want: []string{`"type" is required`}},
		{name: "null type", header: hdr(), body: `{"type":null}`, status: 400, index: 0, want: []string{`"type" is required`}},
		{name: "empty type", header: hdr(), body: `{"type":""}`, status: 400, index: 0, want: []string{`"type" must not be empty`}},
		{name: "type is a number", header: hdr(), body: `{"type":5}`, status: 400, index: 0, want: []string{`event 0: "type" must be a string, got a number`}},
		{name: "id is an object", header: hdr(), body: `{"type":"t","id":{}}`, status: 400, index: 0, want: []string{`"id" must be a string, got an object`}},
		{name: "subject is a boolean", header: hdr(), body: `{"type":"t","subject":true}`, status: 400, index: 0, want: []string{`"subject" must be a string, got a boolean`}},
		{name: "source is an array", header: hdr(), body: `{"type":"t","source":[]}`, status: 400, index: 0, want: []string{`"source" must be a string, got an array`}},
		{name: "bad time", header: hdr(), body: `[{"type":"t"},{"type":"t"},{"type":"t"},{"type":"t","time":"yesterday"}]`, status: 400, index: 3,
			want: []string{`event 3: "time" must be an RFC 3339 timestamp, got "yesterday"`}},
		{name: "time is a number", header: hdr(), body: `{"type":"t","time":1700000000}`, status: 400, index: 0, want: []string{`"time"`, "got a number"}},
		{name: "time out of range", header: hdr(), body: `{"type":"t","time":"2023-02-29T00:00:00Z"}`, status: 400, index: 0, want: []string{`"time"`, "2023-02-29"}},
		{name: "time without zone", header: hdr(), body: `{"type":"t","time":"2023-02-01T00:00:00"}`, status: 400, index: 0, want: []string{`"time"`}},
		{name: "data and data_base64", header: hdr(), body: `{"type":"t","data":1,"data_base64":"AA=="}`, status: 400, index: 0, want: []string{`"data" and "data_base64"`}},
		{name: "bad base64", header: hdr(), body: `{"type":"t","data_base64":"not base64!"}`, status: 400, index: 0, want: []string{`"data_base64"`, "base64"}},
		{name: "unpadded base64", header: hdr(), body: `{"type":"t","data_base64":"aGk"}`, status: 400, index: 0, want: []string{`"data_base64"`}},
		{name: "base64 with newline", header: hdr(), body: `{"type":"t","data_base64":"aGk=\naGk="}`, status: 400, index: 0, want: []string{`"data_base64"`}},
		{name: "base64 is a number", header: hdr(), body: `{"type":"t","data_base64":5}`, status: 400, index: 0, want: []string{`"data_base64" must be a base64 string`}},
		{name: "wrong specversion plain", header: hdr(), body: `{"type":"t","specversion":"0.3"}`, status: 400, index: 0, want: []string{`"specversion" must be "1.0", got "0.3"`}},
		{name: "specversion is a number", header: hdr(), body: `{"type":"t","specversion":1.0}`, status: 400, index: 0, want: []string{`"specversion"`, "got a number"}},
		{name: "duplicate field", header: hdr(), body: `{"type":"t","type":"u"}`, status: 400, index: 0, want: []string{`"type" is given twice`}},
		{name: "duplicate null field", header: hdr(), body: `{"id":null,"type":"t","id":"x"}`, status: 400, index: 0, want: []string{`"id" is given twice`}},
		{name: "bad data", header: hdr(), body: `{"type":"t","data":{"x":}}`, status: 400, index: 0, want: []string{"invalid JSON", "'}'"}},
		{name: "bad number leading zero", header: hdr(), body: `{"type":"t","data":01}`, status: 400, index: 0, want: []string{"invalid JSON"}},
		{name: "bad number dot", header: hdr(), body: `{"type":"t","data":1.}`, status: 400, index: 0, want: []string{"invalid JSON", "digit"}},
		{name: "bad number minus", header: hdr(), body: `{"type":"t","data":-}`, status: 400, index: 0, want: []string{"invalid JSON", "digit"}},
		{name: "bad number exponent", header: hdr(), body: `{"type":"t","data":1e}`, status: 400, index: 0, want: []string{"invalid JSON", "digit"}},
		{name: "bad literal", header: hdr(), body: `{"type":"t","data":tru}`, status: 400, index: 0, want: []string{"invalid JSON", "literal true"}},
		{name: "single quotes", header: hdr(), body: `{'type':'t'}`, status: 400, index: 0, want: []string{"invalid JSON", "field name"}},
		{name: "missing colon", header: hdr(), body: `{"type" "t"}`, status: 400, index: 0, want: []string{"expected ':'"}},
		{name: "too deep", header: hdr(), body: `{"type":"t","data":` + strings.Repeat("[", event.MaxDataDepth+1) + strings.Repeat("]", event.MaxDataDepth+1) + `}`,
			status: 400, index: 0, want: []string{`"data" is nested more than 512 levels`}},
		{name: "too deep extension", header: hdr(), body: `{"type":"t","x":` + strings.Repeat(`{"a":`, event.MaxDataDepth+1) + `1` + strings.Repeat("}", event.MaxDataDepth+1) + `}`,
			status: 400, index: 0, want: []string{"nested more than 512 levels"}},

		// Strings that cannot be stored as they are.
		{name: "invalid UTF-8", header: hdr(), body: "{\"type\":\"a\xff\"}", status: 400, index: 0, want: []string{"invalid UTF-8"}},
		{name: "invalid UTF-8 in data", header: hdr(), body: "{\"type\":\"a\",\"data\":[\"\xc3\"]}", status: 400, index: 0, want: []string{"invalid UTF-8"}},
		{name: "invalid UTF-8 in extension", header: hdr(), body: "{\"type\":\"a\",\"x\xed\xa0\x80\":1}", status: 400, index: 0, want: []string{"invalid UTF-8"}},
		{name: "lone high surrogate", header: hdr(), body: `{"type":"\ud83dx"}`, status: 400, index: 0, want: []string{`unpaired surrogate \ud83d`}},
		{name: "lone low surrogate", header: hdr(), body: `{"type":"t","data":"\ude00"}`, status: 400, index: 0, want: []string{`unpaired surrogate \ude00`}},
		{name: "high surrogate then high", header: hdr(), body: `{"type":"\ud83d\ud83d"}`, status: 400, index: 0, want: []string{"unpaired surrogate"}},
		{name: "NUL escape", header: hdr(), body: `{"type":"a\u0000"}`, status: 400, index: 0, want: []string{`\u0000`}},
		{name: "type too long", header: hdr(), body: `{"type":"` + strings.Repeat("t", 1025) + `"}`, status: 400, index: 0, want: []string{`"type" must be at most 1024 bytes`}},
		{name: "source too long", header: hdr(), body: `[{"type":"a"},{"type":"a","source":"` + strings.Repeat("s", 1025) + `"}]`, status: 400, index: 1, want: []string{`"source" must be at most 1024 bytes`}},
		{name: "subject too long", header: hdr(), body: `{"type":"a","subject":"` + strings.Repeat("s", 2000) + `"}`, status: 400, index: 0, want: []string{`"subject" must be at most 1024 bytes`}},
		{name: "raw control character", header: hdr(), body: "{\"type\":\"a\tb\"}", status: 400, index: 0, want: []string{"control character 0x09"}},
		{name: "bad escape", header: hdr(), body: `{"type":"a\x"}`, status: 400, index: 0, want: []string{`invalid escape "\\x"`}},
		{name: "bad unicode escape", header: hdr(), body: `{"type":"a\u12g4"}`, status: 400, index: 0, want: []string{`invalid escape`}},

		// NDJSON.
		{name: "ndjson bad third line", header: ndjson, body: "{\"type\":\"a\"}\n{\"type\":\"b\"}\n{\"type\":5}\n", status: 400, index: 2,
			want: []string{"event 2 (line 3)", `"type" must be a string`}},
		{name: "ndjson bad line after blank", header: ndjson, body: "{\"type\":\"a\"}\n\r\n{\"type\":\"b\"}\n{\"type\":\"c\"\n", status: 400, index: 2,
			want: []string{"event 2 (line 4)", "invalid JSON at column 12", "unexpected end of input"}},
		{name: "ndjson array line", header: ndjson, body: "{\"type\":\"a\"}\n[{\"type\":\"b\"}]\n", status: 400, index: 1, want: []string{"event 1 (line 2)", "must be a JSON object, got an array"}},
		{name: "ndjson two objects on a line", header: ndjson, body: `{"type":"a"} {"type":"b"}`, status: 400, index: 0, want: []string{"line 1", "one object per line"}},
		{name: "ndjson object over two lines", header: ndjson, body: "{\"type\":\n\"a\"}\n", status: 400, index: 0, want: []string{"line 1", "unexpected end of input"}},
		{name: "ndjson garbage line", header: ndjson, body: "{\"type\":\"a\"}\nhello\n", status: 400, index: 1, want: []string{"event 1 (line 2)", "invalid JSON", "'h'"}},

		// CloudEvents attributes.
		{name: "structured wrong specversion", header: structured, body: strings.Replace(ceObject, `"1.0"`, `"0.3"`, 1), status: 400, index: 0, want: []string{`"specversion" must be "1.0", got "0.3"`}},
		{name: "structured no specversion", header: structured, body: `{"type":"t","source":"s","id":"1"}`, status: 400, index: 0, want: []string{`"specversion" is required`}},
		{name: "structured no id", header: structured, body: `{"specversion":"1.0","type":"t","source":"s"}`, status: 400, index: 0, want: []string{`"id" is required`}},
		{name: "structured no source", header: structured, body: `{"specversion":"1.0","type":"t","id":"1"}`, status: 400, index: 0, want: []string{`"source" is required`}},
		{name: "structured empty source", header: structured, body: `{"specversion":"1.0","type":"t","id":"1","source":""}`, status: 400, index: 0, want: []string{`"source" must not be empty`}},
		{name: "structured no type", header: structured, body: `{"specversion":"1.0","id":"1","source":"s"}`, status: 400, index: 0, want: []string{`"type" is required`}},
		{name: "batch second bad", header: batch, body: "[" + ceObject + `,{"specversion":"1.0","id":"1","source":"s"}]`, status: 400, index: 1, want: []string{"event 1", `"type" is required`}},

		// Binary mode.
		{name: "binary without ce-id", header: hdr("Content-Type", "application/json", "Ce-Specversion", "1.0", "Ce-Type", "t", "Ce-Source", "/s"), body: `{}`,
			status: 400, index: 0, want: []string{"Ce-Id", "required"}},
		{name: "binary without ce-source", header: hdr("Ce-Specversion", "1.0", "Ce-Type", "t", "Ce-Id", "1"), body: `{}`, status: 400, index: 0, want: []string{"Ce-Source"}},
		{name: "binary without ce-type", header: hdr("Ce-Specversion", "1.0", "Ce-Source", "s", "Ce-Id", "1"), body: `{}`, status: 400, index: 0, want: []string{"Ce-Type"}},
		{name: "binary empty ce-id", header: ce("Ce-Id", ""), body: `{}`, status: 400, index: 0, want: []string{"Ce-Id"}},
		{name: "binary wrong specversion", header: hdr("Ce-Specversion", "0.3", "Ce-Id", "1", "Ce-Type", "t", "Ce-Source", "/s"), body: `{}`, status: 400, index: 0,
			want: []string{"Ce-Specversion", `"1.0"`, `"0.3"`}},
		{name: "binary long id", header: hdr("Ce-Specversion", "1.0", "Ce-Id", strings.Repeat("x", 256), "Ce-Type", "t", "Ce-Source", "/s"), body: `{}`, status: 400, index: 0,
			want: []string{"Ce-Id", "255"}},
		{name: "binary bad time", header: ce("Ce-Time", "now"), body: `{}`, status: 400, index: 0, want: []string{"Ce-Time", `"now"`}},
		{name: "binary bad percent", header: hdr("Ce-Specversion", "1.0", "Ce-Id", "a%zz", "Ce-Type", "t", "Ce-Source", "/s"), body: `{}`, status: 400, index: 0,
			want: []string{"Ce-Id", "percent"}},
		{name: "binary percent to invalid UTF-8", header: hdr("Ce-Specversion", "1.0", "Ce-Id", "a%ff", "Ce-Type", "t", "Ce-Source", "/s"), body: `{}`, status: 400, index: 0,
			want: []string{"Ce-Id", "UTF-8"}},
		{name: "binary percent to NUL", header: hdr("Ce-Specversion", "1.0", "Ce-Id", "a%00", "Ce-Type", "t", "Ce-Source", "/s"), body: `{}`, status: 400, index: 0,
			want: []string{"Ce-Id", "NUL"}},
		{name: "binary bad json body", header: ce(), body: `{"a":`, status: 400, index: 0, want: []string{"must be JSON", "application/json", "unexpected end of input"}},
		{name: "binary json body trailing data", header: ce(), body: `{} {}`, status: 400, index: 0, want: []string{"must be JSON", "unexpected data"}},
		{name: "binary json charset", header: ce("Content-Type", "application/json; charset=utf-16"), body: `{}`, status: 415, index: -1, want: []string{"utf-16"}},
	}
	for _, tc := range tests {
		for _, gz := range []bool{false, true} {
			name := tc.name
			if gz {
				name += " gzip"
			}
			t.Run(name, func(t *testing.T) {
				h := tc.header.Clone()
				body := []byte(tc.body)
				if gz {
					if h.Get("Content-Encoding") != "" {
						t.Skip("tests Content-Encoding itself")
					}
					h.Set("Content-Encoding", "gzip")
					body = gzipBytes(t, body)
				}
				opt := testOptions()
				if tc.max != 0 {
					opt.MaxBytes = tc.max
				}
				evs, err := Decode(h, bytes.NewReader(body), opt)
				checkRequestError(t, evs, err, tc.status, tc.index, tc.want...)
				if gz && tc.status == 413 && !strings.Contains(err.Error(), "after decompression") {
					t.Errorf("message %q does not say after decompression", err)
				}
			})
		}
	}
}

func checkRequestError(t *testing.T, evs []event.Event, err error, status, index int, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Decode accepted %d events: %+v", len(evs), evs)
	}
	if evs != nil {
		t.Errorf("Decode returned events with an error")
	}
	var re *RequestError
	if !errors.As(err, &re) {
		t.Fatalf("error %T %v is not a *RequestError", err, err)
	}
	if re.Status != status || re.Index != index {
		t.Errorf("status %d index %d, want %d %d (%s)", re.Status, re.Index, status, index, re.Message)
	}
	if re.Error() != re.Message {
		t.Errorf("Error() %q differs from Message %q", re.Error(), re.Message)
	}
	for _, w := range want {
		if !strings.Contains(re.Message, w) {
			t.Errorf("message %q does not contain %q", re.Message, w)
		}
	}
}

func TestDecodeTooLargeAtBoundary(t *testing.T) {
	body := []byte(`[` + strings.Repeat(`{"type":"t"},`, 1000) + `{"type":"t"}]`)
	for _, gz := range []bool{false, true} {
		h := hdr()
		wire := body
		if gz {
			h.Set("Content-Encoding", "gzip")
			wire = gzipBytes(t, body)
		}
		opt := testOptions()
		opt.MaxBytes = int64(len(body))
		evs, err := Decode(h, bytes.NewReader(wire), opt)
		if err != nil || len(evs) != 1001 {
			t.Fatalf("gzip %v: body of exactly MaxBytes: %d events, %v", gz, len(evs), err)
		}
		opt.MaxBytes--
		evs, err = Decode(h, bytes.NewReader(wire), opt)
		checkRequestError(t, evs, err, 413, -1, fmt.Sprintf("larger than %d bytes", opt.MaxBytes))
	}
}

func TestDecodeMaxEventsAtBoundary(t *testing.T) {
	for name, tc := range map[string]struct {
		ct   string
		body func(n int) string
	}{
		"array":  {"application/json", func(n int) string { return "[" + strings.Repeat(`{"type":"t"},`, n-1) + `{"type":"t"}]` }},
		"ndjson": {"application/x-ndjson", func(n int) string { return strings.Repeat("{\"type\":\"t\"}\n", n) }},
		"batch": {"application/cloudevents-batch+json", func(n int) string {
			e := `{"specversion":"1.0","id":"x","source":"s","type":"t"}`
			return "[" + strings.Repeat(e+",", n-1) + e + "]"
		}},
	} {
		opt := testOptions()
		opt.MaxEvents = 100
		evs, err := Decode(hdr("Content-Type", tc.ct), strings.NewReader(tc.body(100)), opt)
		if err != nil || len(evs) != 100 {
			t.Fatalf("%s: %d events at the limit: %d decoded, %v", name, 100, len(evs), err)
		}
		evs, err = Decode(hdr("Content-Type", tc.ct), strings.NewReader(tc.body(101)), opt)
		checkRequestError(t, evs, err, 413, 100, "more than 100 events in one request")
	}
}

func TestDecodeGzipBomb(t *testing.T) {
	// 10 MB of zeros compress to about 10 KB.
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for range 10 {
		zw.Write(zeros)
	}
	zw.Close()
	r := bytes.NewReader(buf.Bytes())
	opt := testOptions()
	opt.MaxBytes = 1 << 20

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	evs, err := Decode(hdr("Content-Encoding", "gzip"), r, opt)
	runtime.ReadMemStats(&after)

	checkRequestError(t, evs, err, 413, -1, "larger than 1048576 bytes after decompression")
	// The read buffer doubles up to the limit: about 2 MB in all, whatever
	// the bomb's size.
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d bytes", alloc)
	if alloc > 4<<20 {
		t.Errorf("decoding a 10 MB gzip bomb allocated %d bytes", alloc)
	}
	if r.Len() == 0 {
		t.Errorf("the whole compressed body was read")
	}
}

func TestDecodeGzipErrors(t *testing.T) {
	good := gzipBytes(t, []byte(fullObject))
	badCRC := bytes.Clone(good)
	badCRC[len(badCRC)-6] ^= 0xFF
	trailing := append(bytes.Clone(good), "junk"...)
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"not gzip", []byte(fullObject)},
		{"empty", nil},
		{"truncated", good[:len(good)-10]},
		{"bad checksum", badCRC},
		{"trailing garbage", trailing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := Decode(hdr("Content-Encoding", "gzip"), bytes.NewReader(tc.body), testOptions())
			checkRequestError(t, evs, err, 400, -1, "gzip")
		})
	}
}

// An endless stream of empty gzip members decompresses to nothing; the
// compressed size is bounded too.
func TestDecodeGzipEmptyMembers(t *testing.T) {
	member := gzipBytes(t, nil)
	body := bytes.Repeat(member, 1000)
	opt := testOptions()
	opt.MaxBytes = 1000
	evs, err := Decode(hdr("Content-Encoding", "gzip"), bytes.NewReader(body), opt)
	checkRequestError(t, evs, err, 413, -1, "before decompression")
}

func TestDecodeMaxBytesReader(t *testing.T) {
	body := http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(strings.NewReader(fullObject)), 10)
	evs, err := Decode(hdr(), body, testOptions())
	checkRequestError(t, evs, err, 413, -1, "larger than 10 bytes")
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestDecodeReadError(t *testing.T) {
	evs, err := Decode(hdr(), failingReader{}, testOptions())
	checkRequestError(t, evs, err, 400, -1, "cannot read request body", "connection reset")
}

func TestDecodeNilBody(t *testing.T) {
	evs, err := Decode(hdr("Content-Type", "application/x-ndjson"), nil, testOptions())
	if err != nil || len(evs) != 0 {
		t.Fatalf("nil NDJSON body: %v %v", evs, err)
	}
}

func TestDecodeDefaults(t *testing.T) {
	before := time.Now()
	evs, err := Decode(hdr(), strings.NewReader(`{"type":"t"}`), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if evs[0].ReceivedAt.Before(before) || !evs[0].Time.Equal(evs[0].ReceivedAt) {
		t.Errorf("zero Now: received_at %v time %v", evs[0].ReceivedAt, evs[0].Time)
	}
	// A zero MaxBytes means 1 MiB.
	big := `{"type":"t","data":"` + strings.Repeat("x", 1<<20) + `"}`
	_, err = Decode(hdr(), strings.NewReader(big), DecodeOptions{})
	checkRequestError(t, nil, err, 413, -1, "larger than 1048576 bytes")
}

func TestDecodeGeneratedIDsAreUniqueAndOrdered(t *testing.T) {
	body := "[" + strings.TrimSuffix(strings.Repeat(`{"type":"t"},`, 500), ",") + "]"
	evs, err := Decode(hdr(), strings.NewReader(body), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, e := range evs {
		if seen[e.ID] {
			t.Fatalf("id %s repeated", e.ID)
		}
		seen[e.ID] = true
		if i > 0 && e.ID <= evs[i-1].ID {
			t.Errorf("ids not increasing: %s after %s", e.ID, evs[i-1].ID)
		}
	}
}

// Events must not share memory with the pooled buffers: decoding another
// request must leave earlier results alone.
func TestDecodeResultsDoNotAlias(t *testing.T) {
	first, err := Decode(hdr(), strings.NewReader("["+fullObject+"]"), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	other := strings.NewReplacer("e1", "zz", "order", "ORDER", `"a"`, `"Z"`).Replace(fullObject)
	for range 10 {
		if _, err := Decode(hdr(), strings.NewReader("["+other+"]"), testOptions()); err != nil {
			t.Fatal(err)
		}
	}
	checkEvents(t, first, []ev{fullEvent})
}

func TestDecodeMessagesAreBounded(t *testing.T) {
	long := strings.Repeat("y", 10000)
	_, err := Decode(hdr(), strings.NewReader(`{"type":"t","time":"`+long+`"}`), testOptions())
	if err == nil || len(err.Error()) > 200 {
		t.Fatalf("message of %d bytes: %v", len(err.Error()), err)
	}
}

func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

func TestDecodeAllocations(t *testing.T) {
	if raceEnabled() {
		t.Skip("the race detector makes sync.Pool drop items at random")
	}
	var b strings.Builder
	for i := range 100 {
		fmt.Fprintf(&b, `{"id":"id-%d","type":"t","source":"s","time":"2024-05-06T07:08:09Z","data":{"n":%d}}`+"\n", i, i)
	}
	body := []byte(b.String())
	h := hdr("Content-Type", "application/x-ndjson")
	allocs := testing.AllocsPerRun(50, func() {
		if _, err := Decode(h, bytes.NewReader(body), testOptions()); err != nil {
			t.Fatal(err)
		}
	})
	// The strings, the data, the events slice; a little slack for the pool.
	if allocs > 6 {
		t.Errorf("decoding 100 events took %v allocations", allocs)
	}
}

// Concurrent requests share the pools but never each other's events.
func TestDecodeConcurrent(t *testing.T) {
	done := make(chan error)
	for g := range 8 {
		go func() {
			var err error
			defer func() { done <- err }()
			var b strings.Builder
			for i := range 50 {
				fmt.Fprintf(&b, `{"id":"g%d-%d","type":"t%d","data":{"g":%d,"i":%d}}`+"\n", g, i, g, g, i)
			}
			body := []byte(b.String())
			h := hdr("Content-Type", "application/x-ndjson")
			if g%2 == 1 {
				h.Set("Content-Encoding", "gzip")
				body = gzipBytes(t, body)
			}
			for range 100 {
				evs, derr := Decode(h, bytes.NewReader(body), testOptions())
				if derr != nil {
					err = derr
					return
				}
				for i, e := range evs {
					if e.ID != fmt.Sprintf("g%d-%d", g, i) || e.Type != fmt.Sprintf("t%d", g) || string(e.Data) != fmt.Sprintf(`{"g":%d,"i":%d}`, g, i) {
						err = fmt.Errorf("goroutine %d event %d: %+v", g, i, e)
						return
					}
				}
			}
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// A small request reserves little, even when it gets a large buffer from
// the pool.
func TestDecodeReservesByBodyNotByPooledBuffer(t *testing.T) {
	big := `{"type":"t","data":"` + strings.Repeat("x", 1500<<10) + `"}`
	for range 3 { // warm the pool
		if _, err := Decode(hdr(), strings.NewReader(big), DecodeOptions{MaxBytes: 4 << 20}); err != nil {
			t.Fatal(err)
		}
	}
	var reserved int64
	opt := DecodeOptions{MaxBytes: 4 << 20, Reserve: func(n int64) bool { reserved += n; return true }}
	if _, err := Decode(hdr(), strings.NewReader(`{"type":"t"}`), opt); err != nil {
		t.Fatal(err)
	}
	if reserved > 64<<10+event.ReserveStep*event.EventCost {
		t.Fatalf("a 12-byte request reserved %d bytes", reserved)
	}
}
