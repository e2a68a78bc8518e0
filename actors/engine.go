package actors

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"eventlistener/event"
	infraredis "eventlistener/infra/redis"
	"eventlistener/infra/vip"
	"eventlistener/sinks"
	"eventlistener/sources"
	"eventlistener/wal"
)

// Errors Ingest returns; the API answers them with 503 and Retry-After.
var (
	ErrOverloaded   = errors.New("too many events waiting to be written to the WAL; retry later")
	ErrShuttingDown = errors.New("shutting down; retry on another node or later")
	ErrWALFull      = errors.New("the write-ahead log is full while a store is behind; retry later")
	ErrWALFailed    = errors.New("the write-ahead log failed (see the log); this node takes no events until restarted")
)

// AckMode says when a request is answered.
type AckMode string

const (
	// AckDurable answers once the events are synced to the WAL: a crash or
	// power cut loses none of them.
	AckDurable AckMode = "durable"
	// AckMemory answers once the events are queued for the WAL, before they
	// are written: a crash loses those not yet synced (usually the last few
	// milliseconds).
	AckMemory AckMode = "memory"
)

// WALFull says what happens when the WAL reaches its size limit.
type WALFull string

const (
	// WALSpill moves the most lagging sink's oldest events to its fallback
	// log, so ingest and the other sinks go on.
	WALSpill WALFull = "spill"
	// WALReject answers 503 until the sinks catch up.
	WALReject WALFull = "reject"
)

// WALConfig configures the write-ahead log.
type WALConfig struct {
	Dir          string
	SegmentBytes int64
	// MaxBytes bounds the WAL on disk; Full says what happens at the bound.
	MaxBytes int64
	Full     WALFull
	// QueueBytes bounds the events read and waiting to be written.
	QueueBytes int64
	// FS is the file system (tests simulate power cuts); default the OS's.
	FS wal.FS
}

