package fallback

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"sort"
	"sync"
	"time"
)

// SinkBacklog is what a fallback folder holds for one sink.
type SinkBacklog struct {
	Files  int   `json:"files"`  // files with at least one record for it
	Events int64 `json:"events"` // its records
	Bytes  int64 `json:"bytes"`  // the bytes of those records' lines
}

// Backlog counts what a fallback folder holds for each sink, as a replay
// of the folder would find it (Files). A file never changes once it has
// its name, so each is read once: a count reads only the files that are
// new since the last.
type Backlog struct {
	Dir string

	mu   sync.Mutex
	seen map[string]counted
}

type counted struct {
	size  int64
	mod   time.Time
	sinks map[string]SinkBacklog
}

// Count returns the backlog by sink name. A folder that does not exist
// holds nothing. Lines that are not records are not counted.
func (b *Backlog) Count() (map[string]SinkBacklog, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]SinkBacklog{}
	files, err := Files([]string{b.Dir})
	if errors.Is(err, fs.ErrNotExist) {
		b.seen = nil
		return out, nil
	}
	if err != nil {
		return out, err
	}
	next := make(map[string]counted, len(files))
	var firstErr error
	for _, path := range files {
		info, err := os.Stat(path)
		if err != nil {
			continue // replayed meanwhile
		}
		c, ok := b.seen[path]
		if !ok || c.size != info.Size() || !c.mod.Equal(info.ModTime()) {
			sinks, err := countFile(path)
			if err != nil {
				if !errors.Is(err, fs.ErrNotExist) && firstErr == nil {
					firstErr = err
				}
				continue
			}
			c = counted{size: info.Size(), mod: info.ModTime(), sinks: sinks}
		}
		next[path] = c
		for name, n := range c.sinks {
			t := out[name]
			t.Files++
			t.Events += n.Events
			t.Bytes += n.Bytes
			out[name] = t
		}
	}
	b.seen = next
	return out, firstErr
}

// FilesFor returns, in name order, the files the last Count found holding
// records for sink, and how many records those files hold for every sink
// (a replay of them deals with all of those).
func (b *Backlog) FilesFor(sink string) (files []string, records int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for path, c := range b.seen {
		if _, ok := c.sinks[sink]; !ok {
			continue
		}
		files = append(files, path)
		for _, n := range c.sinks {
			records += n.Events
		}
	}
	sort.Strings(files)
	return files, records
}

// countFile counts one file's records by sink, reading each line only as
// far as its sink's name: a line may be as large as an event may be.
func countFile(path string) (map[string]SinkBacklog, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]SinkBacklog{}
	r := bufio.NewReaderSize(f, 64<<10)
	for {
		head, err := r.ReadSlice('\n')
		n := int64(len(head))
		complete := err == nil
		sink, named := sinkOf(head, complete)
		for errors.Is(err, bufio.ErrBufferFull) {
			var more []byte
			more, err = r.ReadSlice('\n')
			n += int64(len(more))
			complete = err == nil
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		if complete && named { // a last line cut short is not a record
			s := out[sink]
			s.Files = 1
			s.Events++
			s.Bytes += n
			out[sink] = s
		}
		if err == io.EOF {
			return out, nil
		}
	}
}

// recordHead is how this package writes every record's first field.
var recordHead = []byte(`{"sink":"`)

// sinkOf reads the sink a record is for from the start of its line. Log
// writes it first; a line in another order is decoded when it is whole.
func sinkOf(head []byte, whole bool) (string, bool) {
	if rest, ok := bytes.CutPrefix(head, recordHead); ok {
		if i := bytes.IndexAny(rest, `"\`); i > 0 && rest[i] == '"' {
			return string(rest[:i]), true
		}
	}
	if !whole {
		return "", false
	}
	var r struct {
		Sink string `json:"sink"`
	}
	if json.Unmarshal(head, &r) != nil || r.Sink == "" {
		return "", false
	}
	return r.Sink, true
}

// CountLines counts the lines of a fallback file: its records, for a
// progress bar's total.
func CountLines(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var n int64
	buf := make([]byte, 64<<10)
	for {
		k, err := f.Read(buf)
		n += int64(bytes.Count(buf[:k], []byte{'\n'}))
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
