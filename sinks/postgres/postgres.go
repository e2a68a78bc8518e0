// Package postgres is the PostgreSQL sink: it writes each batch with one
// COPY into the events table, and falls back to a staging-table merge when
// the batch holds ids already stored, so a retry or a replay never makes a
// second row.
package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"eventlistener/event"
	"eventlistener/sinks"
)

var _ sinks.Sink = (*Sink)(nil)

// Table is the events table's name.
const Table = "events"

// schema is what Migrate creates; it is safe to run again.
const schema = `
CREATE TABLE IF NOT EXISTS events (
	id          text COLLATE "C" PRIMARY KEY,
	type        text NOT NULL,
	source      text NOT NULL,
	subject     text,
	time        timestamptz NOT NULL,
	received_at timestamptz NOT NULL,
	data        jsonb
);
CREATE INDEX IF NOT EXISTS events_time_idx ON events (time);
CREATE INDEX IF NOT EXISTS events_type_time_idx ON events (type, time);
`

var columns = []string{"id", "type", "source", "subject", "time", "received_at", "data"}

// Sink writes events to PostgreSQL.
type Sink struct {
	pool *pgxpool.Pool
	log  *slog.Logger
}

// Options configure the sink.
type Options struct {
	// URL is a PostgreSQL connection string (URL or key=value form).
	URL string
	// MaxConns bounds the pool unless the URL sets pool_max_conns; it should
	// exceed the batcher's in-flight limit by one for the readiness check.
	MaxConns int32
	Logger   *slog.Logger
}

// New opens a pool. It does not connect yet: a database that is down at
// start is retried like any other outage.
func New(opt Options) (*Sink, error) {
	cfg, err := pgxpool.ParseConfig(opt.URL)
	if err != nil {
		return nil, fmt.Errorf("invalid database URL: %w", err)
	}
	if opt.MaxConns > 0 && !strings.Contains(opt.URL, "pool_max_conns") {
		cfg.MaxConns = opt.MaxConns
	}
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot create the database pool: %w", err)
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sink{pool: pool, log: log.With("sink", "postgres")}, nil
}

// Name is "postgres".
func (s *Sink) Name() string { return "postgres" }

// Migrate creates the events table and its indexes if they are missing.
func (s *Sink) Migrate(ctx context.Context) error {
	if _, err := s.pool.Exec(ctx, schema); err != nil {
		return fmt.Errorf("cannot create the events table: %w", err)
	}
	return nil
}

// Ping checks the connection.
func (s *Sink) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Close closes the pool.
func (s *Sink) Close() error {
	s.pool.Close()
	return nil
}

// Write stores events. An event whose id is already stored counts as stored.
// A row PostgreSQL rejects (bad data) is left out and reported alone in a
// *sinks.PartialError; the rest of the batch is stored.
func (s *Sink) Write(ctx context.Context, events []event.Event) error {
	idx := make([]int, 0, len(events))
	var failures []sinks.Failure
	for i := range events {
		// Known to be refused: catch it here rather than by a failed COPY.
		if hasNULEscape(events[i].Data) {
			failures = append(failures, sinks.Failure{Index: i,
				Err: fmt.Errorf("postgres cannot store event %s: its data holds \\u0000, which jsonb does not accept", events[i].ID)})
			continue
		}
		idx = append(idx, i)
	}
	for len(idx) > 0 {
		err := s.store(ctx, events, idx)
		if err == nil {
			break
		}
		row, ok := rejectedRow(err, len(idx))
		if !ok {
			if failures == nil {
				return classify(err)
			}
			err = classify(err)
			for _, i := range idx {
				failures = append(failures, sinks.Failure{Index: i, Err: err})
			}
			break
		}
		failures = append(failures, sinks.Failure{Index: idx[row],
			Err: fmt.Errorf("postgres rejected event %s: %w", events[idx[row]].ID, err)})
		idx = append(idx[:row:row], idx[row+1:]...)
	}
	if failures != nil {
		return sinks.Partial(failures)
	}
	return nil
}

