package elastic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"eventlistener/event"
	"eventlistener/internal/esfake"
	"eventlistener/sinks"
)

// These tests run against the fake server, or against a real cluster when
// TEST_ELASTICSEARCH_URL is set; tests that inject faults need the fake.

var indexSeq = time.Now().UnixNano()

func newSink(t *testing.T) (*Sink, string, *esfake.Server) {
	t.Helper()
	url, fake := esfake.Start(t)
	indexSeq++
	index := fmt.Sprintf("events-test-%d", indexSeq) // one data stream per test
	s, err := New(Options{Addresses: []string{url}, Index: index})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		do(t, url, http.MethodDelete, "/_data_stream/"+index, "")
		do(t, url, http.MethodDelete, "/_index_template/"+s.TemplateName(), "")
	})
	return s, url, fake
}

// do sends a request to the cluster and decodes a JSON answer.
func do(t *testing.T, url, method, path, body string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(method, url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return out
}

func countDocs(t *testing.T, url, index string) int {
	t.Helper()
	do(t, url, http.MethodPost, "/"+index+"/_refresh", "")
	out := do(t, url, http.MethodPost, "/"+index+"/_count", `{"query":{"match_all":{}}}`)
	n, ok := out["count"].(float64)
	if !ok {
		t.Fatalf("count answer: %v", out)
	}
	return int(n)
}

func batch(prefix string, n int) []event.Event {
	ts := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	out := make([]event.Event, n)
	for i := range out {
		out[i] = event.Event{ID: fmt.Sprintf("%s-%d", prefix, i), Type: "order.created", Source: "shop",
			Time: ts.Add(time.Duration(i) * time.Second), ReceivedAt: ts.Add(time.Hour),
			Data: json.RawMessage(fmt.Sprintf(`{"order":%d,"tags":["a"]}`, i))}
	}
	return out
}

func deep(n int) json.RawMessage {
	return json.RawMessage(strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n))
}

func TestMigrateInstallsADataStreamTemplate(t *testing.T) {
	s, url, _ := newSink(t)
	out := do(t, url, http.MethodGet, "/_index_template/"+s.TemplateName(), "")
	raw, _ := json.Marshal(out)
	for _, want := range []string{`"data_stream"`, `"@timestamp"`, `"flattened"`, `"keyword"`, `"` + s.index + `"`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("template lacks %s: %s", want, raw)
		}
	}
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
}

// An operator's change to the template (an ILM policy here) survives a
// restart; migrate --force replaces it.
func TestMigrateLeavesAnExistingTemplateAlone(t *testing.T) {
	s, url, _ := newSink(t)
	tpl := s.Template()
	tpl["template"].(map[string]any)["settings"] = map[string]any{"index.lifecycle.name": "operators-policy"}
	body, _ := json.Marshal(tpl)
	do(t, url, http.MethodPut, "/_index_template/"+s.TemplateName(), string(body))
	has := func() bool {
		raw, _ := json.Marshal(do(t, url, http.MethodGet, "/_index_template/"+s.TemplateName(), ""))
		return strings.Contains(string(raw), "operators-policy")
	}
	if err := s.Migrate(context.Background()); err != nil || !has() {
		t.Fatalf("migrate: %v; the operator's policy kept: %v", err, has())
	}
	forced, err := New(Options{Addresses: []string{url}, Index: s.index, ReplaceTemplate: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := forced.Migrate(context.Background()); err != nil || has() {
		t.Fatalf("migrate --force: %v; the template was replaced: %v", err, !has())
	}
}

func TestWriteStoresDocuments(t *testing.T) {
	s, url, _ := newSink(t)
	evs := batch("a", 20)
	evs[3].Subject = "order/3"
	if err := s.Write(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	if n := countDocs(t, url, s.index); n != 20 {
		t.Fatalf("count = %d, want 20", n)
	}
	out := do(t, url, http.MethodPost, "/"+s.index+"/_search", `{"query":{"ids":{"values":["a-3"]}}}`)
	raw, _ := json.Marshal(out)
	for _, want := range []string{`"_id":"a-3"`, `"@timestamp":"2026-05-01T10:00:03Z"`, `"subject":"order/3"`,
		`"type":"order.created"`, `"source":"shop"`, `"order":3`, `".ds-` + s.index} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("document lacks %s: %s", want, raw)
		}
	}
}

func TestWriteAgainStoresNothingTwice(t *testing.T) {
	s, url, _ := newSink(t)
	ctx := context.Background()
	if err := s.Write(ctx, batch("a", 10)); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, append(batch("a", 10), batch("b", 5)...)); err != nil {
		t.Fatalf("a 409 for an id already stored must count as stored: %v", err)
	}
	if n := countDocs(t, url, s.index); n != 15 {
		t.Fatalf("count = %d, want 15", n)
	}
}

