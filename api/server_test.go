package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"eventlistener/actors"
	"eventlistener/event"
	"eventlistener/sources"
)

type fakeEngine struct {
	admitErr  error
	err       error
	accepting bool
	pingErr   error
	readyErr  error
	hang      bool
	got       [][]event.Event
}

func (f *fakeEngine) Ingest(evs []event.Event) error {
	if f.err != nil {
		return f.err
	}
	f.got = append(f.got, evs)
	return nil
}
func (f *fakeEngine) IngestStored(ctx context.Context, evs []event.Event) (map[string]string, error) {
	if err := f.Ingest(evs); err != nil {
		return nil, err
	}
	if f.hang {
		<-ctx.Done()
		return map[string]string{"fake": "pending"}, ctx.Err()
	}
	return map[string]string{"fake": "done"}, nil
}
func (f *fakeEngine) Accepting() bool { return f.accepting }
func (f *fakeEngine) Ready() error {
	if !f.accepting {
		return actors.ErrShuttingDown
	}
	return f.readyErr
}
func (f *fakeEngine) Admit() error {
	if !f.accepting {
		return actors.ErrShuttingDown
	}
	return f.admitErr
}
func (f *fakeEngine) Nodes(context.Context) (actors.Cluster, error) {
	return actors.Cluster{Alone: true, Reason: actors.ErrAlone.Error()}, actors.ErrAlone
}

// fakeProxy records the admin actions asked of it.
type fakeProxy struct{ actions []string }

func (f *fakeProxy) Snapshot() sources.ProxySnapshot { return sources.ProxySnapshot{} }
func (f *fakeProxy) Action(ctx context.Context, who, backend, server, action string) error {
	f.actions = append(f.actions, who+" "+action+" "+backend+"/"+server)
	return nil
}

func (f *fakeEngine) Node(ctx context.Context) actors.NodeStatus {
	ss := actors.SinkStatus{Name: "fake", Reachable: f.pingErr == nil}
	if f.pingErr != nil {
		ss.Error = f.pingErr.Error()
	}
	return actors.NodeStatus{Accepting: f.accepting, Sinks: []actors.SinkStatus{ss}}
}

func do(t *testing.T, s *Server, method, path, body string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	rec := httptest.NewRecorder()
	h := s.AdminHandler()
	if strings.HasPrefix(path, "/v1/events") {
		h = s.Handler()
	}
	h.ServeHTTP(rec, req)
	return rec
}

// The ingest listener serves events and health, nothing an operator uses;
// the admin listener serves the rest, and no events.
func TestListenersSplitTheRoutes(t *testing.T) {
	s := New(&fakeEngine{accepting: true}, Options{MaxBodyBytes: 1 << 20, AdminToken: "0123456789abcdef"})
	serve := func(h http.Handler, method, path string) int {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(method, path, strings.NewReader(`{"type":"t"}`))
		req.Header.Set("Authorization", "Bearer 0123456789abcdef")
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	for _, r := range []struct{ method, path string }{
		{"GET", "/metrics"}, {"GET", "/v1/node"}, {"GET", "/v1/proxy/servers"},
		{"POST", "/v1/proxy/servers/be/s1/disable"}, {"GET", "/debug/pprof/"}, {"GET", "/debug/pprof/cmdline"},
	} {
		if code := serve(s.Handler(), r.method, r.path); code != http.StatusNotFound && code != http.StatusMethodNotAllowed {
			t.Errorf("ingest listener: %s %s = %d, want 404", r.method, r.path, code)
		}
		found := false
		for _, rt := range s.AdminEcho().Routes() {
			if rt.Method == r.method && (rt.Path == r.path || strings.HasSuffix(rt.Path, "*") && strings.HasPrefix(r.path, strings.TrimSuffix(rt.Path, "*")) ||
				rt.Path == "/v1/proxy/servers/:backend/:server/:action" && strings.Count(r.path, "/") == 6) {
				found = true
			}
		}
		if !found {
			t.Errorf("admin listener has no route for %s %s", r.method, r.path)
		}
	}
	if code := serve(s.AdminHandler(), "POST", "/v1/events"); code != http.StatusNotFound && code != http.StatusMethodNotAllowed {
		t.Errorf("admin listener: POST /v1/events = %d, want 404", code)
	}
	for _, h := range []http.Handler{s.Handler(), s.AdminHandler()} {
		for _, p := range []string{"/healthz", "/readyz"} {
			if code := serve(h, "GET", p); code != http.StatusOK {
				t.Errorf("GET %s = %d", p, code)
			}
		}
	}
	if code := serve(s.Handler(), "POST", "/v1/events"); code != http.StatusAccepted {
		t.Errorf("ingest listener: POST /v1/events = %d", code)
	}
}

// While the engine stops, admin actions are refused: their audit event could
// not be stored.
func TestProxyActionsAreRefusedWhileStopping(t *testing.T) {
	s := New(&fakeEngine{accepting: false}, Options{MaxBodyBytes: 1 << 20, AdminToken: "0123456789abcdef"})
	rec := do(t, s, "POST", "/v1/proxy/servers/be/s1/drain", "", "Authorization: Bearer 0123456789abcdef")
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("POST while stopping: %d %s", rec.Code, rec.Body)
	}
}

