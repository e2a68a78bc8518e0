package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"eventlistener/infra/haproxy"
	"eventlistener/internal/testenv"
)

const adminToken = "admin-token-0123456789"

type proxyEnv struct {
	pg      *testenv.PG
	hap     *testenv.HAProxyProc
	servers []*testenv.BackendServer
	client  *haproxy.Client
	p       *proc
}

// startProxyEnv runs haproxy with two backends (web: s1, s2; api: s1) over
// test servers, and the engine watching it every 100ms.
func startProxyEnv(t *testing.T, extra ...string) *proxyEnv {
	t.Helper()
	env := &proxyEnv{pg: testenv.Postgres(t)}
	for range 3 {
		env.servers = append(env.servers, testenv.TestHTTPServer(t))
	}
	env.hap = testenv.HAProxy(t, testenv.HAProxyConfig{Backends: map[string][]string{
		"web": {env.servers[0].Addr, env.servers[1].Addr},
		"api": {env.servers[2].Addr},
	}, CheckInterval: 100 * time.Millisecond})
	env.client = &haproxy.Client{StatsURL: env.hap.StatsURL, RuntimeAddr: env.hap.SocketPath}
	args := append([]string{"--database-url", env.pg.URL, "--batch-idle", "10ms",
		"--haproxy-stats-url", env.hap.StatsURL, "--haproxy-runtime-addr", env.hap.SocketPath,
		"--haproxy-poll-interval", "100ms", "--admin-token", adminToken}, extra...)
	env.p = startServe(t, args...)
	return env
}

type snapshot struct {
	Reachable bool
	Servers   []struct {
		Backend, Server, Status, CheckStatus string
	}
}

func (env *proxyEnv) snapshot(t *testing.T) snapshot {
	t.Helper()
	res, err := http.Get(env.p.admin + "/v1/proxy/servers")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var s snapshot
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || json.Unmarshal(raw, &s) != nil {
		t.Fatalf("GET /v1/proxy/servers: %d %s", res.StatusCode, raw)
	}
	return s
}

// statusOf waits until the snapshot shows backend/server with status want.
func (env *proxyEnv) waitStatus(t *testing.T, backend, server, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	got := ""
	for time.Now().Before(deadline) {
		for _, s := range env.snapshot(t).Servers {
			if s.Backend == backend && s.Server == server {
				got = s.Status
			}
		}
		if got == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s/%s is %q in the snapshot, want %q", backend, server, got, want)
}

func (env *proxyEnv) admin(t *testing.T, path string, headers ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, env.p.admin+path, nil)
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(k, strings.TrimSpace(v))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(raw)
}

func (env *proxyEnv) adminState(t *testing.T, backend, server string) haproxy.ServerState {
	t.Helper()
	res, err := env.client.ShowServersState(context.Background(), backend)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Servers {
		if s.Server == server {
			return s
		}
	}
	t.Fatalf("show servers state has no %s/%s", backend, server)
	return haproxy.ServerState{}
}

