package testenv

import (
	"encoding/csv"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// csvStatus fetches the stats CSV and returns the status of proxy's server
// (found by the header's column names), or "" when there is no such row.
func csvStatus(t *testing.T, statsURL, proxy, server string) string {
	t.Helper()
	resp, err := http.Get(statsURL)
	if err != nil {
		t.Fatalf("GET %s: %v", statsURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d, %v", statsURL, resp.StatusCode, err)
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(string(body), "# ")))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) == 0 {
		t.Fatalf("stats CSV: %v\n%s", err, body)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	for _, row := range rows[1:] {
		if row[col["pxname"]] == proxy && row[col["svname"]] == server {
			return row[col["status"]]
		}
	}
	return ""
}

// waitStatus polls until csvStatus is want, failing after timeout.
func waitStatus(t *testing.T, h *HAProxyProc, proxy, server, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var got string
	for {
		if got = csvStatus(t, h.StatsURL, proxy, server); got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s status %q after %v, want %q", proxy, server, got, timeout, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHAProxyStartsAndAnswers(t *testing.T) {
	a1, a2, b1 := TestHTTPServer(t), TestHTTPServer(t), TestHTTPServer(t)
	start := time.Now()
	h := HAProxy(t, HAProxyConfig{Backends: map[string][]string{
		"be_app":   {a1.Addr, a2.Addr},
		"be_other": {b1.Addr},
	}})
	t.Logf("HAProxy(t) took %v", time.Since(start))

	host, port, err := net.SplitHostPort(strings.TrimSuffix(strings.TrimPrefix(h.StatsURL, "http://"), "/stats;csv"))
	if err != nil || host != "127.0.0.1" || port == "" || h.StatsURL != "http://127.0.0.1:"+port+"/stats;csv" {
		t.Errorf("StatsURL = %q, want http://127.0.0.1:<port>/stats;csv", h.StatsURL)
	}
	if host, _, err := net.SplitHostPort(h.RuntimeAddr); err != nil || host != "127.0.0.1" {
		t.Errorf("RuntimeAddr = %q, want 127.0.0.1:<port>", h.RuntimeAddr)
	}
	if fi, err := os.Stat(h.SocketPath); err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("SocketPath %s: %v, %v; want a socket with mode 600", h.SocketPath, fi, err)
	}
	if h.Pid() == 0 || !processAlive(h.Pid()) {
		t.Errorf("Pid() = %d, not a live process", h.Pid())
	}

	for _, s := range []struct{ px, sv string }{{"be_app", "s1"}, {"be_app", "s2"}, {"be_other", "s1"}} {
		waitStatus(t, h, s.px, s.sv, "UP", 5*time.Second)
	}
	if got := csvStatus(t, h.StatsURL, "be_app", "BACKEND"); got != "UP" {
		t.Errorf("be_app BACKEND status %q, want UP", got)
	}

	// Both runtime addresses answer an admin command.
	for _, a := range []struct{ network, addr string }{{"unix", h.SocketPath}, {"tcp", h.RuntimeAddr}} {
		reply, err := hapCommand(a.network, a.addr, "disable server be_app/nope")
		if err != nil || strings.TrimSpace(reply) != "No such server." {
			t.Errorf("%s %s: reply %q, %v; want No such server.", a.network, a.addr, reply, err)
		}
	}

	// Each backend's frontend reaches its servers.
	for name := range map[string]bool{"be_app": true, "be_other": true} {
		addr := h.FrontendAddrs[name]
		if code, body := get(t, "http://"+addr+"/"); code != 200 || body != "ok\n" {
			t.Errorf("frontend of %s (%s): %d %q, want 200 ok", name, addr, code, body)
		}
	}
	if n := a1.Requests() + a2.Requests(); n == 0 {
		t.Errorf("be_app's servers answered no request")
	}
}

func TestHAProxyConfig(t *testing.T) {
	a := TestHTTPServer(t)
	h := HAProxy(t, HAProxyConfig{
		Backends:      map[string][]string{"web": {a.Addr, a.Addr}},
		CheckInterval: 50 * time.Millisecond,
		HTTPCheck:     true,
	})
	cfg := h.config()
	for _, want := range []string{
		"stats socket " + h.SocketPath + " mode 600 level admin",
		"stats socket ipv4@" + h.RuntimeAddr + " level admin",
		"stats uri /stats",
		"option httpchk GET /",
		"server s1 " + a.Addr + " check inter 50ms fall 1 rise 1",
		"server s2 " + a.Addr + " check inter 50ms fall 1 rise 1",
		"bind " + h.FrontendAddrs["web"],
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("configuration lacks %q:\n%s", want, cfg)
		}
	}
	waitStatus(t, h, "web", "s2", "UP", 5*time.Second)
	// The HTTP check reaches the server.
	before := a.Requests()
	deadline := time.Now().Add(5 * time.Second)
	for a.Requests() < before+2 {
		if time.Now().After(deadline) {
			t.Fatalf("no HTTP check reached the server in 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestHAProxyServerDownAndUp(t *testing.T) {
	a := TestHTTPServer(t)
	h := HAProxy(t, HAProxyConfig{Backends: map[string][]string{"be": {a.Addr}}})
	waitStatus(t, h, "be", "s1", "UP", 5*time.Second)

	a.Stop()
	start := time.Now()
	waitStatus(t, h, "be", "s1", "DOWN", 5*time.Second)
	t.Logf("DOWN %v after Stop", time.Since(start))
	if got := csvStatus(t, h.StatsURL, "be", "BACKEND"); got != "DOWN" {
		t.Errorf("backend status %q with its only server down, want DOWN", got)
	}
	if code, _ := get(t, "http://"+h.FrontendAddrs["be"]+"/"); code != http.StatusServiceUnavailable {
		t.Errorf("frontend with no server up: HTTP %d, want 503", code)
	}

	a.Start()
	start = time.Now()
	waitStatus(t, h, "be", "s1", "UP", 5*time.Second)
	t.Logf("UP %v after Start", time.Since(start))
	if !strings.Contains(h.Log(), "be/s1 is DOWN") {
		t.Errorf("log lacks the DOWN transition:\n%s", h.Log())
	}
}

func TestHAProxyCleanupLeavesNothing(t *testing.T) {
	var pid int
	var dir string
	skipped := false
	t.Run("proxy", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		h := HAProxy(t, HAProxyConfig{})
		pid, dir = h.Pid(), h.Dir
		// A connection left open must not hold the cleanup up.
		conn, err := net.Dial("unix", h.SocketPath)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn // deliberately never closed
	})
	if skipped {
		t.Skip("haproxy is not installed")
	}
	if pid == 0 {
		t.Fatal("subtest did not record the process")
	}
	if processAlive(pid) {
		t.Errorf("haproxy %d still alive after cleanup", pid)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("folder %s still there after cleanup (stat: %v)", dir, err)
	}
}

func TestHAProxyParallel(t *testing.T) {
	for _, name := range []string{"a", "b", "c"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := TestHTTPServer(t)
			h := HAProxy(t, HAProxyConfig{Backends: map[string][]string{"be_" + name: {s.Addr}}})
			waitStatus(t, h, "be_"+name, "s1", "UP", 5*time.Second)
		})
	}
}

