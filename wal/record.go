package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// A record is a 32-byte header and a payload:
//
//	[0:4]   payload length (little endian)
//	[4:8]   CRC-32C of bytes [8:32] and the payload
//	[8:16]  offset of the record's first event
//	[16:24] offset of the first event of the write (group commit) the
//	        record was part of
//	[24:28] number of events
//	[28:32] marker "ELW" and format version 2
//
// A header of zeros ends a segment: segments are preallocated with zeros.
// The group offset tells recovery whether intact records after a bad one
// come from the same write (one the power cut tore: never acknowledged) or
// from a later one (so the bad record had been synced: damage).
const (
	headerSize = 32
	marker     = 0x02574c45 // "ELW\x02" little endian
	// maxPayload bounds a record's length field, so garbage cannot make the
	// reader allocate much: the largest request is 64 MiB.
	maxPayload = 256 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt marks a record that is not what was written.
var errCorrupt = errors.New("corrupt record")

// appendRecord appends a record holding count events, encoded in payload,
// written in the group whose first event is at offset group.
func appendRecord(buf []byte, first, group uint64, count int, payload []byte) []byte {
	at := len(buf)
	buf = append(buf, make([]byte, headerSize)...)
	h := buf[at:]
	binary.LittleEndian.PutUint32(h[0:], uint32(len(payload)))
	binary.LittleEndian.PutUint64(h[8:], first)
	binary.LittleEndian.PutUint64(h[16:], group)
	binary.LittleEndian.PutUint32(h[24:], uint32(count))
	binary.LittleEndian.PutUint32(h[28:], marker)
	buf = append(buf, payload...)
	crc := crc32.Update(crc32.Checksum(h[8:headerSize], castagnoli), castagnoli, payload)
	binary.LittleEndian.PutUint32(buf[at+4:], crc)
	return buf
}

// record is one record read back.
type record struct {
	first   uint64
	group   uint64 // offset of the first event of its write
	count   int
	payload []byte // owned by the record
	at      int64  // byte position in its segment
	size    int64  // header and payload
}

// recordReader reads records from a segment, one after the other, through a
// buffer of its own. It trusts its buffer only up to the records it has
// checked: a segment being written may change beyond them.
type recordReader struct {
	f      io.ReaderAt
	limit  int64 // the file's size when opened, or -1: read until EOF
	off    int64 // position of the next record
	buf    []byte
	bufOff int64 // file position of buf[0]
}

// ensure makes buf hold n bytes from off; false at the end of the file.
func (r *recordReader) ensure(n int) (bool, error) {
	start := int(r.off - r.bufOff)
	if start >= 0 && start+n <= len(r.buf) {
		return true, nil
	}
	want := max(n, 256<<10)
	if cap(r.buf) < want {
		r.buf = make([]byte, want)
	}
	r.buf = r.buf[:want]
	got, err := r.f.ReadAt(r.buf, r.off)
	if err != nil && !errors.Is(err, io.EOF) {
		r.buf = r.buf[:0]
		return false, err
	}
	r.buf, r.bufOff = r.buf[:got], r.off
	if r.limit >= 0 && r.off+int64(got) > r.limit {
		r.buf = r.buf[:max(0, r.limit-r.off)]
	}
	return len(r.buf) >= n, nil
}

// next reads the record at off. It returns io.EOF at the clean end of the
// segment (its end, or a header of zeros), and an error wrapping errCorrupt
// when the bytes there are not a whole, intact record.
func (r *recordReader) next() (record, error) {
	ok, err := r.ensure(headerSize)
	if err != nil {
		return record{}, err
	}
	if !ok {
		if len(r.buf) == 0 || allZero(r.buf[r.off-r.bufOff:]) {
			r.drop()
			return record{}, io.EOF
		}
		r.drop()
		return record{}, fmt.Errorf("%w: %d bytes at %d are too short for a header", errCorrupt, int64(len(r.buf))-(r.off-r.bufOff), r.off)
	}
	h := r.buf[r.off-r.bufOff:][:headerSize]
	if allZero(h) {
		r.drop()
		return record{}, io.EOF
	}
	length := binary.LittleEndian.Uint32(h[0:])
	if binary.LittleEndian.Uint32(h[28:]) != marker || length > maxPayload {
		r.drop()
		return record{}, fmt.Errorf("%w: bad header at %d", errCorrupt, r.off)
	}
	total := headerSize + int(length)
	ok, err = r.ensure(total)
	if err != nil {
		return record{}, err
	}
	if !ok {
		r.drop()
		return record{}, fmt.Errorf("%w: record at %d is cut short", errCorrupt, r.off)
	}
	b := r.buf[r.off-r.bufOff:][:total]
	crc := crc32.Update(crc32.Checksum(b[8:headerSize], castagnoli), castagnoli, b[headerSize:])
	if crc != binary.LittleEndian.Uint32(b[4:]) {
		r.drop()
		return record{}, fmt.Errorf("%w: checksum mismatch at %d", errCorrupt, r.off)
	}
	rec := record{
		first:   binary.LittleEndian.Uint64(b[8:]),
		group:   binary.LittleEndian.Uint64(b[16:]),
		count:   int(binary.LittleEndian.Uint32(b[24:])),
		payload: append([]byte(nil), b[headerSize:]...),
		at:      r.off,
		size:    int64(total),
	}
	r.off += int64(total)
	return rec, nil
}

// drop forgets the buffered bytes past the checked records.
func (r *recordReader) drop() { r.buf, r.bufOff = r.buf[:0], r.off }

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
