package wal

import (
	"errors"
	"fmt"
	"io"

	"eventlistener/event"
)

// Cursor reads events back from the log in offset order. One goroutine uses
// a cursor at a time.
type Cursor struct {
	w        *WAL
	pos      uint64 // offset of the next event to return
	seg      segment
	f        File
	r        *recordReader
	pending  []event.Event // the rest of a record read in part
	pendAt   uint64        // offset of pending[0]
	skipped  uint64
	deferred error
}

// NewCursor reads from offset from on (or from the oldest event kept, if
// from was released).
func (w *WAL) NewCursor(from uint64) *Cursor { return &Cursor{w: w, pos: from} }

// Pos is the offset of the next event the cursor returns.
func (c *Cursor) Pos() uint64 { return c.pos }

// Skipped counts the events the cursor passed over because they were no
// longer in the log: released, or lost to a bad record.
func (c *Cursor) Skipped() uint64 { return c.skipped }

// Seek moves the cursor to offset at (forward or back).
func (c *Cursor) Seek(at uint64) {
	if at == c.pos {
		return
	}
	c.deferred = nil
	c.pos = at
	c.pending = nil
	c.closeFile()
}

// Next returns up to max events, and about maxBytes, from the cursor's
// offset on, never one at or past upTo, with the offset of the first. upTo
// must not exceed what has been committed. It returns no events once the
// cursor reaches upTo. An error wrapping ErrCorrupt names events that could
// not be read; the cursor has moved past them.
func (c *Cursor) Next(max, maxBytes int, upTo uint64) (uint64, []event.Event, error) {
	// The segment being written may change past what was read: read it
	// afresh next time, whatever this call returns.
	defer func() {
		if c.r != nil {
			c.r.drop()
		}
	}()
	if err := c.deferred; err != nil {
		c.deferred = nil
		return c.pos, nil, err
	}
	first := c.pos
	var out []event.Event
	size := 0
	for len(out) < max && size < maxBytes && c.pos < upTo {
		if len(c.pending) > 0 {
			if c.pendAt != c.pos {
				c.pending = nil
				continue
			}
			n := 0
			for n < len(c.pending) && len(out)+n < max && size < maxBytes && c.pos+uint64(n) < upTo {
				size += c.pending[n].Size()
				n++
			}
			out = append(out, c.pending[:n]...)
			c.pending = c.pending[n:]
			c.pos += uint64(n)
			c.pendAt = c.pos
			continue
		}
		before := c.pos
		err := c.fill(upTo)
		if len(out) > 0 && (err != nil || c.pos != before) {
			// Return what is contiguous; the rest, or the error, is for
			// the next call.
			c.deferred = err
			break
		}
		if err != nil {
			return c.pos, nil, err
		}
		if len(c.pending) == 0 {
			break
		}
		if len(out) == 0 {
			first = c.pos
		}
	}
	return first, out, nil
}

// ErrCorrupt says that events could not be read back from the log.
var ErrCorrupt = errors.New("WAL records unreadable")

// fill reads the record holding c.pos into pending.
func (c *Cursor) fill(upTo uint64) error {
	for {
		if c.f == nil {
			seg, ok := c.w.segmentFor(c.pos)
			if !ok {
				return fmt.Errorf("no WAL segment holds offset %d", c.pos)
			}
			if c.pos < seg.first {
				c.skipped += seg.first - c.pos
				c.pos = seg.first
			}
			f, err := c.w.fs.OpenFile(c.w.path(seg.name), false)
			if err != nil {
				return fmt.Errorf("cannot read WAL segment %s: %w", seg.name, err)
			}
			c.seg, c.f, c.r = seg, f, &recordReader{f: f, limit: -1}
		}
		if c.pos >= upTo {
			return nil
		}
		rec, err := c.r.next()
		if errors.Is(err, io.EOF) || errors.Is(err, errCorrupt) {
			next, ok := c.w.segmentAfter(c.seg.first)
			if !ok {
				if err != nil && !errors.Is(err, io.EOF) {
					return fmt.Errorf("%w: segment %s: %v", ErrCorrupt, c.seg.name, err)
				}
				// Nothing more written yet.
				return nil
			}
			c.closeFile()
			if c.pos < next.first {
				lost := next.first - c.pos
				c.skipped += lost
				from := c.pos
				c.pos = next.first
				if !errors.Is(err, io.EOF) {
					return fmt.Errorf("%w: offsets %d to %d in %s: %v", ErrCorrupt, from, next.first, c.seg.name, err)
				}
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("cannot read WAL segment %s: %w", c.seg.name, err)
		}
		end := rec.first + uint64(rec.count)
		if next, ok := c.w.segmentAfter(c.seg.first); ok && end > next.first {
			// Left by a failed write: the next segment holds these
			// offsets. This segment ends here.
			c.closeFile()
			if c.pos < next.first {
				c.skipped += next.first - c.pos
				c.pos = next.first
			}
			continue
		}
		if end <= c.pos {
			continue // before the cursor
		}
		events, err := decodeEvents(rec.payload, rec.count)
		if err != nil {
			c.skipped += end - c.pos
			from := c.pos
			c.pos = end
			return fmt.Errorf("%w: offsets %d to %d in %s: %v", ErrCorrupt, from, end, c.seg.name, err)
		}
		if rec.first > c.pos {
			c.skipped += rec.first - c.pos
			c.pos = rec.first
		}
		c.pending, c.pendAt = events[c.pos-rec.first:], c.pos
		return nil
	}
}

func (c *Cursor) closeFile() {
	if c.f != nil {
		c.f.Close()
		c.f, c.r = nil, nil
	}
}

// Close releases the cursor's file.
func (c *Cursor) Close() { c.closeFile() }
