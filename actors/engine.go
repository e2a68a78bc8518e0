package actors

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"eventlistener/event"
	"eventlistener/infra/haproxy"
	"eventlistener/infra/vip"
	"eventlistener/sinks"
)

// Errors Ingest returns; the API answers both with 503 and Retry-After.
var (
	ErrOverloaded   = errors.New("too many events waiting to be stored; retry later")
	ErrShuttingDown = errors.New("shutting down; retry on another node or later")
)

// Config is what the engine needs. Zero fields take the defaults of
// DefaultConfig.
type Config struct {
	// The buffer's flush triggers.
	MaxEvents int
	MaxBytes  int
	Idle      time.Duration
	MaxAge    time.Duration

	// MaxInFlight bounds the batches written at once.
	MaxInFlight int
	// MaxPendingEvents and MaxPendingBytes bound what is accepted and not yet
	// stored; past them Ingest returns ErrOverloaded.
	MaxPendingEvents int64
	MaxPendingBytes  int64
	// Retry bounds how long a sink is retried before the fallback log.
	Retry sinks.Retry

	Sinks    []sinks.Sink
	Fallback Fallback
	// Redis, when set, runs the Redis subscriber beside the buffer.
	Redis *RedisConfig
	// Notifier, when set, is told about every batch written.
	Notifier Notifier
	// Proxy, when set, runs the HAProxy watcher.
	Proxy *ProxyConfig
	// VIP, when set, makes this node master only while it holds the
	// address; checked every DutyInterval (default 2s). Without it every
	// node is master.
	VIP          *vip.Checker
	DutyInterval time.Duration

	// restartDelay is the Redis subscriber's first restart delay (tests
	// shorten it); 0 means 200ms.
	restartDelay time.Duration
	Logger       *slog.Logger
	// Registerer takes the engine's metrics; nil: not registered.
	Registerer prometheus.Registerer
}

// DefaultConfig holds the defaults.
var DefaultConfig = Config{
	// A COPY of 1,000 rows costs about what a COPY of 100 does; much larger
	// batches add latency without adding throughput.
	MaxEvents: 1000,
	MaxBytes:  4 << 20,
	// Idle and age keep a trickle of events from waiting long.
	Idle:   200 * time.Millisecond,
	MaxAge: time.Second,
	// Four COPY streams saturate PostgreSQL on a small machine.
	MaxInFlight: 4,
	// About 256 MiB of events at most, whichever limit comes first.
	MaxPendingEvents: 200_000,
	MaxPendingBytes:  256 << 20,
	Retry:            sinks.DefaultRetry,
}

