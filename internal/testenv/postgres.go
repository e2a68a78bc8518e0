package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
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

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Timeouts of the PostgreSQL harness.
const (
	pgReadyTimeout = 30 * time.Second // from start to accepting connections
	pgStopTimeout  = 30 * time.Second // fast shutdown, before SIGQUIT
	pgPortTries    = 8                // random ports tried when one is taken
)

// Debian's server package, named in messages about missing binaries.
const pgPackage = "postgresql"

// pgDebianRoot is where Debian installs each PostgreSQL major version's
// programs, in <version>/bin.
const pgDebianRoot = "/usr/lib/postgresql"

// PG is a PostgreSQL server started for one test by Postgres.
//
// Its superuser is User, with trust authentication: no password.
type PG struct {
	// URL connects to Database as User over TCP, for example
	// postgres://postgres@127.0.0.1:41234/postgres?sslmode=disable.
	URL string
	// Port is the server's TCP port on 127.0.0.1. It stays the same across
	// Stop and Start.
	Port int
	// User is the superuser's name.
	User string
	// Database is the database that URL names.
	Database string
	// DataDir is the server's data folder.
	DataDir string

	t       testing.TB
	bin     pgBinaries
	acct    *account
	dir     string // the server's own folder: DataDir and the log
	logPath string

	mu      sync.Mutex
	cmd     *process // nil while stopped
	cleaned bool
}

type pgBinaries struct {
	dir      string // folder holding initdb and postgres
	initdb   string
	postgres string
}

var pgBin struct {
	once sync.Once
	bin  pgBinaries
	ok   bool
}

// findPgBinaries picks the highest PostgreSQL version in Debian's folder that
// has both initdb and postgres, else the ones on PATH.
func findPgBinaries() (pgBinaries, bool) {
	pgBin.once.Do(func() {
		entries, _ := os.ReadDir(pgDebianRoot)
		type candidate struct {
			version []int
			dir     string
		}
		var found []candidate
		for _, e := range entries {
			v, ok := parseVersion(e.Name())
			if !ok {
				continue
			}
			dir := filepath.Join(pgDebianRoot, e.Name(), "bin")
			if isExecutable(filepath.Join(dir, "initdb")) && isExecutable(filepath.Join(dir, "postgres")) {
				found = append(found, candidate{v, dir})
			}
		}
		sort.Slice(found, func(i, j int) bool { return versionLess(found[j].version, found[i].version) })
		if len(found) > 0 {
			dir := found[0].dir
			pgBin.bin = pgBinaries{dir: dir, initdb: filepath.Join(dir, "initdb"), postgres: filepath.Join(dir, "postgres")}
			pgBin.ok = true
			return
		}
		initdb, ok1 := lookBinary("initdb")
		postgres, ok2 := lookBinary("postgres")
		if ok1 && ok2 {
			pgBin.bin = pgBinaries{dir: filepath.Dir(postgres), initdb: initdb, postgres: postgres}
			pgBin.ok = true
		}
	})
	return pgBin.bin, pgBin.ok
}

// parseVersion parses "15" or "9.6" into its numbers.
func parseVersion(s string) ([]int, bool) {
	var v []int
	for _, part := range strings.Split(s, ".") {
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 {
			return nil, false
		}
		v = append(v, n)
	}
	return v, len(v) > 0
}

func versionLess(a, b []int) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return len(a) < len(b)
}

// The template data folder, made by initdb once per test binary and copied
// for each server.
var pgTemplate struct {
	once sync.Once
	dir  string
	err  error
}

func makePgTemplate(bin pgBinaries, acct *account) (string, error) {
	pgTemplate.once.Do(func() {
		pgTemplate.dir, pgTemplate.err = initdb(bin, acct)
	})
	return pgTemplate.dir, pgTemplate.err
}

func initdb(bin pgBinaries, acct *account) (string, error) {
	wd, err := workDir()
	if err != nil {
		return "", fmt.Errorf("testenv work folder: %w", err)
	}
	dir := filepath.Join(wd, "pg-template")
	if err := mkdirOwned(dir, 0o700, acct); err != nil {
		return "", err
	}
	cmd := command(acct, dir, bin.initdb,
		"-D", dir,
		"-U", "postgres",
		"--auth=trust",
		"--no-sync",
		"--encoding=UTF8",
		"--locale=C",
	)
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := runCmd(cmd); err != nil {
		return "", fmt.Errorf("%s: %w\n%s", bin.initdb, err, out.String())
	}
	return dir, nil
}

var pgServers atomic.Int64 // numbers the servers' folders

