package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"eventlistener/event"
)

// Errors of Append and Enqueue.
var (
	// ErrFailed: a sync failed, so nothing can be promised any more; the log
	// takes no writes until the process restarts and recovers.
	ErrFailed = errors.New("write-ahead log failed")
	// ErrClosed: the log is closed.
	ErrClosed = errors.New("write-ahead log closed")
	// ErrQueueFull: more than Options.MaxQueueBytes wait to be written.
	ErrQueueFull = errors.New("write-ahead log queue full")
)

const segmentExt = ".wal"

// Options configure a log. Zero fields take the defaults of DefaultOptions.
type Options struct {
	// Dir holds the segments; QuarantineDir (default Dir/quarantine) the
	// bad parts of segments found at Open.
	Dir           string
	QuarantineDir string
	// SegmentBytes is the size segments are preallocated to and rolled at.
	SegmentBytes int64
	// MaxQueueBytes bounds the encoded requests waiting to be written.
	MaxQueueBytes int64
	// FS is the file system; default OS.
	FS FS
	// OnCommit is called by the writer after each group is synced and
	// before its writers are answered, with the group's records in offset
	// order. It must not block.
	OnCommit func([]Committed)
	// OnSync, when set, is told how long each sync took and how many
	// records it made durable.
	OnSync func(d time.Duration, records int)
	Logger *slog.Logger
}

// DefaultOptions holds the defaults.
var DefaultOptions = Options{
	// 64 MiB: a few seconds of ingest at full speed, so released space is
	// given back soon, and few enough files for a long outage (4 GiB is 64).
	SegmentBytes: 64 << 20,
	// Requests wait here only while one sync runs; 64 MiB holds four of the
	// largest requests.
	MaxQueueBytes: 64 << 20,
}

// Committed is a record made durable: one request's events and the offset
// of the first.
type Committed struct {
	First  uint64
	Events []event.Event
}

// Result answers an Enqueue.
type Result struct {
	First uint64
	Err   error
}

// Recovery is what Open found.
type Recovery struct {
	Segments int
	Records  int
	Events   uint64
	// First and Next bound the offsets in the log: [First, Next).
	First, Next uint64
	// TornBytes were cut off the end of the newest segment (preallocated
	// zeros included): a write the crash interrupted, never acknowledged.
	TornBytes int64
	// Quarantined lists the bad parts of older segments.
	Quarantined []Quarantine
}

// Quarantine is a bad record in a sealed segment: it and the rest of its
// segment were moved to File, and the events at offsets [From, To) are
// lost.
type Quarantine struct {
	Segment  string
	File     string
	From, To uint64
	Reason   string
}

type segment struct {
	first uint64
	name  string
	size  int64 // bytes on disk (allocated)
}

type request struct {
	events  []event.Event
	payload []byte
	done    chan Result
}

// WAL is an open write-ahead log. Its methods are safe for concurrent use.
type WAL struct {
	opt Options
	fs  FS
	log *slog.Logger

	mu       sync.Mutex
	cond     *sync.Cond
	queue    []*request
	spare    []*request
	queued   int64
	closing  bool
	closed   bool      // the writer is stopped
	err      error     // set once: the log failed
	segments []segment // oldest first; the last is being written
	known    []uint64  // segments with bytes in quarantine, found at Open
	next     uint64    // offset of the next event
	first    uint64    // offset of the oldest event kept

	// The writer's own state.
	active   File
	pos      int64 // write position in active
	alloc    int64 // active's preallocated size
	mustRoll bool  // a failed write left unknown bytes after pos
	buf      []byte
	stopped  chan struct{}
}