func (c *Config) applyDefaults() {
	d := DefaultConfig
	if c.MaxEvents <= 0 {
		c.MaxEvents = d.MaxEvents
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = d.MaxBytes
	}
	if c.Idle <= 0 {
		c.Idle = d.Idle
	}
	if c.MaxAge <= 0 {
		c.MaxAge = d.MaxAge
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = d.MaxInFlight
	}
	if c.MaxPendingEvents <= 0 {
		c.MaxPendingEvents = d.MaxPendingEvents
	}
	if c.MaxPendingBytes <= 0 {
		c.MaxPendingBytes = d.MaxPendingBytes
	}
	if c.Retry == (sinks.Retry{}) {
		c.Retry = d.Retry
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
}

// Engine is the actor system that batches events and writes them. Ingest is
// the one way in.
type Engine struct {
	cfg     Config
	sys     *actor.ActorSystem
	buffer  *actor.PID
	batcher *actor.PID
	duties  *actor.PID // runs the master's duties
	proxy   *actor.PID // nil without HAProxy
	master  *masterState
	redisSt *redisState // nil without Redis
	redisM  *redisMetrics
	proxySt *proxyState // nil without HAProxy
	proxyC  *haproxy.Client
	metrics *Metrics
	log     *slog.Logger

	// mu orders Ingest against Close: once closing is set under the write
	// lock, no Ingest can still be on its way to the buffer.
	mu           sync.RWMutex
	closing      bool // Ingest refuses requests from the API
	closeStarted bool // Close ran
	closed       bool // the siblings are stopped too: nothing may reach the buffer

	pendingEvents atomic.Int64
	pendingBytes  atomic.Int64

	writeCtx      context.Context
	cancelWrite   context.CancelFunc
	abandonCtx    context.Context
	cancelAbandon context.CancelFunc
}

// Start builds the actor system and spawns the batcher and the buffer.
func Start(cfg Config) (*Engine, error) {
	cfg.applyDefaults()
	if len(cfg.Sinks) == 0 {
		return nil, errors.New("no sink configured")
	}
	if cfg.Fallback == nil {
		return nil, errors.New("no fallback log configured")
	}
	e := &Engine{cfg: cfg, log: cfg.Logger, master: &masterState{}}
	e.metrics = newMetrics(cfg.Registerer, e)
	e.writeCtx, e.cancelWrite = context.WithCancel(context.Background())
	e.abandonCtx, e.cancelAbandon = context.WithCancel(context.Background())
	protoLog := cfg.Logger.With("component", "protoactor")
	e.sys = actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return protoLog }),
		actor.WithDeadLetterThrottleCount(10),
		actor.WithDeadLetterThrottleInterval(10*time.Second),
	)
	// A crash restarts the actor (the buffer hands over what it holds when
	// it restarts); ten crashes in ten seconds stop it.
	restart := actor.WithGuardian(actor.NewOneForOneStrategy(10, 10*time.Second, actor.DefaultDecider))

	var err error
	e.batcher, err = e.sys.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
		return &batcher{
			sinks: cfg.Sinks, fallback: cfg.Fallback, retry: cfg.Retry, maxInFlight: cfg.MaxInFlight,
			ctx: e.writeCtx, abandon: e.abandonCtx, release: e.release, notifier: cfg.Notifier, metrics: e.metrics, log: cfg.Logger,
		}
	}, restart), "batcher")
	if err != nil {
		return nil, fmt.Errorf("cannot start the batcher: %w", err)
	}
	policy := Policy{MaxEvents: cfg.MaxEvents, MaxBytes: cfg.MaxBytes, Idle: cfg.Idle, MaxAge: cfg.MaxAge}
	e.buffer, err = e.sys.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
		return newBuffer(policy, e.batcher, e.metrics, cfg.Logger, newBatchID)
	}, restart), "buffer")
	if err != nil {
		return nil, fmt.Errorf("cannot start the buffer: %w", err)
	}
	if err := e.startDuties(cfg, restart); err != nil {
		return nil, err
	}
	if cfg.Proxy != nil {
		if err := e.startProxy(*cfg.Proxy, restart); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// startDuties spawns the actor that runs the master's duties: the Redis
// subscriber (its supervised child) while this node is master.
func (e *Engine) startDuties(cfg Config, restart actor.PropsOption) error {
	d := &duties{e: e, vip: cfg.VIP, interval: cfg.DutyInterval, log: e.log.With("actor", "duties")}
	if cfg.VIP != nil {
		e.master.s.VIP = cfg.VIP.Addr.String()
	}
	if d.interval <= 0 {
		d.interval = 2 * time.Second
	}
	if cfg.Redis != nil {
		rc := *cfg.Redis
		if rc.EventType == "" {
			rc.EventType = "redis.message"
		}
		mode := "single"
		if rc.Options.Sentinel() {
			mode = "sentinel"
		}
		e.redisSt = &redisState{s: RedisStatus{Mode: mode, Channels: rc.Channels}}
		e.redisM = newRedisMetrics(e.cfg.Registerer)
		log := e.log.With("actor", "redis")
		d.redis = func() actor.Actor {
			return &redisSubscriber{cfg: rc, ingest: e.ingestSibling, state: e.redisSt, metrics: e.redisM, log: log}
		}
	}
	var err error
	// The duties actor supervises the Redis subscriber: a crash restarts it
	// after a delay that grows with each crash (200 ms per crash in the last
	// 30 s); it never gives up, since what crashes it may heal.
	e.duties, err = e.sys.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
		dd := *d
		return &dd
	}, restart, actor.WithSupervisor(actor.NewExponentialBackoffStrategy(30*time.Second, cmp.Or(cfg.restartDelay, 200*time.Millisecond)))), "duties")
	if err != nil {
		return fmt.Errorf("cannot start the duties: %w", err)
	}
	return nil
}

