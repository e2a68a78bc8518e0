package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"eventlistener/event"
)

// fuzzHeaders are the requests FuzzDecode tries, chosen by its selector.
var fuzzHeaders = []struct {
	name   string
	header func(body []byte) (http.Header, []byte)
}{
	{"json", fixedHeader("Content-Type", "application/json")},
	{"none", fixedHeader()},
	{"json charset", fixedHeader("Content-Type", "application/json; charset=utf-8")},
	{"ndjson", fixedHeader("Content-Type", "application/x-ndjson")},
	{"jsonl", fixedHeader("Content-Type", "application/jsonl; charset=UTF-8")},
	{"structured", fixedHeader("Content-Type", "application/cloudevents+json; charset=utf-8")},
	{"batch", fixedHeader("Content-Type", "application/cloudevents-batch+json")},
	{"binary json", fixedHeader("Content-Type", "application/json", "Ce-Specversion", "1.0", "Ce-Id", "1", "Ce-Type", "t", "Ce-Source", "/s")},
	{"binary text", fixedHeader("Content-Type", "text/plain", "Ce-Specversion", "1.0", "Ce-Id", "1", "Ce-Type", "t", "Ce-Source", "/s")},
	{"binary octets", fixedHeader("Content-Type", "application/octet-stream", "Ce-Specversion", "1.0", "Ce-Id", "1", "Ce-Type", "t", "Ce-Source", "/s")},
	// The attributes come from the body: its first lines are Ce-Specversion,
	// Ce-Id, Ce-Type, Ce-Source, Ce-Time and Content-Type, the rest is the data.
	{"binary from body", func(body []byte) (http.Header, []byte) {
		parts := bytes.SplitN(body, []byte("\n"), 7)
		h := http.Header{}
		for i, name := range []string{"Ce-Specversion", "Ce-Id", "Ce-Type", "Ce-Source", "Ce-Time", "Content-Type"} {
			if i < len(parts)-1 && len(parts[i]) > 0 {
				h.Set(name, string(parts[i]))
			}
		}
		if h.Get("Ce-Specversion") == "" {
			h.Set("Ce-Specversion", "1.0")
		}
		return h, parts[len(parts)-1]
	}},
	{"text/plain", fixedHeader("Content-Type", "text/plain")},
}

func fixedHeader(kv ...string) func([]byte) (http.Header, []byte) {
	return func(body []byte) (http.Header, []byte) { return hdr(kv...), body }
}

// FuzzDecode feeds any body in any format to Decode. Selector bits: the low
// ones pick fuzzHeaders; 0x40 sets a small MaxBytes; 0x80 sends the body
// itself as gzip data (usually corrupt), where gz compresses it properly.
func FuzzDecode(f *testing.F) {
	seeds := []string{
		fullObject, ceObject, "[" + fullObject + "," + ceObject + "]", "[]", "",
		fullObject + "\n\n" + `{"type":"b"}` + "\r\n", `{"type":"t","data_base64":"aGk="}`,
		`{"type":"t","time":"2024-02-29T23:59:59.5+02:00","data":[1,"\ud83d\ude00",{"a":null}]}`,
		`{"type":"\u0074","id":null,"x":{"y":[true,false,-1.5e3]}}`, `[{"type":"a"},{"type":`, `{"type":5}`,
		"1.0\nid\ntype\n/source\n2020-01-02T03:04:05Z\napplication/json\n{\"a\":1}",
		"1.0\na%20b\nt\n/s\n\ntext/plain\nhello",
		`{"type":"a","data":"\u0000"}`, `{"type":"t","data":{"a":1,"a":2}}`, `{"type":"t","data":{"a":{"b":1},"\u0062":[{"a":1e308,"b":5e-324}]}}`,
		`{"type":"t","data":[1e309,1e-400]}`,
	}
	for sel := range len(fuzzHeaders) {
		for _, s := range seeds {
			f.Add(uint8(sel), []byte(s), false)
		}
		f.Add(uint8(sel), []byte(fullObject), true)
	}
	f.Fuzz(func(t *testing.T, sel uint8, body []byte, gz bool) {
		fh := fuzzHeaders[int(sel&0x3F)%len(fuzzHeaders)]
		h, payload := fh.header(body)
		opt := testOptions()
		if sel&0x40 != 0 {
			opt.MaxBytes = 64
		}
		wire := payload
		switch {
		case sel&0x80 != 0:
			h.Set("Content-Encoding", "gzip")
		case gz:
			h.Set("Content-Encoding", "gzip")
			wire = gzipBytes(t, payload)
		}

		evs, err := Decode(h, bytes.NewReader(wire), opt)
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("%s: error %T is not a *RequestError: %v", fh.name, err, err)
			}
			if re.Status != 400 && re.Status != 413 && re.Status != 415 {
				t.Fatalf("%s: status %d: %s", fh.name, re.Status, re.Message)
			}
			if re.Message == "" || re.Index < -1 {
				t.Fatalf("%s: bad error %+v", fh.name, re)
			}
			if evs != nil {
				t.Fatalf("%s: events returned with an error", fh.name)
			}
			return
		}
		if int64(len(payload)) > opt.MaxBytes {
			t.Fatalf("%s: accepted a body of %d bytes, limit %d", fh.name, len(payload), opt.MaxBytes)
		}
		ce := strings.Contains(fh.name, "binary") || fh.name == "structured" || fh.name == "batch"
		for i, e := range evs {
			checkEventInvariants(t, i, &e, ce)
		}

		// Whatever the JSON formats accept, encoding/json accepts too, with
		// as many events.
		plain := bytes.TrimPrefix(payload, []byte("\xEF\xBB\xBF"))
		switch fh.name {
		case "json", "none", "json charset", "structured", "batch":
			var v any
			if err := unmarshalNumbers(plain, &v); err != nil {
				t.Fatalf("%s: accepted what encoding/json refuses (%v): %q", fh.name, err, plain)
			}
			if a, ok := v.([]any); ok && len(a) != len(evs) {
				t.Fatalf("%s: %d events from an array of %d", fh.name, len(evs), len(a))
			}
		case "ndjson", "jsonl":
			n := 0
			for line := range bytes.SplitSeq(plain, []byte("\n")) {
				if len(bytes.TrimSpace(line)) == 0 {
					continue
				}
				n++
				var m map[string]any
				if err := unmarshalNumbers(line, &m); err != nil {
					t.Fatalf("%s: accepted a line encoding/json refuses (%v): %q", fh.name, err, line)
				}
			}
			if n != len(evs) {
				t.Fatalf("%s: %d events from %d lines", fh.name, len(evs), n)
			}
		}
	})
}

