package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/cenkalti/backoff/v5"
	"github.com/sony/gobreaker/v2"

	"eventlistener/event"
	"eventlistener/sinks"
	"eventlistener/wal"
)

// Fallback keeps the events a sink refused. *fallback.Log is one.
type Fallback interface {
	Write(sink, batchID string, failed []sinks.Failed) (path string, err error)
}

// drain asks a pipeline to answer drained once it has nothing left to do.
type drain struct{}

type drained struct{}

// prepared says that the sink's table or template is in place.
type prepared struct{}

// flight is a batch being written; done once the sink stored it or its
// fallback log holds what the sink refused.
type flight struct {
	first, end uint64
	done       bool
	cancel     context.CancelFunc
}

type writeDone struct {
	f         *flight
	completed bool
}

type readDone struct {
	from   uint64 // where the read started
	first  uint64 // offset of events[0]
	events []event.Event
	pos    uint64 // the cursor after the read
	err    error
	retry  bool // no read: the pause before reading again is over
}

// spill asks the pipeline to move its events before upTo from the WAL to
// its fallback log (the WAL is full); spilled reports it done.
type spill struct{ upTo uint64 }

type spilled struct {
	from, upTo uint64
	err        error
}

// sinkState is what the rest of the engine reads of a pipeline.
type sinkState struct {
	name   string
	done   atomic.Uint64 // every event before this offset is done
	head   atomic.Uint64 // every event before this offset was handed over
	ready  atomic.Bool   // the sink's table or template is in place
	queued atomic.Int64  // batches kept in memory, waiting (bound: window)
	cb     *gobreaker.CircuitBreaker[struct{}]

	mu      sync.Mutex
	lastErr string
	errAt   time.Time

	// The last ping, for /v1/node: pinged at most once a second, however
	// often the node is asked, so status calls take no store connections
	// from the writes.
	pingMu  sync.Mutex
	pingAt  time.Time
	pingErr error
}

// pingEvery is how often Node pings a store at most.
const pingEvery = time.Second

// ping answers the store's reachability, from the last ping when it is
// recent.
func (s *sinkState) ping(ctx context.Context, sink interface{ Ping(context.Context) error }) error {
	s.pingMu.Lock()
	defer s.pingMu.Unlock()
	if !s.pingAt.IsZero() && time.Since(s.pingAt) < pingEvery {
		return s.pingErr
	}
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	err := sink.Ping(pctx)
	if ctx.Err() != nil {
		// The caller gave up, which says nothing about the store: not
		// kept for the next caller. (A ping that took pingTimeout does.)
		return err
	}
	s.pingErr, s.pingAt = err, time.Now()
	return err
}

// lastPing is the last ping's answer, without pinging.
func (s *sinkState) lastPing() error {
	s.pingMu.Lock()
	defer s.pingMu.Unlock()
	return s.pingErr
}

func (s *sinkState) setErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.lastErr = ""
		return
	}
	s.lastErr, s.errAt = err.Error(), time.Now()
}

func (s *sinkState) lag() uint64 {
	h, d := s.head.Load(), s.done.Load()
	if h < d {
		return 0
	}
	return h - d
}

// pipelineConfig is what a pipeline is given.
type pipelineConfig struct {
	maxInFlight int
	window      int // batches kept in memory beyond those in flight
	maxEvents   int // of a batch read back from the WAL
	maxBytes    int
	retry       sinks.Retry
	migrate     bool
}

// pipeline writes the batches of one sink. Batches come from the buffer in
// offset order; it keeps up to window of them in memory and lets the rest
// go: it reads those back from the WAL when it gets to them. At most
// maxInFlight batches are written at once, each by a goroutine that retries
// until the store takes it (or refuses it for good: those events go to the
// fallback log), and reports back. No I/O happens in Receive.
type pipeline struct {
	sink     sinks.Sink // guarded by the breaker
	raw      sinks.Sink
	fallback Fallback
	wal      *wal.WAL
	cursor   *wal.Cursor // used by one read goroutine at a time
	cfg      pipelineConfig
	ctx      context.Context // cancelled at the end of shutdown
	state    *sinkState
	metrics  *Metrics
	log      *slog.Logger
	newID    func() string
	writers  *sync.WaitGroup     // every write goroutine, for shutdown
	progress func()              // the watermark moved
	notify   func(r BatchReport) // nil: no notifications

	head, dispatched uint64
	queue            []*event.Batch // kept in memory, in offset order, maybe with gaps
	flights          []*flight      // in offset order
	inFlight         int
	reading, ready   bool
	spilling         bool
	drainers         []*actor.PID
}

