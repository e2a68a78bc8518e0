package testenv

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Settings of the cluster that RedisCluster starts.
const (
	// clusterNodeTimeout is cluster-node-timeout: a master unreachable this
	// long is failed over to its replica (the default is 15 s).
	clusterNodeTimeout = 1000 * time.Millisecond
	clusterSetupLimit  = 60 * time.Second // RedisCluster: until every slot is served and every replica in sync
	clusterCreateLimit = 30 * time.Second // redis-cli --cluster create itself
)

// Cluster is a Redis Cluster of three masters, each with one replica,
// started by RedisCluster.
type Cluster struct {
	// Nodes are the six servers: [0..2] the first masters, [3..5] their
	// first replicas (as redis-cli --cluster create paired them). Which is
	// master now is for the cluster to say (see MasterOf).
	Nodes []*Redis
	// Addrs are every node's host:port, the seeds a client starts from.
	Addrs []string
}

// RedisCluster starts six redis-server processes with cluster-enabled yes
// (each on random free ports for clients and the cluster bus, in a folder
// of its own, without persistence, cluster-node-timeout 1 s), joins them
// with redis-cli --cluster create into three masters with one replica each,
// and waits until every node says cluster_state:ok and every replica is in
// sync. t.Cleanup stops them.
//
// It needs redis-server and redis-cli (Debian's redis-server and
// redis-tools), and fails the test if the cluster is not ready within 60 s.
func RedisCluster(t testing.TB) *Cluster {
	t.Helper()
	cli := RequireBinary(t, "redis-cli", "redis-tools")
	c := &Cluster{}
	for range 6 {
		bus, err := freePort()
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		n := RedisServer(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.Itoa(int(clusterNodeTimeout.Milliseconds())),
			"--cluster-port", strconv.Itoa(bus),
			// A replica of a master that was down long does take over.
			"--cluster-replica-validity-factor", "0")
		c.Nodes = append(c.Nodes, n)
		c.Addrs = append(c.Addrs, n.Addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterCreateLimit)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("testenv: redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(clusterSetupLimit)
	for {
		err := c.ready()
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: Redis Cluster not ready within %v: %v\n%s", clusterSetupLimit, err, c.logs())
		}
		time.Sleep(redisPollInterval)
	}
}

// ready reports (as nil) whether every running node says cluster_state:ok
// and knows every slot served, and every replica is linked to its master.
func (c *Cluster) ready() error {
	masters := 0
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		info, err := redisClusterInfo(n.Addr)
		if err != nil {
			return fmt.Errorf("%s: CLUSTER INFO: %w", n.Addr, err)
		}
		if info["cluster_state"] != "ok" || info["cluster_slots_ok"] != "16384" {
			return fmt.Errorf("%s: cluster_state %s, slots ok %s", n.Addr, info["cluster_state"], info["cluster_slots_ok"])
		}
		repl, err := redisInfo(n.Addr, "replication")
		if err != nil {
			return fmt.Errorf("%s: INFO replication: %w", n.Addr, err)
		}
		switch repl["role"] {
		case "master":
			masters++
		case "slave":
			if repl["master_link_status"] != "up" {
				return fmt.Errorf("%s: replica's master link is %s", n.Addr, repl["master_link_status"])
			}
		}
	}
	if masters != 3 {
		return fmt.Errorf("%d masters, want 3", masters)
	}
	return nil
}

func redisClusterInfo(addr string) (map[string]string, error) {
	rc := redis.NewClient(harnessOptions(addr))
	defer rc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), redisCmdTimeout)
	defer cancel()
	s, err := rc.ClusterInfo(ctx).Result()
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

// Client returns a cluster client seeded with every node, closed by
// t.Cleanup. It reloads the slot map when it is older than a second when
// used (go-redis does not reload it when a master it knows refuses
// connections, go-redis issue 3979; its default is once a minute).
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs, ClusterStateReloadInterval: time.Second})
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// MasterOf returns the node that serves key's slot now, as the first
// running node that answers CLUSTER SHARDS sees it.
func (c *Cluster) MasterOf(t testing.TB, key string) *Redis {
	t.Helper()
	addr, err := c.masterOf(key)
	if err != nil {
		t.Fatalf("testenv: master of %q: %v", key, err)
	}
	for _, n := range c.Nodes {
		if n.Addr == addr {
			return n
		}
	}
	t.Fatalf("testenv: the cluster names %s master of %q, which is none of the nodes", addr, key)
	return nil
}

func (c *Cluster) masterOf(key string) (string, error) {
	var last error
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		addr, err := func() (string, error) {
			rc := redis.NewClient(harnessOptions(n.Addr))
			defer rc.Close()
			ctx, cancel := context.WithTimeout(context.Background(), redisCmdTimeout)
			defer cancel()
			slot, err := rc.ClusterKeySlot(ctx, key).Result()
			if err != nil {
				return "", err
			}
			slots, err := rc.ClusterSlots(ctx).Result()
			if err != nil {
				return "", err
			}
			for _, s := range slots {
				if int64(s.Start) <= slot && slot <= int64(s.End) && len(s.Nodes) > 0 {
					return s.Nodes[0].Addr, nil
				}
			}
			return "", fmt.Errorf("no node serves slot %d", slot)
		}()
		if err == nil {
			return addr, nil
		}
		last = fmt.Errorf("%s: %w", n.Addr, err)
	}
	return "", fmt.Errorf("no running node answers: %v", last)
}

// WaitPromoted waits, after the test killed or stopped old (a master),
// until another node serves key's slot as master and every running node
// says cluster_state:ok; it returns the new master. It fails the test if
// that takes longer than timeout.
func (c *Cluster) WaitPromoted(t testing.TB, old *Redis, key string, timeout time.Duration) *Redis {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		addr, err := c.masterOf(key)
		if err == nil && addr != old.Addr {
			if err = c.stateOK(); err == nil {
				for _, n := range c.Nodes {
					if n.Addr == addr {
						return n
					}
				}
			}
		} else if err == nil {
			err = fmt.Errorf("%s still serves %q", addr, key)
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: no replica took over from %s within %v: %v\n%s", old.Addr, timeout, err, c.logs())
		}
		time.Sleep(redisPollInterval)
	}
}

// stateOK reports (as nil) whether every running node says cluster_state:ok.
func (c *Cluster) stateOK() error {
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		info, err := redisClusterInfo(n.Addr)
		if err != nil {
			return fmt.Errorf("%s: %w", n.Addr, err)
		}
		if info["cluster_state"] != "ok" {
			return fmt.Errorf("%s: cluster_state %s", n.Addr, info["cluster_state"])
		}
	}
	return nil
}

// logs returns the end of every node's log, for failure messages.
func (c *Cluster) logs() string {
	var b strings.Builder
	for i, n := range c.Nodes {
		n.logTail(&b, fmt.Sprintf("node %d", i), 40)
	}
	return b.String()
}
