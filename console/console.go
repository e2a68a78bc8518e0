package console

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"eventlistener/actors"
	"eventlistener/event"
	"eventlistener/sinks"
	"eventlistener/sinks/fallback"
	"eventlistener/sources"
)

// Engine is what the console needs of the engine (*actors.Engine).
type Engine interface {
	// Node pings the stores (at most once a second each); Status does
	// not. The console pings only while a stream is open.
	Node(ctx context.Context) actors.NodeStatus
	Status() actors.NodeStatus
	// ClusterView is the node registry as last listed (no I/O).
	ClusterView() actors.Cluster
	// Ingest stores the events that record the console's actions.
	Ingest(events []event.Event) error
}

// Options configure the console.
type Options struct {
	Engine Engine
	// Proxy is the HAProxy watcher; nil: HAProxy is not watched.
	Proxy interface{ Snapshot() sources.ProxySnapshot }
	// Gatherer is what /metrics serves: the console's numbers are the
	// same. Registerer takes the console's own metrics.
	Gatherer   prometheus.Gatherer
	Registerer prometheus.Registerer
	// Sinks by name, for replays; FallbackDir is their fallback log.
	Sinks       map[string]sinks.Sink
	FallbackDir string
	// Retry bounds each replay write: a store that is down fails the
	// replay rather than holding it.
	Retry sinks.Retry
	// Authorize says whether a request carries the admin token; TokenSet
	// says whether one is configured (without, actions are off).
	Authorize func(*http.Request) bool
	TokenSet  bool
	// AllowedHosts are the host names, beside IP addresses and localhost,
	// the console answers to ("*": any).
	AllowedHosts []string
	// Tail is the live tail the engine feeds (Tail.Offer as OnIngest).
	Tail *Tail
	// Interval between samples (1s) and how long they are kept (15m).
	Interval time.Duration
	History  time.Duration
	// MaxStreams bounds the stats and tail streams open at once.
	MaxStreams int
	Version    string
	Started    time.Time
	Logger     *slog.Logger

	hostname string
}

// Defaults of Options.
const (
	DefaultInterval   = time.Second
	DefaultHistory    = 15 * time.Minute
	DefaultMaxStreams = 16
	DefaultTailRate   = 20
)

// Console samples the engine, keeps its history and serves the page.
type Console struct {
	opt     Options
	log     *slog.Logger
	hist    *history
	backlog *fallback.Backlog
	replays *replays

	mu   sync.Mutex
	last *snapshot
	subs map[chan *snapshot]struct{}

	backlogMu   sync.Mutex
	backlogLast map[string]fallback.SinkBacklog
	started     atomic.Bool

	streams    chan struct{} // a slot per open stream
	streamsG   prometheus.Gauge
	tailEvents *prometheus.CounterVec
	ctx        context.Context
	cancel     context.CancelFunc
	done       chan struct{}
}

// New makes a console; Run samples.
func New(o Options) *Console {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.History <= 0 {
		o.History = DefaultHistory
	}
	if o.MaxStreams <= 0 {
		o.MaxStreams = DefaultMaxStreams
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if o.Tail == nil {
		o.Tail = NewTail(DefaultTailRate)
	}
	if o.Started.IsZero() {
		o.Started = time.Now()
	}
	o.hostname, _ = os.Hostname()
	for i, h := range o.AllowedHosts {
		o.AllowedHosts[i] = strings.ToLower(h)
	}
	if o.Retry == (sinks.Retry{}) {
		o.Retry = sinks.Retry{Initial: sinks.DefaultRetry.Initial, Max: sinks.DefaultRetry.Max, MaxElapsed: 30 * time.Second}
	}
	c := &Console{opt: o, log: o.Logger, hist: newHistory(int(o.History / o.Interval)),
		backlog: &fallback.Backlog{Dir: o.FallbackDir}, subs: map[chan *snapshot]struct{}{},
		streams: make(chan struct{}, o.MaxStreams), done: make(chan struct{})}
	c.replays = &replays{dir: o.FallbackDir, backlog: c.backlog, sinks: o.Sinks, retry: o.Retry, ingest: o.Engine.Ingest, log: c.log}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.streamsG = prometheus.NewGauge(prometheus.GaugeOpts{Name: "eventlistener_console_streams",
		Help: "Console streams open (stats and live tail; bound: --console-max-streams)."})
	max := prometheus.NewGauge(prometheus.GaugeOpts{Name: "eventlistener_console_streams_max",
		Help: "Most console streams open at once (--console-max-streams); more get 503."})
	max.Set(float64(o.MaxStreams))
	kept := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "eventlistener_console_history_samples",
		Help: "One-second samples the console keeps (bound: eventlistener_console_history_max_samples, --console-history)."},
		func() float64 { return float64(c.hist.len()) })
	keptMax := prometheus.NewGauge(prometheus.GaugeOpts{Name: "eventlistener_console_history_max_samples",
		Help: "Most one-second samples the console keeps (--console-history)."})
	keptMax.Set(float64(len(c.hist.ring)))
	tailMax := prometheus.NewGauge(prometheus.GaugeOpts{Name: "eventlistener_console_tail_rate_max",
		Help: "Most events a second each live tail shows (--console-tail-rate); the rest it skips."})
	tailMax.Set(float64(o.Tail.rate))
	c.tailEvents = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventlistener_console_tail_events_total",
		Help: "Events live tails matched, by outcome: shown, or skipped (above --console-tail-rate, or a slow client)."}, []string{"outcome"})
	c.tailEvents.WithLabelValues("shown")
	c.tailEvents.WithLabelValues("skipped")
	o.Registerer.MustRegister(c.streamsG, max, kept, keptMax, tailMax, c.tailEvents)
	return c
}

