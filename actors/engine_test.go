package actors

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"eventlistener/event"
	"eventlistener/internal/crashfs"
	"eventlistener/sinks"
)

// fakeSink records what it stores; script, when set, decides each call's
// result from the call number (1-based) and the events.
type fakeSink struct {
	name   string
	script func(call int, events []event.Event) error
	block  chan struct{} // when set, Write waits for it to close (or ctx)

	mu     sync.Mutex
	calls  int
	pings  atomic.Int64
	stored map[string]int
}

func newFakeSink(name string) *fakeSink { return &fakeSink{name: name, stored: map[string]int{}} }

func (s *fakeSink) Name() string                   { return s.name }
func (s *fakeSink) Ping(ctx context.Context) error { s.pings.Add(1); return nil }
func (s *fakeSink) Close() error                   { return nil }

func (s *fakeSink) Write(ctx context.Context, events []event.Event) error {
	if s.block != nil {
		select {
		case <-s.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	var err error
	if s.script != nil {
		err = s.script(s.calls, events)
	}
	var pe *sinks.PartialError
	failed := map[int]bool{}
	if errors.As(err, &pe) {
		for _, f := range pe.Failures {
			failed[f.Index] = true
		}
	} else if err != nil {
		return err
	}
	for i, e := range events {
		if !failed[i] {
			s.stored[e.ID]++
		}
	}
	return err
}

func (s *fakeSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.stored)
}

func (s *fakeSink) duplicates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.stored {
		n += c - 1
	}
	return n
}

// memFallback keeps fallback records in memory.
type memFallback struct {
	mu     sync.Mutex
	bySink map[string][]sinks.Failed
}

func (m *memFallback) Write(sink, batchID string, failed []sinks.Failed) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.bySink == nil {
		m.bySink = map[string][]sinks.Failed{}
	}
	m.bySink[sink] = append(m.bySink[sink], failed...)
	return "mem", nil
}

func (m *memFallback) count(sink string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.bySink[sink])
}

func events(prefix string, n int) []event.Event {
	out := make([]event.Event, n)
	now := time.Now()
	for i := range out {
		out[i] = event.Event{ID: fmt.Sprintf("%s-%d", prefix, i), Type: "test", Source: "test", Time: now, ReceivedAt: now}
	}
	return out
}

type testEngine struct {
	*Engine
	reg *prometheus.Registry
	fb  *memFallback
}

func startEngine(t *testing.T, cfg Config) *testEngine {
	t.Helper()
	reg := prometheus.NewRegistry()
	fb := &memFallback{}
	cfg.Registerer = reg
	if cfg.Fallback == nil {
		cfg.Fallback = fb
	}
	if cfg.Retry == (sinks.Retry{}) {
		cfg.Retry = sinks.Retry{Initial: time.Millisecond, Max: 5 * time.Millisecond}
	}
	if cfg.WAL.Dir == "" {
		cfg.WAL.Dir = t.TempDir()
	}
	e, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	te := &testEngine{Engine: e, reg: reg, fb: fb}
	t.Cleanup(func() {
		if e.Accepting() {
			// Bounded: a test that failed may leave a sink hung.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = e.Close(ctx)
		}
	})
	return te
}

