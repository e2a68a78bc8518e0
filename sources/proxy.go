package sources

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"eventlistener/event"
	"eventlistener/infra/haproxy"
	infraredis "eventlistener/infra/redis"
)

// ProxyConfig says which HAProxy the watcher polls.
type ProxyConfig struct {
	Client *haproxy.Client
	// Interval between polls (default 2s).
	Interval time.Duration
	// Source names HAProxy in the events, e.g. "haproxy://127.0.0.1:8404".
	Source string
	// Changes, when set (with Redis), is the cluster's log of the changes
	// stored: a change event's id comes from the server, its new status
	// and its number there, and a change the last duty holder stored is
	// not stored again. Without it ids are random, and a change seen
	// during a handover may be stored twice or not at all.
	Changes ChangeLog
}

// ChangeLog is the cluster's log of stored proxy changes
// (*infraredis.ChangeLog).
type ChangeLog interface {
	Last(ctx context.Context, server string) (epoch string, last infraredis.Change, err error)
	Record(ctx context.Context, epoch, server string, c infraredis.Change) error
}

// changeLogTimeout bounds each call to the change log.
const changeLogTimeout = time.Second

// changeNamespace makes change event ids (UUIDv5).
var changeNamespace = uuid.MustParse("5b0c8f5e-6a2e-4f7e-9d43-2f3c1c7b9a10")

// changeID is the id of server's change to status as number seq of the
// log's epoch: the same on every node.
func changeID(epoch, server, status string, seq int64) string {
	return uuid.NewSHA1(changeNamespace, []byte(fmt.Sprintf("%s|%s|%s|%d", epoch, server, status, seq))).String()
}

// sameChange is the slack between two nodes' reckonings of when a change
// happened: each takes its poll's time less HAProxy's lastchg (whole
// seconds).
const sameChange = 3

// claimed is a change whose event is on its way, to be recorded in the
// change log once it is durable.
type claimed struct {
	epoch, server string
	change        infraredis.Change
}

// StatusChangedType is the type of the events the watcher stores.
const StatusChangedType = "haproxy.server.status_changed"

// AdminActionType is the type of the events that record admin actions.
const AdminActionType = "haproxy.server.admin_action"

// ProxyServer is one HAProxy server in a snapshot.
type ProxyServer struct {
	Backend           string `json:"backend"`
	Server            string `json:"server"`
	Status            string `json:"status"`     // UP, DOWN, MAINT, DRAIN, NOLB
	StatusRaw         string `json:"status_raw"` // as HAProxy printed it, e.g. "UP 1/3"
	CheckStatus       string `json:"check_status"`
	Weight            int64  `json:"weight"`
	Addr              string `json:"addr,omitempty"`
	CurrentSessions   int64  `json:"current_sessions"`
	LastChangeSeconds int64  `json:"last_change_seconds"`
}

// ProxySnapshot is the last poll, for GET /v1/proxy/servers.
type ProxySnapshot struct {
	PolledAt  time.Time     `json:"polled_at"`
	Reachable bool          `json:"reachable"`
	Error     string        `json:"error,omitempty"`
	Servers   []ProxyServer `json:"servers"`
}

// ProxyStatus is the watcher's part of GET /v1/node.
type ProxyStatus struct {
	Reachable      bool      `json:"reachable"`
	PolledAt       time.Time `json:"polled_at"`
	Error          string    `json:"error,omitempty"`
	Servers        int       `json:"servers"`
	FailedPolls    int64     `json:"failed_polls"`
	ChangeEvents   bool      `json:"change_events"` // emitted by this node (it is master)
	UnsentEvents   int       `json:"unsent_events"`
	LastReachable  time.Time `json:"last_reachable,omitempty"`
	ServersChanged int64     `json:"status_changes"`
}

// proxyState is the watcher's state that outlives a restart of the actor:
// what the API shows, the previous poll to compare with, and the change
// events the engine could not take yet.
type proxyState struct {
	mu   sync.Mutex
	snap ProxySnapshot
	st   ProxyStatus

	prev    map[[2]string]haproxy.Stat // touched by the watcher only
	unsent  []event.Event              // touched by the watcher only
	claims  []claimed                  // of unsent, touched by the watcher only
	claimed map[string]claimed         // the last change claimed per server, touched by the watcher only
	held    bool                       // this node held the duties at the last poll, touched by the watcher only
}

func (p *proxyState) snapshot() ProxySnapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.snap
	s.Servers = append([]ProxyServer(nil), s.Servers...)
	return s
}

func (p *proxyState) status() ProxyStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st
}

type proxyMetrics struct {
	serverUp  *prometheus.GaugeVec
	reachable prometheus.Gauge
	polls     *prometheus.CounterVec
	changes   prometheus.Counter
}