func TestMappingErrorFailsThatEventAlone(t *testing.T) {
	s, url, _ := newSink(t)
	evs := batch("a", 10)
	evs[4].Data = deep(40) // deeper than the flattened field's depth limit
	err := s.Write(context.Background(), evs)
	var pe *sinks.PartialError
	if !errors.As(err, &pe) || len(pe.Failures) != 1 || pe.Failures[0].Index != 4 {
		t.Fatalf("Write = %v, want a partial error for event 4 alone", err)
	}
	if sinks.Retryable(pe.Failures[0].Err) || !strings.Contains(pe.Failures[0].Err.Error(), "400") {
		t.Fatalf("failure = %v, want a permanent 400", pe.Failures[0].Err)
	}
	if n := countDocs(t, url, s.index); n != 9 {
		t.Fatalf("count = %d, want 9", n)
	}
}

func TestRejectedItemsAreRetried(t *testing.T) {
	s, url, fake := newSink(t)
	if fake == nil {
		t.Skip("needs the fake server to inject 429s")
	}
	fake.RejectItem("a-2", http.StatusTooManyRequests, 2)
	fake.RejectItem("a-7", http.StatusTooManyRequests, 1)
	before := fake.BulkRequests()
	out := sinks.WriteWithRetry(context.Background(), s, batch("a", 10),
		sinks.Retry{Initial: time.Millisecond, Max: 10 * time.Millisecond, MaxElapsed: 5 * time.Second}, nil)
	if len(out.Failed) != 0 || out.Stored != 10 {
		t.Fatalf("stored %d, failed %v; want all 10 stored after retries", out.Stored, out.Failed)
	}
	if got := fake.BulkRequests() - before; got != 3 {
		t.Fatalf("bulk requests = %d, want 3 (first, then the two 429 retries)", got)
	}
	if n := countDocs(t, url, s.index); n != 10 {
		t.Fatalf("count = %d, want 10", n)
	}
}

func TestWholeRequestFailures(t *testing.T) {
	tests := []struct {
		status    int
		retryable bool
	}{
		{http.StatusTooManyRequests, true},
		{http.StatusServiceUnavailable, true},
		{http.StatusInternalServerError, true},
		{http.StatusBadRequest, false},
		{http.StatusUnauthorized, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			s, _, fake := newSink(t)
			if fake == nil {
				t.Skip("needs the fake server to inject failures")
			}
			fake.FailRequests(tt.status, 1)
			err := s.Write(context.Background(), batch("a", 5))
			if err == nil || sinks.Retryable(err) != tt.retryable {
				t.Fatalf("Write = %v, want retryable=%v", err, tt.retryable)
			}
			if err := s.Write(context.Background(), batch("a", 5)); err != nil {
				t.Fatalf("next Write = %v", err)
			}
		})
	}
}

func TestTooLargeIsSplit(t *testing.T) {
	s, url, fake := newSink(t)
	if fake == nil {
		t.Skip("needs the fake server to inject a 413")
	}
	fake.FailRequests(http.StatusRequestEntityTooLarge, 1)
	if err := s.Write(context.Background(), batch("a", 10)); err != nil {
		t.Fatalf("Write after a 413 = %v, want the halves stored", err)
	}
	if n := countDocs(t, url, s.index); n != 10 {
		t.Fatalf("count = %d, want 10", n)
	}
}

func TestUnreachableIsRetryable(t *testing.T) {
	s, err := New(Options{Addresses: []string{"http://127.0.0.1:1"}, Index: "events"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Write(ctx, batch("a", 1)); err == nil || !sinks.Retryable(err) {
		t.Fatalf("Write = %v, want retryable", err)
	}
}

func TestInvalidIndexName(t *testing.T) {
	for _, name := range []string{"Events", "ev ents", "_events", "a*b"} {
		if _, err := New(Options{Addresses: []string{"http://127.0.0.1:9200"}, Index: name}); err == nil {
			t.Errorf("index %q accepted", name)
		}
	}
}

func TestDataOfAnyJSONTypeIsStored(t *testing.T) {
	s, url, _ := newSink(t)
	evs := batch("a", 6)
	for i, d := range []string{`"text"`, `42`, `[1,{"b":2}]`, `true`, `null`, `{"x":{"y":1}}`} {
		evs[i].Data = json.RawMessage(d)
	}
	if err := s.Write(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	if n := countDocs(t, url, s.index); n != 6 {
		t.Fatalf("count = %d, want 6", n)
	}
	out := do(t, url, http.MethodPost, "/"+s.index+"/_search", `{"query":{"ids":{"values":["a-0"]}}}`)
	raw, _ := json.Marshal(out)
	if !strings.Contains(string(raw), `"data":{"value":"text"}`) {
		t.Fatalf("a string data is not stored as data.value: %s", raw)
	}
}