// Postgres starts a fresh PostgreSQL server for t, with an empty database, on
// a random free port of 127.0.0.1, and waits until it accepts connections.
// t.Cleanup stops it and removes its folder.
//
// The server comes from Debian's package postgresql (the highest version in
// /usr/lib/postgresql), else from PATH; without it the test is skipped, or
// fails in CI (see Missing). It runs with fsync off: what it stores is lost
// if the machine crashes, which tests do not mind.
func Postgres(t testing.TB) *PG {
	t.Helper()
	bin, ok := findPgBinaries()
	if !ok {
		Missing(t, "PostgreSQL server programs initdb and postgres (in "+pgDebianRoot+"/<version>/bin or on PATH)", pgPackage)
	}
	acct, ok, err := runAsAccount("postgres")
	if err != nil {
		t.Fatalf("testenv: look up system user postgres: %v", err)
	}
	if !ok {
		Missing(t, "system user postgres (to run PostgreSQL as, since the tests run as root)", pgPackage)
	}
	template, err := makePgTemplate(bin, acct)
	if err != nil {
		t.Fatalf("testenv: make PostgreSQL template: %v", err)
	}
	wd, err := workDir()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}

	dir := filepath.Join(wd, fmt.Sprintf("pg-%d", pgServers.Add(1)))
	if err := mkdirOwned(dir, 0o711, nil); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	p := &PG{
		User:     "postgres",
		Database: "postgres",
		DataDir:  filepath.Join(dir, "data"),
		t:        t,
		bin:      bin,
		acct:     acct,
		dir:      dir,
		logPath:  filepath.Join(dir, "postgres.log"),
	}
	t.Cleanup(p.cleanup)
	if err := copyTree(template, p.DataDir, acct); err != nil {
		t.Fatalf("testenv: copy PostgreSQL template: %v", err)
	}

	var lastErr error
	for range pgPortTries {
		port, err := freePort()
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		p.setPort(port)
		lastErr = p.start()
		if lastErr == nil {
			return p
		}
		if !errors.Is(lastErr, errPortTaken) {
			break
		}
	}
	t.Fatalf("testenv: start PostgreSQL: %v", lastErr)
	return nil
}

func (p *PG) setPort(port int) {
	p.Port = port
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(p.User),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Path:     "/" + p.Database,
		RawQuery: "sslmode=disable",
	}
	p.URL = u.String()
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var errPortTaken = errors.New("port taken")

// Stop stops the server now, with a fast shutdown (open connections are cut),
// and waits for it to end. The data stay; Start brings the server back.
// Stopping a stopped server does nothing. Stop may be called from any
// goroutine.
func (p *PG) Stop() {
	if err := p.stop(); err != nil {
		p.t.Errorf("testenv: stop PostgreSQL: %v", err)
	}
}

// Start starts the stopped server again, with the same data folder on the
// same port, and waits until it accepts connections. Starting a running
// server does nothing.
//
// If the server does not come up, Start fails the test with t.Fatalf, so
// call it from the goroutine running the test.
func (p *PG) Start() {
	p.t.Helper()
	if err := restartOnSamePort(p.start); err != nil {
		p.t.Fatalf("testenv: restart PostgreSQL: %v", err)
	}
}

// Running reports whether the server's process is running (it may not be
// accepting connections yet, or any more).
func (p *PG) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.running()
}

// Pid returns the process id of the server's postmaster, or 0 while stopped.
func (p *PG) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.id()
}

// Log returns what the server has logged so far, across starts.
func (p *PG) Log() string { return readLog(p.logPath, "server log") }

