package wal_test

import (
	"encoding/json"
	"testing"
	"time"

	"eventlistener/event"
	"eventlistener/internal/crashfs"
	"eventlistener/wal"
)

// FuzzRecover opens a log whose segments hold arbitrary bytes: Open must
// never panic, and whatever it keeps must read back without error.
func FuzzRecover(f *testing.F) {
	fs := crashfs.New()
	w, _, _ := wal.Open(wal.Options{Dir: "/wal", FS: fs, SegmentBytes: 1024})
	for i := range 5 {
		w.Append([]event.Event{ev(string(rune('a' + i))), ev("b")})
	}
	w.Close()
	good, _ := fs.Bytes("/wal/00000000000000000000.wal")
	f.Add(good, []byte{})
	f.Add(good[:len(good)/2], good[len(good)/3:])
	f.Add([]byte{}, good)
	f.Fuzz(func(t *testing.T, older, newest []byte) {
		fs := crashfs.New()
		fs.MkdirAll("/wal")
		for name, data := range map[string][]byte{"00000000000000000000.wal": older, "00000000000000000007.wal": newest} {
			file, _ := fs.Create("/wal/" + name)
			file.WriteAt(data, 0)
			file.Sync()
			file.Close()
		}
		w, rec, err := wal.Open(wal.Options{Dir: "/wal", FS: fs, SegmentBytes: 4096})
		if err != nil {
			return
		}
		defer w.Close()
		st := w.Stats()
		c := w.NewCursor(st.First)
		defer c.Close()
		var n uint64
		for c.Pos() < st.Next {
			_, evs, err := c.Next(1000, 1<<30, st.Next)
			if err != nil {
				t.Fatalf("read after recovery %+v: %v", rec, err)
			}
			if len(evs) == 0 {
				t.Fatalf("read stopped at %d of %d", c.Pos(), st.Next)
			}
			n += uint64(len(evs))
		}
		if n+c.Skipped() != st.Next-st.First {
			t.Fatalf("read %d and skipped %d of [%d, %d)", n, c.Skipped(), st.First, st.Next)
		}
		if _, err := w.Append([]event.Event{ev("new")}); err != nil {
			t.Fatalf("append after recovery: %v", err)
		}
	})
}

// FuzzDecodeEvents feeds arbitrary payloads to the event decoder, and
// checks that what it decodes encodes back to the same bytes.
func FuzzDecodeEvents(f *testing.F) {
	e := ev("x")
	f.Add(wal.AppendEvents(nil, []event.Event{e, {ID: "y", Time: time.Unix(1, 0)}}), 2)
	f.Add([]byte{1, 'a', 0, 0, 0, 0, 0, 0}, 1)
	f.Fuzz(func(t *testing.T, p []byte, n int) {
		evs, err := wal.DecodeEvents(p, n)
		if err != nil {
			return
		}
		again := wal.AppendEvents(nil, evs)
		back, err := wal.DecodeEvents(again, len(evs))
		if err != nil {
			t.Fatalf("re-encoded events do not decode: %v", err)
		}
		for i := range evs {
			a, b := evs[i], back[i]
			if a.ID != b.ID || a.Type != b.Type || a.Source != b.Source || a.Subject != b.Subject ||
				!a.Time.Equal(b.Time) || !a.ReceivedAt.Equal(b.ReceivedAt) || string(a.Data) != string(b.Data) || (a.Data == nil) != (b.Data == nil) {
				t.Fatalf("event %d changed: %+v vs %+v", i, a, b)
			}
		}
		_ = json.Valid // data is kept as bytes, valid or not: the API checks it
	})
}
