package testenv

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Timeouts and limits of the HAProxy harness.
const (
	hapReadyTimeout = 30 * time.Second // from start to answering on the stats page and the runtime API
	hapStopTimeout  = 10 * time.Second // hard stop (SIGTERM), before SIGKILL
	hapPortTries    = 8                // attempts with fresh random ports when one is taken
	hapDefaultInter = 200 * time.Millisecond
)

// Debian's package for haproxy, named in messages about a missing binary.
const hapPackage = "haproxy"

// HAProxyConfig describes the HAProxy that HAProxy starts.
type HAProxyConfig struct {
	// Backends maps a backend's name to its servers' addresses (host:port).
	// The servers of a backend are named s1, s2, ... in the order given
	// (see HAProxyServerName). Names are HAProxy names: letters, digits,
	// '.', ':', '_' and '-'.
	Backends map[string][]string
	// CheckInterval is the health check interval of every server ("check
	// inter <CheckInterval> fall 1 rise 1"): one failed check marks a
	// server DOWN, one passed check UP. 0 means 200ms.
	CheckInterval time.Duration
	// HTTPCheck makes the checks HTTP ("option httpchk GET /", a 2xx or 3xx
	// passes) instead of a TCP connect.
	HTTPCheck bool
	// HTTPCheckPath is the path HTTPCheck asks for; empty: "/".
	HTTPCheckPath string
}

// HAProxyServerName is the name HAProxy gives the i-th server (from 0) of
// a backend in HAProxyConfig.Backends: s1, s2, ...
func HAProxyServerName(i int) string { return "s" + strconv.Itoa(i+1) }

// HAProxyProc is an HAProxy started for one test by HAProxy.
type HAProxyProc struct {
	// StatsURL is the statistics CSV: http://127.0.0.1:<port>/stats;csv.
	// The stats frontend has "stats show-legends", so the CSV holds the
	// servers' addresses.
	StatsURL string
	// SocketPath is the runtime API's unix socket (level admin).
	SocketPath string
	// RuntimeAddr is the runtime API on TCP, 127.0.0.1:<port> (level admin).
	RuntimeAddr string
	// FrontendAddrs maps each backend's name to the address
	// (127.0.0.1:<port>) of a frontend in mode http that sends everything
	// to that backend.
	FrontendAddrs map[string]string
	// ConfigPath is the generated haproxy.cfg.
	ConfigPath string
	// Dir is the folder holding the configuration, the socket and the log.
	Dir string

	t       testing.TB
	logPath string
	proc    *process
	mu      sync.Mutex
}

var hapServers atomic.Int64 // numbers the folders

// HAProxy starts HAProxy (Debian's haproxy, from PATH or /usr/sbin) in the
// foreground (-db) for t, with a configuration generated from cfg: a stats
// frontend, the runtime API on a unix socket and on TCP, and for each backend
// a frontend and the backend with health-checked servers. All ports are
// random ports of 127.0.0.1. HAProxy returns once the stats page and the
// runtime API answer; t.Cleanup stops HAProxy and removes its folder.
//
// Without haproxy installed, the test is skipped, or fails in CI (see
// Missing). Call it from the goroutine running the test.
func HAProxy(t testing.TB, cfg HAProxyConfig) *HAProxyProc {
	t.Helper()
	bin := RequireBinary(t, "haproxy", hapPackage)
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = hapDefaultInter
	}
	for name, servers := range cfg.Backends {
		if !hapValidName(name) {
			t.Fatalf("testenv: HAProxy backend name %q: use letters, digits, '.', ':', '_', '-'", name)
		}
		for _, addr := range servers {
			if _, _, err := net.SplitHostPort(addr); err != nil || strings.ContainsAny(addr, " \t\r\n#") {
				t.Fatalf("testenv: HAProxy backend %s: server address %q is not host:port", name, addr)
			}
		}
	}
	wd, err := workDir()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	dir := filepath.Join(wd, fmt.Sprintf("haproxy-%d", hapServers.Add(1)))
	if err := mkdirOwned(dir, 0o700, nil); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	h := &HAProxyProc{
		SocketPath: filepath.Join(dir, "admin.sock"),
		ConfigPath: filepath.Join(dir, "haproxy.cfg"),
		Dir:        dir,
		t:          t,
		logPath:    filepath.Join(dir, "haproxy.log"),
	}
	t.Cleanup(h.cleanup)
	const maxSocketPath = 107
	if len(h.SocketPath) > maxSocketPath {
		t.Fatalf("testenv: HAProxy socket path %s is longer than a unix socket address allows; set TMPDIR to a shorter folder", h.SocketPath)
	}

	var lastErr error
	for range hapPortTries {
		if lastErr = h.start(bin, cfg); lastErr == nil {
			return h
		}
		if !errors.Is(lastErr, errPortTaken) {
			break
		}
	}
	t.Fatalf("testenv: start HAProxy: %v", lastErr)
	return nil
}

