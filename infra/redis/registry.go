package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Node is one engine node as the registry holds it.
type Node struct {
	ID          string     `json:"id"`
	Addr        string     `json:"addr"`  // the ingest listener
	Admin       string     `json:"admin"` // the admin listener; empty: off
	Version     string     `json:"version"`
	StartedAt   time.Time  `json:"started_at"`
	Role        string     `json:"role"` // "duty holder" or "member"
	Accepting   bool       `json:"accepting"`
	Pending     int64      `json:"pending_events"`
	WALBytes    int64      `json:"wal_bytes"`
	WALMaxBytes int64      `json:"wal_max_bytes"`
	Sinks       []NodeSink `json:"sinks"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// NodeSink is one sink's state on a node.
type NodeSink struct {
	Name    string `json:"name"`
	Breaker string `json:"breaker"`
	Lag     uint64 `json:"lag_events"`
}

// NodeEvent is what the registry announces on its channel.
type NodeEvent struct {
	Event  string    `json:"event"` // node.up or node.down
	Node   string    `json:"node"`
	Addr   string    `json:"addr,omitempty"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// Registry keeps the nodes of a cluster in Redis: a hash per node
// (PREFIX:node:ID) that expires unless its node renews it, an index of the
// nodes (the sorted set PREFIX:nodes, scored by the last heartbeat), and
// node.up and node.down on the channel PREFIX:nodes:events.
type Registry struct {
	c      goredis.UniversalClient
	prefix string
	ttl    time.Duration
}

// NewRegistry makes a registry; a node's entry expires ttl after its last
// heartbeat.
func NewRegistry(o Options, prefix string, ttl time.Duration) (*Registry, error) {
	prefix = o.KeyPrefix(prefix)
	c, err := NewClient(o)
	if err != nil {
		return nil, err
	}
	return &Registry{c: c, prefix: prefix, ttl: ttl}, nil
}

// Channel is where node.up and node.down are announced.
func (r *Registry) Channel() string { return r.prefix + ":nodes:events" }

func (r *Registry) key(id string) string { return r.prefix + ":node:" + id }
func (r *Registry) index() string        { return r.prefix + ":nodes" }

// Heartbeat writes n's entry and renews it. The first heartbeat of a run
// (a new StartedAt) announces node.up; a restarted node takes its old
// entry back. It returns whether it announced.
func (r *Registry) Heartbeat(ctx context.Context, n Node) (bool, error) {
	key := r.key(n.ID)
	prev, err := r.c.HGet(ctx, key, "started_at").Result()
	if err != nil && err != goredis.Nil {
		return false, err
	}
	sinks, _ := json.Marshal(n.Sinks)
	started := n.StartedAt.UTC().Format(time.RFC3339Nano)
	_, err = r.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.HSet(ctx, key, map[string]any{
			"id": n.ID, "addr": n.Addr, "admin": n.Admin, "version": n.Version, "started_at": started,
			"role": n.Role, "accepting": strconv.FormatBool(n.Accepting), "pending_events": n.Pending,
			"wal_bytes": n.WALBytes, "wal_max_bytes": n.WALMaxBytes, "sinks": string(sinks),
			"updated_at": n.UpdatedAt.UTC().Format(time.RFC3339Nano),
		})
		p.PExpire(ctx, key, r.ttl)
		p.ZAdd(ctx, r.index(), goredis.Z{Score: float64(n.UpdatedAt.UnixMilli()), Member: n.ID})
		return nil
	})
	if err != nil {
		return false, err
	}
	if prev == started {
		return false, nil
	}
	reason := "started"
	if prev != "" {
		reason = "restarted: took its entry back"
	}
	return true, r.announce(ctx, NodeEvent{Event: "node.up", Node: n.ID, Addr: n.Addr, Reason: reason, At: time.Now().UTC()})
}

// Leave removes id's entry at a clean stop and announces node.down.
func (r *Registry) Leave(ctx context.Context, id string) error {
	_, err := r.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.Del(ctx, r.key(id))
		p.ZRem(ctx, r.index(), id)
		return nil
	})
	if err != nil {
		return err
	}
	return r.announce(ctx, NodeEvent{Event: "node.down", Node: id, Reason: "stopped", At: time.Now().UTC()})
}

// List returns the nodes whose entries are alive, by id. A node in the
// index whose entry expired is taken out of it, and whichever node takes
// it out announces node.down, once.
func (r *Registry) List(ctx context.Context) ([]Node, error) {
	ids, err := r.c.ZRange(ctx, r.index(), 0, -1).Result()
	if err != nil {
		return nil, err
	}
	cmds := make([]*goredis.MapStringStringCmd, len(ids))
	if _, err := r.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(ctx, r.key(id))
		}
		return nil
	}); err != nil {
		return nil, err
	}
	var nodes []Node
	for i, id := range ids {
		h := cmds[i].Val()
		if len(h) == 0 {
			// Taken out only if its entry is still gone: the node may have
			// renewed it since (a slow heartbeat), and is not down then.
			removed, err := reapScript.Run(ctx, r.c, []string{r.key(id), r.index()}, id).Int()
			if err != nil {
				return nil, err
			}
			if removed == 1 {
				if err := r.announce(ctx, NodeEvent{Event: "node.down", Node: id,
					Reason: fmt.Sprintf("no heartbeat for %s", r.ttl), At: time.Now().UTC()}); err != nil {
					return nil, err
				}
			}
			continue
		}
		nodes = append(nodes, parseNode(h))
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].ID < nodes[j].ID })
	return nodes, nil
}

// reapScript takes a node out of the index if its entry is gone; 1 if it
// did (so one lister announces node.down).
var reapScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
return redis.call('ZREM', KEYS[2], ARGV[1])
`)

func parseNode(h map[string]string) Node {
	n := Node{ID: h["id"], Addr: h["addr"], Admin: h["admin"], Version: h["version"], Role: h["role"]}
	n.StartedAt, _ = time.Parse(time.RFC3339Nano, h["started_at"])
	n.UpdatedAt, _ = time.Parse(time.RFC3339Nano, h["updated_at"])
	n.Accepting, _ = strconv.ParseBool(h["accepting"])
	n.Pending, _ = strconv.ParseInt(h["pending_events"], 10, 64)
	n.WALBytes, _ = strconv.ParseInt(h["wal_bytes"], 10, 64)
	n.WALMaxBytes, _ = strconv.ParseInt(h["wal_max_bytes"], 10, 64)
	_ = json.Unmarshal([]byte(h["sinks"]), &n.Sinks)
	return n
}

func (r *Registry) announce(ctx context.Context, e NodeEvent) error {
	b, _ := json.Marshal(e)
	return r.c.Publish(ctx, r.Channel(), b).Err()
}

// Subscribe listens to node.up and node.down (for tests and tools).
func (r *Registry) Subscribe(ctx context.Context) *goredis.PubSub {
	return r.c.Subscribe(ctx, r.Channel())
}

// Close closes the connection.
func (r *Registry) Close() error { return r.c.Close() }