func (p *PG) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cleaned {
		return errors.New("the server was already cleaned up")
	}
	if p.cmd != nil {
		select {
		case <-p.cmd.exited:
			p.cmd = nil // it died by itself: start it again
		default:
			return nil
		}
	}

	logFile, err := os.OpenFile(p.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own copy
	logStart, err := logFile.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	fmt.Fprintf(logFile, "--- testenv: starting postgres on 127.0.0.1:%d at %s\n", p.Port, time.Now().Format(time.RFC3339Nano))

	args := []string{
		"-D", p.DataDir,
		"-p", strconv.Itoa(p.Port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + p.socketDir(),
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "shared_buffers=32MB",
		"-c", "max_connections=100",
	}
	cmd := command(p.acct, p.DataDir, p.bin.postgres, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := startCmd(cmd); err != nil {
		return fmt.Errorf("%s: %w", p.bin.postgres, err)
	}
	proc := &process{pid: cmd.Process.Pid, exited: make(chan struct{}), signal: cmd.Process.Signal}
	go func() {
		proc.waitErr = cmd.Wait()
		close(proc.exited)
	}()
	p.cmd = proc

	if err := waitReady(p.URL, proc.exited, pgReadyTimeout); err != nil {
		// Do not leave a half-started server behind.
		_ = stopProcess(proc, pgStopTimeout)
		p.cmd = nil
		log := readFrom(p.logPath, logStart)
		if strings.Contains(log, "could not bind") || strings.Contains(log, "could not create any TCP/IP sockets") {
			return fmt.Errorf("%w: port %d: %v\nserver log:\n%s", errPortTaken, p.Port, err, log)
		}
		return fmt.Errorf("%v\nserver log (%s):\n%s", err, p.logPath, log)
	}
	return nil
}

// socketDir is where the server puts its Unix socket: its data folder, or
// nowhere (TCP only) when that path is too long for a socket address.
func (p *PG) socketDir() string {
	const maxSocketPath = 107
	if len(filepath.Join(p.DataDir, ".s.PGSQL."+strconv.Itoa(p.Port)+".lock")) >= maxSocketPath {
		return ""
	}
	return p.DataDir
}

// waitReady polls url until a connection answers a query, the process ends
// (exited is closed), or timeout passes.
func waitReady(url string, exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	delay := 5 * time.Millisecond
	var lastErr error
	for {
		select {
		case <-exited:
			return errors.New("postgres exited before accepting connections")
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		lastErr = ping(ctx, url)
		cancel()
		if lastErr == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not accept connections within %v: %v", timeout, lastErr)
		}
		select {
		case <-exited:
			return errors.New("postgres exited before accepting connections")
		case <-time.After(delay):
		}
		delay = min(delay*2, 100*time.Millisecond)
	}
}

func ping(ctx context.Context, url string) error {
	conn, err := pgconn.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "SELECT 1").ReadAll()
	return err
}

func readFrom(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no server log: %v)", err)
	}
	if offset > int64(len(b)) {
		offset = 0
	}
	return string(b[offset:])
}

func (p *PG) stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return nil
	}
	proc := p.cmd
	p.cmd = nil
	return stopProcess(proc, pgStopTimeout)
}

// stopProcess asks the postmaster for a fast shutdown (SIGINT), then for an
// immediate one (SIGQUIT), then kills it, and waits until it has ended.
func stopProcess(proc *process, timeout time.Duration) error {
	// SIGINT is PostgreSQL's fast shutdown; SIGQUIT its immediate one.
	return proc.terminate("postgres", signalStep{syscall.SIGINT, timeout},
		signalStep{syscall.SIGQUIT, 10 * time.Second}, signalStep{syscall.SIGKILL, 10 * time.Second})
}

func (p *PG) cleanup() {
	err := p.stop()
	p.mu.Lock()
	p.cleaned = true
	p.mu.Unlock()
	if err != nil {
		p.t.Errorf("testenv: stop PostgreSQL: %v\nserver log:\n%s", err, p.Log())
		return
	}
	if p.t.Failed() {
		if log := p.Log(); log != "" {
			p.t.Logf("testenv: PostgreSQL server log (%s):\n%s", p.logPath, log)
		}
	}
	if err := os.RemoveAll(p.dir); err != nil {
		p.t.Errorf("testenv: remove PostgreSQL folder: %v", err)
	}
}

// Psql runs sql (one or more statements) on Database as User and returns the
// rows of all results the way psql -At prints them: one line per row, fields
// separated by "|", NULL as an empty field, without a trailing newline. It
// fails the test if sql fails; call it from the goroutine running the test.
func (p *PG) Psql(t testing.TB, sql string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, p.URL)
	if err != nil {
		t.Fatalf("testenv: connect to %s: %v", p.URL, err)
	}
	defer conn.Close(context.Background())
	results, err := conn.Exec(ctx, sql).ReadAll()
	if err != nil {
		t.Fatalf("testenv: %s: %v", sql, err)
	}
	var lines []string
	for _, r := range results {
		if r.Err != nil {
			t.Fatalf("testenv: %s: %v", sql, r.Err)
		}
		for _, row := range r.Rows {
			fields := make([]string, len(row))
			for i, f := range row {
				fields[i] = string(f)
			}
			lines = append(lines, strings.Join(fields, "|"))
		}
	}
	return strings.Join(lines, "\n")
}

// Conn opens a connection to the server for t, closed by t.Cleanup (before
// the server stops). It fails the test if it cannot connect.
func (p *PG) Conn(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.URL)
	if err != nil {
		t.Fatalf("testenv: connect to %s: %v", p.URL, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
