package fallback

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"eventlistener/event"
	"eventlistener/sinks"
)

func testEvents(n int) []event.Event {
	out := make([]event.Event, n)
	ts := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	for i := range out {
		out[i] = event.Event{ID: fmt.Sprintf("ev-%d", i), Type: "t", Source: "s", Time: ts, ReceivedAt: ts,
			Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))}
	}
	return out
}

func failedOf(evs []event.Event, err error) []sinks.Failed {
	out := make([]sinks.Failed, len(evs))
	for i, e := range evs {
		out[i] = sinks.Failed{Event: e, Err: err}
	}
	return out
}

func TestWriteThenRead(t *testing.T) {
	l, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	evs := testEvents(3)
	name, err := l.Write("postgres", "batch-1", failedOf(evs, errors.New("connection refused")))
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(l.Dir())
	if len(entries) != 1 || entries[0].Name() != name {
		t.Fatalf("folder holds %v, want only %s (no temporary file left)", entries, name)
	}
	raw, _ := os.ReadFile(filepath.Join(l.Dir(), name))
	var first map[string]any
	if err := json.Unmarshal(bytes.SplitN(raw, []byte("\n"), 2)[0], &first); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"sink", "error", "batch", "failed_at", "event"} {
		if _, ok := first[k]; !ok {
			t.Errorf("record lacks %q: %s", k, raw)
		}
	}
	recs, bad, err := Read(bytes.NewReader(raw))
	if err != nil || len(bad) != 0 {
		t.Fatalf("Read: %v %v", err, bad)
	}
	if len(recs) != 3 || recs[2].Event.ID != "ev-2" || recs[0].Sink != "postgres" || recs[0].Batch != "batch-1" ||
		recs[0].Error != "connection refused" || string(recs[1].Event.Data) != `{"n":1}` {
		t.Fatalf("records = %+v", recs)
	}
}

func TestReadSurvivesDamage(t *testing.T) {
	good := `{"sink":"postgres","error":"e","batch":"b","failed_at":"2026-05-01T10:00:00Z","event":{"id":"a","type":"t","source":"s","time":"2026-05-01T10:00:00Z","received_at":"2026-05-01T10:00:00Z"}}`
	tests := []struct {
		name      string
		in        string
		records   int
		bad       int
		truncated bool
	}{
		{"clean", good + "\n" + good + "\n", 2, 0, false},
		{"truncated last line", good + "\n" + good[:40], 1, 1, true},
		{"last line complete without newline", good + "\n" + good, 2, 0, false},
		{"garbage in the middle", good + "\n{not json}\n" + good + "\n", 2, 1, false},
		{"record without sink", strings.Replace(good, `"sink":"postgres",`, "", 1) + "\n", 0, 1, false},
		{"blank lines", "\n\n" + good + "\n\n", 1, 0, false},
		{"empty", "", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, bad, err := Read(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != tt.records || len(bad) != tt.bad {
				t.Fatalf("records=%d bad=%d, want %d and %d (%v)", len(recs), len(bad), tt.records, tt.bad, bad)
			}
			if tt.bad > 0 && bad[len(bad)-1].Truncated != tt.truncated {
				t.Fatalf("truncated = %v, want %v", bad[len(bad)-1].Truncated, tt.truncated)
			}
		})
	}
}

func FuzzRead(f *testing.F) {
	good := `{"sink":"postgres","error":"e","batch":"b","failed_at":"2026-05-01T10:00:00Z","event":{"id":"a","type":"t","source":"s","time":"2026-05-01T10:00:00Z","received_at":"2026-05-01T10:00:00Z","data":{"x":[1,2]}}}`
	f.Add([]byte(good + "\n" + good))
	f.Add([]byte(good[:50]))
	f.Add([]byte("\n\n{}\n"))
	f.Add([]byte(strings.Replace(good, `{"x":[1,2]}`, `{"x":1,"x":2}`, 1)))
	f.Add([]byte(strings.Replace(good, `{"x":[1,2]}`, `"\u0000"`, 1)))
	f.Add([]byte(strings.Replace(good, `"time":"2026-05-01T10:00:00Z",`, `"time":"2026-05-01T12:00:00+02:00",`, 1)))
	f.Fuzz(func(t *testing.T, in []byte) {
		recs, bad, err := Read(bytes.NewReader(in))
		if err != nil {
			return
		}
		lines := bytes.Count(in, []byte("\n")) + 1
		if len(recs)+len(bad) > lines {
			t.Fatalf("%d records and %d bad lines from %d lines", len(recs), len(bad), lines)
		}
		for _, r := range recs {
			if r.Sink == "" || r.Event.ID == "" || r.Event.Type == "" {
				t.Fatalf("invalid record accepted: %+v", r)
			}
			if r.Event.Data != nil && !json.Valid(r.Event.Data) {
				t.Fatalf("record with invalid data accepted: %q", r.Event.Data)
			}
			// What this version writes of it (as writeFile does), it
			// reads back the same.
			var line bytes.Buffer
			enc := json.NewEncoder(&line)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(&r); err != nil {
				t.Fatal(err)
			}
			again, err := parseRecord(bytes.TrimSpace(line.Bytes()))
			if err != nil {
				t.Fatalf("record %s written back does not read: %v", line.Bytes(), err)
			}
			if !reflect.DeepEqual(normalize(again), normalize(r)) {
				t.Fatalf("record read back differs:\n%+v\n%+v", again, r)
			}
		}
		for i, b := range bad {
			if b.Truncated && i != len(bad)-1 {
				t.Fatalf("a line other than the last is marked truncated")
			}
		}
	})
}