// Open recovers the log in opt.Dir and starts its writer.
func Open(opt Options) (*WAL, Recovery, error) {
	if opt.SegmentBytes <= 0 {
		opt.SegmentBytes = DefaultOptions.SegmentBytes
	}
	if opt.MaxQueueBytes <= 0 {
		opt.MaxQueueBytes = DefaultOptions.MaxQueueBytes
	}
	if opt.FS == nil {
		opt.FS = OS
	}
	if opt.QuarantineDir == "" {
		opt.QuarantineDir = path.Join(opt.Dir, "quarantine")
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	w := &WAL{opt: opt, fs: opt.FS, log: opt.Logger, stopped: make(chan struct{})}
	w.cond = sync.NewCond(&w.mu)
	if err := w.fs.MkdirAll(opt.Dir); err != nil {
		return nil, Recovery{}, fmt.Errorf("cannot create the WAL folder: %w", err)
	}
	rec, err := w.recover()
	if err != nil {
		return nil, rec, err
	}
	if err := w.roll(); err != nil {
		return nil, rec, fmt.Errorf("cannot start a WAL segment in %s: %w", opt.Dir, err)
	}
	go w.run()
	return w, rec, nil
}

func segmentName(first uint64) string { return fmt.Sprintf("%020d%s", first, segmentExt) }

// recover reads every segment, cuts the torn tail of the newest, quarantines
// bad records of the others, and seals them all.
func (w *WAL) recover() (Recovery, error) {
	var rec Recovery
	names, err := w.fs.ReadDir(w.opt.Dir)
	if err != nil {
		return rec, fmt.Errorf("cannot list the WAL folder: %w", err)
	}
	var segs []segment
	for _, n := range names {
		base, ok := strings.CutSuffix(n, segmentExt)
		if !ok {
			continue
		}
		first, err := strconv.ParseUint(base, 10, 64)
		if err != nil {
			continue
		}
		segs = append(segs, segment{first: first, name: n})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].first < segs[j].first })
	w.known = w.quarantinedSegments()
	var kept []segment
	for i := range segs {
		s := segs[i]
		last := i == len(segs)-1
		var nextFirst uint64
		if !last {
			nextFirst = segs[i+1].first
		}
		end, size, q, torn, records, events, err := w.recoverSegment(s, last, nextFirst)
		if err != nil {
			return rec, err
		}
		rec.TornBytes += torn
		rec.Records += records
		rec.Events += events
		if q != nil {
			rec.Quarantined = append(rec.Quarantined, *q)
		}
		w.next = end
		if records == 0 {
			// Nothing in it: it names an offset, nothing more.
			if err := w.fs.Remove(w.path(s.name)); err != nil {
				return rec, fmt.Errorf("cannot remove empty WAL segment %s: %w", s.name, err)
			}
			continue
		}
		s.size = size
		kept = append(kept, s)
	}
	w.segments = kept
	if len(kept) > 0 {
		w.first = kept[0].first
	} else {
		w.first = w.next
	}
	rec.Segments, rec.First, rec.Next = len(kept), w.first, w.next
	return rec, w.fs.SyncDir(w.opt.Dir)
}