func (e *testEngine) close(t *testing.T, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func (e *testEngine) flushes(reason Reason) int {
	return int(testutil.ToFloat64(e.metrics.flushes.WithLabelValues(string(reason))))
}

// waitFor polls cond for up to 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestEngineFlushTriggers(t *testing.T) {
	t.Run("max events splits a large request into full batches", func(t *testing.T) {
		s := newFakeSink("a")
		e := startEngine(t, Config{Sinks: []sinks.Sink{s}, MaxEvents: 100, Idle: time.Hour, MaxAge: time.Hour})
		if err := e.Ingest(events("x", 250)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "two full batches", func() bool { return s.count() == 200 })
		e.close(t, 5*time.Second)
		if got := s.count(); got != 250 {
			t.Fatalf("stored %d, want 250", got)
		}
		if c, sh := e.flushes(ReasonCount), e.flushes(ReasonShutdown); c != 2 || sh != 1 {
			t.Fatalf("flushes: count=%d shutdown=%d, want 2 and 1", c, sh)
		}
	})
	t.Run("idle flushes a quiet batch", func(t *testing.T) {
		s := newFakeSink("a")
		e := startEngine(t, Config{Sinks: []sinks.Sink{s}, MaxEvents: 1000, Idle: 20 * time.Millisecond, MaxAge: time.Hour})
		if err := e.Ingest(events("x", 5)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "idle flush", func() bool { return s.count() == 5 })
		if e.flushes(ReasonIdle) != 1 {
			t.Fatalf("idle flushes = %d, want 1", e.flushes(ReasonIdle))
		}
	})
	t.Run("max age flushes a never-idle stream", func(t *testing.T) {
		s := newFakeSink("a")
		// Idle is far above the gap between events, even on a slow machine.
		e := startEngine(t, Config{Sinks: []sinks.Sink{s}, MaxEvents: 1 << 20, Idle: 2 * time.Second, MaxAge: 100 * time.Millisecond})
		stop := time.Now().Add(400 * time.Millisecond)
		for i := 0; time.Now().Before(stop); i++ {
			if err := e.Ingest(events(fmt.Sprint("s", i), 1)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Millisecond)
		}
		waitFor(t, "an age flush", func() bool { return e.flushes(ReasonAge) >= 1 })
		if n := e.flushes(ReasonIdle); n != 0 {
			t.Fatalf("idle flushes = %d while events kept coming", n)
		}
	})
	t.Run("max bytes", func(t *testing.T) {
		s := newFakeSink("a")
		e := startEngine(t, Config{Sinks: []sinks.Sink{s}, MaxEvents: 1 << 20, MaxBytes: 1024, Idle: time.Hour, MaxAge: time.Hour})
		evs := events("b", 20) // ~110 bytes each
		if err := e.Ingest(evs); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a bytes flush", func() bool { return e.flushes(ReasonBytes) >= 1 })
	})
}

// A tick armed for a batch already flushed must not flush the next one early.
// The buffer ignores ticks of another generation, and a tick only flushes a
// batch the policy says is due; this guards against either being dropped for
// "flush on tick".
func TestStaleTimerDoesNotFlushTheNextBatch(t *testing.T) {
	s := newFakeSink("a")
	e := startEngine(t, Config{Sinks: []sinks.Sink{s}, MaxEvents: 2, Idle: time.Hour, MaxAge: time.Hour})
	if err := e.Ingest(events("first", 2)); err != nil { // flushed by count: gen 0 → 1
		t.Fatal(err)
	}
	if err := e.Ingest(events("second", 1)); err != nil { // new batch, timer armed with gen 1
		t.Fatal(err)
	}
	e.sys.Root.Send(e.buffer, &tick{gen: 0}) // the first batch's timer, late
	waitFor(t, "first batch", func() bool { return s.count() == 2 })
	e.close(t, 5*time.Second)
	if e.flushes(ReasonIdle) != 0 || e.flushes(ReasonAge) != 0 {
		t.Fatalf("a stale tick flushed a batch: idle=%d age=%d", e.flushes(ReasonIdle), e.flushes(ReasonAge))
	}
	if e.flushes(ReasonShutdown) != 1 || s.count() != 3 {
		t.Fatalf("shutdown flushes=%d stored=%d, want 1 and 3", e.flushes(ReasonShutdown), s.count())
	}
}

func TestSinksAreIndependent(t *testing.T) {
	good := newFakeSink("good")
	bad := newFakeSink("bad")
	bad.script = func(int, []event.Event) error { return errors.New("mapping refused") } // not retryable
	e := startEngine(t, Config{Sinks: []sinks.Sink{good, bad}, MaxEvents: 10})
	if err := e.Ingest(events("x", 25)); err != nil {
		t.Fatal(err)
	}
	e.close(t, 5*time.Second)
	if good.count() != 25 {
		t.Errorf("good sink stored %d, want 25", good.count())
	}
	if n := e.fb.count("bad"); n != 25 {
		t.Errorf("fallback for bad sink holds %d, want 25", n)
	}
	if n := e.fb.count("good"); n != 0 {
		t.Errorf("fallback for good sink holds %d, want 0", n)
	}
	if e.Pending() != 0 {
		t.Errorf("pending = %d after close", e.Pending())
	}
}

