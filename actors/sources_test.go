package actors

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"eventlistener/event"
	"eventlistener/sinks"
	"eventlistener/sources"
)

// fakeSource ingests one event every few milliseconds while it runs; crash,
// when set, is asked at the start of each Run and may fail or panic it.
type fakeSource struct {
	name      string
	placement sources.Placement
	crash     func(run int64) error
	asHolder  bool // ingest with IngestAsHolder

	runs    atomic.Int64
	running atomic.Int64
	sent    atomic.Int64
	refused atomic.Int64 // ingests refused with ErrNotHolder
}

func newFakeSource(name string, p sources.Placement) *fakeSource {
	return &fakeSource{name: name, placement: p}
}

func (f *fakeSource) Name() string                 { return f.name }
func (f *fakeSource) Placement() sources.Placement { return f.placement }
func (f *fakeSource) Status() any                  { return &struct{ Sent int64 }{f.sent.Load()} }
func (f *fakeSource) active() bool                 { return f.running.Load() > 0 }

func (f *fakeSource) Run(ctx context.Context, env sources.Env) error {
	run := f.runs.Add(1)
	if f.crash != nil {
		if err := f.crash(run); err != nil {
			return err
		}
	}
	f.running.Add(1)
	defer f.running.Add(-1)
	ingest := env.Ingest
	if f.asHolder {
		ingest = env.IngestAsHolder
	}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now := time.Now()
		ev := event.Event{ID: fmt.Sprintf("%s-%d-%d", f.name, run, i), Type: "t", Source: f.name, Time: now, ReceivedAt: now}
		switch err := ingest(ctx, []event.Event{ev}); {
		case err == nil:
			f.sent.Add(1)
		case errors.Is(err, sources.ErrNotHolder):
			f.refused.Add(1)
		}
	}
}

// A source that fails or panics is started again, again and again, while
// HTTP ingest goes on; its crashes are counted and the last one shown.
func TestSourceRestartsWithoutTouchingIngest(t *testing.T) {
	tests := []struct {
		name    string
		crashes int64
		crash   func() error
	}{
		{"it panics", 2, func() error { panic("driver bug") }},
		{"it fails", 2, func() error { return errors.New("cannot dial") }},
		// More crashes than a one-for-one strategy's ten: still restarted.
		{"it fails again and again", 15, func() error { return errors.New("cannot dial") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeSink("a")
			src := newFakeSource("flaky", sources.EveryNode)
			src.crash = func(run int64) error {
				if run <= tt.crashes {
					return tt.crash()
				}
				return nil
			}
			e := startEngine(t, Config{Sinks: []sinks.Sink{s}, MaxEvents: 1, Sources: []sources.Source{src}, restartDelay: 5 * time.Millisecond})
			if err := e.Ingest(events("http", 3)); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the source's events stored", func() bool { return s.count() > 5 })
			if n := testutil.ToFloat64(e.metrics.sourceRestarts.WithLabelValues("flaky")); n != float64(tt.crashes) {
				t.Fatalf("restarts = %v, want %d", n, tt.crashes)
			}
			st := e.Node(context.Background()).Source("flaky")
			if st == nil || !st.Running || st.Restarts != int(tt.crashes) || st.LastCrash == "" || st.Placement != sources.EveryNode {
				t.Fatalf("status = %+v", st)
			}
			e.close(t, 5*time.Second)
			if src.active() {
				t.Fatal("the source still runs after Close")
			}
		})
	}
}

// A source on every node runs without the duties; what it sends as the
// holder is refused, what it sends as itself is taken.
func TestEveryNodeSourcesRunWithoutTheDuties(t *testing.T) {
	s := newFakeSink("a")
	mine, duty := newFakeSource("mine", sources.EveryNode), newFakeSource("duty", sources.EveryNode)
	duty.asHolder = true
	single := newFakeSource("single", sources.Singleton)
	// 192.0.2.10 is TEST-NET-1: no interface here holds it.
	e := startEngine(t, Config{Sinks: []sinks.Sink{s}, MaxEvents: 1, VIP: mustVIP(t, "192.0.2.10"), DutyInterval: 20 * time.Millisecond,
		Sources: []sources.Source{mine, duty, single}})
	waitFor(t, "events of the source on every node", func() bool { return mine.sent.Load() >= 3 && duty.refused.Load() >= 3 })
	if duty.sent.Load() != 0 || single.runs.Load() != 0 {
		t.Fatalf("not master, yet %d duty events were taken and the singleton ran %d times", duty.sent.Load(), single.runs.Load())
	}
	n := e.Node(context.Background())
	if !n.Source("mine").Running || n.Source("single").Running {
		t.Fatalf("sources = %+v", n.Sources)
	}
}
