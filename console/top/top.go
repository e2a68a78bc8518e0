// Package top is `eventlistener top`: the console's live numbers in a
// terminal, read from the same stats stream (GET /v1/stats/stream).
package top

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/lipgloss/table"
	"github.com/dustin/go-humanize"
	sse "github.com/tmaxmax/go-sse"

	"eventlistener/console"
)

// Messages the model takes, from the stream.
type (
	// HistoryMsg is the stream's first message: what the engine kept.
	HistoryMsg console.StatsBody
	// SampleMsg is each second after it.
	SampleMsg console.SampleBody
	// ErrMsg says the stream broke; it is opened again.
	ErrMsg struct{ Err error }
)

// sparkLen is how many seconds the events/s line shows.
const sparkLen = 60

// Model is the screen's state.
type Model struct {
	URL    string
	state  *console.State
	last   console.Sample
	spark  []float64
	err    error
	at     time.Time // the last message
	width  int
	height int
}

// New is the model of a screen reading url.
func New(url string) Model { return Model{URL: url, width: 100} }

// Init starts nothing: the stream is fed in by Stream.
func (m Model) Init() tea.Cmd { return nil }

// Update applies one message.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		switch msg.String() {
		case "q", "ctrl+c", "esc":
			return m, tea.Quit
		}
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case HistoryMsg:
		st := msg.State
		m.state, m.err, m.spark = &st, nil, nil
		for _, s := range msg.History {
			m.push(s)
		}
		if n := len(msg.History); n > 0 {
			m.last = msg.History[n-1]
		}
	case SampleMsg:
		st := msg.State
		m.state, m.err, m.last = &st, nil, msg.Sample
		m.push(msg.Sample)
	case ErrMsg:
		m.err = msg.Err
	}
	return m, nil
}

func (m *Model) push(s console.Sample) {
	m.spark = append(m.spark, s.Events)
	if len(m.spark) > sparkLen {
		m.spark = m.spark[len(m.spark)-sparkLen:]
	}
}

var (
	bold  = lipgloss.NewStyle().Bold(true)
	dim   = lipgloss.NewStyle().Faint(true)
	good  = lipgloss.NewStyle().Foreground(lipgloss.Color("2"))
	warn  = lipgloss.NewStyle().Foreground(lipgloss.Color("3"))
	bad   = lipgloss.NewStyle().Foreground(lipgloss.Color("1"))
	label = lipgloss.NewStyle().Bold(true).Width(9)
)

