package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	goredis "github.com/redis/go-redis/v9"

	"eventlistener/internal/testenv"
)

// page drives the console in a browser tab.
type page struct {
	t *testing.T
	b *testenv.Browser
}

// js evaluates a JavaScript expression in the page.
func js[T any](p *page, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.b.Ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// until waits for a JavaScript condition, saying what it waits for.
func (p *page) until(what, expr string) {
	p.t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for !js[bool](p, "!!("+expr+")") {
		if time.Now().After(deadline) {
			p.t.Fatalf("the console never showed %s (%s); the page says:\n%s", what, expr, js[string](p, "document.body.innerText"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// click clicks the element sel finds, as a user would.
func (p *page) click(sel string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.b.Ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		p.t.Fatalf("clicking %s: %v", sel, err)
	}
}

// confirm clicks a button that asks to be confirmed, then confirms.
func (p *page) confirm(sel string) {
	p.t.Helper()
	p.click(sel)
	p.until("the confirmation dialog", `document.getElementById("confirm-dialog").open`)
	p.click("#confirm-ok")
}

func (p *page) enterToken(token string) {
	p.t.Helper()
	p.click("#token-button")
	p.until("the token dialog", `document.getElementById("token-dialog").open`)
	js[bool](p, `(document.getElementById("token-input").value = "") === ""`)
	if err := chromedp.Do(p.b.Ctx, chromedp.SendKeys(chromedp.CSS("#token-input"), token)); err != nil {
		p.t.Fatal(err)
	}
	p.click("#token-ok")
}

// screenshot saves the whole page at a width and theme, for people.
func (p *page) screenshot(name string, width, height int64, theme string) {
	p.t.Helper()
	err := chromedp.Do(p.b.Ctx, chromedp.EmulateViewport(width, height))
	if err == nil {
		_, err = chromedp.Call(p.b.Ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: theme}}})
	}
	if err != nil {
		p.t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // a sample or two, and the charts resized
	if w := js[int](p, "document.documentElement.scrollWidth"); w > int(width) {
		p.t.Errorf("at %dpx (%s) the page is %dpx wide: it scrolls sideways", width, theme, w)
	}
	png, err := chromedp.Run(p.b.Ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatal(err)
	}
	path := filepath.Join(testenv.ScreenshotDir(p.t), fmt.Sprintf("console-%s-%d-%s.png", name, width, theme))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot: %s", path)
}

// The console, against a real engine with PostgreSQL, Redis and HAProxy:
// it shows what happens and its actions do what they say.
func TestConsoleInABrowser(t *testing.T) {
	b := testenv.Chromium(t)
	r := testenv.RedisServer(t)
	env := startProxyEnv(t, "--redis-url", "redis://"+r.Addr, "--redis-channels", "app.events, jobs.*", "--batch-idle", "20ms")
	pg := env.pg
	waitQuery(t, pg, `SELECT to_regclass('events') IS NOT NULL`, "t")
	// PostgreSQL refuses events marked "refuse", so they go to the
	// fallback log (an outage does not: they wait in the WAL).
	pg.Psql(t, `ALTER TABLE events ADD CONSTRAINT console_refuse CHECK (data->>'refuse' IS NULL)`)

	p := &page{t: t, b: b}
	if err := chromedp.Do(b.Ctx, chromedp.EmulateViewport(1280, 800), chromedp.Navigate(env.p.admin+"/")); err != nil {
		t.Fatal(err)
	}
	p.until("the stream live", `document.getElementById("conn").textContent === "live"`)
	p.until("read-only mode", `document.getElementById("mode").textContent.includes("Read-only")`)

	sent := 0
	post := func(n int, typ, data string) {
		t.Helper()
		var body strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&body, `{"id":"c-%d","type":%q,"source":"shop","data":%s}`+"\n", sent, typ, data)
			sent++
		}
		if res := env.p.post(t, []byte(body.String()), "Content-Type: application/x-ndjson"); res.Status != 202 {
			t.Fatalf("post: %d %s", res.Status, res.Error)
		}
	}

	// Events make the ingest chart and the stored counts move.
	for range 10 {
		post(20, "order.created", `{"n":1}`)
	}
	p.until("events/s in the ingest chart", `charts.ingest.data[1].some((v) => v > 0)`)
	p.until("the 2xx count", `Number(document.getElementById("t-accepted").textContent) >= 10`)
	p.until("stored/s in the sinks chart", `charts.sinks.data[1].some((v) => v > 0)`)
	p.until("200 stored in postgres", `document.querySelector("#sink-postgres").innerText.includes("stored\n200")`)

	// Redis: the subscription, its channels and patterns, its messages.
	rc := goredis.NewClient(&goredis.Options{Addr: r.Addr})
	defer rc.Close()
	p.until("the Redis subscription", `state.redis && state.redis.subscribed`)
	if err := rc.Publish(context.Background(), "app.events", `{"type":"redis.order","source":"shop","data":{}}`).Err(); err != nil {
		t.Fatal(err)
	}
	sent++
	p.until("the Redis message", `document.getElementById("redis").innerText.includes("messages\n1")`)
	if txt := js[string](p, `document.getElementById("redis").innerText`); !strings.Contains(txt, "app.events") || !strings.Contains(txt, "jobs.*") {
		t.Fatalf("the Redis block does not show the channel and the pattern:\n%s", txt)
	}

	// The cluster: this node, registered in Redis.
	p.until("this node in the cluster", `document.querySelector("#cluster-rows tr")?.textContent.includes("(this one)")`)

	// HAProxy's servers; without the token the buttons are refused.
	p.until("HAProxy's web/s1 up", `document.querySelector('tr[data-server="web/s1"] [data-field=status]')?.textContent.startsWith("UP")`)
	p.screenshot("readonly", 1280, 800, "light")
	p.confirm(`button[aria-label="Disable web/s1"]`)
	p.until("the token dialog", `document.getElementById("token-dialog").open`)
	p.click("#token-cancel")
	p.until("the refusal", `document.getElementById("message").textContent.includes("needs the admin token")`)
	p.enterToken("not-the-admin-token-at-all")
	p.confirm(`button[aria-label="Disable web/s1"]`)
	p.until("the server's refusal", `document.getElementById("message").textContent.includes("refused (401)")`)
	if st := env.adminState(t, "web", "s1"); st.AdminState.Maintenance() {
		t.Fatalf("a refused click changed the server: %v", st.AdminState)
	}

	// With the token: disable puts the server in maintenance, enable
	// brings it back.
	p.enterToken(adminToken)
	p.until("admin mode", `state.admin.authorized && document.getElementById("mode").textContent.startsWith("Admin")`)
	p.confirm(`button[aria-label="Disable web/s1"]`)
	waitFor(t, "web/s1 in maintenance in show servers state", func() bool { return env.adminState(t, "web", "s1").AdminState.Maintenance() })
	p.until("web/s1 in MAINT", `document.querySelector('tr[data-server="web/s1"] [data-field=status]').textContent.startsWith("MAINT")`)
	p.confirm(`button[aria-label="Enable web/s1"]`)
	waitFor(t, "web/s1 out of maintenance", func() bool { return !env.adminState(t, "web", "s1").AdminState.Maintenance() })
	p.until("web/s1 UP again", `document.querySelector('tr[data-server="web/s1"] [data-field=status]').textContent.startsWith("UP")`)

	// The live tail, filtered by type and source.
	if err := chromedp.Do(b.Ctx, chromedp.SendKeys(chromedp.CSS("#tail-type"), "order.*"), chromedp.SendKeys(chromedp.CSS("#tail-source"), "shop")); err != nil {
		t.Fatal(err)
	}
	p.click(`#tail-form button[type=submit]`)
	time.Sleep(300 * time.Millisecond)
	post(3, "user.created", `{"who":"u"}`)
	post(3, "order.paid", `{"total":12}`)
	post(1, `order.<img src=x onerror="window.__xss=1">`, `{"html":"<script>window.__xss=2</script>"}`)
	p.until("order.paid in the tail", `document.querySelector('#tail-list li[data-type="order.paid"]')`)
	p.until("the event with markup in the tail", `[...document.querySelectorAll("#tail-list li")].some((li) => li.dataset.type.includes("<img"))`)
	if js[bool](p, `!!(document.querySelector("#tail-list img, #tail-list script") || window.__xss)`) {
		t.Fatal("an event's type or data became markup in the page")
	}
	if n := js[int](p, `document.querySelectorAll('#tail-list li[data-type="user.created"]').length`); n != 0 {
		t.Fatalf("the tail filtered on order.* shows %d user.created events", n)
	}

	// Refused rows become postgres's fallback backlog.
	refused := 20
	post(refused, "order.created", `{"refuse":true}`)
	p.until("postgres's backlog", fmt.Sprintf(`document.getElementById("sink-postgres").dataset.backlogEvents === "%d"`, refused))

	// PostgreSQL stopped: the breaker opens; restarted: it closes.
	pg.Stop()
	post(50, "order.created", `{"n":2}`)
	p.until("postgres's breaker open", `document.getElementById("sink-postgres").dataset.breaker === "open"`)
	p.screenshot("outage", 1280, 800, "light")
	pg.Start()
	p.until("postgres's breaker closed", `document.getElementById("sink-postgres").dataset.breaker === "closed"`)
	shop := `SELECT count(*) FROM events WHERE source = 'shop'`
	waitQuery(t, pg, shop, fmt.Sprint(sent-refused))

	// Replay: the rows reach the full count and the backlog zero.
	pg.Psql(t, `ALTER TABLE events DROP CONSTRAINT console_refuse`)
	p.confirm("#replay-postgres")
	p.until("the replay's result", `document.querySelector("#sink-postgres .replay-result")?.textContent.startsWith("replay done")`)
	p.until("an empty backlog", `document.getElementById("sink-postgres").dataset.backlogEvents === "0"`)
	waitQuery(t, pg, shop, fmt.Sprint(sent))
	waitQuery(t, pg, `SELECT string_agg((data->>'result') || ' ' || (data->>'sent'), ',' ORDER BY time) FROM events WHERE type = 'eventlistener.replay'`, "running 0,done 20")

	// Every button has a name a screen reader can say.
	if unnamed := js[int](p, `[...document.querySelectorAll("button")].filter((b) => !(b.getAttribute("aria-label") || b.textContent).trim()).length`); unnamed != 0 {
		t.Errorf("%d buttons have no accessible name", unnamed)
	}
	p.screenshot("admin", 1280, 800, "dark")
	p.screenshot("admin", 390, 844, "light")
	p.screenshot("admin", 390, 844, "dark")

	// No errors in the console, but the 401 this test asked for.
	for _, e := range b.Errors() {
		if strings.Contains(e, "401") && strings.Contains(e, "/v1/proxy/servers/web/s1/disable") {
			continue
		}
		t.Errorf("the browser reported: %s", e)
	}
	env.p.stop(t)
}

// waitFor polls cond for up to 15 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