func hapValidName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == ':' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// freePorts returns n distinct ports of 127.0.0.1 that were free a moment
// ago.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// hapConfig writes HAProxy's configuration for cfg on the given ports: stats,
// runtime API, then one per backend (in sorted order of names).
func (h *HAProxyProc) hapConfig(cfg HAProxyConfig, names []string, ports []int) string {
	inter := cfg.CheckInterval.Milliseconds()
	if inter < 1 {
		inter = 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by eventlistener's internal/testenv for one test.\n")
	fmt.Fprintf(&b, "global\n")
	fmt.Fprintf(&b, "    stats socket %s mode 600 level admin\n", h.SocketPath)
	fmt.Fprintf(&b, "    stats socket ipv4@127.0.0.1:%d level admin\n", ports[1])
	fmt.Fprintf(&b, "    stats timeout 30s\n")
	fmt.Fprintf(&b, "    maxconn 256\n")
	fmt.Fprintf(&b, "    nbthread 2\n")
	fmt.Fprintf(&b, "    hard-stop-after 5s\n")
	fmt.Fprintf(&b, "\ndefaults\n")
	fmt.Fprintf(&b, "    mode http\n")
	fmt.Fprintf(&b, "    timeout connect 2s\n")
	fmt.Fprintf(&b, "    timeout client 10s\n")
	fmt.Fprintf(&b, "    timeout server 10s\n")
	fmt.Fprintf(&b, "    timeout check 1s\n")
	fmt.Fprintf(&b, "\nfrontend stats\n")
	fmt.Fprintf(&b, "    bind 127.0.0.1:%d\n", ports[0])
	fmt.Fprintf(&b, "    stats enable\n")
	fmt.Fprintf(&b, "    stats uri /stats\n")
	fmt.Fprintf(&b, "    stats refresh 0\n")
	fmt.Fprintf(&b, "    stats show-legends\n")
	for i, name := range names {
		fmt.Fprintf(&b, "\nfrontend fe_%s\n", name)
		fmt.Fprintf(&b, "    bind 127.0.0.1:%d\n", ports[2+i])
		fmt.Fprintf(&b, "    default_backend %s\n", name)
		fmt.Fprintf(&b, "\nbackend %s\n", name)
		if cfg.HTTPCheck {
			fmt.Fprintf(&b, "    option httpchk GET %s\n", cmp.Or(cfg.HTTPCheckPath, "/"))
		}
		for j, addr := range cfg.Backends[name] {
			fmt.Fprintf(&b, "    server %s %s check inter %dms fall 1 rise 1\n", HAProxyServerName(j), addr, inter)
		}
	}
	return b.String()
}

func (h *HAProxyProc) start(bin string, cfg HAProxyConfig) error {
	names := make([]string, 0, len(cfg.Backends))
	for name := range cfg.Backends {
		names = append(names, name)
	}
	sort.Strings(names)
	ports, err := freePorts(2 + len(names))
	if err != nil {
		return err
	}
	h.StatsURL = fmt.Sprintf("http://127.0.0.1:%d/stats;csv", ports[0])
	h.RuntimeAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
	h.FrontendAddrs = make(map[string]string, len(names))
	for i, name := range names {
		h.FrontendAddrs[name] = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[2+i]))
	}
	if err := os.WriteFile(h.ConfigPath, []byte(h.hapConfig(cfg, names, ports)), 0o600); err != nil {
		return err
	}
	_ = os.Remove(h.SocketPath) // HAProxy replaces it anyway; an old one would fool waitReady

	logFile, err := os.OpenFile(h.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own copy
	logStart, err := logFile.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	fmt.Fprintf(logFile, "--- testenv: starting haproxy (stats %s, runtime %s) at %s\n", h.StatsURL, h.RuntimeAddr, time.Now().Format(time.RFC3339Nano))

	cmd := command(nil, h.Dir, bin, "-f", h.ConfigPath, "-db")
	// HAProxy dumps its memory pools on SIGQUIT and goes on running: the
	// parent-death signal must end it.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := startCmd(cmd); err != nil {
		return fmt.Errorf("%s: %w", bin, err)
	}
	proc := &process{pid: cmd.Process.Pid, exited: make(chan struct{}), signal: cmd.Process.Signal}
	go func() {
		_ = cmd.Wait()
		close(proc.exited)
	}()
	h.mu.Lock()
	h.proc = proc
	h.mu.Unlock()

	if err := h.waitReady(proc); err != nil {
		_ = h.stop()
		log := readFrom(h.logPath, logStart)
		if strings.Contains(log, "cannot bind socket") || strings.Contains(log, "Address already in use") {
			return fmt.Errorf("%w: %v\nhaproxy log:\n%s", errPortTaken, err, log)
		}
		return fmt.Errorf("%v\nhaproxy log (%s):\n%s\nconfiguration (%s):\n%s", err, h.logPath, log, h.ConfigPath, h.config())
	}
	return nil
}

func (h *HAProxyProc) config() string {
	b, err := os.ReadFile(h.ConfigPath)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return string(b)
}

