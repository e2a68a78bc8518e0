package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"eventlistener/event"
	"eventlistener/internal/testenv"
	"eventlistener/sinks"
)

func newSink(t testing.TB) (*Sink, *testenv.PG) {
	t.Helper()
	pg := testenv.Postgres(t)
	s, err := New(Options{URL: pg.URL, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s, pg
}

func batch(prefix string, n int) []event.Event {
	ts := time.Date(2026, 5, 1, 10, 0, 0, 123456000, time.UTC)
	out := make([]event.Event, n)
	for i := range out {
		out[i] = event.Event{ID: fmt.Sprintf("%s-%04d", prefix, i), Type: "order.created", Source: "shop",
			Time: ts.Add(time.Duration(i) * time.Second), ReceivedAt: ts.Add(time.Hour),
			Data: json.RawMessage(fmt.Sprintf(`{"order":%d,"items":["a","b"]}`, i))}
	}
	return out
}

func count(t testing.TB, pg *testenv.PG) string {
	return pg.Psql(t, "SELECT count(*) FROM events")
}

func TestWriteStoresEveryField(t *testing.T) {
	s, pg := newSink(t)
	evs := batch("a", 3)
	evs[1].Subject = "order/1"
	evs[2].Data = nil
	if err := s.Write(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	got := pg.Psql(t, `SELECT id, type, source, coalesce(subject,'<null>'), time AT TIME ZONE 'UTC', received_at AT TIME ZONE 'UTC',
		coalesce(data->>'order','<null>') FROM events ORDER BY id`)
	want := "a-0000|order.created|shop|<null>|2026-05-01 10:00:00.123456|2026-05-01 11:00:00.123456|0\n" +
		"a-0001|order.created|shop|order/1|2026-05-01 10:00:01.123456|2026-05-01 11:00:00.123456|1\n" +
		"a-0002|order.created|shop|<null>|2026-05-01 10:00:02.123456|2026-05-01 11:00:00.123456|<null>"
	if got != want {
		t.Fatalf("rows:\n%s\nwant:\n%s", got, want)
	}
}

func TestMigrateTwice(t *testing.T) {
	s, pg := newSink(t)
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	idx := pg.Psql(t, "SELECT count(*) FROM pg_indexes WHERE tablename = 'events'")
	if idx != "3" {
		t.Fatalf("events has %s indexes, want 3 (primary key, time, type+time)", idx)
	}
}

func TestIDsAlreadyStoredMakeNoSecondRow(t *testing.T) {
	tests := []struct {
		name  string
		first []event.Event
		then  []event.Event
		rows  string
	}{
		{"the same batch again", batch("a", 100), batch("a", 100), "100"},
		{"a batch half old, half new", batch("a", 100), append(batch("a", 100)[50:], batch("b", 50)...), "150"},
		{"one id twice in one batch", nil, append(batch("a", 10), batch("a", 10)[3]), "10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, pg := newSink(t)
			ctx := context.Background()
			if tt.first != nil {
				if err := s.Write(ctx, tt.first); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Write(ctx, tt.then); err != nil {
				t.Fatalf("write with stored ids failed: %v", err)
			}
			if got := count(t, pg); got != tt.rows {
				t.Fatalf("rows = %s, want %s", got, tt.rows)
			}
		})
	}
}

func TestRejectedRowFailsAlone(t *testing.T) {
	tests := []struct {
		name  string
		spoil func(e *event.Event)
	}{
		{`\u0000 in JSON data`, func(e *event.Event) { e.Data = json.RawMessage(`{"s":"a\u0000b"}`) }},
		{"NUL byte in a text field", func(e *event.Event) { e.Subject = "a\x00b" }},
		{"index entry too large", func(e *event.Event) { e.Type = randomText(8000) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, pg := newSink(t)
			evs := batch("a", 50)
			tt.spoil(&evs[17])
			tt.spoil(&evs[31])
			err := s.Write(context.Background(), evs)
			var pe *sinks.PartialError
			if !errors.As(err, &pe) {
				t.Fatalf("Write = %v, want a *sinks.PartialError", err)
			}
			if len(pe.Failures) != 2 || pe.Failures[0].Index != 17 || pe.Failures[1].Index != 31 {
				t.Fatalf("failures = %+v, want events 17 and 31", pe.Failures)
			}
			if sinks.Retryable(pe.Failures[0].Err) {
				t.Fatalf("a rejected row must not be retryable: %v", pe.Failures[0].Err)
			}
			if got := count(t, pg); got != "48" {
				t.Fatalf("rows = %s, want 48", got)
			}
		})
	}
}

// randomText does not compress, so PostgreSQL cannot squeeze it into an
// index entry.
func randomText(n int) string {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = 'a' + byte(x%26)
	}
	return string(b)
}

func TestHasNULEscape(t *testing.T) {
	tests := map[string]bool{
		`{"a":"\u0000"}`:   true,
		`{"a":"x\\u0000"}`: false, // an escaped backslash, then text
		`{"a":"\\\u0000"}`: true,
		`{"\u0000":1}`:     true,
		`{"a":"u0000"}`:    false,
		`{"a":"\u00001"}`:  true,
		``:                 false,
	}
	for in, want := range tests {
		if got := hasNULEscape([]byte(in)); got != want {
			t.Errorf("hasNULEscape(%s) = %v, want %v", in, got, want)
		}
	}
}

func TestDatabaseDownIsRetryable(t *testing.T) {
	s, pg := newSink(t)
	pg.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := s.Write(ctx, batch("a", 10))
	if err == nil || !sinks.Retryable(err) {
		t.Fatalf("Write with the database down = %v, want a retryable error", err)
	}
	if s.Ping(ctx) == nil {
		t.Fatal("Ping succeeded with the database down")
	}
	pg.Start()
	if err := s.Write(ctx, batch("a", 10)); err != nil {
		t.Fatalf("Write after restart: %v", err)
	}
	if got := count(t, pg); got != "10" {
		t.Fatalf("rows = %s, want 10", got)
	}
}

func TestMissingTableIsNotRetryable(t *testing.T) {
	pg := testenv.Postgres(t)
	s, err := New(Options{URL: pg.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Write(context.Background(), batch("a", 1))
	if err == nil || sinks.Retryable(err) {
		t.Fatalf("Write without the table = %v, want a permanent error", err)
	}
}

// BenchmarkWrite measures one COPY of 1,000 rows; rows/s is b.N*1000/s.
func BenchmarkWrite1000(b *testing.B) {
	s, _ := newSink(b)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := s.Write(ctx, batch(fmt.Sprint("b", i), 1000)); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(i*1000)/b.Elapsed().Seconds(), "rows/s")
}