func (p *pipeline) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *actor.Started:
		p.ready = !p.cfg.migrate
		p.state.ready.Store(p.ready)
		if p.cfg.migrate {
			p.prepare(c)
		}
		p.pump(c) // what the WAL recovered
	case *prepared:
		p.ready = true
		p.state.ready.Store(true)
		p.pump(c)
	case *event.Batch:
		p.take(m)
		p.pump(c)
	case *readDone:
		p.read(c, m)
		p.pump(c)
	case *writeDone:
		p.inFlight--
		p.metrics.inFlight.WithLabelValues(p.state.name).Dec()
		if m.completed {
			m.f.done = true
		}
		p.advance()
		p.pump(c)
	case *spill:
		p.startSpill(c, m.upTo)
	case *spilled:
		p.finishSpill(m)
		p.pump(c)
	case *drain:
		p.drainers = append(p.drainers, c.Sender())
		p.pump(c)
	}
}

// take keeps a batch from the buffer in memory if there is room; else it
// will be read back from the WAL.
func (p *pipeline) take(b *event.Batch) {
	end := b.First + uint64(len(b.Events))
	if end <= p.head {
		return // already known (recovery handed it over)
	}
	if b.First != p.head {
		p.log.Error("batch does not follow the last one; reading the gap from the WAL", "first", b.First, "want", p.head)
	}
	p.head = end
	p.state.head.Store(end)
	if len(p.queue) < p.cfg.window && b.First >= p.dispatched {
		p.queue = append(p.queue, b)
		p.state.queued.Store(int64(len(p.queue)))
		return
	}
	p.metrics.sinkFromWAL.WithLabelValues(p.state.name).Add(float64(len(b.Events)))
}

// pump starts writes while there is room, reading from the WAL what is not
// in memory, and answers drainers once nothing is left.
func (p *pipeline) pump(c actor.Context) {
	for p.ready && !p.reading && p.inFlight < p.cfg.maxInFlight && p.dispatched < p.head {
		for len(p.queue) > 0 && p.queue[0].First+uint64(len(p.queue[0].Events)) <= p.dispatched {
			p.queue[0] = nil
			p.queue = p.queue[1:]
		}
		if len(p.queue) > 0 && p.queue[0].First <= p.dispatched {
			b := p.queue[0]
			p.queue[0] = nil
			p.queue = p.queue[1:]
			if skip := p.dispatched - b.First; skip > 0 {
				b = &event.Batch{ID: b.ID, First: p.dispatched, Events: b.Events[skip:]}
			}
			p.start(c, b)
			continue
		}
		end := p.head
		if len(p.queue) > 0 {
			end = p.queue[0].First
		}
		p.reading = true
		from, self, root := p.dispatched, c.Self(), c.ActorSystem().Root
		go func() {
			p.cursor.Seek(from)
			first, evs, err := p.cursor.Next(p.cfg.maxEvents, p.cfg.maxBytes, end)
			if err != nil && p.cursor.Pos() == from {
				// Nothing could be read: wait before trying again.
				select {
				case <-time.After(time.Second):
				case <-p.ctx.Done():
				}
			}
			root.Send(self, &readDone{from: from, first: first, events: evs, pos: p.cursor.Pos(), err: err})
		}()
	}
	p.state.queued.Store(int64(len(p.queue)))
	if p.inFlight == 0 && !p.reading && !p.spilling && p.dispatched >= p.head {
		for _, d := range p.drainers {
			c.Send(d, &drained{})
		}
		p.drainers = nil
	}
}

