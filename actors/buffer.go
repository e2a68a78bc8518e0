package actors

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"eventlistener/event"
	"eventlistener/wal"
)

// ingest carries records the WAL made durable to the buffer, in offset
// order.
type ingest struct {
	recs []wal.Committed
}

// tick is the buffer's timer message. gen names the batch it was armed for,
// so a tick that arrives after that batch was flushed is ignored.
type tick struct {
	gen uint64
}

// buffer gathers events into batches. It is a finite-state machine with two
// states: idle (no events) and filling. The first event moves it to filling
// and arms one timer; it flushes when the Policy says the batch is full or
// due, or when it stops, and is idle again.
type buffer struct {
	policy   Policy
	sinks    []*actor.PID // every sink's pipeline gets every batch
	metrics  *Metrics
	log      *slog.Logger
	newID    func() string
	behavior actor.Behavior

	events []event.Event
	first  uint64 // offset of events[0]
	next   uint64 // offset the next event must have
	gen    uint64
	timer  *time.Timer
}

func newBuffer(p Policy, sinks []*actor.PID, next uint64, m *Metrics, log *slog.Logger, newID func() string) *buffer {
	b := &buffer{policy: p, sinks: sinks, next: next, first: next, metrics: m, log: log, newID: newID}
	b.behavior.Become(b.idle)
	return b
}

func (b *buffer) Receive(c actor.Context) {
	switch c.Message().(type) {
	case *actor.Stopping:
		b.flush(c, ReasonShutdown)
		return
	case *actor.Restarting:
		// The instance is replaced on restart: hand over what it holds.
		b.flush(c, ReasonShutdown)
		return
	}
	b.behavior.Receive(c)
}

// idle is the state with no events: a tick here is stale.
func (b *buffer) idle(c actor.Context) {
	m, ok := c.Message().(*ingest)
	if !ok {
		return
	}
	b.take(c, m)
}

func (b *buffer) take(c actor.Context, m *ingest) {
	for _, r := range m.recs {
		if r.First != b.next {
			// Only after a restart of this actor, which starts from the
			// offset the engine started with; the sinks read any gap back
			// from the WAL.
			b.log.Warn("WAL record does not follow the last one; starting a new batch", "first", r.First, "want", b.next)
			b.flush(c, ReasonShutdown)
			b.next, b.first = r.First, r.First
		}
		b.add(c, r.Events)
	}
}

// filling is the state with a batch under way.
func (b *buffer) filling(c actor.Context) {
	switch m := c.Message().(type) {
	case *ingest:
		b.take(c, m)
	case *tick:
		if m.gen != b.gen {
			return // armed for a batch already flushed
		}
		reason, wait := b.policy.Due()
		if reason == ReasonNone {
			b.arm(c, wait)
			return
		}
		b.flush(c, reason)
	}
}

// add appends events one by one, so a request larger than a batch is split
// at the batch boundary rather than making an oversized batch.
func (b *buffer) add(c actor.Context, events []event.Event) {
	for i := range events {
		if b.events == nil {
			b.events = make([]event.Event, 0, min(b.policy.MaxEvents, 4096))
		}
		b.events = append(b.events, events[i])
		b.next++
		if r := b.policy.Add(events[i].Size()); r != ReasonNone {
			b.flush(c, r)
		}
	}
	if !b.policy.Empty() && b.timer == nil {
		// A new batch started: arm its timer and become filling.
		b.arm(c, b.policy.Idle)
		b.behavior.Become(b.filling)
	}
	b.metrics.bufferEvents.Set(float64(len(b.events)))
}

// arm starts the one timer of the current batch.
func (b *buffer) arm(c actor.Context, d time.Duration) {
	if b.timer != nil {
		b.timer.Stop()
	}
	gen, self, root := b.gen, c.Self(), c.ActorSystem().Root
	b.timer = time.AfterFunc(d, func() { root.Send(self, &tick{gen: gen}) })
}

// flush hands the batch to every sink's pipeline and returns to idle.
func (b *buffer) flush(c actor.Context, r Reason) {
	b.gen++
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	b.behavior.Become(b.idle)
	if len(b.events) == 0 {
		return
	}
	batch := &event.Batch{ID: b.newID(), First: b.first, Events: b.events, Bytes: int64(b.policy.Bytes())}
	b.first = b.next
	b.events = nil
	b.policy.Reset()
	b.metrics.bufferEvents.Set(0)
	b.metrics.flushed(r, len(batch.Events))
	b.log.Debug("batch flushed", "batch", batch.ID, "events", len(batch.Events), "reason", string(r))
	for _, p := range b.sinks {
		c.Send(p, batch) // shared: nobody changes a batch's events
	}
}
