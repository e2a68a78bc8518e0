package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Browser is a headless Chromium tab driven over the DevTools protocol,
// which records what the page reports as errors: uncaught exceptions,
// console.error calls and the browser's own error log (failed loads).
type Browser struct {
	// Ctx runs chromedp actions in the tab.
	Ctx context.Context

	mu     sync.Mutex
	errors []string
}

// Chromium starts Debian's chromium, headless, with a profile in a
// temporary folder and no network of its own beyond what the page asks
// for; it is stopped when the test ends. Without chromium installed, the
// test is skipped, or fails in CI (see Missing).
func Chromium(t testing.TB) *Browser {
	t.Helper()
	bin := RequireBinary(t, "chromium", "chromium")
	profile, err := os.MkdirTemp("", "testenv-chromium-")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.UserDataDir(profile), chromedp.DisableGPU,
		// As root (CI) Chromium's sandbox cannot start.
		chromedp.NoSandbox,
		// The machine has no network: no update or sync checks, no QUIC.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(1280, 800),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		os.RemoveAll(profile)
	})
	b := &Browser{Ctx: ctx}
	// Subscribe before the browser starts, so nothing is missed.
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	console := chromedp.Events(ctx, runtime.ConsoleAPICalled)
	logged := chromedp.Events(ctx, cdplog.EntryAdded)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("testenv: cannot start %s: %v", bin, err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				msg += " " + d.Exception.Description
			}
			b.add(fmt.Sprintf("uncaught exception at %s:%d: %s", d.URL, d.LineNumber+1, msg))
		}
	}()
	go func() {
		for ev, err := range console {
			if err != nil {
				return
			}
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				b.add("console." + string(ev.Type) + ": " + strings.Join(parts, " "))
			}
		}
	}()
	go func() {
		for ev, err := range logged {
			if err != nil {
				return
			}
			if e := ev.Entry; e.Level == cdplog.EntryLevelError {
				b.add(fmt.Sprintf("%s error: %s %s", e.Source, e.Text, e.URL))
			}
		}
	}()
	return b
}

func (b *Browser) add(msg string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errors = append(b.errors, msg)
}

// Errors returns what the page reported as errors so far.
func (b *Browser) Errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errors...)
}

// ScreenshotDir is where tests save screenshots for people to look at:
// $TEST_SCREENSHOT_DIR, or eventlistener-screenshots in the temporary
// folder. It outlives the test run on purpose.
func ScreenshotDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("TEST_SCREENSHOT_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "eventlistener-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return dir
}