// waitReady polls the stats page and both runtime API addresses until they
// answer, the process ends, or hapReadyTimeout passes.
func (h *HAProxyProc) waitReady(proc *process) error {
	deadline := time.Now().Add(hapReadyTimeout)
	delay := 5 * time.Millisecond
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-proc.exited:
			return errors.New("haproxy exited before answering")
		default:
		}
		err := hapProbe(client, h.StatsURL, h.SocketPath, h.RuntimeAddr)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("haproxy did not answer within %v: %v", hapReadyTimeout, err)
		}
		select {
		case <-proc.exited:
			return errors.New("haproxy exited before answering")
		case <-time.After(delay):
		}
		delay = min(delay*2, 100*time.Millisecond)
	}
}

func hapProbe(client *http.Client, statsURL, socketPath, runtimeAddr string) error {
	resp, err := client.Get(statsURL)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "# pxname,") {
		return fmt.Errorf("stats page: HTTP %s: %.100q", resp.Status, body)
	}
	for _, a := range []struct{ network, addr string }{{"unix", socketPath}, {"tcp", runtimeAddr}} {
		reply, err := hapCommand(a.network, a.addr, "show info")
		if err != nil {
			return err
		}
		if !strings.Contains(reply, "Name: HAProxy") {
			return fmt.Errorf("runtime API %s: show info: %.100q", a.addr, reply)
		}
	}
	return nil
}

// hapCommand sends one command to the runtime API and reads the reply to
// the end.
func hapCommand(network, addr, cmd string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(conn)
	return string(b), err
}

// Pid returns HAProxy's process id, or 0 once stopped.
func (h *HAProxyProc) Pid() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.proc.id()
}

// Log returns what HAProxy has written to its stdout and stderr so far
// (server state changes are logged there).
func (h *HAProxyProc) Log() string { return readLog(h.logPath, "haproxy log") }

// stop ends HAProxy: SIGTERM (hard stop), then SIGKILL; it waits until the
// process has ended.
func (h *HAProxyProc) stop() error {
	h.mu.Lock()
	proc := h.proc
	h.proc = nil
	h.mu.Unlock()
	if proc == nil {
		return nil
	}
	return proc.terminate("haproxy", signalStep{syscall.SIGTERM, hapStopTimeout}, signalStep{syscall.SIGKILL, 10 * time.Second})
}

func (h *HAProxyProc) cleanup() {
	if err := h.stop(); err != nil {
		h.t.Errorf("testenv: stop HAProxy: %v\nhaproxy log:\n%s", err, h.Log())
		return
	}
	if h.t.Failed() {
		h.t.Logf("testenv: HAProxy log (%s):\n%s", h.logPath, h.Log())
	}
	if err := os.RemoveAll(h.Dir); err != nil {
		h.t.Errorf("testenv: remove HAProxy folder: %v", err)
	}
}

// BackendServer is a tiny HTTP server on 127.0.0.1 that answers every
// request with 200 and "ok": a server for HAProxy's backends that a test can
// take down (Stop) to make HAProxy's check mark it DOWN, and bring back
// (Start) on the same port.
type BackendServer struct {
	// Addr is 127.0.0.1:<port>; it stays the same across Stop and Start.
	Addr string

	t        testing.TB
	requests atomic.Int64
	mu       sync.Mutex
	srv      *http.Server // nil while stopped
	done     chan struct{}
	cleaned  bool
}

// TestHTTPServer starts a BackendServer on a random port of 127.0.0.1;
// t.Cleanup stops it.
func TestHTTPServer(t testing.TB) *BackendServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: listen: %v", err)
	}
	b := &BackendServer{Addr: l.Addr().String(), t: t}
	b.serve(l)
	t.Cleanup(func() {
		b.Stop()
		b.mu.Lock()
		b.cleaned = true
		b.mu.Unlock()
	})
	return b
}

func (b *BackendServer) serve(l net.Listener) {
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b.requests.Add(1)
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "ok\n")
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	done := make(chan struct{})
	b.srv, b.done = srv, done
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
}

// Requests returns how many requests the server has answered, across
// starts (HAProxy's HTTP checks included).
func (b *BackendServer) Requests() int64 { return b.requests.Load() }

// Running reports whether the server is listening.
func (b *BackendServer) Running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.srv != nil
}

// Stop closes the listener and every open connection, and returns once the
// server has stopped; connections to Addr are refused from then on.
// Stopping a stopped server does nothing. Stop may be called from any
// goroutine.
func (b *BackendServer) Stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv == nil {
		return
	}
	_ = b.srv.Close()
	<-b.done
	b.srv, b.done = nil, nil
}

// Start listens on Addr again. Starting a running server does nothing. If
// the port cannot be had again within a few seconds, Start fails the test
// with t.Fatalf, so call it from the goroutine running the test.
func (b *BackendServer) Start() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv != nil {
		return
	}
	if b.cleaned {
		b.t.Fatalf("testenv: BackendServer %s started after cleanup", b.Addr)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := net.Listen("tcp", b.Addr)
		if err == nil {
			b.serve(l)
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("testenv: BackendServer: listen on %s again: %v", b.Addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
