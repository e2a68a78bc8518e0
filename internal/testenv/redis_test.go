package testenv

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestRedisServerAnswers(t *testing.T) {
	t.Parallel()
	start := time.Now()
	r := RedisServer(t)
	t.Logf("RedisServer(t) took %v", time.Since(start))
	if r.Addr != "127.0.0.1:"+strconv.Itoa(r.Port) {
		t.Errorf("Addr = %q, want 127.0.0.1:%d", r.Addr, r.Port)
	}
	if r.Port == 6379 {
		t.Errorf("server on the standard port 6379")
	}

	ctx := context.Background()
	c := r.Client(t)
	if got, err := c.Ping(ctx).Result(); err != nil || got != "PONG" {
		t.Fatalf("PING = %q, %v", got, err)
	}
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Errorf("GET k = %q, %v; want v", got, err)
	}
	for param, want := range map[string]string{
		"save":       "",
		"appendonly": "no",
		"bind":       "127.0.0.1",
		"port":       strconv.Itoa(r.Port),
		"dir":        r.dir,
	} {
		got, err := c.ConfigGet(ctx, param).Result()
		if err != nil || got[param] != want {
			t.Errorf("CONFIG GET %s = %q, %v; want %q", param, got[param], err, want)
		}
	}
}

func TestRedisKillStopStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := RedisServer(t)
	c := r.Client(t)
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	port, pid := r.Port, r.Pid()

	r.Kill()
	if r.Running() || r.Pid() != 0 {
		t.Errorf("after Kill: Running() = %v, Pid() = %d; want false, 0", r.Running(), r.Pid())
	}
	if processAlive(pid) {
		t.Errorf("redis-server %d still alive after Kill", pid)
	}
	if conn, err := net.DialTimeout("tcp", r.Addr, time.Second); err == nil {
		conn.Close()
		t.Fatalf("connected to a killed server")
	}
	r.Kill() // killing twice does nothing
	r.Stop() // so does stopping a killed server

	start := time.Now()
	r.Start()
	t.Logf("Start after Kill took %v", time.Since(start))
	r.Start() // starting twice does nothing
	if r.Port != port {
		t.Errorf("port changed across Kill/Start: %d, then %d", port, r.Port)
	}
	if r.Pid() == 0 || r.Pid() == pid {
		t.Errorf("Pid() after Start = %d (before Kill: %d)", r.Pid(), pid)
	}
	// The same client reconnects; without persistence the data are gone.
	if got, err := c.Get(ctx, "k").Result(); !errors.Is(err, redis.Nil) {
		t.Errorf("GET k after Kill and Start = %q, %v; want nil (no persistence)", got, err)
	}
	if err := c.Set(ctx, "k", "again", 0).Err(); err != nil {
		t.Errorf("SET after Start: %v", err)
	}

	pid = r.Pid()
	r.Stop()
	if processAlive(pid) {
		t.Errorf("redis-server %d still alive after Stop", pid)
	}
	r.Stop()
	r.Start()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Errorf("PING after Stop and Start: %v", err)
	}
	if log := r.Log(); !strings.Contains(log, "Ready to accept connections") {
		t.Errorf("server log lacks its start:\n%s", log)
	}
}

func TestRedisReplicaOfArgKeptAcrossRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	master := RedisServer(t)
	replica := RedisServer(t, "--replicaof", "127.0.0.1", strconv.Itoa(master.Port))
	if err := master.Client(t).Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	rc := replica.Client(t)
	waitFor(t, 10*time.Second, "the replica to have k", func() error {
		v, err := rc.Get(ctx, "k").Result()
		if err == nil && v != "v" {
			err = errors.New("k = " + v)
		}
		return err
	})
	replica.Kill()
	replica.Start() // from its config file, which holds replicaof
	waitFor(t, 10*time.Second, "the restarted replica to have k again", func() error {
		_, err := rc.Get(ctx, "k").Result()
		return err
	})
	if role, err := redisInfo(replica.Addr, "replication"); err != nil || role["role"] != "slave" {
		t.Errorf("restarted replica: role %q, %v", role["role"], err)
	}
}

