// Package crashfs is an in-memory file system for wal.FS that can lose
// power: Crash cuts every file back to what was last synced, plus a random
// torn part of what was written after, and forgets folder entries (files
// created, removed) that were not synced. Faults can be injected per
// operation (a full disk, a failing sync).
package crashfs

import (
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"path"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"

	"eventlistener/wal"
)

// Op names an operation for Fault.
type Op string

const (
	OpCreate   Op = "create"
	OpWrite    Op = "write"
	OpSync     Op = "sync"
	OpAllocate Op = "allocate"
	OpSyncDir  Op = "syncdir"
)

// ErrNoSpace is what a full disk answers.
var ErrNoSpace = syscall.ENOSPC

type node struct {
	data   []byte
	synced []byte // the data as of the last sync
	ops    []op   // the changes since, in order
}

// op is a change not yet synced: a write (data at off) or a resize.
type op struct {
	resize bool
	off    int64
	data   []byte
	size   int64 // resize to size
}

func apply(b []byte, o op) []byte {
	if o.resize {
		if o.size < int64(len(b)) {
			return b[:o.size]
		}
		return append(b, make([]byte, o.size-int64(len(b)))...)
	}
	if end := o.off + int64(len(o.data)); end > int64(len(b)) {
		b = append(b, make([]byte, end-int64(len(b)))...)
	}
	copy(b[o.off:], o.data)
	return b
}

// FS is the simulated file system. The zero value is not usable: use New.
type FS struct {
	mu sync.Mutex
	// live is what the running process sees; durable is each folder's
	// entries as of its last SyncDir.
	live    map[string]*node
	durable map[string]map[string]*node
	dirs    map[string]bool
	gen     int // bumped by Crash: what the old process holds is dead

	faultFn atomic.Pointer[func(op Op, name string) error]
	// SkipSync makes Sync report success without making anything durable:
	// the bug a power-cut test must catch.
	SkipSync bool
	// NoAllocate makes Allocate do nothing, as on file systems without
	// fallocate.
	NoAllocate bool
	// KeepTorn makes Crash keep the whole unsynced tail of every file, as
	// if it had all reached the disk.
	KeepTorn bool
}

var _ wal.FS = (*FS)(nil)

// New makes an empty file system.
func New() *FS {
	return &FS{live: map[string]*node{}, durable: map[string]map[string]*node{}, dirs: map[string]bool{}}
}

// ErrDead is what a file handle made before a Crash answers: that process
// is gone.
var ErrDead = errors.New("crashfs: the process that opened this file lost power")

// SetFault makes fn be asked before each operation from now on; a non-nil
// answer fails the operation. nil removes it.
func (f *FS) SetFault(fn func(op Op, name string) error) {
	if fn == nil {
		f.faultFn.Store(nil)
		return
	}
	f.faultFn.Store(&fn)
}

func (f *FS) fault(op Op, name string) error {
	if fn := f.faultFn.Load(); fn != nil {
		return (*fn)(op, name)
	}
	return nil
}

func (f *FS) MkdirAll(dir string) error { return f.mkdirAll(-1, dir) }

func (f *FS) mkdirAll(gen int, dir string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if gen >= 0 && gen != f.gen {
		return ErrDead
	}
	f.dirs[path.Clean(dir)] = true
	return nil
}

func (f *FS) ReadDir(dir string) ([]string, error) { return f.readDir(-1, dir) }

func (f *FS) readDir(gen int, dir string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if gen >= 0 && gen != f.gen {
		return nil, ErrDead
	}
	dir = path.Clean(dir)
	if !f.dirs[dir] {
		return nil, fs.ErrNotExist
	}
	var names []string
	for n := range f.live {
		if path.Dir(n) == dir {
			names = append(names, path.Base(n))
		}
	}
	sort.Strings(names)
	return names, nil
}

func (f *FS) Create(name string) (wal.File, error) { return f.create(-1, name) }

