package console

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
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
	dir     string
	backlog *fallback.Backlog
	sinks   map[string]sinks.Sink
	retry   sinks.Retry
	ingest  func([]event.Event) error
	log     *slog.Logger

	mu      sync.Mutex // orders starts and ends
	last    atomic.Pointer[ReplayStatus]
	done    atomic.Int64
	running bool
	wg      sync.WaitGroup
}

// status is the last replay's, or nil. It takes no lock: the sampler
// asks every second, while a start may be counting files.
func (r *replays) status() *ReplayStatus {
	last := r.last.Load()
	if last == nil {
		return nil
	}
	s := *last
	if s.State == "running" {
		s.Done = r.done.Load()
	}
	return &s
}

// publish makes st what status shows.
func (r *replays) publish(st ReplayStatus) { r.last.Store(&st) }

// start begins replaying sink's backlog in the background: the files the
// backlog found holding records for it (a file of other sinks' records
// only is left alone).
func (r *replays) start(ctx context.Context, sink, who string) (*ReplayStatus, error) {
	if _, ok := r.sinks[sink]; !ok {
		return nil, fmt.Errorf("%w: %q", errNoSink, sink)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running {
		return nil, ErrReplayRunning
	}
	// Count again, so files written since the last tick are in.
	if _, err := r.backlog.Count(); err != nil {
		return nil, fmt.Errorf("cannot read the fallback folder: %w", err)
	}
	files, _ := r.backlog.FilesFor(sink)
	// The folder itself too, which holds no file when the backlog is in
	// subfolders only.
	unlock, err := fallback.LockDirs(append(files, filepath.Join(r.dir, fallback.LockName)))
	if err != nil {
		return nil, err
	}
	// Count again under the lock: a replay that held it (the CLI's) may
	// have moved files away meanwhile.
	if _, err := r.backlog.Count(); err != nil {
		unlock()
		return nil, fmt.Errorf("cannot read the fallback folder: %w", err)
	}
	files, records := r.backlog.FilesFor(sink)
	st := &ReplayStatus{Sink: sink, Who: who, State: "running", Started: time.Now().UTC(), Records: records}
	r.running = true
	r.done.Store(0)
	r.publish(*st)
	r.record(*st)
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
	for i, path := range files {
		if ctx.Err() != nil {
			errs = append(errs, fmt.Errorf("stopped: the engine is shutting down; %d files left in place", len(files)-i))
			break
		}
		fr, err := rp.ReplayFile(ctx, path)
		res.Files++
		if err != nil {
			errs = append(errs, fmt.Errorf("%s stays in place: %w", filepath.Base(path), err))
			continue
		}
		res.Sent += fr.Sent
		res.Failed += fr.Failed
		res.Kept += fr.Kept + fr.NoSink
		res.Bad += len(fr.Bad)
		if fr.FirstError != nil && sinks.Retryable(fr.FirstError) {
			// The store is down or failing: the rest would only be
			// rewritten as they are. They wait for the next replay.
			errs = append(errs, fmt.Errorf("stopped: %s still failed after retries (%w); %d files left in place", st.Sink, fr.FirstError, len(files)-i-1))
			break
		}
		if fr.FirstError != nil && len(errs) == 0 {
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
	r.publish(final)
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
	// One event when it starts ("running"), one when it ends ("done" or
	// "failed"), so a replay cut short by a crash is on record too.
	data := encode(map[string]any{"action": "replay", "sink": st.Sink, "who": st.Who, "result": st.State,
		"records": st.Records,
		"sent":    st.Sent, "failed": st.Failed, "kept": st.Kept, "bad": st.Bad, "files": st.Files, "error": st.Error,
		"started": st.Started, "finished": st.Finished})
	id, _ := uuid.NewV7()
	now := time.Now().UTC()
	ev := event.Event{ID: id.String(), Type: ReplayActionType, Source: "eventlistener/admin", Subject: st.Sink,
		Time: now, ReceivedAt: now, Data: data}
	if err := r.ingest([]event.Event{ev}); err != nil {
		r.log.Error("cannot store the replay's event", "sink", st.Sink, "error", err)
	}
}
