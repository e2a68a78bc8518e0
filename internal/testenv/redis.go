package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Timeouts of the Redis harness.
const (
	redisReadyTimeout  = 20 * time.Second // from start to answering PING
	redisStopTimeout   = 15 * time.Second // SIGTERM, before SIGKILL
	redisKillTimeout   = 10 * time.Second // SIGKILL to reaped
	redisPortTries     = 8                // random ports tried when one is taken
	redisCmdTimeout    = 2 * time.Second  // one command of the harness itself
	sentinelSetupLimit = 30 * time.Second // RedisSentinels: until ready to fail over
	failoverLimit      = 30 * time.Second // Failover: from asking to done
	redisPollInterval  = 50 * time.Millisecond
)

// Debian's package with redis-server, named in messages about a missing
// binary. Sentinels are run as redis-server --sentinel, so the package
// redis-sentinel is not needed.
const redisPackage = "redis-server"

// Settings of the sentinels that RedisSentinels starts.
const (
	sentinelMasterName  = "mymaster"
	sentinelQuorum      = 2
	sentinelDownAfterMs = 1000 // unreachable this long: subjectively down
	sentinelFailoverMs  = 5000 // failover-timeout; a failed one is retried after twice this
)

// sentinelDebug are the SENTINEL DEBUG settings (Redis 7.0 and later) sent
// to every sentinel after each start; they are not kept in its config file.
// The defaults are INFO every 10 s (so a new replica is unknown, and
// SENTINEL FAILOVER answers -NOGOODSLAVE, for up to 10 s), hellos every 2 s
// (sentinels find each other, and a revived old master is turned into a
// replica only after 4 hello periods), is-master-down questions every 1 s,
// and a 30 s TILT should the sentinel's timer ever stall.
//
// Shorter is not always better. A sentinel picks as new master only a
// replica whose last INFO is younger than 3 info periods (master up, as in
// a forced failover) or 5 ping periods (master down; replicas are then asked
// for INFO once a second whatever info-period says). With info-period 100
// or ping-period 200 (tried), a sentinel that falls behind a little on a
// busy machine aborts the failover with -failover-abort-no-good-slave, and
// retries only after twice the failover-timeout.
var sentinelDebug = []any{
	"info-period", 1000,
	"publish-period", 500,
	"ask-period", 200,
	"tilt-period", 3000,
}

// Redis is one redis-server process started by RedisServer (or, as a data
// node or a sentinel, by RedisSentinels).
type Redis struct {
	// Addr is the server's host:port, 127.0.0.1 and Port.
	Addr string
	// Port is the server's TCP port on 127.0.0.1. It stays the same across
	// Kill or Stop and Start.
	Port int

	t        testing.TB
	bin      string
	dir      string // the server's own folder: config, log, dump files
	conf     string // its config file, which the server rewrites
	logPath  string
	sentinel bool
	sentConf string   // a sentinel's sentinel lines for its first config file
	extra    []string // command-line arguments for the first start

	mu      sync.Mutex
	proc    *process // nil while stopped
	started bool     // it started once: conf holds everything
	cleaned bool
}

var redisServers atomic.Int64 // numbers the servers' folders

// RedisServer starts a redis-server for t on a random free port of
// 127.0.0.1, without persistence (save "", appendonly no), in a folder of
// its own, and waits until it answers PING. args are appended to its command
// line, for example "--replicaof", "127.0.0.1", "6380". t.Cleanup stops it
// and removes its folder.
//
// The server reads a config file in its folder, which holds args after the
// first start; so does what Sentinel or CONFIG REWRITE store there, as on a
// real host: Start after a failover brings the node back in the role that
// Sentinel gave it. It runs as the current user (Redis does not mind root).
//
// The program comes from Debian's package redis-server; without it the test
// is skipped, or fails in CI (see Missing).
func RedisServer(t testing.TB, args ...string) *Redis {
	t.Helper()
	return newRedis(t, "", args)
}