// read takes a batch read back from the WAL.
func (p *pipeline) read(c actor.Context, m *readDone) {
	p.reading = false
	if m.from != p.dispatched {
		return // a spill moved past it meanwhile
	}
	if m.retry {
		return // pump reads again
	}
	if m.err != nil {
		p.log.Error("cannot read events back from the WAL", "from", m.from, "error", m.err)
	}
	if len(m.events) == 0 {
		if m.pos > m.from {
			p.lose(m.from, m.pos, m.err)
		} else if m.err == nil {
			// Never expected: the WAL has committed what the buffer
			// handed over. Try again (after a pause) rather than skip.
			p.log.Error("WAL returned no events where this sink needs them; reading again", "from", m.from, "to", p.head)
			p.reading = true
			self, root := c.Self(), c.ActorSystem().Root
			time.AfterFunc(time.Second, func() { root.Send(self, &readDone{from: m.from, first: m.from, pos: m.from, retry: true}) })
		}
		return
	}
	if m.first > m.from {
		p.lose(m.from, m.first, m.err)
	}
	var bytes int64
	for i := range m.events {
		bytes += int64(m.events[i].Size())
	}
	p.start(c, &event.Batch{ID: p.newID(), First: m.first, Events: m.events, Bytes: bytes})
}

// lose marks events that cannot be read back as done, loudly.
func (p *pipeline) lose(from, to uint64, err error) {
	p.log.Error("EVENTS LOST: they could not be read back from the WAL", "from", from, "to", to, "events", to-from, "error", err)
	p.metrics.lost.WithLabelValues(p.state.name).Add(float64(to - from))
	p.flights = append(p.flights, &flight{first: from, end: to, done: true})
	p.dispatched = max(p.dispatched, to)
	p.advance()
}

// start writes one batch in a goroutine of its own.
func (p *pipeline) start(c actor.Context, b *event.Batch) {
	ctx, cancel := context.WithCancel(p.ctx)
	f := &flight{first: b.First, end: b.First + uint64(len(b.Events)), cancel: cancel}
	p.flights = append(p.flights, f)
	p.dispatched = f.end
	p.inFlight++
	p.metrics.inFlight.WithLabelValues(p.state.name).Inc()
	self, root := c.Self(), c.ActorSystem().Root
	p.writers.Add(1)
	go func() {
		defer p.writers.Done()
		defer cancel()
		completed := p.write(ctx, b)
		root.Send(self, &writeDone{f: f, completed: completed})
	}()
}

// advance moves the watermark over the batches done, in order.
func (p *pipeline) advance() {
	i := 0
	for i < len(p.flights) && p.flights[i].done {
		i++
	}
	if i > 0 {
		clear(p.flights[:i])
		p.flights = p.flights[i:]
	}
	wm := p.dispatched
	if len(p.flights) > 0 {
		wm = p.flights[0].first
	}
	if wm > p.state.done.Load() {
		p.state.done.Store(wm)
		p.progress()
	}
}

// write stores one batch, retrying until the store takes it; what the store
// refuses goes to the fallback log. It reports false when ctx ended first:
// the batch stays in the WAL.
func (p *pipeline) write(ctx context.Context, b *event.Batch) (completed bool) {
	name := p.state.name
	log := p.log.With("batch", b.ID)
	defer func() {
		// A bug in a sink or its library must not take the process down:
		// the batch goes to the fallback log.
		if r := recover(); r != nil {
			log.Error("sink panicked; its events go to the fallback log", "panic", r, "stack", string(debug.Stack()))
			failed := make([]sinks.Failed, len(b.Events))
			for i := range b.Events {
				failed[i] = sinks.Failed{Event: b.Events[i], Err: fmt.Errorf("%s panicked: %v", name, r)}
			}
			completed = p.keep(ctx, log, b.ID, failed, 0)
			p.report(b, 0, len(failed), completed)
		}
	}()
	start := time.Now()
	retries := 0
	out := sinks.WriteWithRetry(ctx, p.sink, b.Events, p.cfg.retry, func(pending int, err error) {
		retries++
		p.metrics.retries.WithLabelValues(name).Inc()
		p.state.setErr(err)
		if retries == 1 {
			log.Warn("sink write failed; retrying until it works (the events wait in the WAL)", "events", pending, "error", err)
		} else {
			log.Debug("sink write failed again; retrying", "events", pending, "attempt", retries+1, "error", err)
		}
	})
	p.metrics.writeSeconds.WithLabelValues(name).Observe(time.Since(start).Seconds())
	p.metrics.sinkEvents.WithLabelValues(name, "stored").Add(float64(out.Stored))
	var refused []sinks.Failed
	cut := 0
	for _, f := range out.Failed {
		if sinks.Retryable(f.Err) {
			cut++ // only ctx ends retries: shutdown, or a spill
		} else {
			refused = append(refused, f)
		}
	}
	if cut == 0 && retries > 0 {
		log.Info("sink write worked after retries", "events", len(b.Events), "retries", retries)
	}
	if cut == 0 {
		p.state.setErr(nil)
	}
	kept := true
	if len(refused) > 0 {
		kept = p.keep(ctx, log, b.ID, refused, out.Stored)
	}
	completed = cut == 0 && kept
	p.report(b, out.Stored, len(refused), completed)
	return completed
}