// recoverSegment checks one segment and leaves it sealed: ending at its last
// good record.
func (w *WAL) recoverSegment(s segment, last bool, nextFirst uint64) (end uint64, size int64, q *Quarantine, torn int64, records int, events uint64, err error) {
	name := w.path(s.name)
	f, err := w.fs.OpenFile(name, true)
	if err != nil {
		return 0, 0, nil, 0, 0, 0, fmt.Errorf("cannot open WAL segment: %w", err)
	}
	defer f.Close()
	fileSize, err := f.Size()
	if err != nil {
		return 0, 0, nil, 0, 0, 0, fmt.Errorf("cannot read WAL segment %s: %w", s.name, err)
	}
	r := &recordReader{f: f, limit: fileSize}
	end = s.first
	var good int64 // the end of the last good record
	var why error  // why reading stopped before the end of the file
	for {
		good = r.off
		rec, err := r.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err == nil && rec.first != end {
			err = fmt.Errorf("%w: record at %d has offset %d, want %d", errCorrupt, rec.at, rec.first, end)
		}
		if err == nil && !last && rec.first+uint64(rec.count) > nextFirst {
			// Left by a write that failed before the next segment began
			// at these offsets: never acknowledged.
			err = fmt.Errorf("%w: record at %d holds offsets %d to %d, and the next segment starts at %d",
				errCorrupt, rec.at, rec.first, rec.first+uint64(rec.count), nextFirst)
		}
		if err == nil {
			_, err = decodeEvents(rec.payload, rec.count)
			if err != nil {
				err = fmt.Errorf("%w: record at %d: %v", errCorrupt, rec.at, err)
			}
		}
		if err != nil {
			if !errors.Is(err, errCorrupt) {
				return 0, 0, nil, 0, 0, 0, fmt.Errorf("cannot read WAL segment %s: %w", s.name, err)
			}
			why = err
			break
		}
		end += uint64(rec.count)
		records++
		events += uint64(rec.count)
	}
	rest, err := scanTail(f, good, fileSize, end)
	if err != nil {
		return 0, 0, nil, 0, 0, 0, fmt.Errorf("cannot read WAL segment %s: %w", s.name, err)
	}
	if why == nil && rest.data {
		// A header of zeros with data after it.
		why = fmt.Errorf("%w: zeros at %d, data after them", errCorrupt, good)
	}
	lost := func(to uint64, reason error) error {
		// Acknowledged events are gone: keep the bytes for forensics and
		// say so loudly.
		qf := ""
		if good < fileSize && rest.data {
			var err error
			if qf, err = w.quarantine(f, s.name, good, fileSize); err != nil {
				return err
			}
		}
		q = &Quarantine{Segment: s.name, File: qf, From: end, To: to, Reason: reason.Error()}
		w.log.Error("WAL: BAD RECORD; its events and the rest of its segment are lost (the bytes are in the quarantine file)",
			"segment", s.name, "at", good, "file", qf, "lost_from", q.From, "lost_to", q.To, "reason", reason)
		return nil
	}
	switch {
	case why == nil && (last || end >= nextFirst):
		// A clean end.
	case why == nil && w.knownLoss(s.first, nextFirst):
		// Reported when the bytes were quarantined, at an earlier start.
		w.log.Info("WAL: offsets lost to a bad record at an earlier start (see the quarantine folder)",
			"segment", s.name, "lost_from", end, "lost_to", nextFirst)
	case why == nil:
		if err := lost(nextFirst, fmt.Errorf("segment ends at offset %d, the next one starts at %d", end, nextFirst)); err != nil {
			return 0, 0, nil, 0, 0, 0, err
		}
	case rest.later:
		// A write that came after the bad record is intact, so the bad
		// record had been synced and acknowledged: damage (bit rot, or a
		// disk that lost a synced write), not a torn write.
		to := max(end, nextFirst)
		if last {
			to = max(end, rest.after)
		}
		if err := lost(to, why); err != nil {
			return 0, 0, nil, 0, 0, 0, err
		}
		end = to
	case last:
		// The newest segment ends where the power cut tore its last write:
		// that write was never acknowledged.
		torn = fileSize - good
		w.log.Warn("WAL: cut off a torn write at the end of the newest segment (never acknowledged)",
			"segment", s.name, "at", good, "bytes", torn, "reason", why)
	case end >= nextFirst:
		// What a failed write left behind a sealed segment's last record;
		// the next segment holds those offsets.
		w.log.Warn("WAL: cut off what a failed write left at the end of a sealed segment (never acknowledged)",
			"segment", s.name, "at", good, "reason", why)
	default:
		// A sealed segment was whole when the next one began.
		if err := lost(nextFirst, why); err != nil {
			return 0, 0, nil, 0, 0, 0, err
		}
	}
	if good != fileSize {
		if err := f.Truncate(good); err != nil {
			return 0, 0, nil, 0, 0, 0, fmt.Errorf("cannot seal WAL segment %s: %w", s.name, err)
		}
		if err := f.Sync(); err != nil {
			return 0, 0, nil, 0, 0, 0, fmt.Errorf("cannot seal WAL segment %s: %w", s.name, err)
		}
	}
	return end, good, q, torn, records, events, nil
}

