package top

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"eventlistener/actors"
	"eventlistener/console"
	"eventlistener/sources"
)

// fakeStream is a stats stream as the engine sends it.
func fakeStream(t *testing.T) string {
	t.Helper()
	p50, p99 := 1.25, 7.5
	st := console.State{Hostname: "node-a", Version: "v9.9.9", Uptime: 3725,
		Totals: console.Totals{Accepted: 1200, Refused: 3, Unavailable: 2},
		Buffer: console.Buffer{State: "filling", Events: 40, Flushes: map[string]float64{"idle": 7, "max_events": 2}},
		Node:   actors.NodeStatus{Master: actors.MasterStatus{Master: true}, WAL: actors.WALStatus{Bytes: 64 << 20, MaxBytes: 4 << 30}},
		Sinks: []console.SinkView{{SinkStatus: actors.SinkStatus{Name: "postgres", Breaker: "open", LagEvents: 512, OldestPendingSeconds: 42,
			LastError: "dial tcp 127.0.0.1:5432: connect: connection refused"}, Stored: 9000, Fallback: 20},
			{SinkStatus: actors.SinkStatus{Name: "elasticsearch", Breaker: "closed"}, Stored: 9512}},
		Redis: &console.RedisView{Running: true, PubSubStatus: sources.PubSubStatus{Mode: "sentinel", Master: "10.0.0.5:6379", Subscribed: true,
			Channels: []string{"app.events"}, Bad: 4}, Patterns: []string{"jobs.*"}},
		Proxy: &sources.ProxySnapshot{Reachable: true, Servers: []sources.ProxyServer{
			{Backend: "web", Server: "s1", Status: "MAINT", StatusRaw: "MAINT", CheckStatus: "L4OK", Weight: 1, LastChangeSeconds: 5}}},
		Streams: &console.StreamsView{Running: true, StreamsStatus: sources.StreamsStatus{Group: "el", Consumer: "node-a",
			Streams: []sources.StreamStatus{{Key: "orders", Reading: true, Pending: 17, Lag: 230, Stored: 4100, Dead: 3}}}},
	}
	st.Sinks[0].Backlog.Events, st.Sinks[0].Backlog.Files = 20, 1
	var b strings.Builder
	msg := func(typ string, v any) {
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "event: %s\ndata: %s\n\n", typ, data)
	}
	var hist []console.Sample
	for i := range 30 {
		hist = append(hist, console.Sample{Time: int64(i) * 1000, Events: float64(i * 10)})
	}
	msg("history", console.StatsBody{History: hist, State: st})
	msg("sample", console.SampleBody{Sample: console.Sample{Events: 12345, Requests: 120, P50: &p50, P99: &p99, Pending: 512,
		Sinks: map[string]console.SinkSample{"postgres": {Stored: 0}, "elasticsearch": {Stored: 12345}}, Redis: 3}, State: st})
	return b.String()
}

func TestTheScreenShowsTheStream(t *testing.T) {
	lipgloss.SetColorProfile(termenv.Ascii)
	var m tea.Model = New("http://127.0.0.1:8081")
	if !strings.Contains(m.View(), "connecting") {
		t.Fatalf("before the first message:\n%s", m.View())
	}
	m, _ = m.Update(tea.WindowSizeMsg{Width: 140, Height: 40})
	var msgs []tea.Msg
	err := Decode(strings.NewReader(fakeStream(t)), func(msg tea.Msg) { msgs = append(msgs, msg) })
	if err == nil || len(msgs) != 2 {
		t.Fatalf("decoded %d messages, then %v; want 2 and the end of the stream", len(msgs), err)
	}
	for _, msg := range msgs {
		m, _ = m.Update(msg)
	}
	screen := m.View()
	for _, want := range []string{
		"node-a · v9.9.9 · up 1h2m5s · master", "live",
		"events/s 12.3k", "requests/s 120", "2xx 1200", "4xx 3", "503 2", "ack p50 1.25ms", "p99 7.50ms",
		"pending 512", "WAL 64 MiB of 4.0 GiB",
		"filling, 40 events", "idle 7", "max_events 2",
		"postgres", "open", "9000", "512", "42s", "20 ev, 1 files", "connection refused",
		"elasticsearch", "closed", "12.3k",
		"sentinel 10.0.0.5:6379", "subscribed", "app.events", "jobs.*", "bad 4",
		"web", "s1", "MAINT", "L4OK", "5s ago",
		"STREAMS", "group el, consumer node-a", "orders", "230", "4100",
	} {
		if !strings.Contains(screen, want) {
			t.Errorf("the screen lacks %q:\n%s", want, screen)
		}
	}
	// The last minute's events/s as bars, highest last.
	if !strings.Contains(screen, "▁▁") || !strings.Contains(screen, "█") {
		t.Errorf("no events/s bars:\n%s", screen)
	}

	m, _ = m.Update(ErrMsg{Err: errors.New("connection refused")})
	if !strings.Contains(m.View(), "reconnecting: connection refused") || !strings.Contains(m.View(), "postgres") {
		t.Errorf("a broken stream keeps the last numbers and says so:\n%s", m.View())
	}
	if _, cmd := m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")}); cmd == nil || cmd() != tea.Quit() {
		t.Error("q does not quit")
	}
}

func TestDecodeRefusesWhatIsNotAStatsStream(t *testing.T) {
	err := Decode(strings.NewReader("event: sample\ndata: {not json\n\n"), func(tea.Msg) {})
	if err == nil || !strings.Contains(err.Error(), "not JSON") {
		t.Fatalf("a broken message: %v", err)
	}
}