func (p *pipeline) report(b *event.Batch, stored, fallback int, completed bool) {
	if p.notify != nil && completed {
		p.notify(BatchReport{Batch: b.ID, Sink: p.state.name, Events: len(b.Events), Stored: stored, Fallback: fallback, Time: time.Now().UTC()})
	}
}

// keep writes what the sink refused to the fallback log. A failing fallback
// log (disk full) is retried until it works or ctx ends; the batch keeps
// its place meanwhile, and stays in the WAL if ctx ends first.
func (p *pipeline) keep(ctx context.Context, log *slog.Logger, batchID string, failed []sinks.Failed, stored int) bool {
	name := p.state.name
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval = 100*time.Millisecond, 5*time.Second
	for {
		path, err := p.fallback.Write(name, batchID, failed)
		if err == nil {
			p.metrics.sinkEvents.WithLabelValues(name, "fallback").Add(float64(len(failed)))
			log.Warn("sink refused events; they are in the fallback log",
				"events", len(failed), "stored", stored, "file", path, "error", failed[0].Err)
			return true
		}
		log.Error("cannot write the fallback log; retrying", "events", len(failed), "error", err)
		t := time.NewTimer(bo.NextBackOff())
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			log.Warn("the fallback log could not be written before shutdown; the events stay in the WAL", "events", len(failed))
			return false
		}
	}
}

// prepare creates the sink's table or template in the background, retrying
// until it works: a store that is down at start must not stop ingest.
func (p *pipeline) prepare(c actor.Context) {
	m, ok := p.raw.(sinks.Migrator)
	if !ok {
		p.ready = true
		p.state.ready.Store(true)
		return
	}
	self, root := c.Self(), c.ActorSystem().Root
	go func() {
		bo := backoff.NewExponentialBackOff()
		bo.InitialInterval, bo.MaxInterval = 200*time.Millisecond, 30*time.Second
		for attempt := 1; ; attempt++ {
			ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
			err := m.Migrate(ctx)
			cancel()
			if err == nil {
				p.state.setErr(nil)
				p.log.Info("store ready", "attempts", attempt)
				root.Send(self, &prepared{})
				return
			}
			p.state.setErr(err)
			if p.ctx.Err() != nil {
				return
			}
			wait := bo.NextBackOff()
			p.log.Warn("cannot prepare store yet; events wait in the WAL; retrying", "error", err, "retry_in", wait.Round(time.Millisecond))
			select {
			case <-time.After(wait):
			case <-p.ctx.Done():
				return
			}
		}
	}()
}

// startSpill moves this sink's events before upTo from the WAL to its
// fallback log, so the WAL can let their segment go.
func (p *pipeline) startSpill(c actor.Context, upTo uint64) {
	from := p.state.done.Load()
	if p.spilling || upTo <= from {
		return
	}
	p.spilling = true
	self, root := c.Self(), c.ActorSystem().Root
	go func() {
		err := p.spillRange(from, upTo)
		root.Send(self, &spilled{from: from, upTo: upTo, err: err})
	}()
}

