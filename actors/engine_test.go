package actors

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"eventlistener/event"
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
	stored map[string]int
}

func newFakeSink(name string) *fakeSink { return &fakeSink{name: name, stored: map[string]int{}} }

func (s *fakeSink) Name() string                   { return s.name }
func (s *fakeSink) Ping(ctx context.Context) error { return nil }
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
		cfg.Retry = sinks.Retry{Initial: time.Millisecond, Max: 5 * time.Millisecond, MaxElapsed: 2 * time.Second}
	}
	e, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	te := &testEngine{Engine: e, reg: reg, fb: fb}
	t.Cleanup(func() {
		if e.Accepting() {
			_ = e.Close(context.Background())
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

func TestOverloadRefusesInsteadOfGrowing(t *testing.T) {
	s := newFakeSink("a")
	s.block = make(chan struct{})
	e := startEngine(t, Config{Sinks: []sinks.Sink{s}, MaxEvents: 100, MaxInFlight: 1, MaxPendingEvents: 1000})
	accepted := 0
	var err error
	for i := 0; i < 100; i++ {
		if err = e.Ingest(events(fmt.Sprint("r", i), 100)); err != nil {
			break
		}
		accepted += 100
	}
	if !errors.Is(err, ErrOverloaded) {
		t.Fatalf("Ingest = %v, want ErrOverloaded once 1000 events are pending", err)
	}
	if accepted != 1000 {
		t.Fatalf("accepted %d before refusing, want 1000", accepted)
	}
	close(s.block)
	waitFor(t, "drain", func() bool { return e.Pending() == 0 })
	if err := e.Ingest(events("after", 100)); err != nil {
		t.Fatalf("after draining, Ingest = %v", err)
	}
	e.close(t, 5*time.Second)
	if s.count() != 1100 {
		t.Fatalf("stored %d, want 1100", s.count())
	}
}

func TestShutdownTimeoutSendsTheRestToFallback(t *testing.T) {
	s := newFakeSink("a")
	s.block = make(chan struct{}) // never released: the store hangs
	e := startEngine(t, Config{Sinks: []sinks.Sink{s}, MaxEvents: 10, MaxInFlight: 2})
	if err := e.Ingest(events("x", 55)); err != nil {
		t.Fatal(err)
	}
	e.close(t, 200*time.Millisecond)
	if n := e.fb.count("a"); n != 55 {
		t.Fatalf("fallback holds %d, want all 55", n)
	}
	if err := e.Ingest(events("late", 1)); !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("Ingest after Close = %v, want ErrShuttingDown", err)
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
	e, err := Start(Config{Sinks: []sinks.Sink{s}, Fallback: &memFallback{}, Registerer: reg, MaxPendingEvents: 1 << 40, MaxPendingBytes: 1 << 50})
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
