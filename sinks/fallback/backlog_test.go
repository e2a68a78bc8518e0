package fallback

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"eventlistener/sinks"
)

func TestBacklogCountsWhatAReplayWouldSend(t *testing.T) {
	dir := t.TempDir()
	b := &Backlog{Dir: filepath.Join(dir, "fallback")}
	if got, err := b.Count(); err != nil || len(got) != 0 {
		t.Fatalf("a folder not made yet: %v, %v; want nothing", got, err)
	}
	l, err := Open(b.Dir)
	if err != nil {
		t.Fatal(err)
	}
	evs := testEvents(10)
	if _, err := l.Write("postgres", "b1", failedOf(evs[:6], errors.New("down"))); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Write("postgres", "b2", failedOf(evs[6:7], errors.New("down"))); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Write("elasticsearch", "b1", failedOf(evs[4:], errors.New("429"))); err != nil {
		t.Fatal(err)
	}
	// A last line cut short, and a line that is not a record, are not
	// counted; nor is a file being written.
	files, _ := Files([]string{b.Dir})
	f, _ := os.OpenFile(files[0], os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("not a record\n" + `{"sink":"postgres","error":"cut`)
	f.Close()
	os.WriteFile(filepath.Join(b.Dir, ".writing.tmp"), []byte(`{"sink":"postgres"}`+"\n"), 0o600)

	got, err := b.Count()
	if err != nil {
		t.Fatal(err)
	}
	if pg := got["postgres"]; pg.Files != 2 || pg.Events != 7 || pg.Bytes <= 0 {
		t.Fatalf("postgres backlog %+v, want 2 files and 7 events", pg)
	}
	if es := got["elasticsearch"]; es.Files != 1 || es.Events != 6 {
		t.Fatalf("elasticsearch backlog %+v, want 1 file and 6 events", es)
	}

	// Replaying elasticsearch's records moves its file aside; postgres's
	// stay, and a remainder file is counted as it holds.
	es := &memSink{name: "elasticsearch", stored: map[string]int{}, refuse: map[string]bool{"ev-9": true}}
	r := &Replayer{Sinks: map[string]sinks.Sink{"elasticsearch": es}, Only: "elasticsearch",
		Retry: sinks.Retry{Initial: time.Millisecond, Max: time.Millisecond, MaxElapsed: 10 * time.Millisecond}}
	files, _ = Files([]string{b.Dir})
	for _, f := range files {
		if strings.Contains(f, "elasticsearch") {
			if _, err := r.ReplayFile(context.Background(), f); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err = b.Count()
	if err != nil {
		t.Fatal(err)
	}
	if es := got["elasticsearch"]; es.Files != 1 || es.Events != 1 {
		t.Fatalf("after the replay elasticsearch's backlog is %+v, want the one refused event", es)
	}
	if pg := got["postgres"]; pg.Events != 7 {
		t.Fatalf("after elasticsearch's replay postgres's backlog is %+v, want 7 events still", pg)
	}
}

func TestSinkOf(t *testing.T) {
	for _, c := range []struct {
		line  string
		whole bool
		want  string
		ok    bool
	}{
		{`{"sink":"postgres","error":"x"}` + "\n", true, "postgres", true},
		{`{"sink":"postgres","err`, false, "postgres", true},
		{`{"error":"x","sink":"elasticsearch"}` + "\n", true, "elasticsearch", true},
		{`{"error":"x","sink":"elasticsearch"`, false, "", false},
		{`{"sink":"a\"b"}` + "\n", true, `a"b`, true},
		{`{"sink":""}` + "\n", true, "", false},
		{"[]\n", true, "", false},
	} {
		got, ok := sinkOf([]byte(c.line), c.whole)
		if got != c.want || ok != c.ok {
			t.Errorf("sinkOf(%q) = %q, %v; want %q, %v", c.line, got, ok, c.want, c.ok)
		}
	}
}