// newRedis starts a redis-server, or a sentinel if sentinelConf holds the
// sentinel lines of its config file.
func newRedis(t testing.TB, sentinelConf string, args []string) *Redis {
	t.Helper()
	bin := RequireBinary(t, "redis-server", redisPackage)
	wd, err := workDir()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	dir := filepath.Join(wd, fmt.Sprintf("redis-%d", redisServers.Add(1)))
	if err := mkdirOwned(dir, 0o700, nil); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	sentinel := sentinelConf != ""
	confName := "redis.conf"
	if sentinel {
		confName = "sentinel.conf"
	}
	r := &Redis{
		t:        t,
		bin:      bin,
		dir:      dir,
		conf:     filepath.Join(dir, confName),
		logPath:  filepath.Join(dir, "redis.log"),
		sentinel: sentinel,
		sentConf: sentinelConf,
		extra:    append([]string(nil), args...),
	}
	t.Cleanup(r.cleanup)

	var lastErr error
	for range redisPortTries {
		port, err := freePort()
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		r.Port = port
		r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		lastErr = r.start()
		if lastErr == nil {
			return r
		}
		if !errors.Is(lastErr, errPortTaken) {
			break
		}
	}
	t.Fatalf("testenv: start %s: %v", r.what(), lastErr)
	return nil
}

func (r *Redis) what() string {
	if r.sentinel {
		return "Redis Sentinel"
	}
	return "redis-server"
}

// Kill ends the server at once with SIGKILL, as if its host had crashed, and
// waits until it has ended. What it held in memory is lost. Killing a
// stopped server does nothing. Kill may be called from any goroutine.
func (r *Redis) Kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		return
	}
	proc := r.proc
	r.proc = nil
	if err := killRedis(proc); err != nil {
		r.t.Errorf("testenv: kill %s: %v", r.what(), err)
	}
}

// Stop stops the server cleanly (SIGTERM: it closes its connections and
// exits) and waits until it has ended. Stopping a stopped server does
// nothing. Stop may be called from any goroutine.
func (r *Redis) Stop() {
	if err := r.stop(); err != nil {
		r.t.Errorf("testenv: stop %s: %v", r.what(), err)
	}
}

// Start starts the stopped (or killed) server again, on the same port with
// the same folder and config file, and waits until it answers PING.
// Starting a running server does nothing.
//
// If the server does not come up, Start fails the test with t.Fatalf, so
// call it from the goroutine running the test.
func (r *Redis) Start() {
	r.t.Helper()
	if err := restartOnSamePort(r.start); err != nil {
		r.t.Fatalf("testenv: restart %s: %v", r.what(), err)
	}
}

// Running reports whether the server's process is running.
func (r *Redis) Running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.proc.running()
}

// Pid returns the server's process id, or 0 while stopped.
func (r *Redis) Pid() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.proc.id()
}

// Log returns what the server has logged so far, across starts.
func (r *Redis) Log() string { return readLog(r.logPath, "server log") }

// Client returns a go-redis client to the server, closed by t.Cleanup
// (before the server stops).
func (r *Redis) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func (r *Redis) start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cleaned {
		return errors.New("the server was already cleaned up")
	}
	if r.proc != nil {
		select {
		case <-r.proc.exited:
			r.proc = nil // it died by itself: start it again
		default:
			return nil
		}
	}
	first := !r.started
	if first {
		// Until a start succeeds, the file is ours to write, with the
		// port being tried.
		if err := os.WriteFile(r.conf, []byte(r.confText()), 0o600); err != nil {
			return err
		}
	}

	logFile, err := os.OpenFile(r.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own copy
	logStart, err := logFile.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	fmt.Fprintf(logFile, "--- testenv: starting %s on %s at %s\n", r.what(), r.Addr, time.Now().Format(time.RFC3339Nano))

	args := []string{r.conf}
	if r.sentinel {
		args = append(args, "--sentinel")
	}
	if first {
		args = append(args, r.extra...)
	}
	cmd := command(nil, r.dir, r.bin, args...)
	// Should the test binary die, SIGKILL: Redis has nothing to save, and
	// SIGQUIT (command's choice, for PostgreSQL) would have it dump core,
	// or do nothing if the test binary inherited SIGQUIT ignored.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := startCmd(cmd); err != nil {
		return fmt.Errorf("%s: %w", r.bin, err)
	}
	proc := &process{pid: cmd.Process.Pid, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(proc.exited)
	}()

	err = waitRedisReady(r.Addr, proc.exited, redisReadyTimeout)
	if err == nil && first && !r.sentinel {
		// Keep args in the config file for later starts. (A sentinel
		// rewrites its file by itself.)
		err = redisDo(r.Addr, "CONFIG", "REWRITE")
	}
	if err == nil && r.sentinel {
		err = redisDo(r.Addr, append([]any{"SENTINEL", "DEBUG"}, sentinelDebug...)...)
	}
	if err != nil {
		// Do not leave a half-started server behind.
		_ = killRedis(proc)
		log := readFrom(r.logPath, logStart)
		if strings.Contains(log, "Address already in use") {
			return fmt.Errorf("%w: port %d: %v\nserver log:\n%s", errPortTaken, r.Port, err, log)
		}
		return fmt.Errorf("%v\nserver log (%s):\n%s", err, r.logPath, log)
	}
	r.proc = proc
	r.started = true
	return nil
}

