package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"eventlistener/event"
)

// prefill is how many rows "full" tables hold before the writes:
// $EVENTLISTENER_BENCH_ROWS, 2,000,000 by default (the README's figures
// are with 20,000,000).
func prefill() int {
	if n, err := strconv.Atoi(os.Getenv("EVENTLISTENER_BENCH_ROWS")); err == nil && n > 0 {
		return n
	}
	return 2_000_000
}

// The prefilled rows' ids, in the same style as the writes': time-ordered
// UUIDv7 (the engine's, older than now) or random UUIDv4 (clients' own).
const (
	fillV7 = `INSERT INTO events (id, type, source, time, received_at, data)
SELECT substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-7' || substr(r, 1, 3) || '-8' || substr(r, 4, 3) || '-' || substr(r, 7, 12),
       'bench', 'bench', now(), now(), '{"n":1}'
FROM (SELECT lpad(to_hex((extract(epoch FROM now()) * 1000)::bigint - %[1]d + g), 12, '0') AS h, md5(g::text) AS r
      FROM generate_series(%[2]d, %[3]d) AS g) AS s`
	fillV4 = `INSERT INTO events (id, type, source, time, received_at, data)
SELECT gen_random_uuid()::text, 'bench', 'bench', now(), now(), '{"n":1}' FROM generate_series(%[2]d, %[3]d)`
)

// fillChunk is how many rows one statement of the prefill inserts: each
// stays well within the harness's 30 s per statement.
const fillChunk = 500_000

// BenchmarkWrite1000IntoAFullTable is one COPY of 1,000 events into an
// empty table and into one that holds prefill() rows, with engine-made
// UUIDv7 ids and with random client ids (UUIDv4): random ids land all over
// the primary key's index, so a large table costs them reads.
//
//	EVENTLISTENER_BENCH_ROWS=20000000 go test -run '^$' -bench Write1000IntoAFullTable -benchtime 20s ./sinks/postgres/
func BenchmarkWrite1000IntoAFullTable(b *testing.B) {
	for _, full := range []bool{false, true} {
		for _, v7 := range []bool{true, false} {
			name := map[bool]string{true: "uuidv7", false: "uuidv4"}[v7]
			if full {
				name = fmt.Sprintf("rows=%d/%s", prefill(), name)
			} else {
				name = "rows=0/" + name
			}
			b.Run(name, func(b *testing.B) {
				s, pg := newSink(b)
				if full {
					fill := fillV4
					if v7 {
						fill = fillV7
					}
					start := time.Now()
					for from := 1; from <= prefill(); from += fillChunk {
						pg.Psql(b, fmt.Sprintf(fill, prefill(), from, min(from+fillChunk-1, prefill())))
					}
					pg.Psql(b, "VACUUM ANALYZE events")
					b.Logf("prefilled %d rows in %s", prefill(), time.Since(start).Round(time.Second))
				}
				ctx := context.Background()
				ts := time.Now().UTC()
				data := json.RawMessage(`{"order":1,"items":["a","b"]}`)
				b.ResetTimer()
				rows := 0
				for b.Loop() {
					evs := make([]event.Event, 1000)
					for i := range evs {
						id, _ := uuid.NewV7()
						if !v7 {
							id = uuid.New()
						}
						evs[i] = event.Event{ID: id.String(), Type: "order.created", Source: "shop", Time: ts, ReceivedAt: ts, Data: data}
					}
					if err := s.Write(ctx, evs); err != nil {
						b.Fatal(err)
					}
					rows += len(evs)
				}
				b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
			})
		}
	}
}