func newProxyMetrics(reg prometheus.Registerer) *proxyMetrics {
	m := &proxyMetrics{
		serverUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventlistener_haproxy_server_up",
			Help: "1 while the HAProxy server's status is UP (DOWN, MAINT, DRAIN and NOLB are 0).",
		}, []string{"backend", "server"}),
		reachable: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eventlistener_haproxy_reachable",
			Help: "1 when the last poll of HAProxy succeeded.",
		}),
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventlistener_haproxy_polls_total",
			Help: "Polls of HAProxy by result (ok, error).",
		}, []string{"result"}),
		changes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventlistener_haproxy_status_changes_total",
			Help: "Server status changes seen by this node.",
		}),
	}
	reg.MustRegister(m.serverUp, m.reachable, m.polls, m.changes)
	return m
}

// proxyPolled is one poll's result.
type proxyPolled struct {
	rows []haproxy.Stat
	err  error
	at   time.Time
}

// Proxy polls HAProxy every interval, keeps the last snapshot (on every
// node, for GET /v1/proxy/servers and the metrics), and when a server's
// status changes it stores an event, on the duty holder only. It runs the
// admin actions on servers too.
type Proxy struct {
	cfg     ProxyConfig
	state   *proxyState
	metrics *proxyMetrics
	log     *slog.Logger
	now     chan struct{} // poll at once

	mu  sync.Mutex
	env Env // of the last Run; for the admin actions' events
}

// maxUnsent bounds the change events kept while the engine is full.
const maxUnsent = 10000

// flushWait is how long one poll waits for room in a full engine before
// it keeps its change events for the next.
const flushWait = 200 * time.Millisecond

// NewProxy makes the watcher; its metrics go to reg.
func NewProxy(cfg ProxyConfig, reg prometheus.Registerer, log *slog.Logger) *Proxy {
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	if cfg.Source == "" {
		cfg.Source = "haproxy"
	}
	return &Proxy{cfg: cfg, state: &proxyState{}, metrics: newProxyMetrics(reg), log: log, now: make(chan struct{}, 1)}
}

// Name is "haproxy".
func (w *Proxy) Name() string { return "haproxy" }

// Placement is EveryNode: each node keeps the snapshot, the holder stores
// the changes.
func (w *Proxy) Placement() Placement { return EveryNode }

// Status is a *ProxyStatus.
func (w *Proxy) Status() any {
	st := w.state.status()
	w.mu.Lock()
	holder := w.env.Holder
	w.mu.Unlock()
	st.ChangeEvents = holder != nil && holder()
	return &st
}

// Hidden is the status with HAProxy's error blanked, for callers without
// the admin token.
func (p ProxyStatus) Hidden() any {
	HideDetail(&p.Error)
	return &p
}

// Snapshot is the last poll.
func (w *Proxy) Snapshot() ProxySnapshot { return w.state.snapshot() }

// PollNow has the watcher poll at once (after an admin action).
func (w *Proxy) PollNow() {
	select {
	case w.now <- struct{}{}:
	default:
	}
}

// Run polls until ctx ends.
func (w *Proxy) Run(ctx context.Context, env Env) error {
	w.mu.Lock()
	w.env = env
	w.mu.Unlock()
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, max(w.cfg.Interval, time.Second))
		res, err := w.cfg.Client.Stats(pctx)
		cancel()
		if ctx.Err() != nil {
			break
		}
		w.polled(&proxyPolled{rows: res.Rows, err: err, at: time.Now().UTC()})
		select {
		case <-ctx.Done():
		case <-t.C:
			continue
		case <-w.now:
			continue
		}
		break
	}
	if w.flush(); len(w.state.unsent) > 0 {
		w.log.Error("HAProxy change events not stored: the engine refused them until shutdown", "events", len(w.state.unsent))
	}
	return nil
}

// flush hands the change events waiting for room to the engine.
func (w *Proxy) flush() {
	st := w.state
	if len(st.unsent) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), flushWait)
	err := w.env.IngestAsHolder(ctx, st.unsent)
	cancel()
	if err == nil && len(st.claims) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), changeLogTimeout)
		for _, c := range st.claims {
			if rerr := w.cfg.Changes.Record(ctx, c.epoch, c.server, c.change); rerr != nil {
				// The next holder then stores the change again, with the
				// same id: the stores keep it once.
				w.log.Warn("cannot record the HAProxy change in Redis", "server", c.server, "status", c.change.Status, "error", rerr)
			}
		}
		cancel()
		st.claims = nil
	}
	if errors.Is(err, ErrNotHolder) {
		// Not recorded in the change log: the next holder stores them,
		// with the same ids.
		w.log.Info("this node no longer holds the duties: its HAProxy change events not stored yet are left to the next holder", "events", len(st.unsent))
		st.unsent, st.claims, st.claimed = nil, nil, nil
		return
	}
	if err != nil {
		if len(st.unsent) > maxUnsent {
			w.log.Error("dropping HAProxy change events: the engine refused them too long", "events", len(st.unsent)-maxUnsent)
			st.unsent = st.unsent[len(st.unsent)-maxUnsent:]
			if len(st.claims) > maxUnsent {
				st.claims = st.claims[len(st.claims)-maxUnsent:]
			}
		}
		w.log.Warn("HAProxy change events wait for room in the engine", "events", len(st.unsent), "error", err)
		return
	}
	st.unsent = nil
}