// The profiler needs the admin token when one is set.
func TestDebugRoutesNeedTheAdminToken(t *testing.T) {
	s := New(&fakeEngine{}, Options{MaxBodyBytes: 1 << 20, AdminToken: "0123456789abcdef"})
	if rec := do(t, s, "GET", "/debug/pprof/cmdline", ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("without the token: %d", rec.Code)
	}
	if rec := do(t, s, "GET", "/debug/pprof/cmdline", "", "Authorization: Bearer 0123456789abcdef"); rec.Code != http.StatusOK {
		t.Fatalf("with the token: %d", rec.Code)
	}
	open := New(&fakeEngine{}, Options{MaxBodyBytes: 1 << 20})
	if rec := do(t, open, "GET", "/debug/pprof/cmdline", ""); rec.Code != http.StatusOK {
		t.Fatalf("without --admin-token: %d", rec.Code)
	}
}

func TestPostEventsStatuses(t *testing.T) {
	keys := []APIKey{{Name: "shop", Key: "0123456789abcdef"}}
	tests := []struct {
		name       string
		engine     *fakeEngine
		keys       []APIKey
		headers    []string
		status     int
		retryAfter string
	}{
		{"accepted", &fakeEngine{accepting: true}, nil, nil, 202, ""},
		{"overloaded before reading", &fakeEngine{accepting: true, admitErr: actors.ErrOverloaded}, nil, nil, 503, "1"},
		{"overloaded by this request", &fakeEngine{accepting: true, err: actors.ErrOverloaded}, nil, nil, 503, "1"},
		{"shutting down", &fakeEngine{accepting: false}, nil, nil, 503, "5"},
		{"key missing", &fakeEngine{accepting: true}, keys, nil, 401, ""},
		{"key wrong", &fakeEngine{accepting: true}, keys, []string{"Authorization: Bearer 0123456789abcdeX"}, 401, ""},
		{"bearer key", &fakeEngine{accepting: true}, keys, []string{"Authorization: Bearer 0123456789abcdef"}, 202, ""},
		{"x-api-key", &fakeEngine{accepting: true}, keys, []string{"X-Api-Key: 0123456789abcdef"}, 202, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(tt.engine, Options{MaxBodyBytes: 1 << 20, APIKeys: tt.keys})
			rec := do(t, s, http.MethodPost, "/v1/events", `{"id":"a","type":"t"}`,
				append([]string{"Content-Type: application/json"}, tt.headers...)...)
			if rec.Code != tt.status {
				t.Fatalf("status %d (%s), want %d", rec.Code, rec.Body, tt.status)
			}
			if got := rec.Header().Get("Retry-After"); got != tt.retryAfter {
				t.Fatalf("Retry-After = %q, want %q", got, tt.retryAfter)
			}
			var body map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("answer is not JSON: %s", rec.Body)
			}
			if msg, _ := body["error"].(string); tt.status != 202 && msg == "" {
				t.Fatalf("error answer without a message: %s", rec.Body)
			}
			if tt.status == 202 && len(tt.engine.got) != 1 {
				t.Fatalf("engine got %d requests", len(tt.engine.got))
			}
			if tt.status != 202 && len(tt.engine.got) != 0 {
				t.Fatalf("refused request reached the engine")
			}
		})
	}
}

func TestSourceIsTheKeyName(t *testing.T) {
	e := &fakeEngine{accepting: true}
	s := New(e, Options{MaxBodyBytes: 1 << 20, APIKeys: []APIKey{{Name: "billing", Key: "0123456789abcdef"}}})
	rec := do(t, s, http.MethodPost, "/v1/events", `[{"type":"t"},{"type":"t","source":"own"}]`,
		"Content-Type: application/json", "X-Api-Key: 0123456789abcdef")
	if rec.Code != 202 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if e.got[0][0].Source != "billing" || e.got[0][1].Source != "own" {
		t.Fatalf("sources = %q, %q", e.got[0][0].Source, e.got[0][1].Source)
	}
	var body struct {
		Accepted int
		IDs      []string
	}
	json.Unmarshal(rec.Body.Bytes(), &body)
	if body.Accepted != 2 || len(body.IDs) != 2 || body.IDs[0] != e.got[0][0].ID {
		t.Fatalf("answer = %s", rec.Body)
	}
}