// Config is what the engine needs. Zero fields take the defaults of
// DefaultConfig.
type Config struct {
	// The buffer's flush triggers.
	MaxEvents int
	MaxBytes  int
	Idle      time.Duration
	MaxAge    time.Duration

	// MaxInFlight bounds the batches each sink writes at once.
	MaxInFlight int
	// Window is how many batches each sink keeps in memory beyond those in
	// flight; the rest it reads back from the WAL.
	Window int
	// Retry says how sinks are retried; MaxElapsed is ignored (a sink is
	// retried until its store is back).
	Retry sinks.Retry
	// Migrate makes each sink create its table or template before its first
	// write, retrying in the background until the store answers.
	Migrate bool

	WAL WALConfig
	Ack AckMode

	Sinks    []sinks.Sink
	Fallback Fallback
	// Sources feed the engine besides Ingest: each runs supervised, on
	// every node or (a singleton) while this node is master.
	Sources []sources.Source
	// Notifier, when set, is told about every batch each sink finished;
	// NotifyQueue reports wait for it at most, the rest are dropped.
	Notifier    Notifier
	NotifyQueue int
	// Cluster, when set, registers this node in the Redis node registry.
	Cluster *ClusterConfig
	// VIP, when set, makes this node master only while it holds the
	// address; checked every DutyInterval (default 2s). Without it every
	// node is master.
	VIP          *vip.Checker
	DutyInterval time.Duration
	// Lease, when set and VIP is not, elects the duty holder among the
	// nodes sharing a Redis; it is tried every third of its TTL.
	Lease *infraredis.Lease

	// restartDelay is a crashed source's first restart delay (tests
	// shorten it); 0 means 200ms.
	restartDelay time.Duration
	Logger       *slog.Logger
	// Registerer takes the engine's metrics; nil: not registered.
	Registerer prometheus.Registerer
	// OnIngest, when set, sees every request's events once the WAL took
	// them (the console's live tail). It runs on the ingest path: it must
	// not block, and must copy what it keeps.
	OnIngest func([]event.Event)
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
	// Eight batches (at most 32 MiB) per sink ride out a short hiccup
	// without reading back from disk; a longer outage costs no memory.
	Window: 8,
	Retry:  sinks.DefaultRetry,
	WAL: WALConfig{
		// 4 GiB: at 10,000 events/s of 1 KiB, about seven minutes of a
		// store being down; at 1,000 events/s over an hour.
		MaxBytes:   4 << 30,
		Full:       WALSpill,
		QueueBytes: wal.DefaultOptions.MaxQueueBytes,
	},
	Ack: AckDurable,
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
	if c.Window <= 0 {
		c.Window = d.Window
	}
	if c.Retry == (sinks.Retry{}) {
		c.Retry = d.Retry
	}
	c.Retry.MaxElapsed = 0
	if c.WAL.MaxBytes <= 0 {
		c.WAL.MaxBytes = d.WAL.MaxBytes
	}
	if c.WAL.Full == "" {
		c.WAL.Full = d.WAL.Full
	}
	if c.WAL.QueueBytes <= 0 {
		c.WAL.QueueBytes = d.WAL.QueueBytes
	}
	if c.Ack == "" {
		c.Ack = d.Ack
	}
	if c.NotifyQueue <= 0 {
		c.NotifyQueue = DefaultNotifyQueue
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
}

// Engine is the actor system that logs, batches and writes events. Ingest
// is the one way in.
type Engine struct {
	cfg       Config
	sys       *actor.ActorSystem
	wal       *wal.WAL
	recovered wal.Recovery
	buffer    *actor.PID
	pipes     []*actor.PID
	states    []*sinkState
	duties    *actor.PID // decides the master and runs the sources
	master    *masterState
	sources   []*sourceState
	notifier  *notifier     // nil without a Notifier
	cluster   *cluster      // nil without a node registry
	lease     *leaseChecker // nil without the duty lease
	metrics   *Metrics
	log       *slog.Logger

	// mu orders Ingest against Close: once closing is set under the write
	// lock, no Ingest can still be on its way to the WAL.
	mu           sync.RWMutex
	closing      bool // Ingest refuses requests from the API
	closeStarted bool // Close ran
	closed       bool // the siblings are stopped too: nothing may reach the WAL

	walBytes atomic.Int64 // the WAL's size, as of the last check
	clock    commitClock  // when offsets were written, for lag ages
	lost     atomic.Int64 // acknowledged events that are gone (memory mode)

	// progress wakes whoever waits for the sinks (?ack=stored, release).
	progressMu sync.Mutex
	progressCh chan struct{}
	release    chan struct{}
	releaseEnd chan struct{}

	pipeCtx    context.Context
	cancelPipe context.CancelFunc
	writers    sync.WaitGroup // the pipelines' write goroutines
}

// Start opens the WAL (delivering again what it holds), and spawns the
// buffer, one pipeline per sink, and the siblings.
func Start(cfg Config) (*Engine, error) {
	cfg.applyDefaults()
	if len(cfg.Sinks) == 0 {
		return nil, errors.New("no sink configured")
	}
	if cfg.Fallback == nil {
		return nil, errors.New("no fallback log configured")
	}
	if cfg.WAL.Dir == "" {
		return nil, errors.New("no WAL folder configured")
	}
	e := &Engine{cfg: cfg, log: cfg.Logger, master: &masterState{}, progressCh: make(chan struct{}),
		release: make(chan struct{}, 1), releaseEnd: make(chan struct{})}
	e.metrics = newMetrics(cfg.Registerer, e)
	e.pipeCtx, e.cancelPipe = context.WithCancel(context.Background())
	protoLog := cfg.Logger.With("component", "protoactor")
	e.sys = actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return protoLog }),
		actor.WithDeadLetterThrottleCount(10),
		actor.WithDeadLetterThrottleInterval(10*time.Second),
	)
	// A crash restarts the actor; ten crashes in ten seconds stop it. The
	// buffer hands over what it holds when it restarts; a pipeline is never
	// restarted, as its state is its place in the WAL (see pipelineProps).
	restart := actor.WithGuardian(actor.NewOneForOneStrategy(10, 10*time.Second, actor.DefaultDecider))

	w, rec, err := wal.Open(wal.Options{
		Dir: cfg.WAL.Dir, SegmentBytes: cfg.WAL.SegmentBytes, MaxQueueBytes: cfg.WAL.QueueBytes, FS: cfg.WAL.FS,
		Logger: cfg.Logger.With("component", "wal"), OnCommit: e.committed,
		OnSync: func(d time.Duration, records int) {
			e.metrics.walSync.Observe(d.Seconds())
			e.metrics.walRecords.Observe(float64(records))
		},
	})
	if err != nil {
		return nil, fmt.Errorf("cannot open the WAL in %s: %w", cfg.WAL.Dir, err)
	}
	e.wal, e.recovered = w, rec
	e.logRecovery(rec)
	e.clock.note(rec.First, time.Now()) // recovered events: at least this old
	e.walBytes.Store(w.Stats().Bytes)
	if cfg.Notifier != nil {
		e.notifier = startNotifier(cfg.Notifier, cfg.NotifyQueue, e.metrics, cfg.Logger.With("component", "notify"))
	}
	for _, s := range cfg.Sinks {
		if err := e.startPipeline(s, rec); err != nil {
			w.Close()
			return nil, err
		}
	}
	go e.releaser()
	policy := Policy{MaxEvents: cfg.MaxEvents, MaxBytes: cfg.MaxBytes, Idle: cfg.Idle, MaxAge: cfg.MaxAge}
	pipes := e.pipes
	e.buffer, err = e.sys.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
		return newBuffer(policy, pipes, rec.Next, e.metrics, cfg.Logger, newBatchID)
	}, restart), "buffer")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("cannot start the buffer: %w", err)
	}
	e.newSourceStates(cfg.Sources)
	if err := e.startDuties(cfg, restart); err != nil {
		return nil, err
	}
	if cfg.Cluster != nil {
		e.startCluster(*cfg.Cluster)
	}
	return e, nil
}