// quarantinedSegments lists the first offsets of the segments whose bad
// parts are in the quarantine folder.
func (w *WAL) quarantinedSegments() []uint64 {
	names, err := w.fs.ReadDir(w.opt.QuarantineDir)
	if err != nil {
		return nil
	}
	var out []uint64
	for _, n := range names {
		base, _, ok := strings.Cut(n, segmentExt+".at-")
		if !ok {
			continue
		}
		if first, err := strconv.ParseUint(base, 10, 64); err == nil {
			out = append(out, first)
		}
	}
	return out
}

// knownLoss says whether a gap after the segment starting at first, up to
// the next at nextFirst, was quarantined (and reported) before: a segment
// in that range has bytes in the quarantine folder.
func (w *WAL) knownLoss(first, nextFirst uint64) bool {
	for _, q := range w.known {
		if q >= first && q < nextFirst {
			return true
		}
	}
	return false
}

// tailScan describes the bytes after a segment's last good record.
type tailScan struct {
	data bool // not all zeros
	// later: an intact record of a write later than the one holding
	// offset end (the offset the next good record would have had).
	later bool
	after uint64 // the offset after the last intact record found
}

// scanTail reads bytes [from, size) of a segment, looking for intact
// records.
func scanTail(f File, from, size int64, end uint64) (tailScan, error) {
	var t tailScan
	const chunk = 1 << 20
	var m [4]byte
	binary.LittleEndian.PutUint32(m[:], marker)
	buf := make([]byte, min(int64(chunk+len(m)-1), max(0, size-from)))
	r := &recordReader{f: f, limit: size} // one for every candidate, so its buffer is reused
	for at := from; at < size; {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-at)], at)
		if err != nil && !errors.Is(err, io.EOF) {
			return t, err
		}
		if n == 0 {
			break
		}
		b := buf[:n]
		t.data = t.data || !allZero(b)
		next := at + int64(max(1, n-(len(m)-1))) // markers may span chunks
		for i := 0; ; {
			j := bytes.Index(b[i:], m[:])
			if j < 0 {
				break
			}
			i += j + 1
			start := at + int64(i-1) - int64(headerSize-len(m))
			if start <= from {
				continue
			}
			r.off = start
			r.drop()
			rec, err := r.next()
			if err != nil || rec.first < end || rec.group > rec.first || rec.count == 0 {
				continue
			}
			if _, err := decodeEvents(rec.payload, rec.count); err != nil {
				continue
			}
			t.later = t.later || rec.group > end
			t.after = max(t.after, rec.first+uint64(rec.count))
			if skip := rec.at + rec.size; skip > next {
				next = skip
				break
			} else if skip > at {
				i = int(skip - at)
			}
		}
		at = next
	}
	return t, nil
}

// quarantine copies bytes [from, to) of a segment into the quarantine folder.
func (w *WAL) quarantine(f File, name string, from, to int64) (string, error) {
	if err := w.fs.MkdirAll(w.opt.QuarantineDir); err != nil {
		return "", fmt.Errorf("cannot create the WAL quarantine folder: %w", err)
	}
	qname := path.Join(w.opt.QuarantineDir, fmt.Sprintf("%s.at-%d.%d.bad", name, from, time.Now().UnixNano()))
	qf, err := w.fs.Create(qname)
	if err != nil {
		return "", fmt.Errorf("cannot quarantine WAL segment %s: %w", name, err)
	}
	defer qf.Close()
	buf := make([]byte, 1<<20)
	for at := from; at < to; {
		n, rerr := f.ReadAt(buf[:min(int64(len(buf)), to-at)], at)
		if n > 0 {
			if _, err := qf.WriteAt(buf[:n], at-from); err != nil {
				return "", fmt.Errorf("cannot quarantine WAL segment %s: %w", name, err)
			}
			at += int64(n)
		}
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return "", fmt.Errorf("cannot quarantine WAL segment %s: %w", name, rerr)
		}
		if n == 0 {
			break
		}
	}
	if err := qf.Sync(); err != nil {
		return "", fmt.Errorf("cannot quarantine WAL segment %s: %w", name, err)
	}
	if err := w.fs.SyncDir(w.opt.QuarantineDir); err != nil {
		return "", fmt.Errorf("cannot quarantine WAL segment %s: %w", name, err)
	}
	return qname, nil
}