// waitQuery polls sql until it returns want.
func waitQuery(t *testing.T, pg *testenv.PG, sql, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	got := ""
	for time.Now().Before(deadline) {
		if got = pg.Psql(t, sql); got == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s\n= %q, want %q", sql, got, want)
}

func TestProxySnapshotAndStatusChanges(t *testing.T) {
	env := startProxyEnv(t)
	env.waitStatus(t, "web", "s2", "UP")

	// The snapshot matches what HAProxy's runtime API says.
	stat, err := env.client.ShowStat(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, r := range stat.Rows {
		if r.Type == haproxy.TypeServer {
			want[r.Proxy+"/"+r.Server] = haproxy.NormalizeStatus(r.Status)
		}
	}
	got := map[string]string{}
	for _, s := range env.snapshot(t).Servers {
		got[s.Backend+"/"+s.Server] = s.Status
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || len(got) != 3 {
		t.Fatalf("snapshot %v, show stat %v", got, want)
	}

	// A server going down, then up, is stored as two events.
	env.servers[1].Stop()
	env.waitStatus(t, "web", "s2", "DOWN")
	env.servers[1].Start()
	env.waitStatus(t, "web", "s2", "UP")
	q := `SELECT string_agg(data->>'old_status' || '>' || (data->>'new_status'), ',' ORDER BY time)
		FROM events WHERE type = 'haproxy.server.status_changed' AND subject = 'web/s2'`
	waitQuery(t, env.pg, q, "UP>DOWN,DOWN>UP")
	if src := env.pg.Psql(t, `SELECT DISTINCT source FROM events WHERE type = 'haproxy.server.status_changed'`); !strings.HasPrefix(src, "haproxy://127.0.0.1:") {
		t.Fatalf("source = %q", src)
	}
	waitMetric(t, env.p, `eventlistener_haproxy_server_up{backend="web",server="s2"} 1`)
	env.p.stop(t)
}

func TestProxyAdminActions(t *testing.T) {
	env := startProxyEnv(t)
	env.waitStatus(t, "web", "s1", "UP")
	bearer := "Authorization: Bearer " + adminToken

	// Refused: nothing changes.
	for _, h := range [][]string{nil, {"Authorization: Bearer not-the-token-at-all"}} {
		if code, body := env.admin(t, "/v1/proxy/servers/web/s1/disable", h...); code != 401 {
			t.Fatalf("without the right token: %d %s", code, body)
		}
	}
	if st := env.adminState(t, "web", "s1"); st.AdminState.Maintenance() {
		t.Fatalf("a refused request changed the server: %v", st.AdminState)
	}

	steps := []struct {
		action, status string
		maint, drain   bool
	}{
		{"disable", "MAINT", true, false},
		{"enable", "UP", false, false},
		{"drain", "DRAIN", false, true},
		{"enable", "UP", false, false},
	}
	for _, s := range steps {
		if code, body := env.admin(t, "/v1/proxy/servers/web/s1/"+s.action, bearer); code != 200 {
			t.Fatalf("%s: %d %s", s.action, code, body)
		}
		st := env.adminState(t, "web", "s1")
		if st.AdminState.Maintenance() != s.maint || st.AdminState.Draining() != s.drain {
			t.Fatalf("after %s: show servers state says %v", s.action, st.AdminState)
		}
		env.waitStatus(t, "web", "s1", s.status)
	}

	code, body := env.admin(t, "/v1/proxy/servers/web/nope/disable", bearer)
	if code != 404 || !strings.Contains(body, "No such server") {
		t.Fatalf("unknown server: %d %s", code, body)
	}
	code, body = env.admin(t, "/v1/proxy/servers/nope/s1/disable", bearer)
	if code != 404 || !strings.Contains(body, "HAProxy") {
		t.Fatalf("unknown backend: %d %s", code, body)
	}

	// Every action is stored, with who did it and how it went.
	waitQuery(t, env.pg, `SELECT string_agg((data->>'action') || ':' || (data->>'result'), ',' ORDER BY time)
		FROM events WHERE type = 'haproxy.server.admin_action'`,
		"disable:ok,enable:ok,drain:ok,enable:ok,disable:error,disable:error")
	if who := env.pg.Psql(t, `SELECT DISTINCT data->>'who' FROM events WHERE type = 'haproxy.server.admin_action'`); who != "admin@127.0.0.1" {
		t.Fatalf("who = %q", who)
	}
	env.p.stop(t)
}

func TestAdminRoutesOffWithoutToken(t *testing.T) {
	hap := testenv.HAProxy(t, testenv.HAProxyConfig{Backends: map[string][]string{"web": {testenv.TestHTTPServer(t).Addr}}})
	p := startServe(t, "--haproxy-runtime-addr", hap.SocketPath)
	req, _ := http.NewRequest(http.MethodPost, p.admin+"/v1/proxy/servers/web/s1/disable", nil)
	req.Header.Set("Authorization", "Bearer anything-at-all-here")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 {
		t.Fatalf("status %d, want 404", res.StatusCode)
	}
	st, err := (&haproxy.Client{RuntimeAddr: hap.SocketPath}).ShowServersState(context.Background(), "web")
	if err != nil || st.Servers[0].AdminState.Maintenance() {
		t.Fatalf("server state %v %v", st, err)
	}
	p.stop(t)
}

func TestProxyUnreachableIsAStateNotACrash(t *testing.T) {
	p := startServe(t, "--haproxy-stats-url", "http://"+freeAddr(t)+"/stats;csv", "--haproxy-poll-interval", "100ms")
	waitMetric(t, p, `eventlistener_haproxy_reachable 0`)
	res, err := http.Get(p.admin + "/v1/node")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var st struct {
		Reachable   bool
		Error       string
		FailedPolls int `json:"failed_polls"`
	}
	if sourceStatus(t, raw, "haproxy", &st); st.Reachable || st.Error == "" || st.FailedPolls == 0 {
		t.Fatalf("/v1/node: %s", raw)
	}
	if r := p.post(t, []byte(`{"type":"t"}`), "Content-Type: application/json"); r.Status != 202 {
		t.Fatalf("ingest while HAProxy is down: %d", r.Status)
	}
	p.stop(t)
}

func TestProxyChangeEventsOnlyOnTheMaster(t *testing.T) {
	// 192.0.2.10 is TEST-NET-1: this host does not hold it; never contacted.
	env := startProxyEnv(t, "--vip", "192.0.2.10")
	env.waitStatus(t, "web", "s2", "UP")
	env.servers[1].Stop()
	env.waitStatus(t, "web", "s2", "DOWN") // the snapshot still follows HAProxy
	res, err := http.Get(env.p.admin + "/v1/node")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var n struct {
		Master struct {
			Master bool
			Reason string
		}
	}
	if json.Unmarshal(raw, &n) != nil || n.Master.Master || !strings.Contains(n.Master.Reason, "192.0.2.10") {
		t.Fatalf("/v1/node: %s", raw)
	}
	// A marker event flushed after the change shows the change was not stored.
	if r := env.p.post(t, []byte(`{"id":"marker","type":"t"}`), "Content-Type: application/json"); r.Status != 202 {
		t.Fatalf("marker: %d", r.Status)
	}
	waitRows(t, env.pg, 1)
	if got := env.pg.Psql(t, "SELECT id FROM events"); got != "marker" {
		t.Fatalf("a node that is not master stored %q", got)
	}
	env.p.stop(t)
}