func TestHAProxyBadConfig(t *testing.T) {
	if _, ok := lookBinary("haproxy"); !ok {
		Missing(t, "program haproxy", hapPackage)
	}
	for _, cfg := range []HAProxyConfig{
		{Backends: map[string][]string{"bad name": {"127.0.0.1:1"}}},
		{Backends: map[string][]string{"be;x": {"127.0.0.1:1"}}},
		{Backends: map[string][]string{"be": {"127.0.0.1"}}},
		{Backends: map[string][]string{"be": {"127.0.0.1:1 backup"}}},
	} {
		f := &fakeTB{}
		func() {
			defer func() {
				if r := recover(); r != nil {
					if _, ok := r.(stopped); !ok {
						panic(r)
					}
				}
			}()
			HAProxy(f, cfg)
		}()
		if f.how != "fatal" {
			t.Errorf("%v: ended with %q %q, want fatal", cfg.Backends, f.how, f.msg)
		}
	}
}

func TestBackendServerStopStart(t *testing.T) {
	b := TestHTTPServer(t)
	if code, body := get(t, "http://"+b.Addr+"/x"); code != 200 || body != "ok\n" {
		t.Fatalf("GET: %d %q", code, body)
	}
	b.Stop()
	b.Stop() // twice is fine
	if b.Running() {
		t.Errorf("Running after Stop")
	}
	if _, err := net.DialTimeout("tcp", b.Addr, time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial a stopped server: %v, want connection refused", err)
	}
	addr := b.Addr
	b.Start()
	b.Start()
	if b.Addr != addr || !b.Running() {
		t.Errorf("after Start: Addr %s (was %s), Running %v", b.Addr, addr, b.Running())
	}
	if code, _ := get(t, "http://"+b.Addr+"/"); code != 200 {
		t.Errorf("GET after Start: %d", code)
	}
	if n := b.Requests(); n != 2 {
		t.Errorf("Requests() = %d, want 2", n)
	}
}