func (w *Proxy) polled(p *proxyPolled) {
	if p.err != nil {
		w.flush()
		w.metrics.polls.WithLabelValues("error").Inc()
		w.metrics.reachable.Set(0)
		w.state.mu.Lock()
		was := w.state.st.Reachable || w.state.st.PolledAt.IsZero()
		w.state.st.Reachable, w.state.st.Error, w.state.st.PolledAt = false, p.err.Error(), p.at
		w.state.st.FailedPolls++
		w.state.snap.Reachable, w.state.snap.Error, w.state.snap.PolledAt = false, p.err.Error(), p.at
		w.state.mu.Unlock()
		if was {
			w.log.Warn("HAProxy unreachable; keeping the last snapshot", "error", p.err)
		}
		return
	}
	w.metrics.polls.WithLabelValues("ok").Inc()
	w.metrics.reachable.Set(1)

	master := w.env.Holder()
	cur := make(map[[2]string]haproxy.Stat)
	var servers []ProxyServer
	var changes []event.Event
	for _, r := range p.rows {
		if r.Type != haproxy.TypeServer {
			continue
		}
		k := [2]string{r.Proxy, r.Server}
		cur[k] = r
		status := haproxy.NormalizeStatus(r.Status)
		servers = append(servers, ProxyServer{Backend: r.Proxy, Server: r.Server, Status: status, StatusRaw: r.Status,
			CheckStatus: r.CheckStatus, Weight: r.Weight, Addr: r.Addr, CurrentSessions: r.CurrentSessions,
			LastChangeSeconds: r.LastChangeSeconds})
		up := 0.0
		if status == haproxy.StateUp {
			up = 1
		}
		w.metrics.serverUp.WithLabelValues(r.Proxy, r.Server).Set(up)
		old, seen := w.state.prev[k]
		if master && !w.state.held && w.cfg.Changes != nil {
			// Just took the duties: what the cluster stored last is the
			// baseline, so a change the last holder saw and did not store
			// (it lost the duties first) is stored now.
			// (The same status: the usual comparison below, by moment.)
			if last, ok := w.lastStored(r.Proxy + "/" + r.Server); ok && last != status {
				w.metrics.changes.Inc()
				ev := w.changeEvent(haproxy.Stat{Status: last}, r, p.at)
				at := p.at.Add(-time.Duration(r.LastChangeSeconds) * time.Second).Unix()
				if w.claim(&ev, r.Proxy+"/"+r.Server, status, at) {
					changes = append(changes, ev)
				}
				continue
			}
		}
		if !seen || haproxy.NormalizeStatus(old.Status) == status {
			continue
		}
		w.metrics.changes.Inc()
		w.log.Info("HAProxy server status changed", "backend", r.Proxy, "server", r.Server,
			"from", old.Status, "to", r.Status, "check", r.CheckStatus, "stored", master)
		if master {
			ev := w.changeEvent(old, r, p.at)
			at := p.at.Add(-time.Duration(r.LastChangeSeconds) * time.Second).Unix()
			if w.claim(&ev, r.Proxy+"/"+r.Server, status, at) {
				changes = append(changes, ev)
			}
		}
	}
	for k := range w.state.prev {
		if _, ok := cur[k]; !ok {
			w.metrics.serverUp.DeleteLabelValues(k[0], k[1])
		}
	}
	w.state.prev = cur
	w.state.held = master
	w.state.unsent = append(w.state.unsent, changes...)
	w.flush()

	w.state.mu.Lock()
	was := w.state.st.Reachable
	w.state.snap = ProxySnapshot{PolledAt: p.at, Reachable: true, Servers: servers}
	w.state.st.Reachable, w.state.st.Error, w.state.st.PolledAt, w.state.st.LastReachable = true, "", p.at, p.at
	w.state.st.Servers, w.state.st.UnsentEvents = len(servers), len(w.state.unsent)
	w.state.st.ServersChanged += int64(len(changes))
	w.state.mu.Unlock()
	if !was && w.state.st.FailedPolls > 0 {
		w.log.Info("HAProxy reachable again", "servers", len(servers))
	}
}