func (w *WAL) path(name string) string { return path.Join(w.opt.Dir, name) }

// roll seals the active segment and starts a new one at w.next. Only the
// writer (or Open) calls it.
func (w *WAL) roll() error {
	if w.active != nil && w.pos == 0 {
		// Nothing is committed in the active segment (a write to it
		// failed): start it again rather than make a second segment with
		// the same first offset.
		if err := w.active.Truncate(0); err != nil {
			return err
		}
		if err := w.active.Allocate(w.opt.SegmentBytes); err != nil {
			return err
		}
		if err := w.syncOrFail(w.active); err != nil {
			return err
		}
		w.mustRoll = false
		return nil
	}
	if w.active != nil && w.mustRoll {
		// A failed write may have left whole records past pos, with offsets
		// the next segment will use: cut them off, durably, first.
		if err := w.active.Truncate(w.pos); err != nil {
			return err
		}
		if err := w.syncOrFail(w.active); err != nil {
			return err
		}
		w.alloc = w.pos
	}
	name := segmentName(w.next)
	f, err := w.fs.Create(w.path(name))
	if err != nil {
		return err
	}
	fail := func(err error) error {
		f.Close()
		_ = w.fs.Remove(w.path(name))
		return err
	}
	if err := f.Allocate(w.opt.SegmentBytes); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := w.fs.SyncDir(w.opt.Dir); err != nil {
		return fail(err)
	}
	alloc, err := f.Size()
	if err != nil {
		return fail(err)
	}
	if w.active != nil {
		// Give back the old segment's unused preallocation. Its end is
		// already durable; if the truncation is lost, the zeros read as
		// the end anyway.
		if w.pos < w.alloc {
			_ = w.active.Truncate(w.pos)
		}
		w.active.Close()
	}
	w.mu.Lock()
	if n := len(w.segments); n > 0 && w.active != nil {
		w.segments[n-1].size = w.pos
	}
	w.segments = append(w.segments, segment{first: w.next, name: name, size: alloc})
	w.mu.Unlock()
	w.active, w.pos, w.alloc, w.mustRoll = f, 0, alloc, false
	return nil
}

// syncOrFail syncs f; a failure fails the log for good (see commit).
func (w *WAL) syncOrFail(f File) error {
	if err := f.Sync(); err != nil {
		err = fmt.Errorf("%w: %v", ErrFailed, err)
		w.mu.Lock()
		w.err = err
		w.mu.Unlock()
		w.log.Error("WAL: SYNC FAILED; no more events are accepted until the process restarts and recovers the log", "error", err)
		return err
	}
	return nil
}

// Enqueue queues events to be written and returns at once; the channel gets
// the result once they are synced (or failed). The events must not be
// changed afterwards. An empty request is answered in its group's turn but
// not written: every record holds events, so a write's first offset names
// it alone.
func (w *WAL) Enqueue(events []event.Event) (<-chan Result, error) {
	r := &request{events: events, done: make(chan Result, 1)}
	r.payload = appendEvents(make([]byte, 0, estimate(events)), events)
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.err != nil:
		return nil, w.err
	case w.closing:
		return nil, ErrClosed
	case w.queued > 0 && w.queued+int64(len(r.payload)) > w.opt.MaxQueueBytes:
		return nil, ErrQueueFull
	}
	w.queue = append(w.queue, r)
	w.queued += int64(len(r.payload))
	if len(w.queue) == 1 {
		w.cond.Signal()
	}
	return r.done, nil
}