func TestRetryableErrorsAreRetried(t *testing.T) {
	s := newFakeSink("a")
	s.script = func(call int, _ []event.Event) error {
		if call <= 2 {
			return sinks.MarkRetryable(errors.New("connection refused"))
		}
		return nil
	}
	e := startEngine(t, Config{Sinks: []sinks.Sink{s}, MaxEvents: 10, Idle: time.Millisecond})
	if err := e.Ingest(events("x", 10)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "stored after retries", func() bool { return s.count() == 10 })
	if n := testutil.ToFloat64(e.metrics.retries.WithLabelValues("a")); n != 2 {
		t.Errorf("retries = %v, want 2", n)
	}
	if e.fb.count("a") != 0 {
		t.Errorf("fallback got %d events", e.fb.count("a"))
	}
}

func TestPartialFailure(t *testing.T) {
	s := newFakeSink("a")
	s.script = func(call int, evs []event.Event) error {
		var f []sinks.Failure
		for i, ev := range evs {
			switch {
			case ev.ID == "x-3": // refused for good
				f = append(f, sinks.Failure{Index: i, Err: errors.New("bad document")})
			case ev.ID == "x-5" && call == 1: // busy once
				f = append(f, sinks.Failure{Index: i, Err: sinks.MarkRetryable(errors.New("429"))})
			}
		}
		if f == nil {
			return nil
		}
		return sinks.Partial(f)
	}
	e := startEngine(t, Config{Sinks: []sinks.Sink{s}, MaxEvents: 10})
	if err := e.Ingest(events("x", 10)); err != nil {
		t.Fatal(err)
	}
	e.close(t, 5*time.Second)
	if s.count() != 9 {
		t.Errorf("stored %d, want 9", s.count())
	}
	if s.duplicates() != 0 {
		t.Errorf("%d events written twice: only the retryable one may be resent", s.duplicates())
	}
	if e.fb.count("a") != 1 || e.fb.bySink["a"][0].Event.ID != "x-3" {
		t.Errorf("fallback = %+v, want only x-3", e.fb.bySink["a"])
	}
}

// A hung store holds only its own pipeline: the other sink stores
// everything at once, and the hung one keeps only a few batches in memory,
// reading the rest back from the WAL once its store answers again.
func TestHungSinkDoesNotSlowTheOther(t *testing.T) {
	hung, fine := newFakeSink("hung"), newFakeSink("fine")
	hung.block = make(chan struct{})
	e := startEngine(t, Config{Sinks: []sinks.Sink{hung, fine}, MaxEvents: 100, MaxInFlight: 1, Window: 2, Idle: time.Millisecond})
	for i := range 100 {
		if err := e.Ingest(events(fmt.Sprint("r", i), 100)); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	waitFor(t, "the fine sink to store everything", func() bool { return fine.count() == 10000 })
	if hung.count() != 0 {
		t.Fatalf("the hung sink stored %d", hung.count())
	}
	// The last batch may still be on its way to the hung pipeline.
	waitFor(t, "the hung sink to be 10,000 events behind", func() bool { return e.states[0].lag() == 10000 })
	fromWAL := testutil.ToFloat64(e.metrics.sinkFromWAL.WithLabelValues("hung"))
	if fromWAL < 9000 {
		t.Fatalf("%v events of the hung sink left memory; want all but its window (1 in flight, 2 queued)", fromWAL)
	}
	close(hung.block)
	waitFor(t, "the hung sink to catch up", func() bool { return hung.count() == 10000 })
	if d := hung.duplicates(); d != 0 {
		t.Fatalf("%d events written twice to the sink that caught up", d)
	}
	waitFor(t, "WAL segments released", func() bool { return e.Pending() == 0 })
	e.close(t, 5*time.Second)
}

// Shutdown gives the sinks their deadline and leaves the rest in the WAL;
// the next start delivers it.
func TestShutdownTimeoutLeavesTheRestInTheWAL(t *testing.T) {
	dir := t.TempDir()
	s := newFakeSink("a")
	s.block = make(chan struct{}) // never released: the store hangs
	e := startEngine(t, Config{Sinks: []sinks.Sink{s}, MaxEvents: 10, MaxInFlight: 2, WAL: WALConfig{Dir: dir}})
	if err := e.Ingest(events("x", 55)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	e.close(t, 200*time.Millisecond)
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Close took %v with a 200ms timeout", took)
	}
	if n := e.fb.count("a"); n != 0 {
		t.Fatalf("fallback holds %d; the unfinished events belong in the WAL", n)
	}
	if err := e.Ingest(events("late", 1)); !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("Ingest after Close = %v, want ErrShuttingDown", err)
	}
	again := newFakeSink("a")
	e2 := startEngine(t, Config{Sinks: []sinks.Sink{again}, WAL: WALConfig{Dir: dir}})
	if e2.recovered.Events != 55 {
		t.Fatalf("recovered %d events, want 55", e2.recovered.Events)
	}
	waitFor(t, "the next start to deliver", func() bool { return again.count() == 55 })
	e2.close(t, 5*time.Second)
}

