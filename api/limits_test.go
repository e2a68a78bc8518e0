package api

import (
	"net/http"
	"strings"
	"testing"
)

// nest wraps inner in n objects {"k":...}.
func nest(n int, inner string) string {
	return strings.Repeat(`{"k":`, n) + inner + strings.Repeat("}", n)
}

// Data is checked against what every store keeps: each rule passes just
// under its limit and refuses just over it, with the stated status.
func TestDecodeStorableData(t *testing.T) {
	manyKeys := func(dup bool) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range 20 {
			if i > 0 {
				b.WriteString(",")
			}
			k := string(rune('a' + i))
			if dup && i == 19 {
				k = "c"
			}
			b.WriteString(`"` + k + `":` + "1")
		}
		b.WriteString("}")
		return b.String()
	}
	tests := []struct {
		name, data string
		status     int // 0: accepted
		want       string
	}{
		{name: "same key in two objects", data: `{"a":{"a":1},"b":[{"a":1},{"a":2}]}`},
		{name: "duplicate key", data: `{"a":1,"a":2}`, status: 400, want: `"data" has the key "a" twice`},
		{name: "duplicate key escaped", data: `{"a":1,"\u0061":2}`, status: 400, want: `"data" has the key "a" twice`},
		{name: "duplicate key nested in array", data: `[1,{"x":{"b":1,"c":2,"b":3}}]`, status: 400, want: `"data" has the key "b" twice`},
		{name: "many keys", data: manyKeys(false)},
		{name: "many keys one twice", data: manyKeys(true), status: 400, want: `"data" has the key "c" twice`},
		{name: "duplicate key after nested object", data: `{"a":{"b":1,"c":1},"a":2}`, status: 400, want: `"data" has the key "a" twice`},

		{name: "objects 20 deep", data: nest(20, "1")},
		{name: "objects 21 deep", data: nest(21, "1"), status: 400, want: "more than 20 deep"},
		{name: "arrays do not count", data: nest(20, strings.Repeat("[", 100)+"1"+strings.Repeat("]", 100))},
		{name: "array data: 19 objects inside", data: "[" + nest(19, "1") + "]"},
		{name: "array data: 20 objects inside", data: "[" + nest(20, "1") + "]", status: 400, want: "more than 20 deep"},
		{name: "string data with object depth 0", data: `"x"`},

		{name: "key of 1000 bytes", data: `{"` + strings.Repeat("k", 1000) + `":1}`},
		{name: "key of 1001 bytes", data: `[{"` + strings.Repeat("k", 1001) + `":1}]`, status: 400, want: "a key of 1001 bytes"},
		{name: "key of 1001 bytes escaped", data: `{"` + strings.Repeat(`é`, 500) + `k":1}`, status: 400, want: "a key of 1001 bytes"},
		{name: "long string", data: `{"k":"` + strings.Repeat("v", 100_000) + `"}`},

		{name: "NUL in value", data: `{"k":"v\u0000"}`, status: 400, want: `\u0000`},
		{name: "NUL in key", data: `{"k\u0000":"v"}`, status: 400, want: `\u0000`},
		{name: "escaped backslash then u0000", data: `"\\u0000"`},

		{name: "largest float64", data: `[1.7976931348623157e308, -1.7976931348623157e308]`},
		{name: "past the largest float64", data: `[1e309]`, status: 400, want: "too large for a float64"},
		{name: "negative past the largest", data: `{"n":-2e308}`, status: 400, want: "too large"},
		{name: "smallest float64", data: `[5e-324, 0e-400, 0E+400, 0.0000, -0]`},
		{name: "zero with an exponent past 400", data: `[0e-401]`, status: 400, want: "exponent is beyond ±400"},
		{name: "zero PostgreSQL cannot hold", data: `{"n":-0.0e-16384}`, status: 400, want: "exponent"},
		{name: "below the smallest float64", data: `[1e-400]`, status: 400, want: "too close to zero"},
		{name: "long fraction near zero", data: "0." + strings.Repeat("0", 80) + "1"},
		{name: "number of 100 characters", data: strings.Repeat("9", 100)},
		{name: "number of 101 characters", data: strings.Repeat("9", 101), status: 400, want: "number of 101 characters"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"type":"t","data":` + tc.data + `}`
			evs, err := Decode(hdr(), strings.NewReader(body), testOptions())
			if tc.status == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if string(evs[0].Data) != tc.data {
					t.Fatalf("data = %s, want %s", evs[0].Data, tc.data)
				}
				return
			}
			checkRequestError(t, evs, err, tc.status, 0, tc.want)
		})
	}
}

// The data of one event is at most MaxEventBytes as stored, whatever the
// form it came in: JSON data, data_base64, or a binary-mode body (escaped).
func TestDecodeMaxEventBytes(t *testing.T) {
	const limit = 100
	text := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name   string
		header http.Header
		body   string
		ok     bool
	}{
		{name: "data at the limit", header: hdr(), body: `{"type":"t","data":"` + text(limit-2) + `"}`, ok: true},
		{name: "data over the limit", header: hdr(), body: `{"type":"t","data":"` + text(limit-1) + `"}`},
		{name: "data_base64 at the limit", header: hdr(), body: `{"type":"t","data_base64":"` + strings.Repeat("QUJD", (limit-2)/4) + `"}`, ok: true},
		{name: "data_base64 over the limit", header: hdr(), body: `{"type":"t","data_base64":"` + strings.Repeat("QUJD", limit/4) + `"}`},
		{name: "binary json at the limit", header: ce(), body: `"` + text(limit-2) + `"`, ok: true},
		{name: "binary json over the limit", header: ce(), body: `"` + text(limit-1) + `"`},
		// Each control character becomes six bytes: 16 of them and the
		// quotes are 98 bytes, 17 are 104.
		{name: "binary text escaped at the limit", header: ce("Content-Type", "text/plain"), body: strings.Repeat("\x01", 16), ok: true},
		{name: "binary text escaped over the limit", header: ce("Content-Type", "text/plain"), body: strings.Repeat("\x01", 17)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opt := testOptions()
			opt.MaxEventBytes = limit
			evs, err := Decode(tc.header, strings.NewReader(tc.body), opt)
			if tc.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if n := len(evs[0].Data); n > limit || n < limit-6 {
					t.Fatalf("stored %d bytes", n)
				}
				return
			}
			checkRequestError(t, evs, err, 413, 0, "--max-event-bytes")
		})
	}
}