func (e *Engine) logRecovery(rec wal.Recovery) {
	args := []any{"dir", e.cfg.WAL.Dir, "segments", rec.Segments, "records", rec.Records, "events", rec.Events,
		"first", rec.First, "next", rec.Next}
	if rec.TornBytes > 0 {
		args = append(args, "torn_bytes_cut", rec.TornBytes)
	}
	for _, q := range rec.Quarantined {
		e.metrics.walQuarantined.Add(float64(q.To - q.From))
		e.log.Error("WAL: events lost to a bad record; the bytes are kept in quarantine",
			"segment", q.Segment, "file", q.File, "events", q.To-q.From, "reason", q.Reason)
	}
	if rec.Events > 0 {
		e.log.Info("WAL recovered: delivering its events again to every sink (stores drop the ids they hold)", args...)
	} else {
		e.log.Info("WAL opened", args...)
	}
}

// startPipeline spawns the batch actor of one sink. It starts with the
// whole recovered WAL to deliver.
func (e *Engine) startPipeline(s sinks.Sink, rec wal.Recovery) error {
	name := s.Name()
	log := e.log.With("sink", name)
	st := &sinkState{name: name}
	st.cb = newBreaker(name, log, e.metrics)
	st.done.Store(rec.First)
	st.head.Store(rec.Next)
	e.metrics.breaker.WithLabelValues(name).Set(0)
	var notify func(BatchReport)
	if e.notifier != nil {
		notify = e.notifier.offer
	}
	cfg := pipelineConfig{maxInFlight: e.cfg.MaxInFlight, window: e.cfg.Window, maxEvents: e.cfg.MaxEvents,
		maxBytes: e.cfg.MaxBytes, retry: e.cfg.Retry, migrate: e.cfg.Migrate}
	// Never restarted (a new instance would lose its place in the WAL)
	// nor stopped (its events would wait forever): a panic in Receive is
	// logged and the pipeline resumes. The sink's own panics are recovered
	// in the write goroutine.
	resume := actor.WithGuardian(actor.NewOneForOneStrategy(math.MaxInt32, time.Second, func(reason any) actor.Directive {
		log.Error("sink pipeline panicked; resuming it (the message it was handling is dropped)", "panic", reason)
		return actor.ResumeDirective
	}))
	pid, err := e.sys.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
		return &pipeline{sink: guarded{Sink: s, cb: st.cb}, raw: s, fallback: e.cfg.Fallback, wal: e.wal,
			cursor: e.wal.NewCursor(rec.First), cfg: cfg, ctx: e.pipeCtx, state: st, metrics: e.metrics,
			log: log, newID: newBatchID, progress: e.progressed, notify: notify, writers: &e.writers,
			head: rec.Next, dispatched: rec.First}
	}, resume), "sink-"+name)
	if err != nil {
		return fmt.Errorf("cannot start the %s pipeline: %w", name, err)
	}
	e.pipes = append(e.pipes, pid)
	e.states = append(e.states, st)
	return nil
}

// committed is the WAL's OnCommit: the records go to the buffer in offset
// order.
func (e *Engine) committed(recs []wal.Committed) {
	n := 0
	for _, r := range recs {
		n += len(r.Events)
	}
	e.metrics.accepted.Add(float64(n))
	if len(recs) > 0 {
		e.clock.note(recs[0].First, time.Now())
	}
	e.sys.Root.Send(e.buffer, &ingest{recs: recs})
}