// store writes the rows with one COPY; if an id is already stored, it writes
// them again through a staging table, skipping the ids already there.
func (s *Sink) store(ctx context.Context, events []event.Event, idx []int) error {
	_, err := s.pool.CopyFrom(ctx, pgx.Identifier{Table}, columns, &rows{events: events, idx: idx, pos: -1})
	if !isUniqueViolation(err) {
		return err
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS events_stage
			(LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS`); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"events_stage"}, columns, &rows{events: events, idx: idx, pos: -1}); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO events SELECT * FROM events_stage ON CONFLICT (id) DO NOTHING`)
		return err
	})
}

// rows feeds COPY from events, in the order of idx, without copying them.
type rows struct {
	events []event.Event
	idx    []int
	pos    int
	vals   [7]any
}

func (r *rows) Next() bool {
	r.pos++
	return r.pos < len(r.idx)
}

func (r *rows) Values() ([]any, error) {
	e := &r.events[r.idx[r.pos]]
	r.vals[0], r.vals[1], r.vals[2] = e.ID, e.Type, e.Source
	r.vals[3] = nil
	if e.Subject != "" {
		r.vals[3] = e.Subject
	}
	r.vals[4], r.vals[5] = e.Time, e.ReceivedAt
	r.vals[6] = nil
	if e.Data != nil {
		r.vals[6] = e.Data
	}
	return r.vals[:], nil
}

func (r *rows) Err() error { return nil }

func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// copyLine finds the row number in a COPY error's context.
var copyLine = regexp.MustCompile(`COPY \S+, line (\d+)`)

// rejectedRow says which row (0-based, of n) PostgreSQL refused, when the
// error is about the data of one row: a data exception (class 22), an
// integrity violation (class 23) other than a duplicate id, or a program
// limit (class 54, e.g. an index entry too large).
func rejectedRow(err error, n int) (int, bool) {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code == "23505" {
		return 0, false
	}
	switch sqlClass(pe.Code) {
	case "22", "23", "54":
	default:
		return 0, false
	}
	m := copyLine.FindStringSubmatch(pe.Where)
	if m == nil {
		return 0, false
	}
	line, err2 := strconv.Atoi(m[1])
	if err2 != nil || line < 1 || line > n {
		return 0, false
	}
	return line - 1, true
}

// sqlClass is the class of a SQLSTATE (its first two characters), or ""
// for a code that is not five characters long: a server or proxy that
// answers one is not trusted to mean a known class.
func sqlClass(code string) string {
	if len(code) != 5 {
		return ""
	}
	return code[:2]
}

// classify wraps err for the batcher: errors of the connection or of the
// server's state are retryable; a statement PostgreSQL refuses is not.
func classify(err error) error {
	err = fmt.Errorf("cannot write batch to postgres: %w", err)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		// Not an answer from the server: the connection failed or timed out.
		return sinks.MarkRetryable(err)
	}
	switch sqlClass(pe.Code) {
	case "08", "40", "53", "57", "58":
		// connection, rollback (deadlock, serialization), resources,
		// operator intervention (shutdown), system error
		return sinks.MarkRetryable(err)
	}
	switch pe.Code {
	case "25006", "55P03":
		// read-only transaction: a demoted primary during a failover;
		// lock not available: a migration or maintenance holds the table
		return sinks.MarkRetryable(err)
	}
	return err
}

// hasNULEscape says whether JSON text holds the escape \u0000 (an odd
// number of backslashes before "u0000"), which jsonb refuses.
func hasNULEscape(data []byte) bool {
	for i := 0; i+6 <= len(data); {
		j := bytes.Index(data[i:], []byte(`u0000`))
		if j < 0 {
			return false
		}
		at := i + j
		slashes := 0
		for k := at - 1; k >= 0 && data[k] == '\\'; k-- {
			slashes++
		}
		if slashes%2 == 1 {
			return true
		}
		i = at + 5
	}
	return false
}
