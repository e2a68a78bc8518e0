package console

import (
	"context"
	"encoding/json"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"eventlistener/actors"
	"eventlistener/sinks/fallback"
	"eventlistener/sources"
)

// Sample is one second of the engine: rates over the second before Time,
// and levels at Time. The console keeps the last --console-history of
// them, so a page opened now shows history at once.
type Sample struct {
	Time int64 `json:"t"` // Unix milliseconds
	// Ingest (POST /v1/events and the sources), per second.
	Events      float64 `json:"events"`      // events taken into the WAL
	Requests    float64 `json:"requests"`    // POST /v1/events answered
	Accepted    float64 `json:"accepted"`    // of them 2xx
	Refused     float64 `json:"refused"`     // 4xx: bad input, too large, no key
	Unavailable float64 `json:"unavailable"` // 503: overloaded, WAL full, stopping
	// Ack latency of POST /v1/events over the second, in milliseconds;
	// null when no request was answered.
	P50 *float64 `json:"p50_ms"`
	P99 *float64 `json:"p99_ms"`
	// Levels.
	Pending    uint64 `json:"pending_events"` // most events a sink has not finished
	WALBytes   int64  `json:"wal_bytes"`      // on disk (bound: --wal-max-bytes)
	QueueBytes int64  `json:"queue_bytes"`    // waiting to be written (bound: --max-pending-bytes)
	Buffer     int64  `json:"buffer_events"`  // in the batch being filled
	// Flushes per second by reason.
	Flushes map[string]float64    `json:"flushes"`
	Sinks   map[string]SinkSample `json:"sinks"`
	// Redis messages per second, and those that could not become events.
	Redis    float64 `json:"redis"`
	RedisBad float64 `json:"redis_bad"`
}

// SinkSample is one sink's second.
type SinkSample struct {
	Stored   float64 `json:"stored"`   // events stored per second
	Fallback float64 `json:"fallback"` // events sent to the fallback log per second
	Lag      uint64  `json:"lag"`      // events not finished
	Age      float64 `json:"age"`      // seconds since the oldest of them was logged
}

// State is the engine now: what the page shows beside the charts.
type State struct {
	Hostname  string                 `json:"hostname"`
	Version   string                 `json:"version"`
	Started   time.Time              `json:"started"`
	Uptime    float64                `json:"uptime_seconds"`
	Interval  float64                `json:"interval_seconds"`
	History   float64                `json:"history_seconds"`
	Admin     Admin                  `json:"admin"`
	Totals    Totals                 `json:"totals"`
	Buffer    Buffer                 `json:"buffer"`
	Node      actors.NodeStatus      `json:"node"` // Node.Sinks are in Sinks
	Sinks     []SinkView             `json:"sinks"`
	Redis     *RedisView             `json:"redis,omitempty"`
	Streams   *StreamsView           `json:"streams,omitempty"`
	Proxy     *sources.ProxySnapshot `json:"proxy,omitempty"`
	Cluster   actors.Cluster         `json:"cluster"`
	Replay    *ReplayStatus          `json:"replay,omitempty"` // the last replay started here
	BacklogAt time.Time              `json:"backlog_at"`
	Hidden    string                 `json:"details_hidden,omitempty"`
}

// Admin says what this client may do.
type Admin struct {
	// Token is set when --admin-token is: actions are possible.
	Token bool `json:"token"`
	// Authorized is true when this client sent it.
	Authorized bool `json:"authorized"`
}

// Totals count since the engine started.
type Totals struct {
	Events      float64 `json:"events"`
	Requests    float64 `json:"requests"`
	Accepted    float64 `json:"accepted"`
	Refused     float64 `json:"refused"`
	Unavailable float64 `json:"unavailable"`
}

// Buffer is the buffer actor's state.
type Buffer struct {
	State   string             `json:"state"` // idle or filling
	Events  int64              `json:"events"`
	Flushes map[string]float64 `json:"flushes"` // since start, by reason
}

// SinkView is one sink's state, totals and fallback backlog.
type SinkView struct {
	actors.SinkStatus
	Stored   float64              `json:"stored_total"`
	Fallback float64              `json:"fallback_total"`
	Backlog  fallback.SinkBacklog `json:"backlog"`
}

// RedisView is the Redis subscription, its channels and patterns apart.
type RedisView struct {
	sources.PubSubStatus
	Patterns []string `json:"patterns"`
	// Running says the subscriber runs on this node (it holds the duties).
	Running  bool `json:"running"`
	Restarts int  `json:"restarts"`
}