func TestWALFullRejects(t *testing.T) {
	s := newFakeSink("a")
	s.block = make(chan struct{})
	defer close(s.block)
	e := startEngine(t, Config{Sinks: []sinks.Sink{s}, MaxEvents: 10, WAL: WALConfig{SegmentBytes: 8 << 10, MaxBytes: 64 << 10, Full: WALReject}})
	var err error
	for i := 0; i < 10000 && err == nil; i++ {
		err = e.Ingest(events(fmt.Sprint("r", i), 10))
		if err == nil {
			e.progressed() // check the size now, not in a second
			time.Sleep(time.Millisecond)
		}
	}
	if !errors.Is(err, ErrWALFull) {
		t.Fatalf("Ingest = %v, want ErrWALFull", err)
	}
	if e.Ready() == nil || !errors.Is(e.Admit(), ErrWALFull) {
		t.Fatalf("Ready() = %v, Admit() = %v with the WAL full", e.Ready(), e.Admit())
	}
}

// With --wal-full spill, a full WAL moves the lagging sink's oldest events
// to its fallback log; ingest and the other sink go on, and nothing is
// dropped without a record.
func TestWALFullSpillsTheLaggingSink(t *testing.T) {
	hung, fine := newFakeSink("hung"), newFakeSink("fine")
	hung.block = make(chan struct{})
	e := startEngine(t, Config{Sinks: []sinks.Sink{hung, fine}, MaxEvents: 10, Idle: time.Millisecond, Window: 1, MaxInFlight: 1,
		WAL: WALConfig{SegmentBytes: 8 << 10, MaxBytes: 64 << 10, Full: WALSpill}})
	const requests = 400
	for i := range requests {
		if err := e.Ingest(events(fmt.Sprint("r", i), 10)); err != nil {
			t.Fatalf("request %d refused with --wal-full spill: %v", i, err)
		}
		if i%20 == 0 {
			e.progressed()
		}
	}
	waitFor(t, "the fine sink", func() bool { return fine.count() == requests*10 })
	waitFor(t, "a spill", func() bool { return e.fb.count("hung") > 0 })
	if st := e.wal.Stats(); st.Bytes > 3*(64<<10) {
		t.Fatalf("WAL holds %d bytes with a 64 KiB bound", st.Bytes)
	}
	close(hung.block)
	waitFor(t, "the hung sink to catch up", func() bool { return e.states[0].lag() == 0 })
	e.close(t, 5*time.Second)
	// Every event is stored at the hung sink or in its fallback log.
	seen := map[string]bool{}
	hung.mu.Lock()
	for id := range hung.stored {
		seen[id] = true
	}
	hung.mu.Unlock()
	for _, f := range e.fb.bySink["hung"] {
		seen[f.Event.ID] = true
	}
	if len(seen) != requests*10 {
		t.Fatalf("%d of %d events stored or in the fallback log of the hung sink", len(seen), requests*10)
	}
	if n := testutil.ToFloat64(e.metrics.spilled.WithLabelValues("hung")); n == 0 {
		t.Fatal("spilled events not counted")
	}
}

