package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"eventlistener/internal/testenv"
	"eventlistener/sinks/fallback"
)

// binary is the eventlistener built once for the end-to-end tests, which
// drive it as users do: flags, environment, HTTP and signals.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "eventlistener-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "eventlistener")
	build := exec.Command("go", "build", "-race", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "cannot build eventlistener:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer collects a process's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type proc struct {
	cmd     *exec.Cmd
	url     string // the ingest listener
	admin   string // the admin listener's URL
	dataDir string
	out     *syncBuffer
	done    chan struct{}
	err     error
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startServe runs `eventlistener serve` with args on a free port and a
// fresh data dir, and waits until /readyz says ready.
func startServe(t *testing.T, args ...string) *proc {
	t.Helper()
	return startServeIn(t, t.TempDir(), args...)
}

// startServeIn is startServe with a data dir of the test's choosing, to
// start again where a stopped or killed engine left off.
func startServeIn(t *testing.T, dataDir string, args ...string) *proc {
	t.Helper()
	return startBinary(t, binary, dataDir, args...)
}

// startBinary is startServeIn with an eventlistener binary of the test's
// choosing.
func startBinary(t *testing.T, binary, dataDir string, args ...string) *proc {
	t.Helper()
	return startBinaryAt(t, binary, dataDir, freeAddr(t), args...)
}

// startServeAt is startServeIn on an ingest address of the test's choosing,
// to start a node again where a load balancer expects it.
func startServeAt(t *testing.T, dataDir, addr string, args ...string) *proc {
	t.Helper()
	return startBinaryAt(t, binary, dataDir, addr, args...)
}

func startBinaryAt(t testing.TB, binary, dataDir, addr string, args ...string) *proc {
	t.Helper()
	adminAddr := freeAddr(t)
	p := &proc{url: "http://" + addr, admin: "http://" + adminAddr, dataDir: dataDir, out: &syncBuffer{}, done: make(chan struct{})}
	args = append([]string{"serve", "--http-addr", addr, "--admin-addr", adminAddr, "--data-dir", p.dataDir, "--log-level", "debug"}, args...)
	p.cmd = exec.Command(binary, args...)
	p.cmd.Env = cleanEnv()
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("eventlistener output:\n%s", p.out.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(p.url + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("eventlistener exited at start: %v\n%s", p.err, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("eventlistener not ready after 30s\n%s", p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cleanEnv keeps the stores' environment variables of the machine out of
// the child, so only the flags a test gives count.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "DATABASE_URL" || k == "ELASTICSEARCH_URL" || strings.HasPrefix(k, "EVENTLISTENER_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("eventlistener did not stop within 60s of SIGTERM")
	}
	if p.err != nil {
		t.Fatalf("eventlistener exited with %v after SIGTERM\n%s", p.err, p.out.String())
	}
}

type response struct {
	Status   int
	Accepted int      `json:"accepted"`
	IDs      []string `json:"ids"`
	Error    string   `json:"error"`
	Index    *int     `json:"index"`
	Header   http.Header
}

// post sends body to /v1/events with the given headers ("Name: value").
func (p *proc) post(t *testing.T, body []byte, headers ...string) response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, p.url+"/v1/events", bytes.NewReader(body))
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := response{Status: res.StatusCode, Header: res.Header}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("answer %d is not JSON: %q", res.StatusCode, raw)
	}
	return r
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

// waitRows polls until the events table holds want rows (or fails).
func waitRows(t *testing.T, pg *testenv.PG, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	got := ""
	for time.Now().Before(deadline) {
		// The engine creates the table in the background.
		if pg.Psql(t, "SELECT to_regclass('events') IS NOT NULL") != "t" {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		got = pg.Psql(t, "SELECT count(*) FROM events")
		if got == strconv.Itoa(want) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("events table holds %s rows, want %d", got, want)
}

// fallbackRecords reads every fallback record under dir (not replayed ones).
func fallbackRecords(t *testing.T, dir string) []fallback.Record {
	t.Helper()
	files, err := fallback.Files([]string{dir})
	if errors.Is(err, fs.ErrNotExist) {
		return nil // no fallback log was ever written
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []fallback.Record
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		recs, bad, err := fallback.Read(fh)
		fh.Close()
		if err != nil || len(bad) > 0 {
			t.Fatalf("fallback file %s: %v %v", f, err, bad)
		}
		out = append(out, recs...)
	}
	return out
}

// runCLI runs eventlistener with args and returns its output and exit code.
func runCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

// sourceStatus decodes the status of the source named name from a GET
// /v1/node body into v, failing the test if there is none.
func sourceStatus(t testing.TB, node []byte, name string, v any) {
	t.Helper()
	var n struct {
		Sources []struct {
			Name   string
			Status json.RawMessage
		}
	}
	if err := json.Unmarshal(node, &n); err != nil {
		t.Fatalf("/v1/node: %v: %s", err, node)
	}
	for _, s := range n.Sources {
		if s.Name == name {
			if err := json.Unmarshal(s.Status, v); err != nil {
				t.Fatalf("/v1/node: source %s: %v: %s", name, err, s.Status)
			}
			return
		}
	}
	t.Fatalf("/v1/node has no source %q: %s", name, node)
}

// getNode is GET /v1/node on p's admin listener.
func getNode(t testing.TB, p *proc) []byte {
	t.Helper()
	res, err := http.Get(p.admin + "/v1/node")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