func (f *FS) create(gen int, name string) (wal.File, error) {
	if err := f.fault(OpCreate, name); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if gen >= 0 && gen != f.gen {
		return nil, ErrDead
	}
	name = path.Clean(name)
	if !f.dirs[path.Dir(name)] {
		return nil, fs.ErrNotExist
	}
	if _, ok := f.live[name]; ok {
		return nil, fs.ErrExist
	}
	n := &node{}
	f.live[name] = n
	return &file{fs: f, n: n, name: name, write: true, gen: f.gen}, nil
}

func (f *FS) OpenFile(name string, write bool) (wal.File, error) { return f.openFile(-1, name, write) }

func (f *FS) openFile(gen int, name string, write bool) (wal.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if gen >= 0 && gen != f.gen {
		return nil, ErrDead
	}
	name = path.Clean(name)
	n, ok := f.live[name]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return &file{fs: f, n: n, name: name, write: write, gen: f.gen}, nil
}

func (f *FS) Remove(name string) error { return f.remove(-1, name) }

func (f *FS) remove(gen int, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if gen >= 0 && gen != f.gen {
		return ErrDead
	}
	name = path.Clean(name)
	if _, ok := f.live[name]; !ok {
		return fs.ErrNotExist
	}
	delete(f.live, name)
	return nil
}

func (f *FS) SyncDir(dir string) error { return f.syncDir(-1, dir) }

func (f *FS) syncDir(gen int, dir string) error {
	if err := f.fault(OpSyncDir, dir); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if gen >= 0 && gen != f.gen {
		return ErrDead
	}
	dir = path.Clean(dir)
	if f.SkipSync {
		return nil
	}
	entries := map[string]*node{}
	for n, nd := range f.live {
		if path.Dir(n) == dir {
			entries[n] = nd
		}
	}
	f.durable[dir] = entries
	return nil
}

// Crash simulates a power cut: every file goes back to its synced data plus
// a random part of what was written after it (possibly with garbage or
// zeros in that part), and only the folder entries last synced remain. The
// file system is then usable again, as after a reboot.
func (f *FS) Crash(rng *rand.Rand) {
	f.mu.Lock()
	defer f.mu.Unlock()
	live := map[string]*node{}
	for _, entries := range f.durable {
		for name, n := range entries {
			live[name] = n
		}
	}
	for _, n := range live {
		data := append([]byte(nil), n.synced...)
		k := len(n.ops)
		if !f.KeepTorn {
			k = rng.IntN(len(n.ops) + 1)
		}
		for _, o := range n.ops[:k] {
			data = apply(data, o)
		}
		if k < len(n.ops) && !n.ops[k].resize && rng.IntN(2) == 0 {
			// The write under way when the power went: a part of it
			// landed, and a sector of that part may read as zeros or
			// garbage.
			o := n.ops[k]
			torn := append([]byte(nil), o.data[:rng.IntN(len(o.data)+1)]...)
			if len(torn) > 0 {
				at := rng.IntN(len(torn))
				switch rng.IntN(3) {
				case 0:
					clear(torn[at:min(len(torn), at+512)])
				case 1:
					for i := at; i < min(len(torn), at+64); i++ {
						torn[i] = byte(rng.Uint32())
					}
				}
			}
			data = apply(data, op{off: o.off, data: torn})
		}
		n.data = data
		n.synced = append([]byte(nil), data...)
		n.ops = nil
	}
	// Fresh nodes: handles of the old process must not reach the new
	// world.
	for name, n := range live {
		live[name] = &node{data: n.data, synced: n.synced}
	}
	f.live = live
	for dir, entries := range f.durable {
		for name := range entries {
			entries[name] = live[name]
		}
		f.durable[dir] = entries
	}
	f.gen++
}

// Bytes returns a copy of a file's current data.
func (f *FS) Bytes(name string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.live[path.Clean(name)]
	if !ok {
		return nil, false
	}
	return append([]byte(nil), n.data...), true
}