func checkEventInvariants(t *testing.T, i int, e *event.Event, ce bool) {
	t.Helper()
	if e.ID == "" || len(e.ID) > event.MaxIDLength {
		t.Fatalf("event %d: id of %d bytes", i, len(e.ID))
	}
	if e.Type == "" {
		t.Fatalf("event %d: empty type", i)
	}
	if ce && e.Source == "" {
		t.Fatalf("event %d: CloudEvent without source", i)
	}
	for _, s := range []string{e.ID, e.Type, e.Source, e.Subject} {
		if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
			t.Fatalf("event %d: string %q cannot be stored", i, s)
		}
	}
	if e.Data != nil {
		if !utf8.Valid(e.Data) {
			t.Fatalf("event %d: data %q is not UTF-8", i, e.Data)
		}
		if err := storable(e.Data); err != nil {
			t.Fatalf("event %d: data %q: %v", i, e.Data, err)
		}
		if cap(e.Data) != len(e.Data) {
			t.Fatalf("event %d: data has spare capacity", i)
		}
	}
	if e.ReceivedAt != testNow {
		t.Fatalf("event %d: received_at %v", i, e.ReceivedAt)
	}
	if e.Time.IsZero() {
		t.Fatalf("event %d: zero time", i)
	}
}

// storable checks data against the input contract's rules, independently of
// the decoder (with encoding/json's tokenizer): valid JSON, no key twice in
// an object, no NUL, keys of at most event.MaxKeyBytes, objects at most
// event.MaxObjectDepth deep (counting the object Elasticsearch wraps any other
// value in), numbers of at most event.MaxNumberLength characters that a float64
// holds without overflow or underflow.
func storable(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type frame struct {
		obj     bool
		wantKey bool
		keys    map[string]bool
	}
	var stack []*frame
	objs := 0
	if bytes.TrimLeft(data, " \t\r\n")[0] != '{' {
		objs = 1
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.obj && top.wantKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				objs--
				continue
			}
			k := tok.(string)
			switch {
			case top.keys[k]:
				return fmt.Errorf("key %q twice", k)
			case strings.IndexByte(k, 0) >= 0:
				return fmt.Errorf("NUL in key %q", k)
			case len(k) > event.MaxKeyBytes:
				return fmt.Errorf("key of %d bytes", len(k))
			}
			top.keys[k] = true
			top.wantKey = false
			continue
		}
		if top != nil && top.obj {
			top.wantKey = true
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				objs++
				if objs > event.MaxObjectDepth {
					return fmt.Errorf("objects %d deep", objs)
				}
				stack = append(stack, &frame{obj: true, wantKey: true, keys: map[string]bool{}})
			case '[':
				stack = append(stack, &frame{})
			case ']':
				stack = stack[:len(stack)-1]
			}
		case string:
			if strings.IndexByte(v, 0) >= 0 {
				return fmt.Errorf("NUL in %q", v)
			}
		case json.Number:
			if len(v) > event.MaxNumberLength {
				return fmt.Errorf("number of %d characters", len(v))
			}
			mant, exp, hasExp := strings.Cut(strings.ToLower(string(v)), "e")
			if e, err := strconv.Atoi(exp); hasExp && (err != nil || e > event.MaxExponent || e < -event.MaxExponent) {
				return fmt.Errorf("number %s has an exponent beyond ±%d", v, event.MaxExponent)
			}
			f, err := strconv.ParseFloat(string(v), 64)
			if err != nil || (f == 0 && strings.ContainsAny(mant, "123456789")) {
				return fmt.Errorf("number %s is not a float64", v)
			}
		}
	}
	return nil
}

// unmarshalNumbers is json.Unmarshal keeping numbers as text: the decoder
// takes any number in a dropped extension attribute, as JSON does.
func unmarshalNumbers(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("data after the value")
	}
	return nil
}
