package fallback

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"eventlistener/event"
	"eventlistener/sinks"
)

// ReplayedDir is the folder, beside each replayed file, that the file is
// moved into once replayed, so a second replay does not send it again.
const ReplayedDir = "replayed"

// Replayer sends fallback records again, each only to the sink it names.
type Replayer struct {
	// Sinks by name; a record naming a sink that is not here is not sent and
	// stays in the fallback log.
	Sinks map[string]sinks.Sink
	// Only, when set, replays only records owed to this sink; the others
	// stay in the fallback log.
	Only string
	// DryRun reads and reports but sends and moves nothing.
	DryRun bool
	// Retry bounds the retries of each write.
	Retry sinks.Retry
	// BatchSize is how many events go in one write (default 1000).
	BatchSize int
	// OnRecords, when set, is told how many records were dealt with, as
	// they are (for a progress bar).
	OnRecords func(n int)
	// OnDryRun, when set, is told each record a dry run would send.
	OnDryRun func(path string, rec Record)
}

// FileResult is what replaying one file did.
type FileResult struct {
	Path       string
	Sent       int       // records every sink named took
	Failed     int       // records a sink still refused; kept in Remainder
	Kept       int       // records for another sink than Only; kept in Remainder
	NoSink     int       // records for a sink not in Sinks; kept in Remainder
	Missing    []string  // the names of those sinks
	Bad        []BadLine // lines that are not records
	Remainder  string    // new fallback file holding Failed and Kept records
	MovedTo    string    // where the replayed file went
	FirstError error     // the first error a sink gave
}

// Files expands paths into the fallback files to replay, in name order:
// a file is taken as is, a folder gives its *.ndjson files (not those
// already replayed).
func Files(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			out = append(out, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path != p && (d.Name() == ReplayedDir || strings.HasPrefix(d.Name(), ".")) {
					return filepath.SkipDir
				}
				return nil
			}
			if strings.HasSuffix(d.Name(), Ext) && !strings.HasPrefix(d.Name(), ".") {
				out = append(out, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(out)
	return out, nil
}

// ReplayFile sends one file's records. Then, unless DryRun, it writes what
// was not sent to a new fallback file beside it (synced first) and moves the
// file into ReplayedDir. A returned error means the file was left in place.
func (r *Replayer) ReplayFile(ctx context.Context, path string) (FileResult, error) {
	res := FileResult{Path: path}
	f, err := os.Open(path)
	if err != nil {
		return res, err
	}
	records, bad, err := Read(f)
	f.Close()
	if err != nil {
		return res, fmt.Errorf("cannot read %s: %w", path, err)
	}
	res.Bad = bad

	// Group by sink, keeping order, and set aside what this replay skips.
	var keep []Record
	bySink := map[string][]int{}
	var order []string
	for i, rec := range records {
		if r.Only != "" && rec.Sink != r.Only {
			keep = append(keep, rec)
			res.Kept++
			continue
		}
		if r.Sinks[rec.Sink] == nil {
			keep = append(keep, rec)
			res.NoSink++
			if !slices.Contains(res.Missing, rec.Sink) {
				res.Missing = append(res.Missing, rec.Sink)
			}
			continue
		}
		if _, ok := bySink[rec.Sink]; !ok {
			order = append(order, rec.Sink)
		}
		bySink[rec.Sink] = append(bySink[rec.Sink], i)
	}

	if r.DryRun {
		for _, name := range order {
			for _, i := range bySink[name] {
				if r.OnDryRun != nil {
					r.OnDryRun(path, records[i])
				}
				res.Sent++
			}
		}
		r.progress(len(records))
		return res, nil
	}

	size := r.BatchSize
	if size <= 0 {
		size = 1000
	}
	for _, name := range order {
		idx := bySink[name]
		for start := 0; start < len(idx); start += size {
			chunk := idx[start:min(start+size, len(idx))]
			events := make([]event.Event, len(chunk))
			for j, i := range chunk {
				events[j] = records[i].Event
			}
			out := sinks.WriteWithRetry(ctx, r.Sinks[name], events, r.Retry, nil)
			res.Sent += out.Stored
			res.Failed += len(out.Failed)
			batchOf := make(map[string]string, len(chunk))
			for _, i := range chunk {
				batchOf[records[i].Event.ID] = records[i].Batch
			}
			for _, fl := range out.Failed {
				if res.FirstError == nil {
					res.FirstError = fmt.Errorf("%s: %w", name, fl.Err)
				}
				keep = append(keep, Record{Sink: name, Error: fl.Err.Error(), Batch: batchOf[fl.Event.ID],
					FailedAt: time.Now().UTC(), Event: fl.Event})
			}
			r.progress(len(chunk))
		}
	}
	r.progress(res.Kept + res.NoSink)

	dir := filepath.Dir(path)
	if len(keep) > 0 {
		name := time.Now().UTC().Format("20060102T150405.000000000Z") + "-replay-remainder" + Ext
		res.Remainder = filepath.Join(dir, uniqueName(dir, name))
		if err := writeFile(res.Remainder, keep); err != nil {
			return res, err
		}
	}
	moved, err := moveAside(path)
	if err != nil {
		return res, err
	}
	res.MovedTo = moved
	return res, nil
}

func (r *Replayer) progress(n int) {
	if r.OnRecords != nil && n > 0 {
		r.OnRecords(n)
	}
}

// moveAside moves path into ReplayedDir beside it.
func moveAside(path string) (string, error) {
	dir := filepath.Join(filepath.Dir(path), ReplayedDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	to := filepath.Join(dir, uniqueName(dir, filepath.Base(path)))
	if err := os.Rename(path, to); err != nil {
		return "", err
	}
	return to, syncDir(filepath.Dir(path))
}

// uniqueName returns name, or name with a counter if it is taken in dir.
func uniqueName(dir, name string) string {
	base := strings.TrimSuffix(name, Ext)
	for i := 1; ; i++ {
		if _, err := os.Lstat(filepath.Join(dir, name)); errors.Is(err, fs.ErrNotExist) {
			return name
		}
		name = fmt.Sprintf("%s.%d%s", base, i, Ext)
	}
}