// claim gives a change event its id from the change log; false when the
// last duty holder stored this change already (the same status, changed
// at the same moment by HAProxy's clock). Without the log, or when it
// cannot be read, the event keeps its random id.
func (w *Proxy) claim(ev *event.Event, server, status string, at int64) bool {
	if w.cfg.Changes == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), changeLogTimeout)
	defer cancel()
	epoch, last, err := w.cfg.Changes.Last(ctx, server)
	if err != nil {
		w.log.Warn("cannot read the HAProxy change log in Redis; the change gets an id of its own", "server", server, "error", err)
		return true
	}
	if w.state.claimed == nil {
		w.state.claimed = map[string]claimed{}
	}
	seq := last.Seq
	if c, ok := w.state.claimed[server]; ok && c.epoch == epoch && c.change.Seq > seq {
		seq = c.change.Seq // a change of this server is on its way already
	} else if last.Status == status && abs(last.At-at) <= sameChange {
		w.log.Debug("HAProxy change stored by the last duty holder already", "server", server, "status", status, "seq", last.Seq)
		return false
	}
	c := claimed{epoch: epoch, server: server, change: infraredis.Change{Status: status, Seq: seq + 1, At: at}}
	w.state.claimed[server] = c
	ev.ID = changeID(epoch, server, status, c.change.Seq)
	w.state.claims = append(w.state.claims, c)
	return true
}

// lastStored is the status the cluster last stored for server; false
// when the log has none or cannot be read.
func (w *Proxy) lastStored(server string) (string, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), changeLogTimeout)
	defer cancel()
	_, last, err := w.cfg.Changes.Last(ctx, server)
	if err != nil || last.Status == "" {
		return "", false
	}
	return last.Status, true
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

func (w *Proxy) changeEvent(old, cur haproxy.Stat, at time.Time) event.Event {
	data, _ := json.Marshal(map[string]any{
		"backend": cur.Proxy, "server": cur.Server,
		"old_status": haproxy.NormalizeStatus(old.Status), "new_status": haproxy.NormalizeStatus(cur.Status),
		"old_status_raw": old.Status, "new_status_raw": cur.Status,
		"check_status": cur.CheckStatus, "check_code": cur.CheckCode, "check_desc": cur.CheckDesc, "addr": cur.Addr,
	})
	return event.Event{ID: newID(), Type: StatusChangedType, Source: w.cfg.Source,
		Subject: cur.Proxy + "/" + cur.Server, Time: at, ReceivedAt: at, Data: data}
}

// ErrNoProxy says that HAProxy (or its runtime API) is not configured.
var ErrNoProxy = errors.New("HAProxy is not configured")

// The admin actions on a server.
const (
	ActionEnable  = "enable"
	ActionDisable = "disable"
	ActionDrain   = "drain"
)

// Action enables, disables or drains a server through HAProxy's runtime
// API, stores an event recording who did what and how it went, and has
// the watcher poll at once. HAProxy's own errors are returned
// (errors.Is(err, haproxy.ErrNotFound) for an unknown backend or server).
func (w *Proxy) Action(ctx context.Context, who, backend, server, action string) error {
	c := w.cfg.Client
	if c.RuntimeAddr == "" {
		return fmt.Errorf("%w: set --haproxy-runtime-addr", ErrNoProxy)
	}
	var err error
	switch action {
	case ActionEnable:
		err = c.EnableServer(ctx, backend, server)
	case ActionDisable:
		err = c.DisableServer(ctx, backend, server)
	case ActionDrain:
		err = c.SetServerState(ctx, backend, server, haproxy.ServerDrain)
	default:
		return fmt.Errorf("%w: action must be enable, disable or drain, got %q", haproxy.ErrInvalidArgument, action)
	}
	result, msg := "ok", ""
	if err != nil {
		result, msg = "error", err.Error()
	}
	data, _ := json.Marshal(map[string]string{"action": action, "backend": backend, "server": server,
		"who": who, "result": result, "error": msg})
	now := time.Now().UTC()
	ev := event.Event{ID: newID(), Type: AdminActionType, Source: "eventlistener/admin",
		Subject: backend + "/" + server, Time: now, ReceivedAt: now, Data: data}
	w.mu.Lock()
	ingest := w.env.Ingest
	w.mu.Unlock()
	ierr := errors.New("the watcher has not started")
	if ingest != nil {
		ierr = ingest(ctx, []event.Event{ev})
	}
	if ierr != nil {
		w.log.Error("cannot store the admin action's event", "action", action, "backend", backend, "server", server, "error", ierr)
	}
	w.log.Info("HAProxy admin action", "who", who, "action", action, "backend", backend, "server", server, "result", result, "error", msg)
	w.PollNow()
	return err
}

// newID is a new UUIDv7 (a random UUID should the clock fail it).
func newID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}
