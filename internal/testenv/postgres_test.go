package testenv

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestPostgresStartsAndAnswers(t *testing.T) {
	start := time.Now()
	pg := Postgres(t)
	t.Logf("Postgres(t) took %v (including this binary's initdb, if first)", time.Since(start))

	u, err := url.Parse(pg.URL)
	if err != nil {
		t.Fatalf("URL %q: %v", pg.URL, err)
	}
	if u.Scheme != "postgres" || u.Hostname() != "127.0.0.1" || u.Port() != strconv.Itoa(pg.Port) ||
		u.User.Username() != pg.User || u.Path != "/"+pg.Database || u.Query().Get("sslmode") != "disable" {
		t.Errorf("URL = %q, want postgres://%s@127.0.0.1:%d/%s?sslmode=disable", pg.URL, pg.User, pg.Port, pg.Database)
	}
	if pg.Port == 5432 {
		t.Errorf("server on the standard port 5432")
	}

	if got := pg.Psql(t, "SELECT 1 + 1"); got != "2" {
		t.Errorf("SELECT 1 + 1 = %q, want 2", got)
	}
	got := pg.Psql(t, "CREATE TABLE t (a int, b text); INSERT INTO t VALUES (1, 'x'), (2, NULL); SELECT a, b FROM t ORDER BY a")
	if want := "1|x\n2|"; got != want {
		t.Errorf("rows = %q, want %q", got, want)
	}
	for setting, want := range map[string]string{
		"fsync":              "off",
		"synchronous_commit": "off",
		"full_page_writes":   "off",
		"listen_addresses":   "127.0.0.1",
		"server_encoding":    "UTF8",
		"port":               strconv.Itoa(pg.Port),
		"data_directory":     pg.DataDir,
	} {
		if got := pg.Psql(t, "SHOW "+setting); got != want {
			t.Errorf("SHOW %s = %q, want %q", setting, got, want)
		}
	}

	conn := pg.Conn(t)
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM t").Scan(&n); err != nil || n != 2 {
		t.Errorf("count through Conn = %d, %v; want 2", n, err)
	}
}

func TestPostgresRunsAsPostgresUserWhenRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: the server runs as the current user")
	}
	pg := Postgres(t)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pg.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	acct, _, err := runAsAccount("postgres")
	if err != nil || acct == nil {
		t.Fatalf("postgres account: %v", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if fields := strings.Fields(line); len(fields) >= 3 && fields[0] == "Uid:" {
			if fields[2] != strconv.Itoa(acct.uid) {
				t.Errorf("postmaster's effective uid = %s, want %d (postgres)", fields[2], acct.uid)
			}
			return
		}
	}
	t.Errorf("no Uid line in /proc/%d/status", pg.Pid())
}

func TestPostgresStopAndStart(t *testing.T) {
	pg := Postgres(t)
	pg.Psql(t, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before the outage')")
	port, firstPid := pg.Port, pg.Pid()

	// A connection open across the outage is cut.
	ctx := context.Background()
	open, err := pgconn.Connect(ctx, pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close(ctx)

	pg.Stop()
	if pg.Running() || pg.Pid() != 0 {
		t.Errorf("after Stop: Running() = %v, Pid() = %d; want false, 0", pg.Running(), pg.Pid())
	}
	if processAlive(firstPid) {
		t.Errorf("postmaster %d still alive after Stop", firstPid)
	}
	if _, err := open.Exec(ctx, "SELECT 1").ReadAll(); err == nil {
		t.Errorf("query on a connection opened before Stop succeeded")
	}
	shortCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if c, err := pgconn.Connect(shortCtx, pg.URL); err == nil {
		c.Close(ctx)
		t.Fatalf("connected to a stopped server")
	}
	pg.Stop() // stopping twice does nothing

	start := time.Now()
	pg.Start()
	t.Logf("Start after Stop took %v", time.Since(start))
	pg.Start() // starting twice does nothing
	if pg.Port != port {
		t.Errorf("port changed across Stop/Start: %d, then %d", port, pg.Port)
	}
	if pg.Pid() == 0 || pg.Pid() == firstPid {
		t.Errorf("Pid() after Start = %d (before Stop: %d)", pg.Pid(), firstPid)
	}
	if got := pg.Psql(t, "SELECT v FROM kept"); got != "before the outage" {
		t.Errorf("after restart: SELECT v FROM kept = %q", got)
	}
	pg.Psql(t, "INSERT INTO kept VALUES ('after')")
	if got := pg.Psql(t, "SELECT count(*) FROM kept"); got != "2" {
		t.Errorf("count = %q, want 2", got)
	}
}

func TestPostgresCleanupLeavesNothing(t *testing.T) {
	var pid, backend int
	var dir string
	t.Run("server", func(t *testing.T) {
		pg := Postgres(t)
		pid, dir = pg.Pid(), pg.dir
		// A connection left open: the cleanup must not hang on it, and its
		// backend must go too.
		conn, err := pgconn.Connect(context.Background(), pg.URL)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn // deliberately never closed
		backend = int(conn.PID())
		if !processAlive(pid) || !processAlive(backend) {
			t.Fatalf("postmaster %d or backend %d not running", pid, backend)
		}
	})
	if pid == 0 || backend == 0 {
		t.Fatal("subtest did not record the server")
	}
	if processAlive(pid) {
		t.Errorf("postmaster %d still alive after cleanup", pid)
	}
	if processAlive(backend) {
		t.Errorf("backend %d still alive after cleanup", backend)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("server folder %s still there after cleanup (stat: %v)", dir, err)
	}
}

func TestPostgresParallelServersAreSeparate(t *testing.T) {
	const n = 4
	var mu sync.Mutex
	ports := map[int]bool{}
	for i := range n {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			pg := Postgres(t)
			t.Logf("Postgres(t) took %v", time.Since(start))
			mu.Lock()
			if ports[pg.Port] {
				t.Errorf("port %d given twice", pg.Port)
			}
			ports[pg.Port] = true
			mu.Unlock()
			// Each server is empty: a table made here is not in the others.
			pg.Psql(t, "CREATE TABLE only_mine (i int); INSERT INTO only_mine VALUES ("+strconv.Itoa(i)+")")
			if got := pg.Psql(t, "SELECT i FROM only_mine"); got != strconv.Itoa(i) {
				t.Errorf("only_mine = %q, want %d", got, i)
			}
		})
	}
}