// progressed is told by a pipeline that its watermark moved.
func (e *Engine) progressed() {
	e.progressMu.Lock()
	close(e.progressCh)
	e.progressCh = make(chan struct{})
	e.progressMu.Unlock()
	select {
	case e.release <- struct{}{}:
	default:
	}
}

func (e *Engine) progressChan() <-chan struct{} {
	e.progressMu.Lock()
	defer e.progressMu.Unlock()
	return e.progressCh
}

// done is the lowest watermark of the sinks: every event before it is done
// everywhere.
func (e *Engine) done() uint64 {
	low := uint64(math.MaxUint64)
	for _, st := range e.states {
		low = min(low, st.done.Load())
	}
	return low
}

// releaser deletes the WAL segments every sink is done with, and acts when
// the WAL is full. It runs until Close.
func (e *Engine) releaser() {
	defer close(e.releaseEnd)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-e.release:
		case <-tick.C:
		case <-e.pipeCtx.Done():
			return
		}
		if n, err := e.wal.Release(e.done()); err != nil {
			e.log.Error("cannot delete WAL segments", "error", err)
		} else if n > 0 {
			e.log.Debug("WAL segments deleted", "segments", n)
		}
		st := e.wal.Stats()
		e.walBytes.Store(st.Bytes)
		if st.Bytes >= e.cfg.WAL.MaxBytes && e.cfg.WAL.Full == WALSpill {
			e.spill(st)
		}
	}
}

// spill asks the most lagging sink to move its events of the oldest segment
// to its fallback log.
func (e *Engine) spill(st wal.Stats) {
	lag, at := -1, uint64(math.MaxUint64)
	for i, s := range e.states {
		if d := s.done.Load(); d < at && s.lag() > 0 {
			lag, at = i, d
		}
	}
	if lag < 0 {
		return
	}
	upTo := e.wal.SegmentEnd(at)
	if upTo <= at {
		return
	}
	e.sys.Root.Send(e.pipes[lag], &spill{upTo: upTo})
}

func newBatchID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// Ingest logs one request's events and hands them on, all or none. With
// AckDurable it returns once they are synced to the WAL. It returns
// ErrOverloaded, ErrWALFull, ErrWALFailed or ErrShuttingDown when it took
// none of them.
func (e *Engine) Ingest(events []event.Event) error {
	if len(events) == 0 {
		return nil
	}
	_, err := e.ingest(events, false, e.cfg.Ack == AckDurable)
	return err
}

// IngestStored logs one request's events and returns once every sink has
// stored them or put them in its fallback log, or ctx is done (the events
// are durable either way). It returns each sink's outcome.
func (e *Engine) IngestStored(ctx context.Context, events []event.Event) (map[string]string, error) {
	if len(events) == 0 {
		return nil, nil
	}
	first, err := e.ingest(events, false, true)
	if err != nil {
		return nil, err
	}
	end := first + uint64(len(events))
	for {
		ch := e.progressChan()
		out, all := map[string]string{}, true
		for _, st := range e.states {
			if st.done.Load() >= end {
				out[st.name] = "done"
			} else {
				out[st.name] = "pending"
				all = false
			}
		}
		if all {
			return out, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return out, ctx.Err()
		}
	}
}

// ingestSibling is Ingest for the sibling actors: they are stopped before
// the WAL closes, so they may go on until then even after StopAccepting.
func (e *Engine) ingestSibling(events []event.Event) error {
	_, err := e.ingest(events, true, true)
	return err
}

func (e *Engine) ingest(events []event.Event, sibling, wait bool) (uint64, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	n := int64(len(events))
	if e.closed || (e.closing && !sibling) {
		e.refused("shutting_down", n)
		return 0, ErrShuttingDown
	}
	if err := e.full(); err != nil {
		e.refused("wal_full", n)
		return 0, err
	}
	ch, err := e.wal.Enqueue(events)
	if err != nil {
		return 0, e.walError(err, n)
	}
	if !wait {
		go e.watchUnsynced(ch, len(events))
		e.tap(events)
		return 0, nil
	}
	r := <-ch
	if r.Err != nil {
		return 0, e.walError(r.Err, n)
	}
	e.tap(events)
	return r.First, nil
}