func TestRedisSentinelsForcedFailover(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	start := time.Now()
	s := RedisSentinels(t)
	t.Logf("RedisSentinels(t) took %v (2 nodes, 3 sentinels, until ready to fail over)", time.Since(start))

	if len(s.Addrs) != 3 || len(s.Nodes) != 2 || s.MasterName != "mymaster" {
		t.Fatalf("Sentinels = %+v", s)
	}
	first, second := s.Nodes[0], s.Nodes[1]
	if got := s.MasterAddr(t); got != first.Addr {
		t.Fatalf("MasterAddr = %s, want the first node %s", got, first.Addr)
	}
	if s.Master(t) != first {
		t.Fatalf("Master is not Nodes[0]")
	}
	fc0 := first.Client(t)
	if err := fc0.Set(ctx, "before", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// Replication is asynchronous: let the replica have it first.
	if n, err := fc0.Wait(ctx, 1, 5*time.Second).Result(); err != nil || n != 1 {
		t.Fatalf("WAIT 1 5000 = %d, %v; want 1", n, err)
	}

	start = time.Now()
	addr := s.Failover(t)
	t.Logf("Failover(t) took %v", time.Since(start))
	if addr != second.Addr {
		t.Fatalf("Failover returned %s, want the replica %s", addr, second.Addr)
	}
	if s.Master(t) != second {
		t.Errorf("Master after Failover is not Nodes[1]")
	}
	c := second.Client(t)
	if err := c.Set(ctx, "after", "2", 0).Err(); err != nil {
		t.Errorf("SET on the new master: %v", err)
	}
	if v, err := c.Get(ctx, "before").Result(); err != nil || v != "1" {
		t.Errorf("new master: GET before = %q, %v; want the replicated 1", v, err)
	}

	// A client through the sentinels, as the service uses them, writes to
	// the new master.
	fc := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.MasterName, SentinelAddrs: s.Addrs})
	defer fc.Close()
	if err := fc.Set(ctx, "via-sentinel", "3", 0).Err(); err != nil {
		t.Errorf("SET through the sentinels: %v", err)
	}
	if v, err := c.Get(ctx, "via-sentinel").Result(); err != nil || v != "3" {
		t.Errorf("GET via-sentinel on the new master = %q, %v", v, err)
	}

	// The old master, still running, is turned into a replica of the new.
	waitFor(t, 15*time.Second, "the old master to become a replica", func() error {
		info, err := redisInfo(first.Addr, "replication")
		if err == nil && (info["role"] != "slave" || info["master_port"] != strconv.Itoa(second.Port)) {
			err = errors.New("role " + info["role"] + ", master_port " + info["master_port"])
		}
		return err
	})
	t.Logf("old master was a replica of the new %v after Failover began", time.Since(start))
}

func TestRedisSentinelsMasterKilled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := RedisSentinels(t)
	old := s.MasterAddr(t)
	if old != s.Nodes[0].Addr {
		t.Fatalf("MasterAddr = %s, want %s", old, s.Nodes[0].Addr)
	}

	start := time.Now()
	s.Nodes[0].Kill()
	addr := s.WaitNewMaster(t, old, 15*time.Second)
	t.Logf("new master %s %v after the master was killed", addr, time.Since(start))
	if time.Since(start) > 5*time.Second { // usually 2-2.5 s: show why
		t.Log(s.logs())
	}
	if addr != s.Nodes[1].Addr {
		t.Fatalf("new master %s, want the replica %s", addr, s.Nodes[1].Addr)
	}
	if err := s.Nodes[1].Client(t).Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Errorf("SET on the new master: %v", err)
	}

	// The killed node can be started again. (Sentinel then turns it into
	// a replica, in its own time: seconds, more on a loaded machine; that is
	// Redis's behaviour, not the harness's, so it is not waited for here.)
	s.Nodes[0].Start()
	if err := s.Nodes[0].Client(t).Ping(ctx).Err(); err != nil {
		t.Errorf("PING the revived node: %v", err)
	}
}

func TestRedisSentinelsCleanupLeavesNothing(t *testing.T) {
	t.Parallel()
	var pids []int
	var dirs []string
	t.Run("setup", func(t *testing.T) {
		s := RedisSentinels(t)
		for _, r := range append(append([]*Redis(nil), s.Nodes...), s.sentinels...) {
			pids = append(pids, r.Pid())
			dirs = append(dirs, r.dir)
		}
		// A client left open must not hold up the cleanup.
		_ = s.Nodes[0].Client(t).Ping(context.Background())
	})
	if len(pids) != 5 {
		t.Fatalf("recorded %d processes, want 5", len(pids))
	}
	for i, pid := range pids {
		if pid == 0 || processAlive(pid) {
			t.Errorf("process %d (pid %d) still alive after cleanup", i, pid)
		}
	}
	for _, dir := range dirs {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("folder %s still there after cleanup (stat: %v)", dir, err)
		}
	}
}

func TestConfQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/tmp/a b":  `"/tmp/a b"`,
		`x"y\z`:     `"x\"y\\z"`,
		"tab\there": `"tab\x09here"`,
	} {
		if got := confQuote(in); got != want {
			t.Errorf("confQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// waitFor polls check until it returns nil, failing the test with its last
// error after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s: %v", timeout, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