// StreamsView is the Redis Streams consumer.
type StreamsView struct {
	sources.StreamsStatus
	Running  bool `json:"running"`
	Restarts int  `json:"restarts"`
}

// counters are the cumulative readings a sample is the difference of.
type counters struct {
	at                                 time.Time
	events, requests, ok, bad, unavail float64
	latency                            native
	flushes                            map[string]float64
	stored, fallback                   map[string]float64
	redis, redisBad                    float64
	buffer, walBytes, queueBytes       float64
}

// read takes the counters from the metrics the engine and API export, so
// the console shows what Prometheus scrapes.
func read(g prometheus.Gatherer, at time.Time) counters {
	c := counters{at: at, flushes: map[string]float64{}, stored: map[string]float64{}, fallback: map[string]float64{}}
	fams, _ := g.Gather() // a collector's error leaves the rest
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			switch f.GetName() {
			case "eventlistener_events_accepted_total":
				c.events += value(m)
			case "eventlistener_http_requests_total":
				if label(m, "route") != "/v1/events" {
					continue
				}
				v := value(m)
				c.requests += v
				switch code := label(m, "code"); {
				case strings.HasPrefix(code, "2"):
					c.ok += v
				case code == "503":
					c.unavail += v
				case strings.HasPrefix(code, "4"):
					c.bad += v
				}
			case "eventlistener_http_request_seconds":
				if label(m, "route") == "/v1/events" {
					c.latency = readNative(m.GetHistogram())
				}
			case "eventlistener_batches_flushed_total":
				c.flushes[label(m, "reason")] += value(m)
			case "eventlistener_sink_events_total":
				switch label(m, "outcome") {
				case "stored":
					c.stored[label(m, "sink")] += value(m)
				case "fallback":
					c.fallback[label(m, "sink")] += value(m)
				}
			case "eventlistener_redis_messages_total":
				c.redis += value(m)
			case "eventlistener_redis_bad_messages_total":
				c.redisBad += value(m)
			case "eventlistener_buffer_events":
				c.buffer = value(m)
			case "eventlistener_wal_bytes":
				c.walBytes = value(m)
			case "eventlistener_wal_queue_bytes":
				c.queueBytes = value(m)
			}
		}
	}
	return c
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// sample is the second between prev and cur.
func sample(prev, cur counters, node actors.NodeStatus) Sample {
	secs := cur.at.Sub(prev.at).Seconds()
	if secs <= 0 {
		secs = 1
	}
	rate := func(a, b float64) float64 { return round(math.Max(0, a-b) / secs) }
	s := Sample{Time: cur.at.UnixMilli(),
		Events: rate(cur.events, prev.events), Requests: rate(cur.requests, prev.requests),
		Accepted: rate(cur.ok, prev.ok), Refused: rate(cur.bad, prev.bad), Unavailable: rate(cur.unavail, prev.unavail),
		WALBytes: int64(cur.walBytes), QueueBytes: int64(cur.queueBytes), Buffer: int64(cur.buffer),
		Flushes: map[string]float64{}, Sinks: map[string]SinkSample{},
		Redis: rate(cur.redis, prev.redis), RedisBad: rate(cur.redisBad, prev.redisBad)}
	lat := cur.latency.since(prev.latency)
	if v, ok := lat.quantile(0.5); ok {
		ms := round(v * 1000)
		s.P50 = &ms
	}
	if v, ok := lat.quantile(0.99); ok {
		ms := round(v * 1000)
		s.P99 = &ms
	}
	for r, v := range cur.flushes {
		if d := rate(v, prev.flushes[r]); d > 0 {
			s.Flushes[r] = d
		}
	}
	for _, st := range node.Sinks {
		s.Sinks[st.Name] = SinkSample{Stored: rate(cur.stored[st.Name], prev.stored[st.Name]),
			Fallback: rate(cur.fallback[st.Name], prev.fallback[st.Name]), Lag: st.LagEvents, Age: st.OldestPendingSeconds}
		s.Pending = max(s.Pending, st.LagEvents)
	}
	return s
}

// round keeps three significant decimals, so samples stay small.
func round(v float64) float64 { return math.Round(v*1000) / 1000 }

// history is a ring of the last samples.
type history struct {
	mu   sync.Mutex
	ring []Sample
	next int
	full bool
}

func newHistory(n int) *history { return &history{ring: make([]Sample, max(n, 1))} }

func (h *history) add(s Sample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ring[h.next] = s
	h.next = (h.next + 1) % len(h.ring)
	h.full = h.full || h.next == 0
}

// len is how many samples the ring holds.
func (h *history) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.full {
		return len(h.ring)
	}
	return h.next
}