// confText is the config file of the first start. Further options come from
// the command line.
func (r *Redis) confText() string {
	var b strings.Builder
	fmt.Fprintf(&b, "port %d\n", r.Port)
	b.WriteString("bind 127.0.0.1\n")
	b.WriteString("daemonize no\n")
	b.WriteString("logfile \"\"\n") // to stdout, which is the log file
	fmt.Fprintf(&b, "dir %s\n", confQuote(r.dir))
	if r.sentinel {
		b.WriteString(r.sentConf)
		return b.String()
	}
	b.WriteString("save \"\"\n")
	b.WriteString("appendonly no\n")
	// A replica's full sync starts at once (the default waits 5 s for
	// more replicas), and its RDB file is not kept: a node that is
	// killed and started again comes back empty.
	b.WriteString("repl-diskless-sync-delay 0\n")
	b.WriteString("rdb-del-sync-files yes\n")
	return b.String()
}

// confQuote quotes s for a Redis config file.
func confQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range []byte(s) {
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, "\\x%02x", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// waitRedisReady polls addr with PING until it answers PONG, the process
// ends (exited is closed), or timeout passes.
func waitRedisReady(addr string, exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	delay := 5 * time.Millisecond
	var lastErr error
	for {
		select {
		case <-exited:
			return errors.New("redis-server exited before answering PING")
		default:
		}
		// Dial first: go-redis logs every dial that fails.
		var conn net.Conn
		if conn, lastErr = net.DialTimeout("tcp", addr, redisCmdTimeout); lastErr == nil {
			conn.Close()
			if lastErr = redisDo(addr, "PING"); lastErr == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server did not answer PING within %v: %v", timeout, lastErr)
		}
		select {
		case <-exited:
			return errors.New("redis-server exited before answering PING")
		case <-time.After(delay):
		}
		delay = min(delay*2, 100*time.Millisecond)
	}
}

// harnessOptions are the go-redis options of the harness's own short-lived
// connections: one try (the callers poll), short timeouts, RESP2, no extras
// on connect.
func harnessOptions(addr string) *redis.Options {
	return &redis.Options{
		Addr:            addr,
		Protocol:        2,
		MaxRetries:      -1,
		DialerRetries:   1,
		DialTimeout:     redisCmdTimeout,
		ReadTimeout:     redisCmdTimeout,
		WriteTimeout:    redisCmdTimeout,
		PoolSize:        1,
		DisableIdentity: true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	}
}

// redisDo sends one command to addr on a connection of its own.
func redisDo(addr string, args ...any) error {
	c := redis.NewClient(harnessOptions(addr))
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), redisCmdTimeout)
	defer cancel()
	return c.Do(ctx, args...).Err()
}

// redisInfo returns the fields of INFO section at addr.
func redisInfo(addr, section string) (map[string]string, error) {
	c := redis.NewClient(harnessOptions(addr))
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), redisCmdTimeout)
	defer cancel()
	s, err := c.Info(ctx, section).Result()
	if err != nil {
		return nil, err
	}
	fields := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			fields[k] = v
		}
	}
	return fields, nil
}

func (r *Redis) stop() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		return nil
	}
	proc := r.proc
	r.proc = nil
	select {
	case <-proc.exited:
		return nil
	default:
	}
	_ = syscall.Kill(proc.pid, syscall.SIGTERM)
	select {
	case <-proc.exited:
		return nil
	case <-time.After(redisStopTimeout):
	}
	if err := killRedis(proc); err != nil {
		return err
	}
	return fmt.Errorf("redis-server (pid %d) ignored SIGTERM for %v; killed it", proc.pid, redisStopTimeout)
}