func newBatchID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// Ingest hands one request's events to the buffer, all or none. It returns
// ErrOverloaded when the pending limits are reached and ErrShuttingDown once
// Close has begun; either way none of the events was taken. It never blocks
// on I/O.
func (e *Engine) Ingest(events []event.Event) error {
	if len(events) == 0 {
		return nil
	}
	return e.ingest(events, false)
}

// ingestSibling is Ingest for the sibling actors: they are stopped before
// the buffer, so they may go on until then even after StopAccepting.
func (e *Engine) ingestSibling(events []event.Event) error { return e.ingest(events, true) }

func (e *Engine) ingest(events []event.Event, sibling bool) error {
	var bytes int64
	for i := range events {
		bytes += int64(events[i].Size())
	}
	n := int64(len(events))
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed || (e.closing && !sibling) {
		e.refused("shutting_down", n)
		return ErrShuttingDown
	}
	// A request bigger than the whole limit is still taken when nothing is
	// pending, so a limit set below the largest request cannot wedge a client.
	pe := e.pendingEvents.Add(n)
	pb := e.pendingBytes.Add(bytes)
	if (pe > e.cfg.MaxPendingEvents || pb > e.cfg.MaxPendingBytes) && pe != n {
		e.release(int(n), bytes)
		e.refused("overloaded", n)
		return ErrOverloaded
	}
	e.metrics.accepted.Add(float64(n))
	e.sys.Root.Send(e.buffer, &ingest{events: events})
	return nil
}

func (e *Engine) release(events int, bytes int64) {
	e.pendingEvents.Add(-int64(events))
	e.pendingBytes.Add(-bytes)
}

// Admit says whether a request may be read at all: ErrShuttingDown once
// shutdown began, ErrOverloaded while the pending limits are reached. The
// API asks before it spends time decoding a body only to refuse it; Ingest
// still checks exactly.
func (e *Engine) Admit() error {
	if !e.Accepting() {
		e.refused("shutting_down", 0)
		return ErrShuttingDown
	}
	if e.pendingEvents.Load() >= e.cfg.MaxPendingEvents || e.pendingBytes.Load() >= e.cfg.MaxPendingBytes {
		e.refused("overloaded", 0)
		return ErrOverloaded
	}
	return nil
}

// refused counts a refused request and its events (0 when not read).
func (e *Engine) refused(reason string, events int64) {
	e.metrics.rejectedRequests.WithLabelValues(reason).Inc()
	if events > 0 {
		e.metrics.rejected.WithLabelValues(reason).Add(float64(events))
	}
}

// Pending says how many events are accepted and not yet stored or in the
// fallback log.
func (e *Engine) Pending() int64 { return e.pendingEvents.Load() }

// Accepting says whether Ingest takes events (false once Close began).
func (e *Engine) Accepting() bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return !e.closing
}

// Ping checks every sink, for the readiness check.
func (e *Engine) Ping(ctx context.Context) error {
	var errs []error
	for _, s := range e.cfg.Sinks {
		if err := s.Ping(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.Name(), err))
		}
	}
	return errors.Join(errs...)
}

// Sinks lists the sink names.
func (e *Engine) Sinks() []string {
	names := make([]string, len(e.cfg.Sinks))
	for i, s := range e.cfg.Sinks {
		names[i] = s.Name()
	}
	return names
}

// StopAccepting makes Admit and Ingest refuse from now on (503 at the
// API, and /readyz says so), the first step of a shutdown.
func (e *Engine) StopAccepting() {
	e.mu.Lock()
	e.closing = true
	e.mu.Unlock()
}

