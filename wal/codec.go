package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"eventlistener/event"
)

// The payload of a record is its events, one after the other:
//
//	id, type, source, subject   uvarint length, bytes
//	time, received_at           one length byte, time.Time's binary form
//	data                        uvarint (length+1, 0 for none), bytes
//
// Times keep their zone offset, so an event read back is the event that was
// written.

// appendEvents encodes events onto buf.
func appendEvents(buf []byte, events []event.Event) []byte {
	for i := range events {
		e := &events[i]
		buf = appendString(buf, e.ID)
		buf = appendString(buf, e.Type)
		buf = appendString(buf, e.Source)
		buf = appendString(buf, e.Subject)
		buf = appendTime(buf, e.Time)
		buf = appendTime(buf, e.ReceivedAt)
		if e.Data == nil {
			buf = binary.AppendUvarint(buf, 0)
		} else {
			buf = binary.AppendUvarint(buf, uint64(len(e.Data))+1)
			buf = append(buf, e.Data...)
		}
	}
	return buf
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

func appendTime(buf []byte, t time.Time) []byte {
	at := len(buf)
	buf = append(buf, 0)
	buf, err := t.AppendBinary(buf)
	if err != nil {
		// Only a zone offset that is not whole minutes fails; keep the
		// instant in UTC instead.
		buf, _ = t.UTC().AppendBinary(buf[:at+1])
	}
	buf[at] = byte(len(buf) - at - 1)
	return buf
}

var errPayload = errors.New("malformed record payload")

// decodeEvents decodes n events from p. The events' strings share one copy
// of p, and their data points into p, which the caller must not reuse.
func decodeEvents(p []byte, n int) ([]event.Event, error) {
	if n < 0 || n > len(p) {
		return nil, errPayload
	}
	s := string(p)
	events := make([]event.Event, n)
	pos := 0
	str := func() (string, bool) {
		l, k := binary.Uvarint(p[pos:])
		if k <= 0 || l > uint64(len(p)-pos-k) {
			return "", false
		}
		pos += k
		v := s[pos : pos+int(l)]
		pos += int(l)
		return v, true
	}
	tim := func(t *time.Time) bool {
		if pos >= len(p) {
			return false
		}
		l := int(p[pos])
		pos++
		if l > len(p)-pos || t.UnmarshalBinary(p[pos:pos+l]) != nil {
			return false
		}
		pos += l
		return true
	}
	for i := range events {
		e := &events[i]
		var ok bool
		if e.ID, ok = str(); !ok {
			return nil, fmt.Errorf("%w: event %d: id", errPayload, i)
		}
		if e.Type, ok = str(); !ok {
			return nil, fmt.Errorf("%w: event %d: type", errPayload, i)
		}
		if e.Source, ok = str(); !ok {
			return nil, fmt.Errorf("%w: event %d: source", errPayload, i)
		}
		if e.Subject, ok = str(); !ok {
			return nil, fmt.Errorf("%w: event %d: subject", errPayload, i)
		}
		if !tim(&e.Time) || !tim(&e.ReceivedAt) {
			return nil, fmt.Errorf("%w: event %d: time", errPayload, i)
		}
		l, k := binary.Uvarint(p[pos:])
		if k <= 0 || l > uint64(len(p)-pos-k)+1 {
			return nil, fmt.Errorf("%w: event %d: data", errPayload, i)
		}
		pos += k
		if l > 0 {
			end := pos + int(l) - 1
			e.Data = p[pos:end:end]
			pos = end
		}
	}
	if pos != len(p) {
		return nil, fmt.Errorf("%w: %d bytes after the last event", errPayload, len(p)-pos)
	}
	return events, nil
}