// killRedis sends SIGKILL to the server's process group (the server and any
// child it forked to send a replica its data) and waits until the server
// has ended.
func killRedis(proc *process) error {
	select {
	case <-proc.exited:
		return nil
	default:
	}
	// The server leads its own process group (see command).
	if err := syscall.Kill(-proc.pid, syscall.SIGKILL); err != nil {
		_ = syscall.Kill(proc.pid, syscall.SIGKILL)
	}
	select {
	case <-proc.exited:
		return nil
	case <-time.After(redisKillTimeout):
		return fmt.Errorf("redis-server (pid %d) did not end within %v of SIGKILL", proc.pid, redisKillTimeout)
	}
}

func (r *Redis) cleanup() {
	err := r.stop()
	r.mu.Lock()
	r.cleaned = true
	r.mu.Unlock()
	if err != nil {
		r.t.Errorf("testenv: stop %s: %v\nserver log:\n%s", r.what(), err, r.Log())
		return
	}
	if r.t.Failed() {
		if log := r.Log(); log != "" {
			r.t.Logf("testenv: %s log (%s):\n%s", r.what(), r.logPath, log)
		}
	}
	if err := os.RemoveAll(r.dir); err != nil {
		r.t.Errorf("testenv: remove Redis folder: %v", err)
	}
}

// Sentinels is a Redis master, one replica and three sentinels watching
// them, started by RedisSentinels.
type Sentinels struct {
	// MasterName is the name the sentinels know the master by: "mymaster".
	MasterName string
	// Addrs are the three sentinels' host:port.
	Addrs []string
	// Nodes are the data nodes: [0] the first master, [1] the first
	// replica. Which is master now is for the sentinels to say (see
	// Master).
	Nodes []*Redis

	sentinels []*Redis
}

// RedisSentinels starts a master, a replica of it and three sentinels
// (redis-server --sentinel, each with a config file of its own) that watch
// them with quorum 2, down-after-milliseconds 1000 and failover-timeout
// 5000, and sped-up SENTINEL DEBUG periods (INFO every 1 s, hellos every
// 500 ms; see sentinelDebug). It waits until every sentinel knows the replica, in sync and not
// down, and the two other sentinels, so that a failover can start at once.
// t.Cleanup stops the sentinels, then the nodes.
//
// It needs what RedisServer needs, and fails the test if the setup is not
// ready within 30 s.
func RedisSentinels(t testing.TB) *Sentinels {
	t.Helper()
	master := RedisServer(t)
	replica := RedisServer(t, "--replicaof", "127.0.0.1", strconv.Itoa(master.Port))
	s := &Sentinels{MasterName: sentinelMasterName, Nodes: []*Redis{master, replica}}
	monitor := fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d %d\n", s.MasterName, master.Port, sentinelQuorum) +
		fmt.Sprintf("sentinel down-after-milliseconds %s %d\n", s.MasterName, sentinelDownAfterMs) +
		fmt.Sprintf("sentinel failover-timeout %s %d\n", s.MasterName, sentinelFailoverMs) +
		fmt.Sprintf("sentinel parallel-syncs %s 1\n", s.MasterName)
	for range 3 {
		sn := newRedis(t, monitor, nil)
		s.sentinels = append(s.sentinels, sn)
		s.Addrs = append(s.Addrs, sn.Addr)
	}

	deadline := time.Now().Add(sentinelSetupLimit)
	for {
		err := s.ready()
		if err == nil {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: Redis Sentinel setup not ready within %v: %v\n%s", sentinelSetupLimit, err, s.logs())
		}
		time.Sleep(redisPollInterval)
	}
}

// ready reports (as nil) whether every sentinel sees the first master up,
// the other two sentinels, and the replica up and in sync.
func (s *Sentinels) ready() error {
	replicaPort := strconv.Itoa(s.Nodes[1].Port)
	for _, addr := range s.Addrs {
		err := func() error {
			c := redis.NewSentinelClient(harnessOptions(addr))
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), redisCmdTimeout)
			defer cancel()
			m, err := c.Master(ctx, s.MasterName).Result()
			if err != nil {
				return err
			}
			if m["flags"] != "master" || m["num-other-sentinels"] != "2" {
				return fmt.Errorf("master flags %q, num-other-sentinels %q", m["flags"], m["num-other-sentinels"])
			}
			replicas, err := c.Replicas(ctx, s.MasterName).Result()
			if err != nil {
				return err
			}
			for _, r := range replicas {
				if r["port"] == replicaPort && r["flags"] == "slave" && r["master-link-status"] == "ok" {
					return nil
				}
			}
			return fmt.Errorf("replica 127.0.0.1:%s not known, up and in sync: replicas %v", replicaPort, replicas)
		}()
		if err != nil {
			return fmt.Errorf("sentinel %s: %w", addr, err)
		}
	}
	return nil
}

