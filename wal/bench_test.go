package wal_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"eventlistener/event"
	"eventlistener/wal"
)

// BenchmarkAppend measures synced appends of one ~200-byte event on the
// real disk under the test's temporary folder. With one writer every append
// pays a sync of its own (the reference); with 64, the appends that arrive
// during a sync share the next one (group commit).
func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			var syncs atomic.Int64
			w, _, err := wal.Open(wal.Options{Dir: b.TempDir(), OnSync: func(time.Duration, int) { syncs.Add(1) }})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			batch := []event.Event{ev("0190d6c4-8a5e-7cc4-9a36-5f1f3b2f8e01")}
			b.SetBytes(int64(batch[0].Size()))
			b.ReportAllocs()
			b.SetParallelism(max(1, writers/2)) // GOMAXPROCS is 2 here
			if writers == 1 {
				for b.Loop() {
					if _, err := w.Append(batch); err != nil {
						b.Fatal(err)
					}
				}
			} else {
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := w.Append(batch); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(b.N)/float64(max(1, syncs.Load())), "records/sync")
		})
	}
}

// BenchmarkAppendNDJSON appends requests of 1,000 events, as an NDJSON
// post would, from 8 writers.
func BenchmarkAppendNDJSON(b *testing.B) {
	w, _, err := wal.Open(wal.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	batch := make([]event.Event, 1000)
	size := 0
	for i := range batch {
		batch[i] = ev(fmt.Sprintf("0190d6c4-8a5e-7cc4-9a36-%012d", i))
		size += batch[i].Size()
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := w.Append(batch); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkCursor reads 1,000-event requests back, as a sink catching up
// does.
func BenchmarkCursor(b *testing.B) {
	w, _, err := wal.Open(wal.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	batch := make([]event.Event, 1000)
	for i := range batch {
		batch[i] = ev(fmt.Sprintf("0190d6c4-8a5e-7cc4-9a36-%012d", i))
	}
	for range 100 {
		if _, err := w.Append(batch); err != nil {
			b.Fatal(err)
		}
	}
	next := w.Stats().Next
	b.ReportAllocs()
	events := 0
	for b.Loop() {
		c := w.NewCursor(0)
		for c.Pos() < next {
			_, evs, err := c.Next(1000, 4<<20, next)
			if err != nil {
				b.Fatal(err)
			}
			events += len(evs)
		}
		c.Close()
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}