// fakeTB records how Missing ends a test. Its Fatalf and Skipf stop the
// caller with a panic, as the real ones stop it with runtime.Goexit.
type fakeTB struct {
	testing.TB
	how, msg string
}

type stopped struct{}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.how, f.msg = "fatal", fmt.Sprintf(format, args...)
	panic(stopped{})
}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.how, f.msg = "skip", fmt.Sprintf(format, args...)
	panic(stopped{})
}

func runMissing(what, pkg string) (f *fakeTB) {
	f = &fakeTB{}
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(stopped); !ok {
				panic(r)
			}
		}
	}()
	Missing(f, what, pkg)
	return f
}

func TestMissing(t *testing.T) {
	for _, tc := range []struct{ ci, how string }{
		{"true", "fatal"},
		{"1", "fatal"},
		{"", "skip"},
		{"false", "skip"},
	} {
		t.Setenv("CI", tc.ci)
		f := runMissing("program redis-server", "redis-server")
		if f.how != tc.how {
			t.Errorf("CI=%q: Missing ended the test with %q, want %q", tc.ci, f.how, tc.how)
		}
		if !strings.Contains(f.msg, "apt-get install redis-server") || !strings.Contains(f.msg, "program redis-server") {
			t.Errorf("CI=%q: message %q lacks what is missing or the install hint", tc.ci, f.msg)
		}
	}
}

func TestRequireBinary(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "some-tool")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := RequireBinary(t, "some-tool", "some-package", dir); got != prog {
		t.Errorf("RequireBinary found %q, want %q", got, prog)
	}
	t.Setenv("CI", "")
	t.Setenv("PATH", dir)
	f := &fakeTB{}
	func() {
		defer func() { _ = recover() }()
		RequireBinary(f, "no-such-tool-here", "no-such-package")
	}()
	if f.how != "skip" || !strings.Contains(f.msg, "apt-get install no-such-package") {
		t.Errorf("missing program: %s %q", f.how, f.msg)
	}
}

func TestVersionOrder(t *testing.T) {
	var vs [][]int
	for _, s := range []string{"9.6", "15", "10", "16", "9.5"} {
		v, ok := parseVersion(s)
		if !ok {
			t.Fatalf("parseVersion(%q) failed", s)
		}
		vs = append(vs, v)
	}
	highest := vs[0]
	for _, v := range vs[1:] {
		if versionLess(highest, v) {
			highest = v
		}
	}
	if fmt.Sprint(highest) != "[16]" {
		t.Errorf("highest version = %v, want [16]", highest)
	}
	if _, ok := parseVersion("main"); ok {
		t.Errorf("parseVersion(main) succeeded")
	}
}

func TestSweepRemovesOnlyAbandonedFolders(t *testing.T) {
	base := t.TempDir()
	mk := func(name string) string {
		dir := filepath.Join(base, workPrefix+name)
		if err := os.MkdirAll(filepath.Join(dir, "pg-1", "data"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "lock"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	abandonedDir := mk("dead")
	liveDir := mk("live")
	lock, err := os.Open(filepath.Join(liveDir, "lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	// A folder whose binary ended while its server runs on is left alone.
	serverDir := mk("server-left")
	pidFile := filepath.Join(serverDir, "pg-1", "data", "postmaster.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(base, "unrelated")
	if err := os.Mkdir(other, 0o700); err != nil {
		t.Fatal(err)
	}

	sweep(base)

	for dir, want := range map[string]bool{abandonedDir: false, liveDir: true, serverDir: true, other: true} {
		_, err := os.Stat(dir)
		if got := err == nil; got != want {
			t.Errorf("%s exists = %v after sweep, want %v", filepath.Base(dir), got, want)
		}
	}
}