// tap shows taken events to Config.OnIngest.
func (e *Engine) tap(events []event.Event) {
	if e.cfg.OnIngest != nil {
		e.cfg.OnIngest(events)
	}
}

// watchUnsynced counts acknowledged events (AckMemory) the WAL then failed
// to write: they are lost.
func (e *Engine) watchUnsynced(ch <-chan wal.Result, n int) {
	if r := <-ch; r.Err != nil {
		e.lost.Add(int64(n))
		e.metrics.lost.WithLabelValues("wal").Add(float64(n))
		e.log.Error("EVENTS LOST: acknowledged (--ack memory) but the WAL could not write them", "events", n, "error", r.Err)
	}
}

func (e *Engine) walError(err error, n int64) error {
	switch {
	case errors.Is(err, wal.ErrQueueFull):
		e.refused("overloaded", n)
		return ErrOverloaded
	case errors.Is(err, wal.ErrClosed):
		e.refused("shutting_down", n)
		return ErrShuttingDown
	case errors.Is(err, wal.ErrFailed):
		e.refused("wal_failed", n)
		return ErrWALFailed
	}
	// A write that failed without failing the log (a full disk): this
	// request is refused, the next may succeed.
	e.refused("wal_error", n)
	return fmt.Errorf("%w: %v", ErrOverloaded, err)
}

// full says whether the WAL is at its bound with --wal-full reject.
func (e *Engine) full() error {
	if e.cfg.WAL.Full == WALReject && e.walBytes.Load() >= e.cfg.WAL.MaxBytes {
		return ErrWALFull
	}
	return nil
}

// Admit says whether a request may be read at all; the API asks before it
// spends time decoding a body only to refuse it. Ingest still checks.
func (e *Engine) Admit() error {
	if !e.Accepting() {
		e.refused("shutting_down", 0)
		return ErrShuttingDown
	}
	if err := e.wal.Err(); err != nil {
		e.refused("wal_failed", 0)
		return ErrWALFailed
	}
	if err := e.full(); err != nil {
		e.refused("wal_full", 0)
		return err
	}
	if e.wal.QueuedBytes() >= e.cfg.WAL.QueueBytes {
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

// Pending says how many events some sink has not finished yet.
func (e *Engine) Pending() int64 {
	var n uint64
	for _, st := range e.states {
		n = max(n, st.lag())
	}
	return int64(n)
}

// Accepting says whether Ingest takes events (false once Close began).
func (e *Engine) Accepting() bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return !e.closing
}

// Ready says whether this node can take events now: not stopping, the WAL
// healthy and not full. The stores' health is reported, not required: their
// events wait in the WAL.
func (e *Engine) Ready() error {
	if !e.Accepting() {
		return ErrShuttingDown
	}
	if err := e.wal.Err(); err != nil {
		return fmt.Errorf("%w: %v", ErrWALFailed, err)
	}
	return e.full()
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

// ErrEventsLost is what Close returns when acknowledged events are gone.
var ErrEventsLost = errors.New("acknowledged events were lost")

// Close stops taking events, writes what is queued to the WAL, flushes the
// buffer, and gives the sinks until ctx is done; what they have not
// finished stays in the WAL for the next start. It returns ErrEventsLost
// (wrapped) if any acknowledged event is gone.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	already := e.closeStarted
	e.closing, e.closeStarted = true, true
	e.mu.Unlock()
	if already {
		return errors.New("engine already closed")
	}
	start := time.Now()
	// The sources first: what they still send reaches the WAL.
	if err := e.sys.Root.PoisonFuture(e.duties).Wait(); err != nil {
		e.log.Error("the sources did not stop in time", "error", err)
	}
	if e.lease != nil {
		// The duties are stopped: let another node take them now.
		if err := e.lease.release(); err != nil {
			e.log.Warn("cannot release the duty lease; another node takes it when it expires", "error", err)
		}
	}
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	// The WAL writes and syncs what is queued, then hands it to the buffer,
	// which flushes when it stops.
	walErr := e.wal.Close()
	if err := e.sys.Root.PoisonFuture(e.buffer).Wait(); err != nil {
		e.log.Error("buffer did not stop in time", "error", err)
	}
	finished := e.drain(ctx)
	e.cancelPipe() // writes still running stop; their events stay in the WAL
	<-e.releaseEnd
	for _, pid := range e.pipes {
		if err := e.sys.Root.PoisonFuture(pid).Wait(); err != nil {
			e.log.Error("sink pipeline did not stop in time", "actor", pid.Id, "error", err)
		}
	}
	// The pipelines are stopped, so no write starts any more: wait for
	// those cancelled before the stores close under them.
	writersDone := make(chan struct{})
	go func() { e.writers.Wait(); close(writersDone) }()
	select {
	case <-writersDone:
	case <-time.After(2 * time.Second):
		e.log.Warn("writes still running 2s after they were cancelled; closing the stores anyway")
	}
	if _, err := e.wal.Release(e.done()); err != nil {
		e.log.Error("cannot delete WAL segments", "error", err)
	}
	var errs []error
	if walErr != nil {
		errs = append(errs, fmt.Errorf("cannot close the WAL: %w", walErr))
	}
	for _, s := range e.cfg.Sinks {
		if err := s.Close(); err != nil {
			errs = append(errs, fmt.Errorf("cannot close %s: %w", s.Name(), err))
		}
	}
	if e.notifier != nil {
		e.notifier.close(time.Second)
	}
	if e.cluster != nil {
		e.cluster.close()
	}
	e.sys.Shutdown()
	args := []any{"took", time.Since(start).Round(time.Millisecond)}
	for _, st := range e.states {
		args = append(args, st.name+"_unfinished", st.lag())
	}
	if finished {
		e.log.Info("engine stopped: every sink finished", args...)
	} else {
		e.log.Warn("engine stopped before every sink finished; the rest stays in the WAL and is delivered at the next start", args...)
	}
	if n := e.lost.Load(); n > 0 {
		errs = append(errs, fmt.Errorf("%w: %d events acknowledged with --ack memory could not be written to the WAL", ErrEventsLost, n))
	}
	return errors.Join(errs...)
}

// drain waits until every pipeline has nothing left, or ctx is done.
func (e *Engine) drain(ctx context.Context) bool {
	timeout := time.Hour
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return e.Pending() == 0
	}
	futures := make([]*actor.Future, len(e.pipes))
	for i, pid := range e.pipes {
		futures[i] = e.sys.Root.RequestFuture(pid, &drain{}, timeout)
	}
	ok := true
	for _, f := range futures {
		if _, err := f.Result(); err != nil {
			ok = false
		}
	}
	return ok
}

