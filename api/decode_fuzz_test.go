package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
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
		plain := bytes.TrimPrefix(payload, utf8BOM)
		switch fh.name {
		case "json", "none", "json charset", "structured", "batch":
			var v any
			if err := json.Unmarshal(plain, &v); err != nil {
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
				if err := json.Unmarshal(line, &m); err != nil {
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
		if !json.Valid(e.Data) || !utf8.Valid(e.Data) || bytes.Contains(e.Data, []byte(`\u0000`)) {
			t.Fatalf("event %d: data %q", i, e.Data)
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

// FuzzParseTime checks that the fast path for UTC timestamps agrees with
// time.Parse on everything it accepts.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2024-02-29T23:59:59Z", "2023-02-29T00:00:00Z", "0000-01-01T00:00:00.000000001Z",
		"9999-12-31T23:59:59.999999999Z", "2024-01-01T00:00:00.1Z", "2024-01-01T00:00:00+01:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseRFC3339UTC([]byte(s))
		want, err := time.Parse(time.RFC3339Nano, s)
		if ok && (err != nil || got != want) {
			t.Fatalf("parseRFC3339UTC(%q) = %v; time.Parse: %v, %v", s, got, want, err)
		}
		p, perr := parseTime([]byte(s))
		pn, po := p.Zone()
		wn, wo := want.Zone()
		if (perr == nil) != (err == nil) || !p.Equal(want) || pn != wn || po != wo {
			t.Fatalf("parseTime(%q) = %v, %v; time.Parse: %v, %v", s, p, perr, want, err)
		}
	})
}