func (p *pipeline) spillRange(from, upTo uint64) error {
	cur := p.wal.NewCursor(from)
	defer cur.Close()
	reason := errors.New("the WAL was full while this store was behind; spilled to the fallback log (see --wal-full)")
	log := p.log.With("reason", "wal_full")
	for cur.Pos() < upTo {
		before := cur.Pos()
		_, evs, err := cur.Next(p.cfg.maxEvents, p.cfg.maxBytes, upTo)
		if err != nil {
			p.log.Error("cannot read events back from the WAL to spill them", "at", before, "error", err)
			if cur.Pos() == before {
				return err
			}
			continue // the cursor moved past what it could not read
		}
		if len(evs) == 0 {
			break
		}
		failed := make([]sinks.Failed, len(evs))
		for i := range evs {
			failed[i] = sinks.Failed{Event: evs[i], Err: reason}
		}
		if !p.keep(p.ctx, log, p.newID(), failed, 0) {
			return p.ctx.Err()
		}
		p.metrics.spilled.WithLabelValues(p.state.name).Add(float64(len(evs)))
	}
	return nil
}

// finishSpill counts the spilled events as done.
func (p *pipeline) finishSpill(m *spilled) {
	p.spilling = false
	if m.err != nil {
		p.log.Error("spill stopped before its end", "error", m.err)
		return
	}
	p.log.Warn("WAL full: this store's oldest events went to its fallback log; replay them once it is back",
		"events", m.upTo-m.from, "from", m.from, "to", m.upTo)
	for _, f := range p.flights {
		if f.end <= m.upTo && !f.done {
			f.done = true
			if f.cancel != nil {
				f.cancel() // its write reports back as not completed; it is done anyway
			}
		}
	}
	if p.dispatched < m.upTo {
		// What was not dispatched yet below upTo is done too.
		p.flights = append(p.flights, &flight{first: p.dispatched, end: m.upTo, done: true})
		p.dispatched = m.upTo
	}
	p.advance()
	if d := p.state.done.Load(); d < m.upTo && len(p.flights) > 0 {
		// A batch in flight straddles upTo; it finishes on its own.
		p.log.Debug("a batch in flight straddles the spilled range", "done", d, "upTo", m.upTo)
	}
}

// breakerSettings: after five failures in a row the sink stops trying for
// five seconds, then one write probes the store.
func newBreaker(name string, log *slog.Logger, m *Metrics) *gobreaker.CircuitBreaker[struct{}] {
	return gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        name,
		MaxRequests: 1,
		Timeout:     5 * time.Second,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 5 },
		IsSuccessful: func(err error) bool {
			// A refusal means the store is up and answering.
			return err == nil || !sinks.Retryable(err) || partialRefusalOnly(err)
		},
		IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
		OnStateChange: func(name string, from, to gobreaker.State) {
			m.breaker.WithLabelValues(name).Set(float64(to))
			if to == gobreaker.StateOpen {
				log.Warn("circuit breaker open: the store failed repeatedly; probing it every 5s", "from", from.String())
			} else {
				log.Info("circuit breaker "+to.String(), "from", from.String())
			}
		},
	})
}

func partialRefusalOnly(err error) bool {
	var pe *sinks.PartialError
	if !errors.As(err, &pe) {
		return false
	}
	for _, f := range pe.Failures {
		if sinks.Retryable(f.Err) {
			return false
		}
	}
	return true
}

// guarded is a sink whose writes go through a circuit breaker: while it is
// open they fail at once, retryable, without reaching the store.
type guarded struct {
	sinks.Sink
	cb *gobreaker.CircuitBreaker[struct{}]
}

func (g guarded) Write(ctx context.Context, events []event.Event) error {
	_, err := g.cb.Execute(func() (struct{}, error) { return struct{}{}, g.Sink.Write(ctx, events) })
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return sinks.MarkRetryable(fmt.Errorf("%s: circuit breaker open, store not tried: %w", g.Name(), err))
	}
	return err
}
