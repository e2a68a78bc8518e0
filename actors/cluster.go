package actors

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	infraredis "eventlistener/infra/redis"
)

// ClusterConfig registers this node in the Redis node registry.
type ClusterConfig struct {
	Registry *infraredis.Registry
	// NodeID names this node in the registry; a restarted node with the
	// same id takes its entry back.
	NodeID string
	// Addr and Admin are where other nodes and operators reach this node.
	Addr, Admin string
	Version     string
	// Interval between heartbeats; an entry expires after a few missed.
	Interval time.Duration
}

// Cluster is the cluster as this node sees it, for GET /v1/nodes.
type Cluster struct {
	// Alone is true without a registry: this node knows of no other.
	Alone  bool   `json:"alone"`
	Reason string `json:"reason,omitempty"`
	Self   string `json:"self"`
	// Nodes are those whose entries are alive, by id.
	Nodes []infraredis.Node `json:"nodes"`
	// Error is the registry's last error; Nodes are then as last listed.
	Error    string    `json:"error,omitempty"`
	ListedAt time.Time `json:"listed_at,omitzero"`
}

// clusterTimeout bounds each registry call.
const clusterTimeout = 2 * time.Second

// cluster runs this node's heartbeat and keeps the last list.
type cluster struct {
	cfg     ClusterConfig
	e       *Engine
	started time.Time
	stop    chan struct{}
	done    chan struct{}

	failures prometheus.Counter
	nodes    prometheus.Gauge

	mu   sync.Mutex
	last Cluster
}

func (e *Engine) startCluster(cfg ClusterConfig) {
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	c := &cluster{cfg: cfg, e: e, started: time.Now().UTC(), stop: make(chan struct{}), done: make(chan struct{}),
		last: Cluster{Self: cfg.NodeID},
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "eventlistener_cluster_heartbeat_failures_total",
			Help: "Heartbeats to the Redis node registry that failed (the entry expires after a few)."}),
		nodes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "eventlistener_cluster_nodes",
			Help: "Nodes alive in the Redis node registry, as this node last listed them."}),
	}
	e.cfg.Registerer.MustRegister(c.failures, c.nodes)
	e.cluster = c
	go c.run()
}

func (c *cluster) run() {
	defer close(c.done)
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	failing := false
	for {
		err := c.beat()
		switch {
		case err != nil && !failing:
			c.e.log.Warn("node registry: heartbeat failed; retrying each interval (other nodes see this one gone after a few)", "error", err)
		case err == nil && failing:
			c.e.log.Info("node registry: heartbeat works again")
		}
		failing = err != nil
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
	}
}

// beat renews this node's entry, then lists the cluster.
func (c *cluster) beat() error {
	// Within two intervals, so a slow call cannot outlast the entry (it
	// lives five).
	ctx, cancel := context.WithTimeout(context.Background(), min(clusterTimeout, 2*c.cfg.Interval))
	defer cancel()
	st := c.e.Status()
	n := infraredis.Node{ID: c.cfg.NodeID, Addr: c.cfg.Addr, Admin: c.cfg.Admin, Version: c.cfg.Version, StartedAt: c.started,
		Role: "member", Accepting: st.Accepting, Pending: c.e.Pending(), WALBytes: st.WAL.Bytes, WALMaxBytes: st.WAL.MaxBytes,
		UpdatedAt: time.Now().UTC()}
	if st.Master.Master {
		n.Role = "duty holder"
	}
	for _, s := range st.Sinks {
		n.Sinks = append(n.Sinks, infraredis.NodeSink{Name: s.Name, Breaker: s.Breaker, Lag: s.LagEvents})
	}
	up, err := c.cfg.Registry.Heartbeat(ctx, n)
	if err == nil && up {
		c.e.log.Info("node registry: this node is registered", "node", n.ID, "addr", n.Addr)
	}
	if err == nil {
		_, err = c.list(ctx)
	}
	if err != nil {
		c.failures.Inc()
		c.mu.Lock()
		c.last.Error = err.Error()
		c.mu.Unlock()
	}
	return err
}

func (c *cluster) list(ctx context.Context) (Cluster, error) {
	nodes, err := c.cfg.Registry.List(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.last.Error = err.Error()
		return c.last, err
	}
	c.last = Cluster{Self: c.cfg.NodeID, Nodes: nodes, ListedAt: time.Now().UTC()}
	c.nodes.Set(float64(len(nodes)))
	return c.last, nil
}

// close stops the heartbeat and takes this node out of the registry.
func (c *cluster) close() {
	close(c.stop)
	<-c.done
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	if err := c.cfg.Registry.Leave(ctx, c.cfg.NodeID); err != nil {
		c.e.log.Warn("node registry: cannot remove this node; its entry expires by itself", "error", err)
	}
}

// ErrAlone says this node runs without a node registry.
var ErrAlone = errors.New("this node runs alone: no Redis is configured (--redis-url or --redis-sentinels), so there is no node registry")

// Nodes lists the cluster from the registry (fresh, bounded by ctx). Without
// a registry it returns this node alone and ErrAlone.
func (e *Engine) Nodes(ctx context.Context) (Cluster, error) {
	if e.cluster == nil {
		return Cluster{Alone: true, Reason: ErrAlone.Error()}, ErrAlone
	}
	ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	return e.cluster.list(ctx)
}

// ClusterView is the cluster as last listed by the heartbeat, without I/O
// (for the console); Alone without a registry.
func (e *Engine) ClusterView() Cluster {
	if e.cluster == nil {
		return Cluster{Alone: true, Reason: ErrAlone.Error()}
	}
	e.cluster.mu.Lock()
	defer e.cluster.mu.Unlock()
	v := e.cluster.last
	v.Nodes = append([]infraredis.Node(nil), v.Nodes...)
	return v
}