func TestReadiness(t *testing.T) {
	tests := []struct {
		name   string
		engine *fakeEngine
		status int
	}{
		{"ready", &fakeEngine{accepting: true}, 200},
		{"a store down is no reason to take the node out", &fakeEngine{accepting: true, pingErr: errors.New("postgres: connection refused")}, 200},
		{"WAL full", &fakeEngine{accepting: true, readyErr: actors.ErrWALFull}, 503},
		{"WAL failed", &fakeEngine{accepting: true, readyErr: actors.ErrWALFailed}, 503},
		{"shutting down", &fakeEngine{accepting: false}, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(tt.engine, Options{MaxBodyBytes: 1 << 20})
			if rec := do(t, s, http.MethodGet, "/readyz", ""); rec.Code != tt.status {
				t.Fatalf("readyz = %d, want %d", rec.Code, tt.status)
			}
			if rec := do(t, s, http.MethodGet, "/healthz", ""); rec.Code != 200 {
				t.Fatalf("healthz = %d", rec.Code)
			}
		})
	}
}

func TestMetricsAndUnknownRoutes(t *testing.T) {
	s := New(&fakeEngine{accepting: true}, Options{MaxBodyBytes: 1 << 20})
	do(t, s, http.MethodPost, "/v1/events", `{"type":"t"}`, "Content-Type: application/json")
	rec := do(t, s, http.MethodGet, "/metrics", "")
	if rec.Code != 200 {
		t.Fatalf("metrics = %d", rec.Code)
	}
	if rec := do(t, s, http.MethodGet, "/nope", ""); rec.Code != 404 || !strings.Contains(rec.Body.String(), `"error"`) {
		t.Fatalf("unknown route = %d %s", rec.Code, rec.Body)
	}
	if rec := do(t, s, http.MethodGet, "/v1/events", ""); rec.Code != 405 {
		t.Fatalf("GET /v1/events = %d, want 405", rec.Code)
	}
}

func TestAdminRoutes(t *testing.T) {
	tests := []struct {
		name    string
		token   string // configured
		headers []string
		path    string
		status  int
		acted   bool
	}{
		{"off without a token", "", []string{"Authorization: Bearer anything"}, "/v1/proxy/servers/be/s1/disable", 404, false},
		{"missing token", "secret-admin-token", nil, "/v1/proxy/servers/be/s1/disable", 401, false},
		{"wrong token", "secret-admin-token", []string{"Authorization: Bearer secret-admin-tokem"}, "/v1/proxy/servers/be/s1/disable", 401, false},
		{"unknown action", "secret-admin-token", []string{"Authorization: Bearer secret-admin-token"}, "/v1/proxy/servers/be/s1/reboot", 404, false},
		{"right token", "secret-admin-token", []string{"Authorization: Bearer secret-admin-token"}, "/v1/proxy/servers/be/s1/drain", 200, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &fakeProxy{}
			s := New(&fakeEngine{accepting: true}, Options{MaxBodyBytes: 1 << 20, AdminToken: tt.token, Proxy: p})
			rec := do(t, s, http.MethodPost, tt.path, "", tt.headers...)
			if rec.Code != tt.status {
				t.Fatalf("status %d (%s), want %d", rec.Code, rec.Body, tt.status)
			}
			if (len(p.actions) > 0) != tt.acted {
				t.Fatalf("actions = %v, want acted=%v", p.actions, tt.acted)
			}
		})
	}
}