// memSink stores by id and refuses ids in refuse.
type memSink struct {
	name   string
	refuse map[string]bool
	mu     sync.Mutex
	stored map[string]int
}

func (s *memSink) Name() string               { return s.name }
func (s *memSink) Ping(context.Context) error { return nil }
func (s *memSink) Close() error               { return nil }
func (s *memSink) Write(_ context.Context, evs []event.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var f []sinks.Failure
	for i, e := range evs {
		if s.refuse[e.ID] {
			f = append(f, sinks.Failure{Index: i, Err: errors.New("refused")})
			continue
		}
		s.stored[e.ID]++
	}
	if f != nil {
		return sinks.Partial(f)
	}
	return nil
}

func TestReplay(t *testing.T) {
	dir := t.TempDir()
	l, _ := Open(dir)
	evs := testEvents(10)
	if _, err := l.Write("postgres", "b1", failedOf(evs[:6], errors.New("down"))); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Write("elasticsearch", "b1", failedOf(evs[4:], errors.New("429"))); err != nil {
		t.Fatal(err)
	}
	pg := &memSink{name: "postgres", stored: map[string]int{}}
	es := &memSink{name: "elasticsearch", stored: map[string]int{}, refuse: map[string]bool{"ev-9": true}}
	r := &Replayer{Sinks: map[string]sinks.Sink{"postgres": pg, "elasticsearch": es},
		Retry: sinks.Retry{Initial: time.Millisecond, Max: time.Millisecond, MaxElapsed: 10 * time.Millisecond}}

	replayAll := func() (sent, failed int) {
		files, err := Files([]string{dir})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			res, err := r.ReplayFile(context.Background(), f)
			if err != nil {
				t.Fatal(err)
			}
			sent += res.Sent
			failed += res.Failed
		}
		return sent, failed
	}
	sent, failed := replayAll()
	if sent != 11 || failed != 1 {
		t.Fatalf("first replay: sent %d failed %d, want 11 and 1", sent, failed)
	}
	if len(pg.stored) != 6 || len(es.stored) != 5 {
		t.Fatalf("postgres has %d, elasticsearch %d; want 6 and 5 (each only its own records)", len(pg.stored), len(es.stored))
	}
	// The refused record is kept; the replayed files moved aside.
	files, _ := Files([]string{dir})
	if len(files) != 1 {
		t.Fatalf("after replay the fallback dir holds %v, want one remainder file", files)
	}
	moved, _ := os.ReadDir(filepath.Join(dir, ReplayedDir))
	if len(moved) != 2 {
		t.Fatalf("replayed dir holds %d files, want 2", len(moved))
	}

	// Second replay: only the remainder is sent, nothing twice.
	delete(es.refuse, "ev-9")
	sent, failed = replayAll()
	if sent != 1 || failed != 0 {
		t.Fatalf("second replay: sent %d failed %d, want 1 and 0", sent, failed)
	}
	for id, n := range pg.stored {
		if n != 1 {
			t.Fatalf("postgres got %s %d times", id, n)
		}
	}
	if files, _ := Files([]string{dir}); len(files) != 0 {
		t.Fatalf("files left after a clean replay: %v", files)
	}
}