// backlogEvery is how often the fallback folder is counted; new files are
// read, the others remembered.
const backlogEvery = 2 * time.Second

// Run samples every Interval until Close.
func (c *Console) Run() {
	if !c.started.CompareAndSwap(false, true) {
		return
	}
	defer close(c.done)
	// The backlog is counted apart: a large new file must not hold the
	// samples back.
	counted := make(chan struct{})
	go func() {
		defer close(counted)
		t := time.NewTicker(backlogEvery)
		defer t.Stop()
		for {
			c.countBacklog()
			select {
			case <-c.ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	defer func() { <-counted }()
	prev := read(c.opt.Gatherer, time.Now())
	t := time.NewTicker(c.opt.Interval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case now := <-t.C:
			prev = c.tick(prev, now)
		}
	}
}

func (c *Console) countBacklog() {
	backlog, err := c.backlog.Count()
	if err != nil {
		c.log.Warn("cannot count the fallback backlog", "dir", c.opt.FallbackDir, "error", err)
	}
	c.backlogMu.Lock()
	c.backlogLast = backlog
	c.backlogMu.Unlock()
}

func (c *Console) lastBacklog() map[string]fallback.SinkBacklog {
	c.backlogMu.Lock()
	defer c.backlogMu.Unlock()
	return c.backlogLast
}

// node is the engine's state; the stores are pinged only while someone
// watches.
func (c *Console) node() actors.NodeStatus {
	c.mu.Lock()
	watched := len(c.subs) > 0
	c.mu.Unlock()
	if !watched {
		return c.opt.Engine.Status()
	}
	return nodeNow(c.opt.Engine)
}

// tick takes one sample and sends it to every stream.
func (c *Console) tick(prev counters, now time.Time) counters {
	node := c.node()
	cur := read(c.opt.Gatherer, now)
	s := sample(prev, cur, node)
	c.hist.add(s)
	st := buildState(&c.opt, cur, node, c.lastBacklog(), now)
	st.Replay = c.replays.status()
	snap := &snapshot{sample: s, full: st, public: hide(st)}
	c.mu.Lock()
	c.last = snap
	for ch := range c.subs {
		select {
		case ch <- snap:
		default: // a slow stream misses this one; it gets the next
		}
	}
	c.mu.Unlock()
	return cur
}

// Close stops sampling, ends the streams and waits for a replay under way
// to finish the file it is on.
// Close may be called more than once.
func (c *Console) Close() {
	c.cancel()
	if c.started.CompareAndSwap(false, true) {
		close(c.done) // Run never ran, and now never will
	}
	<-c.done
	c.replays.wg.Wait()
}

func (c *Console) subscribe() (chan *snapshot, *snapshot) {
	ch := make(chan *snapshot, 2)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.subs[ch] = struct{}{}
	return ch, c.last
}

func (c *Console) unsubscribe(ch chan *snapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.subs, ch)
}

// current is the last snapshot, or one taken now before the first tick.
func (c *Console) current() *snapshot {
	c.mu.Lock()
	last := c.last
	c.mu.Unlock()
	if last != nil {
		return last
	}
	now := time.Now()
	cur := read(c.opt.Gatherer, now)
	node := c.opt.Engine.Status()
	st := buildState(&c.opt, cur, node, c.lastBacklog(), now)
	st.Replay = c.replays.status()
	return &snapshot{sample: sample(cur, cur, node), full: st, public: hide(st)}
}

// errStreams says every stream slot is taken.
var errStreams = errors.New("too many console streams are open")

func (c *Console) openStream() (func(), error) {
	select {
	case c.streams <- struct{}{}:
		c.streamsG.Inc()
		return func() { <-c.streams; c.streamsG.Dec() }, nil
	default:
		return nil, errStreams
	}
}