// MasterAddr returns the master's host:port as the first sentinel that
// answers SENTINEL GET-MASTER-ADDR-BY-NAME names it. It fails the test if
// none answers.
func (s *Sentinels) MasterAddr(t testing.TB) string {
	t.Helper()
	var errs []error
	for _, addr := range s.Addrs {
		m, err := s.askMaster(addr)
		if err == nil {
			return m
		}
		errs = append(errs, fmt.Errorf("sentinel %s: %w", addr, err))
	}
	t.Fatalf("testenv: no sentinel names the master: %v", errors.Join(errs...))
	return ""
}

func (s *Sentinels) askMaster(sentinelAddr string) (string, error) {
	c := redis.NewSentinelClient(harnessOptions(sentinelAddr))
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), redisCmdTimeout)
	defer cancel()
	hp, err := c.GetMasterAddrByName(ctx, s.MasterName).Result()
	if err != nil {
		return "", err
	}
	if len(hp) != 2 {
		return "", fmt.Errorf("GET-MASTER-ADDR-BY-NAME answered %q", hp)
	}
	return net.JoinHostPort(hp[0], hp[1]), nil
}

// Master returns the node that the sentinels name master now (see
// MasterAddr).
func (s *Sentinels) Master(t testing.TB) *Redis {
	t.Helper()
	addr := s.MasterAddr(t)
	if n := s.node(addr); n != nil {
		return n
	}
	t.Fatalf("testenv: the sentinels name %s master, which is none of the nodes", addr)
	return nil
}

func (s *Sentinels) node(addr string) *Redis {
	for _, n := range s.Nodes {
		if n.Addr == addr {
			return n
		}
	}
	return nil
}

// Failover forces a failover with SENTINEL FAILOVER, asking again while the
// sentinels answer -NOGOODSLAVE or -INPROG or after the sentinel gave the
// failover up, and waits until every sentinel names the other node master
// and that node says role:master. It returns the new master's address, and
// fails the test if that takes more than 30 s.
func (s *Sentinels) Failover(t testing.TB) string {
	t.Helper()
	old := s.MasterAddr(t)
	deadline := time.Now().Add(failoverLimit)
	var asked string // the sentinel that took the request
	for {
		if asked == "" {
			asked = s.askFailover(t, old, deadline)
		} else if aborted, err := s.failoverAborted(asked, old); err == nil && aborted {
			asked = "" // -failover-abort-...: ask again
			continue
		}
		addr, err := s.newMaster(old)
		if err == nil {
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: after SENTINEL FAILOVER: %v\n%s", err, s.logs())
		}
		time.Sleep(redisPollInterval)
	}
}

// askFailover sends SENTINEL FAILOVER to the first sentinel that takes it
// and returns that sentinel's address, or "" if none did (yet). It fails the
// test on an error other than -NOGOODSLAVE or -INPROG, or when deadline has
// passed.
func (s *Sentinels) askFailover(t testing.TB, old string, deadline time.Time) string {
	t.Helper()
	var errs []error
	for _, addr := range s.Addrs {
		err := s.sendFailover(addr)
		if err == nil {
			return addr
		}
		var redisErr redis.Error
		if errors.As(err, &redisErr) && !isRetryableFailoverError(err) {
			t.Fatalf("testenv: SENTINEL FAILOVER via %s: %v\n%s", addr, err, s.logs())
		}
		errs = append(errs, fmt.Errorf("sentinel %s: %w", addr, err))
	}
	if time.Now().After(deadline) {
		t.Fatalf("testenv: SENTINEL FAILOVER refused for %v: %v\n%s", failoverLimit, errors.Join(errs...), s.logs())
	}
	return ""
}