// Append writes events and returns once they are synced, with the offset of
// the first.
func (w *WAL) Append(events []event.Event) (uint64, error) {
	ch, err := w.Enqueue(events)
	if err != nil {
		return 0, err
	}
	r := <-ch
	return r.First, r.Err
}

func estimate(events []event.Event) int {
	n := 0
	for i := range events {
		n += events[i].Size()
	}
	return n
}

// run is the writer: it takes what is queued, writes it, syncs once, and
// answers.
func (w *WAL) run() {
	defer close(w.stopped)
	for {
		w.mu.Lock()
		for len(w.queue) == 0 && !w.closing {
			w.cond.Wait()
		}
		if len(w.queue) == 0 {
			w.mu.Unlock()
			return
		}
		group := w.queue
		w.queue, w.spare = w.spare[:0], nil
		w.queued = 0
		failed := w.err
		w.mu.Unlock()

		first, err := uint64(0), failed
		if err == nil {
			first, err = w.commit(group)
		}
		for _, r := range group {
			if err != nil {
				r.done <- Result{Err: err}
			} else {
				r.done <- Result{First: first}
				first += uint64(len(r.events))
			}
		}
		clear(group)
		w.mu.Lock()
		w.spare = group[:0]
		w.mu.Unlock()
	}
}

// commit writes and syncs one group and returns the offset of its first
// event.
func (w *WAL) commit(group []*request) (uint64, error) {
	total := int64(0)
	for _, r := range group {
		if len(r.events) > 0 {
			total += headerSize + int64(len(r.payload))
		}
	}
	if w.mustRoll || (w.pos > 0 && w.pos+total > max(w.alloc, w.opt.SegmentBytes)) {
		if err := w.roll(); err != nil {
			w.log.Error("WAL: cannot start a new segment; refusing writes until it can", "error", err)
			return 0, fmt.Errorf("cannot start a WAL segment: %w", err)
		}
	}
	first := w.next
	w.buf = w.buf[:0]
	next := first
	for _, r := range group {
		if len(r.events) > 0 {
			w.buf = appendRecord(w.buf, next, first, len(r.events), r.payload)
			next += uint64(len(r.events))
		}
	}
	if _, err := w.active.WriteAt(w.buf, w.pos); err != nil {
		// Nothing was promised yet; the next group starts a new segment,
		// so whatever part of this one reached the file is cut off.
		w.mustRoll = true
		w.log.Error("WAL: write failed; these requests get 503", "error", err)
		return 0, fmt.Errorf("cannot write to the WAL: %w", err)
	}
	start := time.Now()
	if err := w.active.Sync(); err != nil {
		// Never retried: after a failed fsync the kernel may have thrown
		// the pages away and a second fsync would report success.
		err = fmt.Errorf("%w: sync of %s: %v", ErrFailed, w.path(segmentName(w.segmentFirst())), err)
		w.mu.Lock()
		w.err = err
		w.mu.Unlock()
		w.log.Error("WAL: SYNC FAILED; no more events are accepted until the process restarts and recovers the log", "error", err)
		return 0, err
	}
	if w.opt.OnSync != nil {
		w.opt.OnSync(time.Since(start), len(group))
	}
	w.pos += total
	w.mu.Lock()
	w.next = next
	if n := len(w.segments); n > 0 {
		w.segments[n-1].size = max(w.alloc, w.pos)
	}
	w.mu.Unlock()
	if w.opt.OnCommit != nil {
		recs := make([]Committed, len(group))
		at := first
		for i, r := range group {
			recs[i] = Committed{First: at, Events: r.events}
			at += uint64(len(r.events))
		}
		w.opt.OnCommit(recs)
	}
	return first, nil
}