// View renders the screen.
func (m Model) View() string {
	var b strings.Builder
	title := bold.Render("eventlistener top") + " " + dim.Render(m.URL)
	if m.state == nil {
		b.WriteString(title + "\n\n")
		if m.err != nil {
			b.WriteString(bad.Render("cannot read the stats stream: "+m.err.Error()) + "\n")
		} else {
			b.WriteString("connecting…\n")
		}
		b.WriteString(dim.Render("\nq quit") + "\n")
		return b.String()
	}
	st, s := m.state, m.last
	master := "not master"
	if st.Node.Master.Master {
		master = "master"
	}
	conn := good.Render("live")
	if m.err != nil {
		conn = bad.Render("reconnecting: " + m.err.Error())
	}
	fmt.Fprintf(&b, "%s  %s · %s · up %s · %s  %s\n\n", title, st.Hostname, st.Version, dur(st.Uptime), master, conn)

	lat := func(v *float64) string {
		if v == nil {
			return "–"
		}
		return fmt.Sprintf("%.2fms", *v)
	}
	fmt.Fprintf(&b, "%s events/s %s  requests/s %s  2xx %s  4xx %s  503 %s  ack p50 %s  p99 %s\n",
		label.Render("INGEST"), num(s.Events), num(s.Requests), num(st.Totals.Accepted), num(st.Totals.Refused),
		num(st.Totals.Unavailable), lat(s.P50), lat(s.P99))
	fmt.Fprintf(&b, "%s pending %s  WAL %s of %s  queued %s\n", label.Render(""), num(float64(s.Pending)),
		humanize.IBytes(uint64(max(0, st.Node.WAL.Bytes))), humanize.IBytes(uint64(max(0, st.Node.WAL.MaxBytes))), humanize.IBytes(uint64(max(0, s.QueueBytes))))
	fmt.Fprintf(&b, "%s %s %s\n", label.Render(""), spark(m.spark), dim.Render("events/s, last minute"))

	var flushes []string
	for _, r := range sortedKeys(st.Buffer.Flushes) {
		flushes = append(flushes, fmt.Sprintf("%s %s", r, num(st.Buffer.Flushes[r])))
	}
	fmt.Fprintf(&b, "%s %s, %s events  flushes: %s\n\n", label.Render("BUFFER"), st.Buffer.State, num(float64(st.Buffer.Events)), strings.Join(flushes, " "))

	sinks := grid().Headers("SINK", "BREAKER", "STORED/S", "STORED", "FALLBACK", "LAG", "OLDEST", "BACKLOG", "LAST ERROR")
	for _, k := range st.Sinks {
		ks := s.Sinks[k.Name]
		lastErr := "none"
		if k.LastError != "" {
			lastErr = k.LastError
		}
		sinks.Row(k.Name, breaker(k.Breaker), num(ks.Stored), num(k.Stored), num(k.Fallback), num(float64(k.LagEvents)),
			dur(k.OldestPendingSeconds), fmt.Sprintf("%s ev, %d files", num(float64(k.Backlog.Events)), k.Backlog.Files), cut(lastErr, 60))
	}
	b.WriteString(sinks.Render() + "\n")

	if r := st.Redis; r != nil {
		sub := bad.Render("not subscribed")
		if r.Subscribed {
			sub = good.Render("subscribed")
		}
		here := "here"
		if !r.Running {
			here = "elsewhere (not master)"
		}
		fmt.Fprintf(&b, "%s %s %s, %s %s since %s  channels %s  patterns %s  msgs/s %s  bad %s\n",
			label.Render("REDIS"), r.Mode, r.Master, here, sub, clock(r.Since),
			list(r.Channels), list(r.Patterns), num(s.Redis), num(float64(r.Bad)))
	}
	if g := st.Streams; g != nil {
		streams := grid().Headers("STREAM", "READING", "PENDING", "LAG", "STORED", "DEAD", "CLAIMED", "LAST ERROR")
		for _, v := range g.Streams {
			reading, lag := good.Render("yes"), "unknown"
			if !v.Reading {
				reading = bad.Render("no")
			}
			if v.Lag >= 0 {
				lag = num(float64(v.Lag))
			}
			streams.Row(v.Key, reading, num(float64(v.Pending)), lag, num(float64(v.Stored)), num(float64(v.Dead)),
				num(float64(v.Claimed)), cut(v.LastError, 60))
		}
		fmt.Fprintf(&b, "%s group %s, consumer %s\n%s\n", label.Render("STREAMS"), g.Group, g.Consumer, streams.Render())
	}
	if p := st.Proxy; p != nil {
		servers := grid().Headers("BACKEND", "SERVER", "STATUS", "CHECK", "WEIGHT", "LAST CHANGE")
		for _, v := range p.Servers {
			servers.Row(v.Backend, v.Server, status(v.Status, v.StatusRaw), v.CheckStatus, fmt.Sprint(v.Weight), dur(float64(v.LastChangeSeconds))+" ago")
		}
		state := "polled " + clock(p.PolledAt)
		if !p.Reachable {
			state = bad.Render("unreachable: " + p.Error)
		}
		fmt.Fprintf(&b, "%s %s\n%s\n", label.Render("HAPROXY"), state, servers.Render())
	}
	if st.Hidden != "" {
		b.WriteString(dim.Render(st.Hidden+" (--admin-token or EVENTLISTENER_ADMIN_TOKEN)") + "\n")
	}
	b.WriteString(dim.Render("q quit") + "\n")
	return b.String()
}

// grid is a table with no lines: columns only.
func grid() *table.Table {
	return table.New().Border(lipgloss.HiddenBorder()).BorderTop(false).BorderBottom(false).BorderHeader(false)
}

