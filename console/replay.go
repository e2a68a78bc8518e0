package console

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"eventlistener/event"
	"eventlistener/sinks"
	"eventlistener/sinks/fallback"
)

// ReplayActionType is the type of the events that record a replay run
// from the console.
const ReplayActionType = "eventlistener.replay"

// ReplayStatus is a replay's progress, then its result.
type ReplayStatus struct {
	Sink     string    `json:"sink"`
	Who      string    `json:"who"`
	State    string    `json:"state"` // running, done or failed
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	// Records is how many records the files to replay hold (for every
	// sink: a file may hold several), Done how many were dealt with.
	Records int64  `json:"records"`
	Done    int64  `json:"done"`
	Files   int    `json:"files"`
	Sent    int    `json:"sent"`
	Failed  int    `json:"failed"` // still refused, kept in the fallback log
	Kept    int    `json:"kept"`   // for other sinks, kept
	Bad     int    `json:"bad"`    // lines that are not records, kept aside
	Result  string `json:"result,omitempty"`
	Error   string `json:"error,omitempty"`
}

// ErrReplayRunning says a replay is under way already.
var ErrReplayRunning = errors.New("a replay is running already")

// replays runs one replay at a time: the fallback folder's lock allows no
// more, and a second would send what the first is sending.
type replays struct {
	dir    string
	sinks  map[string]sinks.Sink
	retry  sinks.Retry
	ingest func([]event.Event) error
	log    logger

	mu      sync.Mutex
	last    *ReplayStatus
	done    atomic.Int64
	running bool
	wg      sync.WaitGroup
}

type logger interface {
	Info(msg string, args ...any)
	Error(msg string, args ...any)
}

// status is the last replay's, or nil.
func (r *replays) status() *ReplayStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		return nil
	}
	s := *r.last
	if s.State == "running" {
		s.Done = r.done.Load()
	}
	return &s
}

// start begins replaying sink's backlog in the background.
func (r *replays) start(ctx context.Context, sink, who string) (*ReplayStatus, error) {
	if _, ok := r.sinks[sink]; !ok {
		return nil, fmt.Errorf("%w: %q", errNoSink, sink)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running {
		return nil, ErrReplayRunning
	}
	files, err := fallback.Files([]string{r.dir})
	if err != nil {
		return nil, fmt.Errorf("cannot list the fallback folder: %w", err)
	}
	unlock, err := fallback.LockDirs(files)
	if err != nil {
		return nil, err
	}
	// List again under the lock: a replay that held it may have moved
	// files away meanwhile.
	if files, err = fallback.Files([]string{r.dir}); err != nil {
		unlock()
		return nil, fmt.Errorf("cannot list the fallback folder: %w", err)
	}
	st := &ReplayStatus{Sink: sink, Who: who, State: "running", Started: time.Now().UTC(), Records: countRecords(files)}
	r.last, r.running = st, true
	r.done.Store(0)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer unlock()
		r.run(ctx, st, files)
	}()
	s := *st
	return &s, nil
}

var errNoSink = errors.New("no such sink")

func (r *replays) run(ctx context.Context, st *ReplayStatus, files []string) {
	rp := &fallback.Replayer{Sinks: map[string]sinks.Sink{st.Sink: r.sinks[st.Sink]}, Only: st.Sink, Retry: r.retry,
		OnRecords: func(n int) { r.done.Add(int64(n)) }}
	var res ReplayStatus
	var errs []error
	for _, path := range files {
		if ctx.Err() != nil {
			errs = append(errs, errors.New("stopped: the engine is shutting down"))
			break
		}
		fr, err := rp.ReplayFile(ctx, path)
		res.Files++
		if err != nil {
			errs = append(errs, fmt.Errorf("%s stays in place: %w", path, err))
			continue
		}
		res.Sent += fr.Sent
		res.Failed += fr.Failed
		res.Kept += fr.Kept + fr.NoSink
		res.Bad += len(fr.Bad)
		if fr.FirstError != nil && res.Failed == fr.Failed {
			errs = append(errs, fr.FirstError)
		}
	}
	r.mu.Lock()
	st.Files, st.Sent, st.Failed, st.Kept, st.Bad = res.Files, res.Sent, res.Failed, res.Kept, res.Bad
	st.Done = r.done.Load()
	st.Finished = time.Now().UTC()
	st.State = "done"
	if err := errors.Join(errs...); err != nil {
		st.Error = err.Error()
	}
	if st.Failed > 0 || st.Bad > 0 || st.Error != "" {
		st.State = "failed"
	}
	st.Result = fmt.Sprintf("%d events sent to %s, %d still refused, %d kept for other sinks, %d unreadable lines, from %d files",
		st.Sent, st.Sink, st.Failed, st.Kept, st.Bad, st.Files)
	final := *st
	r.running = false
	r.mu.Unlock()

	r.log.Info("console replay finished", "sink", final.Sink, "who", final.Who, "state", final.State,
		"sent", final.Sent, "failed", final.Failed, "kept", final.Kept, "bad", final.Bad, "files", final.Files, "error", final.Error)
	r.record(final)
}

// record stores the replay as an event, as proxy actions are.
func (r *replays) record(st ReplayStatus) {
	if r.ingest == nil {
		return
	}
	data := encode(map[string]any{"action": "replay", "sink": st.Sink, "who": st.Who, "result": st.State,
		"sent": st.Sent, "failed": st.Failed, "kept": st.Kept, "bad": st.Bad, "files": st.Files, "error": st.Error,
		"started": st.Started, "finished": st.Finished})
	id, _ := uuid.NewV7()
	now := time.Now().UTC()
	ev := event.Event{ID: id.String(), Type: ReplayActionType, Source: "eventlistener/admin", Subject: st.Sink,
		Time: now, ReceivedAt: now, Data: data}
	if err := r.ingest([]event.Event{ev}); err != nil {
		r.log.Error("cannot store the replay's event", "sink", st.Sink, "error", err)
	}
}

// countRecords counts the lines of files, the progress bar's total.
func countRecords(files []string) int64 {
	var n int64
	for _, f := range files {
		c, err := fallback.CountLines(f)
		if err == nil {
			n += c
		}
	}
	return n
}