// Close stops taking events, flushes the buffer and waits for the sinks
// until ctx is done; then it cancels the writes still running, so their
// events go to the fallback log, and waits for that. Then it closes the
// sinks. Nothing accepted is dropped unless the fallback log itself cannot
// be written within a minute after ctx is done.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	already := e.closeStarted
	e.closing, e.closeStarted = true, true
	e.mu.Unlock()
	if already {
		return errors.New("engine already closed")
	}
	start := time.Now()
	// Siblings first: what they still receive reaches the buffer.
	for _, pid := range []*actor.PID{e.proxy, e.duties} {
		if pid == nil {
			continue
		}
		if err := e.sys.Root.PoisonFuture(pid).Wait(); err != nil {
			e.log.Error("actor did not stop in time", "actor", pid.Id, "error", err)
		}
	}
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	pending := e.pendingEvents.Load()

	// The buffer flushes what it holds when it stops; Poison lets it take
	// every ingest queued before.
	if err := e.sys.Root.PoisonFuture(e.buffer).Wait(); err != nil {
		e.log.Error("buffer did not stop in time", "error", err)
	}
	timedOut := false
	if !e.drain(ctx) {
		timedOut = true
		e.log.Warn("shutdown timeout passed with events still being written; sending them to the fallback log",
			"pending", e.pendingEvents.Load())
		e.cancelWrite()
		// Cancelled writes fail at once; what is left is writing the
		// fallback log, which is retried while it fails, for a minute.
		grace, cancel := context.WithTimeout(context.Background(), time.Minute)
		if !e.drain(grace) {
			e.log.Error("the fallback log is still failing; giving up on the events left", "pending", e.pendingEvents.Load())
			e.cancelAbandon()
			last, cancelLast := context.WithTimeout(context.Background(), 10*time.Second)
			e.drain(last)
			cancelLast()
		}
		cancel()
	}
	e.cancelWrite()
	e.cancelAbandon()
	if err := e.sys.Root.PoisonFuture(e.batcher).Wait(); err != nil {
		e.log.Error("batcher did not stop in time", "error", err)
	}
	var errs []error
	for _, s := range e.cfg.Sinks {
		if err := s.Close(); err != nil {
			errs = append(errs, fmt.Errorf("cannot close %s: %w", s.Name(), err))
		}
	}
	e.sys.Shutdown()
	e.log.Info("engine stopped", "events_at_stop", pending, "unfinished", e.pendingEvents.Load(),
		"timed_out", timedOut, "took", time.Since(start).Round(time.Millisecond))
	return errors.Join(errs...)
}

// drain waits until the batcher has nothing queued or in flight, or ctx is
// done.
func (e *Engine) drain(ctx context.Context) bool {
	timeout := time.Hour
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return e.pendingEvents.Load() == 0
	}
	_, err := e.sys.Root.RequestFuture(e.batcher, &drain{}, timeout).Result()
	return err == nil
}

func (e *Engine) redisMetrics() *redisMetrics { return e.redisM }

// NodeStatus is this node's view of itself, for GET /v1/node.
type NodeStatus struct {
	Master        MasterStatus `json:"master"`
	Accepting     bool         `json:"accepting"`
	PendingEvents int64        `json:"pending_events"`
	PendingBytes  int64        `json:"pending_bytes"`
	Sinks         []SinkStatus `json:"sinks"`
	Redis         *RedisStatus `json:"redis,omitempty"`
	Proxy         *ProxyStatus `json:"proxy,omitempty"`
}

// SinkStatus says whether a sink answered a ping just now.
type SinkStatus struct {
	Name      string `json:"name"`
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
}

// Node reports the engine's state; it pings every sink, bounded by ctx.
func (e *Engine) Node(ctx context.Context) NodeStatus {
	n := NodeStatus{Master: e.master.get(), Accepting: e.Accepting(), PendingEvents: e.pendingEvents.Load(), PendingBytes: e.pendingBytes.Load()}
	for _, s := range e.cfg.Sinks {
		st := SinkStatus{Name: s.Name(), Reachable: true}
		if err := s.Ping(ctx); err != nil {
			st.Reachable, st.Error = false, err.Error()
		}
		n.Sinks = append(n.Sinks, st)
	}
	if e.redisSt != nil {
		r := e.redisSt.snapshot()
		n.Redis = &r
	}
	if e.proxySt != nil {
		p := e.proxySt.status()
		n.Proxy = &p
	}
	return n
}