func TestReplayOnlyOneSinkKeepsTheOthers(t *testing.T) {
	dir := t.TempDir()
	l, _ := Open(dir)
	evs := testEvents(4)
	l.Write("postgres", "b1", failedOf(evs[:2], errors.New("down")))
	l.Write("elasticsearch", "b1", failedOf(evs[2:], errors.New("down")))
	pg := &memSink{name: "postgres", stored: map[string]int{}}
	r := &Replayer{Sinks: map[string]sinks.Sink{"postgres": pg}, Only: "postgres", Retry: sinks.DefaultRetry}
	files, _ := Files([]string{dir})
	kept := 0
	for _, f := range files {
		res, err := r.ReplayFile(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		kept += res.Kept
	}
	if len(pg.stored) != 2 || kept != 2 {
		t.Fatalf("stored %d kept %d, want 2 and 2", len(pg.stored), kept)
	}
	left, _ := Files([]string{dir})
	if len(left) != 1 {
		t.Fatalf("want the elasticsearch records kept in one file, got %v", left)
	}
	f, _ := os.Open(left[0])
	recs, _, _ := Read(f)
	f.Close()
	if len(recs) != 2 || recs[0].Sink != "elasticsearch" {
		t.Fatalf("kept records = %+v", recs)
	}
}

func TestDryRunSendsAndMovesNothing(t *testing.T) {
	dir := t.TempDir()
	l, _ := Open(dir)
	l.Write("postgres", "b1", failedOf(testEvents(3), errors.New("down")))
	pg := &memSink{name: "postgres", stored: map[string]int{}}
	var seen []string
	r := &Replayer{Sinks: map[string]sinks.Sink{"postgres": pg}, DryRun: true,
		OnDryRun: func(_ string, rec Record) { seen = append(seen, rec.Event.ID) }}
	files, _ := Files([]string{dir})
	if _, err := r.ReplayFile(context.Background(), files[0]); err != nil {
		t.Fatal(err)
	}
	if len(pg.stored) != 0 || len(seen) != 3 {
		t.Fatalf("dry run stored %d and reported %v", len(pg.stored), seen)
	}
	if again, _ := Files([]string{dir}); len(again) != 1 {
		t.Fatalf("dry run moved the file")
	}
}

// Two replays of one folder at once would send its files twice: the second
// is refused, and says who holds the folder.
func TestSecondReplayOfAFolderIsRefused(t *testing.T) {
	dir := t.TempDir()
	files := []string{filepath.Join(dir, "a.ndjson"), filepath.Join(dir, "b.ndjson")}
	unlock, err := LockDirs(files)
	if err != nil {
		t.Fatal(err)
	}
	_, err = LockDirs(files[1:])
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), fmt.Sprint(os.Getpid())) {
		t.Fatalf("second lock: %v, want ErrLocked naming %s and the holder's pid", err, dir)
	}
	unlock()
	unlock2, err := LockDirs(files)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock2()
	// The lock file is not taken for a fallback file.
	got, err := Files([]string{dir})
	if err != nil || len(got) != 0 {
		t.Fatalf("Files lists %v (%v), want nothing", got, err)
	}
}

// Fallback files hold event data: only the engine's user reads them.
func TestFilesArePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fallback")
	l, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	name, err := l.Write("postgres", "b", failedOf(testEvents(1), errors.New("x")))
	if err != nil {
		t.Fatal(err)
	}
	checkMode(t, dir, 0o700)
	checkMode(t, filepath.Join(dir, name), 0o600)
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != want {
		t.Errorf("%s has mode %v, want %v", path, got, want)
	}
}

// normalize makes times and data (which the encoder compacts) comparable
// with reflect.DeepEqual.
func normalize(r Record) Record {
	r.FailedAt = r.FailedAt.UTC()
	if r.Event.Data != nil {
		var b bytes.Buffer
		json.Compact(&b, r.Event.Data)
		r.Event.Data = b.Bytes()
	}
	r.Event.Time, r.Event.ReceivedAt = r.Event.Time.UTC(), r.Event.ReceivedAt.UTC()
	return r
}

// The envelope decoder reads the records' events: one the API would refuse
// is a bad line, not replayed.
func TestReadRefusesWhatTheAPIRefuses(t *testing.T) {
	rec := func(data string) string {
		return `{"sink":"postgres","error":"e","batch":"b","failed_at":"2026-05-01T10:00:00Z","event":{"id":"a","type":"t","source":"s","time":"2026-05-01T10:00:00Z","received_at":"2026-05-01T10:00:01Z","data":` + data + `}}`
	}
	in := rec(`{"x":1}`) + "\n" + rec(`{"x":1,"x":2}`) + "\n" + rec(`"a\u0000"`) + "\n" + rec(`[1e309]`) + "\n" +
		`{"sink":"postgres","event":{"type":"t"}}` + "\n"
	recs, bad, err := Read(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || string(recs[0].Event.Data) != `{"x":1}` || !recs[0].Event.ReceivedAt.Equal(time.Date(2026, 5, 1, 10, 0, 1, 0, time.UTC)) {
		t.Fatalf("records %+v", recs)
	}
	want := []string{`"x" twice`, `\u0000`, "float64", `"id" is required`}
	if len(bad) != len(want) {
		t.Fatalf("bad lines %+v", bad)
	}
	for i, w := range want {
		if !strings.Contains(bad[i].Err.Error(), w) {
			t.Errorf("line %d: %v, want it to name %s", bad[i].Line, bad[i].Err, w)
		}
	}
}