// Corrupt flips one byte of a file, as bit rot would.
func (f *FS) Corrupt(name string, at int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.live[path.Clean(name)]
	n.data[at] ^= 0xff
	n.synced = append([]byte(nil), n.data...)
	n.ops = nil
}

type file struct {
	fs     *FS
	n      *node
	name   string
	write  bool
	closed bool
	gen    int
}

func (h *file) dead() error {
	if h.closed {
		return errClosed
	}
	if h.gen != h.fs.gen {
		return ErrDead
	}
	return nil
}

var errClosed = errors.New("file closed")

func (h *file) ReadAt(p []byte, off int64) (int, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.dead(); err != nil {
		return 0, err
	}
	if off >= int64(len(h.n.data)) {
		return 0, io.EOF
	}
	n := copy(p, h.n.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// ShortWrite, returned by a fault for OpWrite, writes the first N bytes
// and then fails with Err, as a disk filling up in the middle of a write.
type ShortWrite struct {
	N   int
	Err error
}

func (s *ShortWrite) Error() string { return s.Err.Error() }

func (h *file) WriteAt(p []byte, off int64) (int, error) {
	var short *ShortWrite
	if err := h.fs.fault(OpWrite, h.name); errors.As(err, &short) {
		n := min(short.N, len(p))
		if _, werr := h.WriteAt(p[:n], off); werr != nil {
			return 0, werr
		}
		return n, short.Err
	} else if err != nil {
		return 0, err
	}
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.dead(); err != nil {
		return 0, err
	}
	if !h.write {
		return 0, errClosed
	}
	o := op{off: off, data: append([]byte(nil), p...)}
	h.n.data = apply(h.n.data, o)
	h.n.ops = append(h.n.ops, o)
	return len(p), nil
}

func (h *file) Sync() error {
	if err := h.fs.fault(OpSync, h.name); err != nil {
		return err
	}
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.dead(); err != nil {
		return err
	}
	if !h.fs.SkipSync {
		h.n.synced = append(h.n.synced[:0], h.n.data...)
		h.n.ops = nil
	}
	return nil
}

func (h *file) Truncate(size int64) error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.dead(); err != nil {
		return err
	}
	o := op{resize: true, size: size}
	h.n.data = apply(h.n.data, o)
	h.n.ops = append(h.n.ops, o)
	return nil
}

func (h *file) Allocate(size int64) error {
	if err := h.fs.fault(OpAllocate, h.name); err != nil {
		return err
	}
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.dead(); err != nil {
		return err
	}
	if size > int64(len(h.n.data)) && !h.fs.NoAllocate {
		o := op{resize: true, size: size}
		h.n.data = apply(h.n.data, o)
		h.n.ops = append(h.n.ops, o)
	}
	return nil
}

func (h *file) Size() (int64, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	return int64(len(h.n.data)), nil
}

func (h *file) Close() error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	h.closed = true
	return nil
}

// Process is the file system as one process sees it: after a Crash, every
// call of a Process made before fails with ErrDead, as that process is gone.
type Process struct {
	fs  *FS
	gen int
}

var _ wal.FS = (*Process)(nil)

// Process starts a process on the file system (a boot).
func (f *FS) Process() *Process {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &Process{fs: f, gen: f.gen}
}

func (p *Process) MkdirAll(dir string) error            { return p.fs.mkdirAll(p.gen, dir) }
func (p *Process) ReadDir(dir string) ([]string, error) { return p.fs.readDir(p.gen, dir) }
func (p *Process) Create(name string) (wal.File, error) { return p.fs.create(p.gen, name) }
func (p *Process) OpenFile(name string, write bool) (wal.File, error) {
	return p.fs.openFile(p.gen, name, write)
}
func (p *Process) Remove(name string) error { return p.fs.remove(p.gen, name) }
func (p *Process) SyncDir(dir string) error { return p.fs.syncDir(p.gen, dir) }