// failoverAborted reports whether the sentinel at sentinelAddr has no
// failover under way and still has old as master: it gave up.
func (s *Sentinels) failoverAborted(sentinelAddr, old string) (bool, error) {
	c := redis.NewSentinelClient(harnessOptions(sentinelAddr))
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), redisCmdTimeout)
	defer cancel()
	// One reply has both, so a failover that has just ended is not
	// taken for one given up.
	m, err := c.Master(ctx, s.MasterName).Result()
	if err != nil {
		return false, err
	}
	return net.JoinHostPort(m["ip"], m["port"]) == old && !strings.Contains(m["flags"], "failover_in_progress"), nil
}

func isRetryableFailoverError(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "NOGOODSLAVE") || strings.HasPrefix(msg, "INPROG")
}

func (s *Sentinels) sendFailover(sentinelAddr string) error {
	c := redis.NewSentinelClient(harnessOptions(sentinelAddr))
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), redisCmdTimeout)
	defer cancel()
	return c.Failover(ctx, s.MasterName).Err()
}

// WaitNewMaster waits until every sentinel that answers names a master
// other than old (host:port), and that node says role:master, for example
// after the test killed the master; it returns the new master's address.
// It fails the test if that takes longer than timeout.
func (s *Sentinels) WaitNewMaster(t testing.TB, old string, timeout time.Duration) string {
	t.Helper()
	addr, err := s.waitNewMaster(old, time.Now().Add(timeout))
	if err != nil {
		t.Fatalf("testenv: waiting %v for a master other than %s: %v\n%s", timeout, old, err, s.logs())
	}
	return addr
}

func (s *Sentinels) waitNewMaster(old string, deadline time.Time) (string, error) {
	for {
		addr, err := s.newMaster(old)
		if err == nil || time.Now().After(deadline) {
			return addr, err
		}
		time.Sleep(redisPollInterval)
	}
}

// newMaster returns the master that the sentinels agree on if it is not old
// and says role:master.
func (s *Sentinels) newMaster(old string) (string, error) {
	addr, err := s.agreedMaster()
	if err != nil {
		return "", err
	}
	if addr == old {
		return "", fmt.Errorf("the sentinels still name %s", old)
	}
	if s.node(addr) == nil {
		return "", fmt.Errorf("the sentinels name %s, which is none of the nodes", addr)
	}
	info, err := redisInfo(addr, "replication")
	if err != nil {
		return "", fmt.Errorf("the sentinels name %s: INFO replication: %w", addr, err)
	}
	if info["role"] != "master" {
		return "", fmt.Errorf("the sentinels name %s, which says role:%s", addr, info["role"])
	}
	return addr, nil
}

// agreedMaster returns the master that all sentinels that answer name, if
// they agree and a majority answers.
func (s *Sentinels) agreedMaster() (string, error) {
	var answers []string
	var errs []error
	for _, addr := range s.Addrs {
		m, err := s.askMaster(addr)
		if err != nil {
			errs = append(errs, fmt.Errorf("sentinel %s: %w", addr, err))
			continue
		}
		answers = append(answers, m)
	}
	if len(answers) <= len(s.Addrs)/2 {
		return "", fmt.Errorf("only %d of %d sentinels answer: %w", len(answers), len(s.Addrs), errors.Join(errs...))
	}
	for _, a := range answers[1:] {
		if a != answers[0] {
			return "", fmt.Errorf("the sentinels disagree on the master: %v", answers)
		}
	}
	return answers[0], nil
}

// logs returns the end of every process's log, for failure messages.
func (s *Sentinels) logs() string {
	var b strings.Builder
	for i, n := range s.Nodes {
		n.logTail(&b, fmt.Sprintf("node %d", i), 80)
	}
	for i, sn := range s.sentinels {
		sn.logTail(&b, fmt.Sprintf("sentinel %d", i), 80)
	}
	return b.String()
}

// logTail writes the last maxLines lines of the server's log to b, headed
// by name.
func (r *Redis) logTail(b *strings.Builder, name string, maxLines int) {
	lines := strings.Split(strings.TrimRight(r.Log(), "\n"), "\n")
	if len(lines) > maxLines {
		lines = append([]string{fmt.Sprintf("(%d earlier lines left out)", len(lines)-maxLines)}, lines[len(lines)-maxLines:]...)
	}
	fmt.Fprintf(b, "--- %s %s (pid %d) log:\n%s\n", name, r.Addr, r.Pid(), strings.Join(lines, "\n"))
}