func clock(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return t.Local().Format(time.TimeOnly)
}

func breaker(s string) string {
	switch s {
	case "closed":
		return good.Render(s)
	case "open":
		return bad.Render(s)
	}
	return warn.Render(s)
}

func status(s, raw string) string {
	if raw == "" {
		raw = s
	}
	switch s {
	case "UP":
		return good.Render(raw)
	case "DOWN":
		return bad.Render(raw)
	}
	return warn.Render(raw)
}

func list(s []string) string {
	if len(s) == 0 {
		return "–"
	}
	return strings.Join(s, ",")
}

func cut(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func num(v float64) string {
	switch a := max(v, -v); {
	case a >= 1e9:
		return fmt.Sprintf("%.1fG", v/1e9)
	case a >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case a >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	case v == float64(int64(v)):
		return fmt.Sprint(int64(v))
	}
	return fmt.Sprintf("%.1f", v)
}

func dur(s float64) string {
	return (time.Duration(s) * time.Second).String()
}

var bars = []rune("▁▂▃▄▅▆▇█")

// spark draws values as a line of bars, scaled to the largest.
func spark(v []float64) string {
	top := 0.0
	for _, x := range v {
		top = max(top, x)
	}
	var b strings.Builder
	for _, x := range v {
		i := 0
		if top > 0 {
			i = int(x / top * float64(len(bars)-1))
		}
		b.WriteRune(bars[i])
	}
	return b.String()
}

// Stream reads the stats stream at url (the admin listener's base URL)
// and sends what it reads to send, opening it again with a growing delay
// when it breaks, until ctx ends.
func Stream(ctx context.Context, client *http.Client, url, token string, send func(tea.Msg)) {
	policy := backoff.NewExponentialBackOff()
	policy.InitialInterval, policy.MaxInterval = 500*time.Millisecond, 10*time.Second
	for ctx.Err() == nil {
		read := 0
		err := streamOnce(ctx, client, url, token, func(m tea.Msg) { read++; send(m) })
		if ctx.Err() != nil {
			return
		}
		send(ErrMsg{Err: err})
		if read > 0 {
			policy.Reset()
		}
		select {
		case <-ctx.Done():
		case <-time.After(policy.NextBackOff()):
		}
	}
}

// staleAfter is how long a stream may send nothing (it sends every
// second) before it is taken as hung and opened again.
const staleAfter = 10 * time.Second

// streamOnce reads the stream until it breaks, or sends nothing for
// staleAfter.
func streamOnce(ctx context.Context, client *http.Client, url, token string, send func(tea.Msg)) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stale := fmt.Errorf("nothing came for %s", staleAfter)
	watchdog := time.AfterFunc(staleAfter, func() { cancel(stale) })
	defer watchdog.Stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(url, "/")+fmt.Sprintf("/v1/stats/stream?history=%d", sparkLen), nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := client.Do(req)
	if err != nil {
		if context.Cause(ctx) == stale {
			return stale
		}
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		var e struct{ Error string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s: %s", res.Status, e.Error)
		}
		return errors.New(res.Status)
	}
	err = Decode(res.Body, func(m tea.Msg) { watchdog.Reset(staleAfter); send(m) })
	if context.Cause(ctx) == stale {
		return stale
	}
	return err
}

// Decode turns a stats stream into messages, until it ends.
func Decode(r io.Reader, send func(tea.Msg)) error {
	for ev, err := range sse.Read(r, &sse.ReadConfig{MaxEventSize: 16 << 20}) {
		if err != nil {
			return err
		}
		switch ev.Type {
		case "history":
			var h console.StatsBody
			if err := json.Unmarshal([]byte(ev.Data), &h); err != nil {
				return fmt.Errorf("a history message that is not JSON: %w", err)
			}
			send(HistoryMsg(h))
		case "sample":
			var s console.SampleBody
			if err := json.Unmarshal([]byte(ev.Data), &s); err != nil {
				return fmt.Errorf("a sample message that is not JSON: %w", err)
			}
			send(SampleMsg(s))
		}
	}
	return errors.New("the stream ended")
}