func TestAckStored(t *testing.T) {
	s := New(&fakeEngine{accepting: true}, Options{MaxBodyBytes: 1 << 20})
	rec := do(t, s, http.MethodPost, "/v1/events?ack=stored", `{"type":"t"}`, "Content-Type: application/json")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"sinks":{"fake":"done"}`) {
		t.Fatalf("ack=stored = %d %s", rec.Code, rec.Body)
	}
	s = New(&fakeEngine{accepting: true, hang: true}, Options{MaxBodyBytes: 1 << 20, AckTimeout: 50 * time.Millisecond})
	rec = do(t, s, http.MethodPost, "/v1/events?ack=stored", `{"type":"t"}`, "Content-Type: application/json")
	if rec.Code != 504 || !strings.Contains(rec.Body.String(), `"fake":"pending"`) || !strings.Contains(rec.Body.String(), "still be delivered") {
		t.Fatalf("ack=stored with a hung store = %d %s", rec.Code, rec.Body)
	}
	rec = do(t, s, http.MethodPost, "/v1/events?ack=maybe", `{"type":"t"}`, "Content-Type: application/json")
	if rec.Code != 400 {
		t.Fatalf("ack=maybe = %d %s", rec.Code, rec.Body)
	}
}

func TestTooManyEventsInOneRequestIs413(t *testing.T) {
	e := &fakeEngine{accepting: true}
	s := New(e, Options{MaxBodyBytes: 1 << 20, MaxRequestEvents: 3})
	if rec := do(t, s, "POST", "/v1/events", strings.Repeat("{\"type\":\"t\"}\n", 3), "Content-Type: application/x-ndjson"); rec.Code != 202 {
		t.Fatalf("3 events: %d %s", rec.Code, rec.Body)
	}
	rec := do(t, s, "POST", "/v1/events", strings.Repeat("{\"type\":\"t\"}\n", 4), "Content-Type: application/x-ndjson")
	if rec.Code != 413 || !strings.Contains(rec.Body.String(), "more than 3 events") || len(e.got) != 1 {
		t.Fatalf("4 events: %d %s; %d requests ingested, want 1", rec.Code, rec.Body, len(e.got))
	}
}

// A request reserves the memory its body and events take before it takes
// it: while one large upload holds the decode budget, another request gets
// 503 with Retry-After and nothing of it is ingested; once the upload is
// done, the budget is whole again.
func TestDecodeBudgetRefusesWhenSpent(t *testing.T) {
	e := &fakeEngine{accepting: true}
	reg := prometheus.NewRegistry()
	s := New(e, Options{MaxBodyBytes: 4 << 20, MaxRequestEvents: 1000, DecodeBudget: MinDecodeBudget(4<<20, 1000), Registerer: reg})
	pr, pw := io.Pipe()
	done := make(chan *httptest.ResponseRecorder)
	go func() {
		req := httptest.NewRequest("POST", "/v1/events", pr)
		req.Header.Set("Content-Type", "application/x-ndjson")
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		done <- rec
	}()
	// 3 MiB of padding in one event: the body's buffer grows to 4 MiB.
	pw.Write([]byte(`{"type":"big","data":"` + strings.Repeat("x", 3<<20)))
	reserved := func() float64 {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "eventlistener_decode_reserved_bytes" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		return -1
	}
	if r := reserved(); r < 3<<20 {
		t.Fatalf("reserved %v bytes while a 3 MiB body is read", r)
	}
	// 2 MiB more than the 3 MiB upload can be reserved beside it.
	rec := do(t, s, "POST", "/v1/events", `[`+strings.Repeat(`{"type":"t","data":"`+strings.Repeat("y", 2000)+`"},`, 999)+`{"type":"t"}]`)
	if rec.Code != 503 || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "--decode-budget") {
		t.Fatalf("request while the budget is spent: %d %q %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	pw.Write([]byte("\"}\n"))
	pw.Close()
	if rec := <-done; rec.Code != 202 {
		t.Fatalf("the large upload: %d %s", rec.Code, rec.Body)
	}
	if r := reserved(); r != 0 {
		t.Fatalf("%v bytes still reserved after every request ended", r)
	}
	if rec := do(t, s, "POST", "/v1/events", `{"type":"t"}`); rec.Code != 202 {
		t.Fatalf("after the upload: %d %s", rec.Code, rec.Body)
	}
	if len(e.got) != 2 {
		t.Fatalf("%d requests ingested, want the upload and the last one", len(e.got))
	}
}

// /v1/node is open to anyone: errors (hosts, users) and the WAL's folder
// show only with the admin token.
func TestNodeHidesConnectionDetailsWithoutTheToken(t *testing.T) {
	e := &fakeEngine{accepting: true, pingErr: errors.New("dial tcp 10.0.0.5:5432: connect: connection refused")}
	s := New(e, Options{MaxBodyBytes: 1 << 20, AdminToken: "0123456789abcdef"})
	open := do(t, s, "GET", "/v1/node", "")
	if open.Code != 200 || strings.Contains(open.Body.String(), "10.0.0.5") || !strings.Contains(open.Body.String(), "details_hidden") {
		t.Fatalf("without the token: %d %s", open.Code, open.Body)
	}
	admin := do(t, s, "GET", "/v1/node", "", "Authorization: Bearer 0123456789abcdef")
	if admin.Code != 200 || !strings.Contains(admin.Body.String(), "10.0.0.5") || strings.Contains(admin.Body.String(), "details_hidden") {
		t.Fatalf("with the token: %d %s", admin.Code, admin.Body)
	}
}