// A store that keeps failing trips its breaker: the sink stops calling it,
// probes it now and then, and closes the breaker when it answers.
func TestBreakerStopsHammeringADeadStore(t *testing.T) {
	s := newFakeSink("a")
	var down sync.Mutex
	dead := true
	s.script = func(int, []event.Event) error {
		down.Lock()
		defer down.Unlock()
		if dead {
			return sinks.MarkRetryable(errors.New("connection refused"))
		}
		return nil
	}
	e := startEngine(t, Config{Sinks: []sinks.Sink{s}, MaxEvents: 10, MaxInFlight: 4, Idle: time.Millisecond,
		Retry: sinks.Retry{Initial: time.Millisecond, Max: 10 * time.Millisecond}})
	for i := range 8 {
		if err := e.Ingest(events(fmt.Sprint("r", i), 10)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the breaker to open", func() bool { return e.states[0].cb.State().String() == "open" })
	s.mu.Lock()
	before := s.calls
	s.mu.Unlock()
	time.Sleep(time.Second)
	s.mu.Lock()
	during := s.calls - before
	s.mu.Unlock()
	// Without the breaker four writers retrying every 10ms make ~400 calls.
	if during > 2 {
		t.Fatalf("%d calls to a store whose breaker is open, in 1s", during)
	}
	if st := e.Node(context.Background()).Sinks[0]; st.Breaker != "open" || st.LagEvents != 80 || st.OldestPendingSeconds < 1 {
		t.Fatalf("node status %+v, want breaker open, 80 events behind for a second or more", st)
	}
	down.Lock()
	dead = false
	down.Unlock()
	waitFor(t, "the probe to close the breaker and deliver", func() bool { return s.count() == 80 })
	if got := e.states[0].cb.State().String(); got != "closed" {
		t.Fatalf("breaker %s after the store came back", got)
	}
}

// migratingSink fails its first migrations, like a database still starting.
type migratingSink struct {
	*fakeSink
	mu       sync.Mutex
	failures int
}

func (m *migratingSink) Migrate(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failures > 0 {
		m.failures--
		return errors.New("connection refused")
	}
	return nil
}

func TestStoreDownAtStartDoesNotStopIngest(t *testing.T) {
	s := &migratingSink{fakeSink: newFakeSink("a"), failures: 3}
	e := startEngine(t, Config{Sinks: []sinks.Sink{s}, Migrate: true, MaxEvents: 10, Idle: time.Millisecond})
	if err := e.Ingest(events("x", 30)); err != nil {
		t.Fatalf("Ingest while the store is not ready: %v", err)
	}
	if e.Ready() != nil {
		t.Fatalf("not ready while a store is down: %v", e.Ready())
	}
	waitFor(t, "delivery once the store is ready", func() bool { return s.count() == 30 })
	if !e.Node(context.Background()).Sinks[0].Ready {
		t.Fatal("sink not reported ready")
	}
}

func TestIngestStoredWaitsForEverySink(t *testing.T) {
	a, b := newFakeSink("a"), newFakeSink("b")
	b.block = make(chan struct{})
	e := startEngine(t, Config{Sinks: []sinks.Sink{a, b}, MaxEvents: 10, Idle: time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	out, err := e.IngestStored(ctx, events("x", 5))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || out["a"] != "done" || out["b"] != "pending" {
		t.Fatalf("IngestStored with b hung = %v, %v; want a deadline, a done, b pending", out, err)
	}
	close(b.block)
	waitFor(t, "b to get the events later", func() bool { return b.count() == 5 })
	out, err = e.IngestStored(context.Background(), events("y", 5))
	if err != nil || out["a"] != "done" || out["b"] != "done" {
		t.Fatalf("IngestStored = %v, %v", out, err)
	}
	if a.count() != 10 || b.count() != 10 {
		t.Fatalf("IngestStored returned before the sinks stored: a=%d b=%d", a.count(), b.count())
	}
}

// blockingNotifier never answers, like a Redis that hangs.
type blockingNotifier struct{ calls atomic.Int64 }

func (n *blockingNotifier) Notify(ctx context.Context, _ BatchReport) error {
	n.calls.Add(1)
	<-ctx.Done()
	return ctx.Err()
}

func TestSilentNotifierDoesNotSlowTheSinks(t *testing.T) {
	s := newFakeSink("a")
	e := startEngine(t, Config{Sinks: []sinks.Sink{s}, MaxEvents: 1, Notifier: &blockingNotifier{}})
	start := time.Now()
	for i := range 3000 {
		if err := e.Ingest(events(fmt.Sprint("r", i), 1)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every batch", func() bool { return s.count() == 3000 })
	if took := time.Since(start); took > 8*time.Second {
		t.Fatalf("3000 one-event batches took %v with a silent notifier", took)
	}
	if n := testutil.ToFloat64(e.metrics.notifyDropped); n < 1000 {
		t.Fatalf("dropped %v notifications, want most of 3000 (queue %d)", n, DefaultNotifyQueue)
	}
}

// failingFallback fails its first n writes, like a full disk freed later.
type failingFallback struct {
	memFallback
	mu    sync.Mutex
	fails int
}

func (f *failingFallback) Write(sink, batchID string, failed []sinks.Failed) (string, error) {
	f.mu.Lock()
	if f.fails > 0 {
		f.fails--
		f.mu.Unlock()
		return "", errors.New("no space left on device")
	}
	f.mu.Unlock()
	return f.memFallback.Write(sink, batchID, failed)
}

func TestFallbackLogFailuresAreRetried(t *testing.T) {
	s := newFakeSink("a")
	s.script = func(int, []event.Event) error { return errors.New("refused") }
	fb := &failingFallback{fails: 3}
	e := startEngine(t, Config{Sinks: []sinks.Sink{s}, Fallback: fb, MaxEvents: 10})
	if err := e.Ingest(events("x", 10)); err != nil {
		t.Fatal(err)
	}
	e.close(t, 10*time.Second)
	if n := fb.count("a"); n != 10 {
		t.Fatalf("fallback holds %d events, want 10 after the log recovered", n)
	}
	if lost := testutil.ToFloat64(e.metrics.lost.WithLabelValues("a")); lost != 0 {
		t.Fatalf("lost = %v", lost)
	}
}

// panicSink panics on every write.
type panicSink struct{ fakeSink }

func (p *panicSink) Write(context.Context, []event.Event) error { panic("bug in a driver") }

func TestSinkPanicSendsTheBatchToFallback(t *testing.T) {
	good := newFakeSink("good")
	bad := &panicSink{fakeSink: *newFakeSink("bad")}
	e := startEngine(t, Config{Sinks: []sinks.Sink{good, bad}, MaxEvents: 5})
	if err := e.Ingest(events("x", 5)); err != nil {
		t.Fatal(err)
	}
	e.close(t, 5*time.Second)
	if good.count() != 5 || e.fb.count("bad") != 5 {
		t.Fatalf("good stored %d, fallback for bad holds %d; want 5 and 5", good.count(), e.fb.count("bad"))
	}
	if !strings.Contains(e.fb.bySink["bad"][0].Err.Error(), "panicked") {
		t.Fatalf("fallback error = %v", e.fb.bySink["bad"][0].Err)
	}
}

func BenchmarkIngest(b *testing.B) {
	s := newFakeSink("a")
	reg := prometheus.NewRegistry()
	e, err := Start(Config{Sinks: []sinks.Sink{s}, Fallback: &memFallback{}, Registerer: reg, WAL: WALConfig{Dir: b.TempDir()}})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close(context.Background())
	ev := events("b", 1)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := e.Ingest(ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A failed sync stops the node from acknowledging (fsyncgate: it is not
// retried); what was acknowledged before is still delivered.
func TestFailedWALSyncStopsAcknowledging(t *testing.T) {
	fs := crashfs.New()
	s := newFakeSink("a")
	e := startEngine(t, Config{Sinks: []sinks.Sink{s}, MaxEvents: 10, Idle: time.Millisecond, WAL: WALConfig{Dir: "/wal", FS: fs, SegmentBytes: 1 << 20}})
	if err := e.Ingest(events("before", 10)); err != nil {
		t.Fatal(err)
	}
	fs.SetFault(func(op crashfs.Op, _ string) error {
		if op == crashfs.OpSync {
			return errors.New("input/output error")
		}
		return nil
	})
	if err := e.Ingest(events("during", 10)); !errors.Is(err, ErrWALFailed) {
		t.Fatalf("Ingest with a failing sync = %v, want ErrWALFailed", err)
	}
	fs.SetFault(nil)
	if err := e.Ingest(events("after", 10)); !errors.Is(err, ErrWALFailed) {
		t.Fatalf("Ingest after a failed sync = %v, want ErrWALFailed: a failed fsync is never retried", err)
	}
	if e.Ready() == nil || !errors.Is(e.Admit(), ErrWALFailed) {
		t.Fatalf("Ready() = %v, Admit() = %v after a failed sync", e.Ready(), e.Admit())
	}
	waitFor(t, "the acknowledged events", func() bool { return s.count() == 10 })
}

// A full disk refuses requests (503) and loses nothing acknowledged; once
// there is room again, the node takes events again.
func TestFullDiskRefusesAndRecovers(t *testing.T) {
	fs := crashfs.New()
	s := newFakeSink("a")
	e := startEngine(t, Config{Sinks: []sinks.Sink{s}, MaxEvents: 10, Idle: time.Millisecond, WAL: WALConfig{Dir: "/wal", FS: fs, SegmentBytes: 4096}})
	var full atomic.Bool
	fs.SetFault(func(op crashfs.Op, _ string) error {
		if full.Load() && (op == crashfs.OpAllocate || op == crashfs.OpWrite) {
			return crashfs.ErrNoSpace
		}
		return nil
	})
	acked := 0
	for i := range 20 {
		if err := e.Ingest(events(fmt.Sprint("a", i), 5)); err != nil {
			t.Fatal(err)
		}
		acked += 5
	}
	full.Store(true)
	refused := 0
	for i := range 20 {
		err := e.Ingest(events(fmt.Sprint("f", i), 5))
		switch {
		case err == nil:
			acked += 5
		case errors.Is(err, ErrOverloaded):
			refused++
		default:
			t.Fatalf("Ingest on a full disk = %v, want ErrOverloaded (503)", err)
		}
	}
	if refused == 0 {
		t.Fatal("no request refused on a full disk")
	}
	full.Store(false)
	for i := range 20 {
		if err := e.Ingest(events(fmt.Sprint("b", i), 5)); err != nil {
			t.Fatalf("Ingest once there is room again: %v", err)
		}
		acked += 5
	}
	waitFor(t, "every acknowledged event", func() bool { return s.count() == acked })
}

// /v1/node may be asked often (a console, a probe): a store is pinged at
// most once a second however often, so status calls take no connections
// from the writes.
func TestNodePingsAStoreAtMostOnceASecond(t *testing.T) {
	sink := newFakeSink("fake")
	e := startEngine(t, Config{Sinks: []sinks.Sink{sink}})
	for range 50 {
		if n := e.Node(context.Background()); len(n.Sinks) != 1 || !n.Sinks[0].Reachable {
			t.Fatalf("node: %+v", n)
		}
	}
	if p := sink.pings.Load(); p != 1 {
		t.Fatalf("50 status calls pinged the store %d times, want 1", p)
	}
	time.Sleep(pingEvery + 50*time.Millisecond)
	e.Node(context.Background())
	if p := sink.pings.Load(); p != 2 {
		t.Fatalf("a status call after %s pinged %d times in all, want 2", pingEvery, p)
	}
}
