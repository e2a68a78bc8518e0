package actors

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/cenkalti/backoff/v5"

	"eventlistener/event"
	"eventlistener/sinks"
)

// Fallback keeps the events a sink did not store. *fallback.Log is one.
type Fallback interface {
	Write(sink, batchID string, failed []sinks.Failed) (path string, err error)
}

// Notifier tells other services about each batch written, e.g. on a Redis
// channel. Its errors are logged, never retried: it is a courtesy.
type Notifier interface {
	Notify(ctx context.Context, r BatchReport) error
}

// BatchReport is what a Notifier publishes per batch.
type BatchReport struct {
	Batch  string                 `json:"batch"`
	Events int                    `json:"events"`
	Sinks  map[string]SinkOutcome `json:"sinks"`
	Time   time.Time              `json:"time"`
}

// SinkOutcome is what became of a batch at one sink.
type SinkOutcome struct {
	Stored   int `json:"stored"`
	Fallback int `json:"fallback"`
}

// batchDone reports that every sink has dealt with a batch.
type batchDone struct {
	batch *event.Batch
}

// drain asks the batcher to answer drained once nothing is queued or in
// flight.
type drain struct{}

type drained struct{}

// batcher writes batches to every sink. It never does I/O in Receive: each
// batch is written by a goroutine that reports back with batchDone, and at
// most maxInFlight run at once; the rest wait in a queue whose size the
// engine's pending limit bounds.
type batcher struct {
	sinks       []sinks.Sink
	fallback    Fallback
	retry       sinks.Retry
	maxInFlight int
	ctx         context.Context // cancelled when the shutdown deadline passes
	abandon     context.Context // cancelled when even the fallback log may be given up
	release     func(events int, bytes int64)
	notifier    Notifier // nil: none
	metrics     *Metrics
	log         *slog.Logger

	queue    []*event.Batch
	inFlight int
	drainers []*actor.PID
}

func (w *batcher) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *event.Batch:
		w.queue = append(w.queue, m)
		w.pump(c)
	case *batchDone:
		w.inFlight--
		w.metrics.inFlight.Dec()
		w.release(len(m.batch.Events), m.batch.Bytes)
		w.pump(c)
	case *drain:
		w.drainers = append(w.drainers, c.Sender())
		w.pump(c)
	}
}

// pump starts queued batches while there is room, and answers drainers when
// all work is done.
func (w *batcher) pump(c actor.Context) {
	for w.inFlight < w.maxInFlight && len(w.queue) > 0 {
		b := w.queue[0]
		w.queue[0] = nil
		w.queue = w.queue[1:]
		w.inFlight++
		w.metrics.inFlight.Inc()
		self, root := c.Self(), c.ActorSystem().Root
		go func() {
			w.write(b)
			root.Send(self, &batchDone{batch: b})
		}()
	}
	if w.inFlight == 0 && len(w.queue) == 0 {
		for _, d := range w.drainers {
			c.Send(d, &drained{})
		}
		w.drainers = nil
	}
}

// write sends one batch to every sink at once; a sink's result never affects
// another's. What a sink did not store goes to the fallback log.
func (w *batcher) write(b *event.Batch) {
	var wg sync.WaitGroup
	outcomes := make([]SinkOutcome, len(w.sinks))
	for i, s := range w.sinks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outcomes[i] = w.writeSink(s, b)
		}()
	}
	wg.Wait()
	if w.notifier != nil {
		r := BatchReport{Batch: b.ID, Events: len(b.Events), Sinks: map[string]SinkOutcome{}, Time: time.Now().UTC()}
		for i, s := range w.sinks {
			r.Sinks[s.Name()] = outcomes[i]
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := w.notifier.Notify(ctx, r); err != nil {
			w.log.Warn("cannot publish the batch notification", "batch", b.ID, "error", err)
		}
		cancel()
	}
}

func (w *batcher) writeSink(s sinks.Sink, b *event.Batch) (outcome SinkOutcome) {
	name := s.Name()
	log := w.log.With("sink", name, "batch", b.ID)
	defer func() {
		// A bug in a sink or its library must not take the process, and
		// the events with it, down: they go to the fallback log.
		if r := recover(); r != nil {
			log.Error("sink panicked; its events go to the fallback log", "panic", r, "stack", string(debug.Stack()))
			failed := make([]sinks.Failed, len(b.Events))
			for i := range b.Events {
				failed[i] = sinks.Failed{Event: b.Events[i], Err: fmt.Errorf("%s panicked: %v", name, r)}
			}
			w.keep(log, name, b.ID, failed, 0)
			outcome = SinkOutcome{Fallback: len(failed)}
		}
	}()
	start := time.Now()
	out := sinks.WriteWithRetry(w.ctx, s, b.Events, w.retry, func(pending int, err error) {
		w.metrics.retries.WithLabelValues(name).Inc()
		log.Warn("sink write failed; retrying", "events", pending, "error", err)
	})
	w.metrics.writeSeconds.WithLabelValues(name).Observe(time.Since(start).Seconds())
	w.metrics.sinkEvents.WithLabelValues(name, "stored").Add(float64(out.Stored))
	outcome = SinkOutcome{Stored: out.Stored, Fallback: len(out.Failed)}
	if len(out.Failed) == 0 {
		return outcome
	}
	if w.ctx.Err() != nil {
		for i := range out.Failed {
			out.Failed[i].Err = fmt.Errorf("shutdown timeout passed before %s stored the event: %w", name, out.Failed[i].Err)
		}
	}
	w.keep(log, name, b.ID, out.Failed, out.Stored)
	return outcome
}

// keep writes what a sink did not store to the fallback log. A failing
// fallback log (disk full, too many open files) is retried until it works:
// the batch keeps its place meanwhile, so the API answers 503 once the
// pending limit is reached instead of accepting what it cannot keep. Only
// when the engine abandons the batch at the end of shutdown are events lost,
// and that is logged and counted.
func (w *batcher) keep(log *slog.Logger, name, batchID string, failed []sinks.Failed, stored int) {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval = 100*time.Millisecond, 5*time.Second
	for {
		path, err := w.fallback.Write(name, batchID, failed)
		if err == nil {
			w.metrics.sinkEvents.WithLabelValues(name, "fallback").Add(float64(len(failed)))
			log.Warn("sink did not store events; they are in the fallback log",
				"events", len(failed), "stored", stored, "file", path, "error", failed[0].Err)
			return
		}
		log.Error("cannot write the fallback log; retrying", "events", len(failed), "error", err)
		t := time.NewTimer(bo.NextBackOff())
		select {
		case <-t.C:
		case <-w.abandon.Done():
			t.Stop()
			w.metrics.lost.WithLabelValues(name).Add(float64(len(failed)))
			log.Error("EVENTS LOST: the fallback log could not be written before shutdown ended",
				"events", len(failed), "error", err, "sink_error", failed[0].Err)
			return
		}
	}
}
