package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"eventlistener/event"
	"eventlistener/sources"
)

// SourceStatus is one source's part of GET /v1/node.
type SourceStatus struct {
	Name      string            `json:"name"`
	Placement sources.Placement `json:"placement"`
	// Running says it runs on this node now (a singleton: while this node
	// holds the duties).
	Running bool `json:"running"`
	// Restarts count its crashes; LastCrash is the last one's error.
	Restarts  int    `json:"restarts"`
	LastCrash string `json:"last_crash,omitempty"`
	// Status is the source's own (sources.PubSubStatus, ...).
	Status any `json:"status"`
}

// Source returns the status of the source named name, or nil.
func (n NodeStatus) Source(name string) *SourceStatus {
	for i := range n.Sources {
		if n.Sources[i].Name == name {
			return &n.Sources[i]
		}
	}
	return nil
}

// sourceState is what the engine keeps of a source across its restarts.
type sourceState struct {
	src sources.Source
	env sources.Env

	mu        sync.Mutex
	running   bool
	restarts  int
	lastCrash string
}

func (s *sourceState) status() SourceStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return SourceStatus{Name: s.src.Name(), Placement: s.src.Placement(), Running: s.running, Restarts: s.restarts,
		LastCrash: s.lastCrash, Status: s.src.Status()}
}

func (s *sourceState) setRunning(m *Metrics, running bool) {
	s.mu.Lock()
	s.running = running
	s.mu.Unlock()
	v := 0.0
	if running {
		v = 1
	}
	m.sourceRunning.WithLabelValues(s.src.Name()).Set(v)
}

// newSourceStates makes the engine's view of each source, and the ingest
// functions it hands them.
func (e *Engine) newSourceStates(list []sources.Source) {
	for _, src := range list {
		env := sources.Env{Ingest: e.sourceIngest(false), IngestAsHolder: e.sourceIngest(true), Holder: e.master.isMaster}
		if src.Placement() == sources.Singleton {
			env.Ingest = env.IngestAsHolder
		}
		e.sources = append(e.sources, &sourceState{src: src, env: env})
		e.metrics.sourceRunning.WithLabelValues(src.Name()).Set(0)
		e.metrics.sourceRestarts.WithLabelValues(src.Name())
	}
}

// sourceIngest is Env.Ingest: the siblings' ingest, waiting while the
// engine is full (backing off up to a second between tries) until ctx
// ends; asHolder refuses once this node does not hold the duties.
func (e *Engine) sourceIngest(asHolder bool) func(context.Context, []event.Event) error {
	return func(ctx context.Context, events []event.Event) error {
		if len(events) == 0 {
			return nil
		}
		wait := 10 * time.Millisecond
		for {
			if asHolder && !e.master.isMaster() {
				return errNotHolder
			}
			err := e.ingestSibling(events)
			if err == nil || !errors.Is(err, ErrOverloaded) && !errors.Is(err, ErrWALFull) {
				return err
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%w (gave up waiting: %w)", err, ctx.Err())
			case <-time.After(wait):
			}
			wait = min(2*wait, time.Second)
		}
	}
}

// sourceCrashed reports that a source's Run failed or panicked; the
// runner crashes on it so its supervisor (the duties actor) restarts it.
type sourceCrashed struct{ err error }

// sourceStopWait bounds how long a stopping source may take to return.
const sourceStopWait = 5 * time.Second

// sourceRunner runs one source's Run in a goroutine; Receive only starts,
// stops and crashes it.
type sourceRunner struct {
	st      *sourceState
	metrics *Metrics
	log     *slog.Logger

	cancel context.CancelFunc
	done   chan struct{}
}

func (r *sourceRunner) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *actor.Started:
		ctx, cancel := context.WithCancel(context.Background())
		r.cancel, r.done = cancel, make(chan struct{})
		self, root := c.Self(), c.ActorSystem().Root
		go r.run(ctx, func(err error) { root.Send(self, &sourceCrashed{err: err}) })
	case *sourceCrashed:
		panic(m.err) // the supervisor restarts the runner
	case *actor.Restarting:
		r.metrics.sourceRestarts.WithLabelValues(r.st.src.Name()).Inc()
		r.st.mu.Lock()
		r.st.restarts++
		r.st.mu.Unlock()
		r.stop()
	case *actor.Stopping:
		r.stop()
	}
}

func (r *sourceRunner) run(ctx context.Context, crash func(error)) {
	defer close(r.done)
	fail := func(err error) {
		r.st.mu.Lock()
		r.st.lastCrash = err.Error()
		r.st.mu.Unlock()
		r.log.Error("source crashed; it is started again", "error", err)
		crash(err)
	}
	defer func() {
		if v := recover(); v != nil {
			fail(fmt.Errorf("panic: %v", v))
		}
	}()
	err := r.st.src.Run(ctx, r.st.env)
	if ctx.Err() != nil {
		return
	}
	if err == nil {
		err = errors.New("it returned before it was stopped")
	}
	fail(err)
}

// stop ends Run and waits (briefly) for it.
func (r *sourceRunner) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(sourceStopWait):
		r.log.Warn("source did not stop in time", "waited", sourceStopWait)
	}
}

// sourceStatuses reports every source.
func (e *Engine) sourceStatuses() []SourceStatus {
	out := make([]SourceStatus, len(e.sources))
	for i, s := range e.sources {
		out[i] = s.status()
	}
	return out
}

// hideSources blanks the sources' details (see NodeStatus.HideDetails),
// on copies: the statuses are shared.
func hideSources(list []SourceStatus) []SourceStatus {
	list = slices.Clone(list)
	for i := range list {
		HideDetail(&list[i].LastCrash)
		if h, ok := list[i].Status.(interface{ Hidden() any }); ok {
			list[i].Status = h.Hidden()
		}
	}
	return list
}
