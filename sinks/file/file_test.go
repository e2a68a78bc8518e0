package file

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"eventlistener/event"
)

func TestWriteAppendsHourlyFiles(t *testing.T) {
	dir := t.TempDir()
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Date(2026, 5, 1, 10, 59, 0, 0, time.UTC)
	s.now = func() time.Time { return clock }
	ev := func(id string) event.Event {
		return event.Event{ID: id, Type: "t", Source: "s", Time: clock, ReceivedAt: clock, Data: json.RawMessage(`{"a":1}`)}
	}
	ctx := context.Background()
	if err := s.Write(ctx, []event.Event{ev("a"), ev("b")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, []event.Event{ev("c")}); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(2 * time.Minute) // the next hour
	if err := s.Write(ctx, []event.Event{ev("d")}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	first, _ := os.ReadFile(filepath.Join(dir, "events-2026-05-01T10.ndjson"))
	second, _ := os.ReadFile(filepath.Join(dir, "events-2026-05-01T11.ndjson"))
	if strings.Count(string(first), "\n") != 3 || strings.Count(string(second), "\n") != 1 {
		t.Fatalf("files:\n%s\n--\n%s", first, second)
	}
	var e event.Event
	if err := json.Unmarshal([]byte(strings.SplitN(string(first), "\n", 2)[0]), &e); err != nil || e.ID != "a" || string(e.Data) != `{"a":1}` {
		t.Fatalf("first line does not read back as the event: %v %+v", err, e)
	}
}

// Event files hold event data: only the engine's user reads them.
func TestFilesArePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "events")
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := s.Write(context.Background(), []event.Event{{ID: "a", Type: "t", Time: now, ReceivedAt: now}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	files, _ := filepath.Glob(filepath.Join(dir, "*.ndjson"))
	if len(files) != 1 {
		t.Fatalf("files %v", files)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, files[0]: 0o600} {
		if info, err := os.Stat(path); err != nil || info.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %v", path, info.Mode().Perm(), err, want)
		}
	}
}
