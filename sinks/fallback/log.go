package fallback

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"eventlistener/event"
	"eventlistener/sinks"
)

// Ext is the extension of a complete fallback file. Files being written end
// in ".tmp" and start with a dot, so neither replay nor a glob sees them.
const Ext = ".ndjson"

// Record is one line of the fallback log.
type Record struct {
	Sink     string      `json:"sink"`
	Error    string      `json:"error"`
	Batch    string      `json:"batch"`
	FailedAt time.Time   `json:"failed_at"`
	Event    event.Event `json:"event"`
}

// Log writes fallback files into one folder.
type Log struct {
	dir string
	seq atomic.Uint64
	now func() time.Time
}

// Open makes dir if needed and checks that files can be written there.
func Open(dir string) (*Log, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create fallback dir: %w", err)
	}
	probe, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return nil, fmt.Errorf("fallback dir %s is not writable: %w", dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	return &Log{dir: dir, now: time.Now}, nil
}

// Dir is the folder the log writes to.
func (l *Log) Dir() string { return l.dir }

// Write stores the events one sink did not take from one batch as a new
// file, and returns its path. The file is synced before it becomes visible.
func (l *Log) Write(sink, batchID string, failed []sinks.Failed) (string, error) {
	if len(failed) == 0 {
		return "", nil
	}
	now := l.now().UTC()
	records := make([]Record, len(failed))
	for i, f := range failed {
		msg := "unknown error"
		if f.Err != nil {
			msg = f.Err.Error()
		}
		records[i] = Record{Sink: sink, Error: msg, Batch: batchID, FailedAt: now, Event: f.Event}
	}
	name := fmt.Sprintf("%s-%s-%s-%d%s", now.Format("20060102T150405.000000000Z"), safe(sink), safe(batchID), l.seq.Add(1), Ext)
	return name, writeFile(filepath.Join(l.dir, name), records)
}

// writeFile writes records to path through a hidden temporary file that is
// synced, then renamed into place, then the folder is synced.
func writeFile(path string, records []Record) error {
	dir, base := filepath.Split(path)
	tmp := filepath.Join(dir, "."+base+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("cannot write fallback file: %w", err)
	}
	w := bufio.NewWriterSize(f, 64<<10)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for i := range records {
		if err = enc.Encode(&records[i]); err != nil {
			break
		}
	}
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cannot write fallback file %s: %w", path, err)
	}
	// The file is complete and in place. Syncing the folder makes the new
	// name survive a power cut: only then may the WAL let these events go.
	// If it fails the caller writes them again (a duplicate is harmless).
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("cannot sync fallback dir after writing %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	if dir == "" {
		dir = "."
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// safe keeps a name fit for a file name.
func safe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}