// last returns the last n samples (all with n < 0), oldest first.
func (h *history) last(n int) []Sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	var all []Sample
	if !h.full {
		all = h.ring[:h.next]
	} else {
		all = append(append([]Sample(nil), h.ring[h.next:]...), h.ring[:h.next]...)
	}
	if n >= 0 && n < len(all) {
		all = all[len(all)-n:]
	}
	return append([]Sample(nil), all...)
}

// snapshot is one tick's output, encoded once for every stream.
type snapshot struct {
	sample Sample
	full   State // with the details
	public State // with errors and paths hidden
}

func (s *snapshot) state(authorized bool) State {
	if authorized {
		st := s.full
		st.Admin.Authorized = true
		return st
	}
	return s.public
}

// buildState assembles the state of one tick.
func buildState(o *Options, cur counters, node actors.NodeStatus, backlog map[string]fallback.SinkBacklog, at time.Time) State {
	st := State{Hostname: o.hostname, Version: o.Version, Started: o.Started, Uptime: math.Round(at.Sub(o.Started).Seconds()),
		Interval: o.Interval.Seconds(), History: o.History.Seconds(), Admin: Admin{Token: o.Authorize != nil && o.TokenSet},
		Totals: Totals{Events: cur.events, Requests: cur.requests, Accepted: cur.ok, Refused: cur.bad, Unavailable: cur.unavail},
		Buffer: Buffer{State: "idle", Events: int64(cur.buffer), Flushes: cur.flushes}, BacklogAt: at}
	if cur.buffer > 0 {
		st.Buffer.State = "filling"
	}
	for _, s := range node.Sinks {
		st.Sinks = append(st.Sinks, SinkView{SinkStatus: s, Stored: cur.stored[s.Name], Fallback: cur.fallback[s.Name], Backlog: backlog[s.Name]})
	}
	sort.Slice(st.Sinks, func(i, j int) bool { return st.Sinks[i].Name < st.Sinks[j].Name })
	if src := node.Source("redis"); src != nil {
		ps, _ := src.Status.(*sources.PubSubStatus)
		if ps == nil {
			ps = &sources.PubSubStatus{}
		}
		rv := RedisView{PubSubStatus: *ps, Running: src.Running, Restarts: src.Restarts}
		rv.Channels = nil
		for _, ch := range ps.Channels {
			if strings.ContainsAny(ch, "*?[") {
				rv.Patterns = append(rv.Patterns, ch)
			} else {
				rv.Channels = append(rv.Channels, ch)
			}
		}
		st.Redis = &rv
	}
	if src := node.Source("redis-streams"); src != nil {
		if ss, ok := src.Status.(*sources.StreamsStatus); ok {
			st.Streams = &StreamsView{StreamsStatus: *ss, Running: src.Running, Restarts: src.Restarts}
		}
	}
	node.Sinks = nil
	st.Node = node
	if o.Proxy != nil {
		snap := o.Proxy.Snapshot()
		st.Proxy = &snap
	}
	st.Cluster = o.Engine.ClusterView()
	return st
}

// hide is the state as a client without the admin token sees it; st
// itself (the full state, shared) is left as it is.
func hide(st State) State {
	out := st
	out.Node.HideDetails() // its Sinks are in out.Sinks; its Sources are copied
	out.Sinks = make([]SinkView, len(st.Sinks))
	for i, s := range st.Sinks {
		s.SinkStatus.HideDetails()
		out.Sinks[i] = s
	}
	if st.Redis != nil {
		r := *st.Redis
		r.PubSubStatus = *r.PubSubStatus.Hidden().(*sources.PubSubStatus)
		out.Redis = &r
	}
	if st.Streams != nil {
		v := *st.Streams
		v.StreamsStatus = *v.StreamsStatus.Hidden().(*sources.StreamsStatus)
		out.Streams = &v
	}
	if st.Proxy != nil {
		p := *st.Proxy
		actors.HideDetail(&p.Error)
		out.Proxy = &p
	}
	actors.HideDetail(&out.Cluster.Error)
	if st.Replay != nil {
		r := *st.Replay
		actors.HideDetail(&r.Error)
		out.Replay = &r
	}
	out.Hidden = "errors and paths are shown with the admin token"
	return out
}

// nodeTimeout bounds a tick's look at the engine: the stores' pings, all
// at once (each also bounded by the engine's ping timeout).
const nodeTimeout = 2 * time.Second

func nodeNow(e Engine) actors.NodeStatus {
	ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout)
	defer cancel()
	return e.Node(ctx)
}

// encode is the JSON of v; the types here always encode.
func encode(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
