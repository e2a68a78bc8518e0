package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"eventlistener/internal/testenv"
)

// eventlistener top in a real terminal (tmux), against a running engine:
// it shows what the engine took and stored, and q quits.
func TestTopInATerminal(t *testing.T) {
	tmux := testenv.RequireBinary(t, "tmux", "tmux")
	p := startServe(t, "--batch-idle", "10ms")
	// A tmux server of the test's own, on its own socket.
	sock := filepath.Join(t.TempDir(), "tmux.sock")
	run := func(args ...string) (string, error) {
		cmd := exec.Command(tmux, append([]string{"-S", sock}, args...)...)
		cmd.Env = append(cleanEnv(), "TERM=xterm-256color")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() { run("kill-server") })
	if out, err := run("new-session", "-d", "-s", "top", "-x", "160", "-y", "45",
		binary+" top --admin-url "+p.admin); err != nil {
		t.Fatalf("tmux new-session: %v %s", err, out)
	}
	screen := func() string {
		out, err := run("capture-pane", "-p", "-t", "top")
		if err != nil {
			t.Fatalf("tmux capture-pane: %v %s", err, out)
		}
		return out
	}
	waitScreen := func(what string, re *regexp.Regexp) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !re.MatchString(screen()) {
			if time.Now().After(deadline) {
				t.Fatalf("top never showed %s (%s); the screen:\n%s", what, re, screen())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitScreen("the engine", regexp.MustCompile(`eventlistener top .* · up .* · master +live`))

	for r := range 5 {
		var b strings.Builder
		for i := range 20 {
			fmt.Fprintf(&b, `{"id":"top-%d-%d","type":"t"}`+"\n", r, i)
		}
		if res := p.post(t, []byte(b.String()), "Content-Type: application/x-ndjson"); res.Status != 202 {
			t.Fatalf("post: %d %s", res.Status, res.Error)
		}
	}
	waitScreen("five 2xx", regexp.MustCompile(`INGEST +events/s \S+ +requests/s \S+ +2xx 5 +4xx 0 +503 0`))
	waitScreen("100 events stored in the file sink", regexp.MustCompile(`(?m)^ *file +closed +\S+ +100 +0 +0 `))

	if out, err := run("send-keys", "-t", "top", "q"); err != nil {
		t.Fatalf("tmux send-keys: %v %s", err, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := run("has-session", "-t", "top"); err != nil {
			break // top quit, and its session ended with it
		}
		if time.Now().After(deadline) {
			t.Fatalf("q did not quit top; the screen:\n%s", screen())
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.stop(t)
}
