package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"eventlistener/internal/esfake"
	"eventlistener/internal/testenv"
)

// nested wraps inner in n objects, each under a key of keyLen bytes.
func nested(n, keyLen int, inner string) string {
	key := `"` + strings.Repeat("k", keyLen) + `":`
	return strings.Repeat("{"+key, n) + inner + strings.Repeat("}", n)
}

// Every limit of the README's input contract: a request just under it is
// stored in both stores, one just over it gets the stated status; nothing
// accepted is refused by a store afterwards (the fallback log stays empty).
func TestInputContractLimits(t *testing.T) {
	pg := testenv.Postgres(t)
	esURL, _ := esfake.Start(t)
	index := fmt.Sprintf("events-limits-%d", time.Now().UnixNano())
	p := startServe(t, "--database-url", pg.URL, "--elasticsearch-url", esURL, "--elasticsearch-index", index,
		"--batch-idle", "20ms", "--max-body-bytes", "256KiB", "--max-event-bytes", "64KiB", "--max-request-events", "5")

	jsonCT := "Content-Type: application/json"
	one := func(id, data string) string { return `{"id":"` + id + `","type":"t","data":` + data + `}` }
	events := func(prefix string, n int) string {
		var evs []string
		for i := range n {
			evs = append(evs, fmt.Sprintf(`{"id":"%s-%d","type":"t"}`, prefix, i))
		}
		return "[" + strings.Join(evs, ",") + "]"
	}
	// A body of exactly n bytes: one event whose data string pads it.
	bodyOf := func(id string, n int) string {
		head, tail := `[{"id":"`+id+`","type":"t","data":"`, `"}]`
		return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
	}
	euro := func(n int) string { return strings.Repeat("€", n) } // 3 bytes, one UTF-16 unit
	binary := func(id string) []string {
		return []string{"Content-Type: text/plain", "Ce-Specversion: 1.0", "Ce-Id: " + id, "Ce-Source: /s", "Ce-Type: t"}
	}
	// The body limit is above the event limit: a body at it holds several
	// events, each under theirs.
	var parts []string
	for i := range 5 {
		parts = append(parts, fmt.Sprintf(`{"id":"body-%d","type":"t","data":"%s"}`, i, strings.Repeat("b", 50<<10)))
	}
	atBody := "[" + strings.Join(parts, ",") + "]"
	atBody = atBody[:len(atBody)-len(`"}]`)] + strings.Repeat("b", 256<<10-len(atBody)) + `"}]`
	tests := []struct {
		name    string
		body    string
		headers []string
		status  int      // 202, or the refusal
		ids     []string // stored, when 202
	}{
		{"20 objects deep", one("depth-20", nested(20, 1, "1")), nil, 202, []string{"depth-20"}},
		{"21 objects deep", one("depth-21", nested(21, 1, "1")), nil, 400, nil},
		{"array data: 19 objects inside", one("arr-19", "["+nested(19, 1, "1")+"]"), nil, 202, []string{"arr-19"}},
		{"array data: 20 objects inside", one("arr-20", "["+nested(20, 1, "1")+"]"), nil, 400, nil},
		// The longest term Elasticsearch indexes for a leaf: 20 keys of the
		// longest length and a value of ignore_above characters of 3 bytes.
		{"longest keys, longest indexed value", one("term-max", nested(20, 1000, `"`+euro(4096)+`"`)), nil, 202, []string{"term-max"}},
		{"longest keys, longer value (unindexed)", one("term-long", nested(20, 1000, `"`+euro(4097)+`"`)), nil, 202, []string{"term-long"}},
		{"key over 1000 bytes", one("key-1001", nested(1, 1001, "1")), nil, 400, nil},
		{"string of 60,000 bytes", one("str-60k", `{"s":"`+strings.Repeat("s", 60_000)+`"}`), nil, 202, []string{"str-60k"}},
		{"duplicate key", one("dup", `{"a":1,"a":2}`), nil, 400, nil},
		{"duplicate key deep in an array", one("dup-deep", `[{"x":{"b":1,"c":2,"b":3}}]`), nil, 400, nil},
		{"same key in sibling objects", one("siblings", `{"a":{"a":1},"b":[{"a":1},{"a":2}]}`), nil, 202, []string{"siblings"}},
		{"float64 extremes", one("num-max", `[1.7976931348623157e308,-1.7976931348623157e308,5e-324,`+strings.Repeat("9", 100)+`]`), nil, 202, []string{"num-max"}},
		{"number past float64", one("num-1e309", `[1e309]`), nil, 400, nil},
		{"number PostgreSQL cannot hold", one("num-huge", `{"n":1e1000000}`), nil, 400, nil},
		{"number near zero", one("num-tiny", `{"n":1e-400}`), nil, 400, nil},
		{"zero PostgreSQL cannot hold", one("zero-scale", `{"n":0e-16384}`), nil, 400, nil},
		{"zero with the largest exponent", one("zero-400", `[0e-400,0e400]`), nil, 202, []string{"zero-400"}},
		{"number of 101 digits", one("num-101", strings.Repeat("9", 101)), nil, 400, nil},
		{"NUL in data", one("nul", `{"k":"a\u0000b"}`), nil, 400, nil},
		{"NUL in a key", one("nul-key", `{"k\u0000":1}`), nil, 400, nil},
		{"data at --max-event-bytes", one("ev-max", `"`+strings.Repeat("d", 64<<10-2)+`"`), nil, 202, []string{"ev-max"}},
		{"data over --max-event-bytes", one("ev-over", `"`+strings.Repeat("d", 64<<10-1)+`"`), nil, 413, nil},
		{"binary text at --max-event-bytes escaped", strings.Repeat("\x01", (64<<10-2)/6), binary("bin-max"), 202, []string{"bin-max"}},
		{"binary text over --max-event-bytes escaped", strings.Repeat("\x01", 64<<10/6+1), binary("bin-over"), 413, nil},
		{"body at --max-body-bytes", atBody, nil, 202, []string{"body-0", "body-1", "body-2", "body-3", "body-4"}},
		{"body over --max-body-bytes", bodyOf("body-over", 256<<10+1), nil, 413, nil},
		{"events at --max-request-events", events("n5", 5), nil, 202, []string{"n5-0", "n5-1", "n5-2", "n5-3", "n5-4"}},
		{"events over --max-request-events", events("n6", 6), nil, 413, nil},
		{"type of 1024 bytes", `{"id":"type-1024","type":"` + strings.Repeat("t", 1024) + `"}`, nil, 202, []string{"type-1024"}},
		{"type of 1025 bytes", `{"id":"type-1025","type":"` + strings.Repeat("t", 1025) + `"}`, nil, 400, nil},
		{"id of 255 bytes", `{"id":"` + strings.Repeat("i", 255) + `","type":"t"}`, nil, 202, []string{strings.Repeat("i", 255)}},
		{"id of 256 bytes", `{"id":"` + strings.Repeat("i", 256) + `","type":"t"}`, nil, 400, nil},
	}
	var stored []string
	for _, tc := range tests {
		headers := tc.headers
		if headers == nil {
			headers = []string{jsonCT}
		}
		r := p.post(t, []byte(tc.body), headers...)
		if r.Status != tc.status {
			t.Errorf("%s: answer %d %q, want %d", tc.name, r.Status, r.Error, tc.status)
			continue
		}
		if tc.status != http.StatusAccepted {
			if r.Error == "" {
				t.Errorf("%s: %d without a message", tc.name, r.Status)
			}
			continue
		}
		stored = append(stored, tc.ids...)
	}
	waitRows(t, pg, len(stored))
	waitDocs(t, esURL, index, len(stored))
	got := strings.Fields(pg.Psql(t, `SELECT id FROM events ORDER BY id`))
	slices.Sort(stored)
	if !slices.Equal(got, stored) {
		t.Errorf("PostgreSQL holds %v, want %v", got, stored)
	}
	if recs := fallbackRecords(t, filepath.Join(p.dataDir, "fallback")); len(recs) > 0 {
		t.Errorf("%d accepted events were refused by a store: first %s: %s", len(recs), recs[0].Event.ID, recs[0].Error)
	}
	p.stop(t)
}