// NodeStatus is this node's view of itself, for GET /v1/node.
type NodeStatus struct {
	Master    MasterStatus `json:"master"`
	Accepting bool         `json:"accepting"`
	Ready     bool         `json:"ready"`
	NotReady  string       `json:"not_ready,omitempty"`
	Ack       AckMode      `json:"ack"`
	WAL       WALStatus    `json:"wal"`
	Sinks     []SinkStatus `json:"sinks"`
	// Sources are Redis pub/sub, Redis Streams and the HAProxy watcher,
	// those configured.
	Sources []SourceStatus `json:"sources"`
}

// WALStatus describes the write-ahead log.
type WALStatus struct {
	Dir         string `json:"dir"`
	Segments    int    `json:"segments"`
	Bytes       int64  `json:"bytes"`
	MaxBytes    int64  `json:"max_bytes"`
	Full        string `json:"when_full"`
	First       uint64 `json:"first_offset"`
	Next        uint64 `json:"next_offset"`
	QueuedBytes int64  `json:"queued_bytes"`
	Error       string `json:"error,omitempty"`
}

// SinkStatus is one sink's state.
type SinkStatus struct {
	Name      string `json:"name"`
	Ready     bool   `json:"ready"` // its table or template is in place
	Reachable bool   `json:"reachable"`
	Breaker   string `json:"breaker"`
	// LagEvents are logged and not yet done at this sink; LagBytes is the
	// WAL they keep on disk.
	LagEvents uint64 `json:"lag_events"`
	LagBytes  int64  `json:"lag_bytes"`
	// OldestPendingSeconds is how long ago its oldest unfinished event
	// was written to the WAL (to the second); 0 when it is not behind.
	OldestPendingSeconds float64 `json:"oldest_pending_seconds"`
	DoneUpTo             uint64  `json:"done_offset"`
	LastError            string  `json:"last_error,omitempty"`
	ErrorAt              string  `json:"last_error_at,omitempty"`
	Error                string  `json:"error,omitempty"`
}