func (w *WAL) segmentFirst() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.segments[len(w.segments)-1].first
}

// QueuedBytes is how many encoded bytes wait to be written.
func (w *WAL) QueuedBytes() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.queued
}

// Err is the failure that stopped the log, or nil.
func (w *WAL) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Stats describe the log now.
type Stats struct {
	Segments    int
	Bytes       int64  // on disk, preallocation included
	First, Next uint64 // the offsets kept: [First, Next)
	QueuedBytes int64  // encoded requests waiting to be written
}

// Stats reports the log's size and offsets.
func (w *WAL) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := Stats{Segments: len(w.segments), First: w.first, Next: w.next, QueuedBytes: w.queued}
	for _, seg := range w.segments {
		s.Bytes += seg.size
	}
	return s
}

// Release deletes the sealed segments whose events all come before upTo:
// every sink is done with them. Once the log is closed, a upTo at its end
// deletes the last segment too.
func (w *WAL) Release(upTo uint64) (int, error) {
	w.mu.Lock()
	var gone []segment
	for len(w.segments) > 1 && w.segments[1].first <= upTo {
		gone = append(gone, w.segments[0])
		w.segments = w.segments[1:]
	}
	if w.closed && upTo >= w.next && len(w.segments) > 0 {
		// Closed and every event done: the last segment goes too, so the
		// next start has nothing to send again.
		gone = append(gone, w.segments...)
		w.segments = nil
		w.first = w.next
	} else if len(gone) > 0 {
		w.first = w.segments[0].first
	}
	w.mu.Unlock()
	var errs []error
	for _, s := range gone {
		if err := w.fs.Remove(w.path(s.name)); err != nil {
			errs = append(errs, fmt.Errorf("cannot delete WAL segment %s: %w", s.name, err))
		}
	}
	if len(gone) > 0 {
		// A deletion lost to a power cut would only re-send, but keep the
		// folder as the log believes it is.
		if err := w.fs.SyncDir(w.opt.Dir); err != nil {
			errs = append(errs, fmt.Errorf("cannot sync the WAL folder: %w", err))
		}
	}
	return len(gone), errors.Join(errs...)
}

// Close writes and syncs what is queued, then stops the writer. Appends
// after Close fail with ErrClosed.
func (w *WAL) Close() error {
	w.mu.Lock()
	if w.closing {
		w.mu.Unlock()
		<-w.stopped
		return nil
	}
	w.closing = true
	w.cond.Broadcast()
	w.mu.Unlock()
	<-w.stopped
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	if w.active != nil {
		err := w.active.Close()
		w.active = nil
		return err
	}
	return nil
}

// segmentFor finds the segment holding offset at (the oldest, if at was
// released).
func (w *WAL) segmentFor(at uint64) (segment, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.segments) == 0 {
		return segment{}, false
	}
	i := sort.Search(len(w.segments), func(i int) bool { return w.segments[i].first > at })
	return w.segments[max(i, 1)-1], true
}

// segmentAfter finds the segment after the one holding offset first.
func (w *WAL) segmentAfter(first uint64) (segment, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := sort.Search(len(w.segments), func(i int) bool { return w.segments[i].first > first })
	if i < len(w.segments) {
		return w.segments[i], true
	}
	return segment{}, false
}

// SegmentEnd is the first offset after the segment that holds offset at:
// releasing up to it frees that segment. It is at itself when at is in the
// segment being written.
func (w *WAL) SegmentEnd(at uint64) uint64 {
	if next, ok := w.segmentAfter(at); ok {
		return next.first
	}
	return at
}

// BytesFrom is the size on disk of the segments holding offset at and
// later ones: what the log keeps for a reader at that offset.
func (w *WAL) BytesFrom(at uint64) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	var n int64
	for i, s := range w.segments {
		if i+1 < len(w.segments) && w.segments[i+1].first <= at {
			continue
		}
		n += s.size
	}
	return n
}
