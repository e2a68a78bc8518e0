// Package file is the sink used when no store is configured: it appends each
// batch as NDJSON (one event envelope per line) to an hourly file under the
// data dir, so the engine runs with no set-up.
package file

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"eventlistener/event"
	"eventlistener/sinks"
)

var _ sinks.Sink = (*Sink)(nil)

// Sink appends batches to <dir>/events-<UTC hour>.ndjson and syncs each
// batch before Write returns. Unlike the stores it cannot suppress an id it
// has already written: a retried batch can appear twice in the files.
type Sink struct {
	dir string
	now func() time.Time

	mu   sync.Mutex
	f    *os.File
	hour string
	buf  bytes.Buffer
}

// New creates dir if needed.
func New(dir string) (*Sink, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create data dir: %w", err)
	}
	return &Sink{dir: dir, now: time.Now}, nil
}

// Name is "file".
func (s *Sink) Name() string { return "file" }

// Write appends the events and syncs the file.
func (s *Sink) Write(ctx context.Context, events []event.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	hour := s.now().UTC().Format("2006-01-02T15")
	if s.f == nil || hour != s.hour {
		if s.f != nil {
			s.f.Close()
			s.f = nil
		}
		f, err := os.OpenFile(filepath.Join(s.dir, "events-"+hour+".ndjson"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return sinks.MarkRetryable(fmt.Errorf("cannot open event file: %w", err))
		}
		s.f, s.hour = f, hour
	}
	s.buf.Reset()
	enc := json.NewEncoder(&s.buf)
	enc.SetEscapeHTML(false)
	for i := range events {
		if err := enc.Encode(&events[i]); err != nil {
			return fmt.Errorf("cannot encode event %s: %w", events[i].ID, err)
		}
	}
	if _, err := s.f.Write(s.buf.Bytes()); err != nil {
		return sinks.MarkRetryable(fmt.Errorf("cannot write event file: %w", err))
	}
	if err := s.f.Sync(); err != nil {
		return sinks.MarkRetryable(fmt.Errorf("cannot sync event file: %w", err))
	}
	return nil
}

// Ping checks that the folder is there.
func (s *Sink) Ping(context.Context) error {
	_, err := os.Stat(s.dir)
	return err
}

// Close closes the current file.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}