// HideDetails blanks what may name hosts, users or paths: the stores'
// and the sources' errors and the WAL's folder, for callers without the
// admin token. It changes n's Sinks in place; its Sources are copied.
func (n *NodeStatus) HideDetails() {
	for i := range n.Sinks {
		n.Sinks[i].HideDetails()
	}
	HideDetail(&n.WAL.Dir)
	HideDetail(&n.WAL.Error)
	HideDetail(&n.NotReady)
	n.Sources = hideSources(n.Sources)
}

// HideDetails blanks the sink's errors.
func (s *SinkStatus) HideDetails() {
	HideDetail(&s.Error)
	HideDetail(&s.LastError)
}

// HideDetail replaces a detail that is there with "hidden".
func HideDetail(s *string) { sources.HideDetail(s) }

// pendingAge is how long the oldest event a sink has not finished has been
// in the WAL, in seconds (0 when it is not behind).
func (e *Engine) pendingAge(st *sinkState) float64 {
	if st.lag() == 0 {
		return 0
	}
	t, ok := e.clock.since(st.done.Load())
	if !ok {
		return 0
	}
	return time.Since(t).Round(time.Second).Seconds()
}

// Node reports the engine's state; it pings every sink (at most once a
// second each, all at once), each ping bounded by ctx and pingTimeout.
func (e *Engine) Node(ctx context.Context) NodeStatus { return e.node(ctx, true) }

// Status is Node without asking the stores: each sink's reachability is
// the last ping's (reachable before the first).
func (e *Engine) Status() NodeStatus { return e.node(context.Background(), false) }

// pingTimeout bounds one store's ping for Node.
const pingTimeout = time.Second

func (e *Engine) node(ctx context.Context, ping bool) NodeStatus {
	ws := e.wal.Stats()
	n := NodeStatus{Master: e.master.get(), Accepting: e.Accepting(), Ack: e.cfg.Ack,
		WAL: WALStatus{Dir: e.cfg.WAL.Dir, Segments: ws.Segments, Bytes: ws.Bytes, MaxBytes: e.cfg.WAL.MaxBytes,
			Full: string(e.cfg.WAL.Full), First: ws.First, Next: ws.Next, QueuedBytes: ws.QueuedBytes}}
	if err := e.wal.Err(); err != nil {
		n.WAL.Error = err.Error()
	}
	if err := e.Ready(); err != nil {
		n.NotReady = err.Error()
	} else {
		n.Ready = true
	}
	n.Sinks = make([]SinkStatus, len(e.cfg.Sinks))
	var pings sync.WaitGroup
	for i, s := range e.cfg.Sinks {
		st := e.states[i]
		ss := SinkStatus{Name: s.Name(), Ready: st.ready.Load(), Reachable: true, Breaker: st.cb.State().String(),
			LagEvents: st.lag(), LagBytes: e.wal.BytesFrom(st.done.Load()), DoneUpTo: st.done.Load(),
			OldestPendingSeconds: e.pendingAge(st)}
		st.mu.Lock()
		if st.lastErr != "" {
			ss.LastError, ss.ErrorAt = st.lastErr, st.errAt.UTC().Format(time.RFC3339)
		}
		st.mu.Unlock()
		n.Sinks[i] = ss
		if !ping {
			if err := st.lastPing(); err != nil {
				n.Sinks[i].Reachable, n.Sinks[i].Error = false, err.Error()
			}
			continue
		}
		pings.Add(1)
		go func() {
			defer pings.Done()
			if err := st.ping(ctx, s); err != nil {
				n.Sinks[i].Reachable, n.Sinks[i].Error = false, err.Error()
			}
		}()
	}
	pings.Wait()
	n.Sources = e.sourceStatuses()
	return n
}

// startDuties spawns the actor that decides whether this node is master
// and runs the sources, as its supervised children.
func (e *Engine) startDuties(cfg Config, restart actor.PropsOption) error {
	d := &duties{e: e, vip: cfg.VIP, interval: cfg.DutyInterval, log: e.log.With("actor", "duties")}
	if cfg.VIP != nil {
		e.master.s.VIP = cfg.VIP.Addr.String()
	} else if cfg.Lease != nil {
		d.lease = &leaseChecker{lease: cfg.Lease, master: e.master}
		d.interval = cfg.Lease.TTL / 3
		e.lease = d.lease
	}
	if d.interval <= 0 {
		d.interval = 2 * time.Second
	}
	var err error
	// The duties actor supervises the sources: a crash restarts one after
	// a delay that grows with each crash (200 ms per crash in the last
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
