package haproxy

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeRuntime is a runtime API that answers each command line with what
// reply returns: the chunks are written one after the other, a little
// apart; then the connection is closed, unless keepOpen.
type fakeRuntime struct {
	addr     string
	conns    atomic.Int64
	mu       sync.Mutex
	commands []string
}

func startFakeRuntime(t *testing.T, network string, keepOpen bool, reply func(cmd string) []string) *fakeRuntime {
	t.Helper()
	var l net.Listener
	var err error
	if network == "unix" {
		l, err = net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	} else {
		l, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeRuntime{addr: l.Addr().String()}
	var wg sync.WaitGroup
	done := make(chan struct{})
	t.Cleanup(func() {
		close(done)
		l.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			f.conns.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil {
					return
				}
				cmd := strings.TrimSuffix(line, "\n")
				f.mu.Lock()
				f.commands = append(f.commands, cmd)
				f.mu.Unlock()
				for i, chunk := range reply(cmd) {
					if i > 0 {
						time.Sleep(20 * time.Millisecond)
					}
					if _, err := c.Write([]byte(chunk)); err != nil {
						return
					}
				}
				if keepOpen {
					select {
					case <-done:
					case <-time.After(10 * time.Second):
					}
				}
			}()
		}
	}()
	return f
}

func (f *fakeRuntime) lastCommand() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.commands) == 0 {
		return ""
	}
	return f.commands[len(f.commands)-1]
}

func TestCommandReplyEnds(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		keepOpen bool
		chunks   []string
		want     string
	}{
		{"empty line, connection kept open", true, []string{"\n"}, "\n"},
		{"message then empty line, apart", true, []string{"No such server.\n", "\n"}, "No such server.\n\n"},
		{"long reply in pieces", true, []string{"# a,b,\n1,", "2,\n", "3,4,\n\n"}, "# a,b,\n1,2,\n3,4,\n\n"},
		{"closed without the empty line", false, []string{"partial\n"}, "partial\n"},
		{"closed at once", false, nil, ""},
	} {
		for _, network := range []string{"unix", "tcp"} {
			f := startFakeRuntime(t, network, tc.keepOpen, func(string) []string { return tc.chunks })
			c := &Client{RuntimeAddr: f.addr, Timeout: 5 * time.Second}
			start := time.Now()
			got, err := c.Command(ctx, "show info")
			if err != nil || got != tc.want {
				t.Errorf("%s over %s: %q, %v; want %q", tc.name, network, got, err, tc.want)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("%s over %s: took %v", tc.name, network, d)
			}
			if f.lastCommand() != "show info" {
				t.Errorf("%s over %s: server got %q", tc.name, network, f.lastCommand())
			}
		}
	}
}

func TestCommandTimeout(t *testing.T) {
	f := startFakeRuntime(t, "unix", true, func(string) []string { return []string{"no end in sight\n"} })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := (&Client{RuntimeAddr: f.addr}).Command(ctx, "show stat")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Errorf("Command: %v after %v, want a deadline error soon", err, time.Since(start))
	}
	// The Client's own Timeout bounds it too.
	start = time.Now()
	_, err = (&Client{RuntimeAddr: f.addr, Timeout: 200 * time.Millisecond}).Command(context.Background(), "show stat")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Errorf("Command with Timeout: %v after %v", err, time.Since(start))
	}
	// Cancelling stops it.
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, err := (&Client{RuntimeAddr: f.addr}).Command(ctx, "show stat"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Command: %v", err)
	}
}

func TestCommandLimits(t *testing.T) {
	f := startFakeRuntime(t, "unix", false, func(string) []string { return []string{strings.Repeat("x", 5000) + "\n\n"} })
	c := &Client{RuntimeAddr: f.addr, MaxReplyBytes: 1000}
	if _, err := c.Command(context.Background(), "show stat"); err == nil || !strings.Contains(err.Error(), "longer than 1000") {
		t.Errorf("long reply: %v", err)
	}
	if _, err := c.Command(context.Background(), "show stat\nshutdown"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("command with a line break: %v", err)
	}
	if _, err := (&Client{}).Command(context.Background(), "show info"); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("no RuntimeAddr: %v", err)
	}
	if _, err := (&Client{RuntimeAddr: filepath.Join(t.TempDir(), "none")}).Command(context.Background(), "show info"); err == nil {
		t.Errorf("socket that is not there: no error")
	}
}

func TestServerCommands(t *testing.T) {
	replies := map[string]string{
		"disable server be/s1":             "\n",
		"enable server be/s1":              "\n",
		"set server be/s1 state drain":     "\n",
		"set server be/s1 state ready":     "\n",
		"set server be/s1 state maint":     "\n",
		"disable server be/nope":           "No such server.\n\n",
		"enable server nope/s1":            "No such backend.\n\n",
		"set server be/locked state drain": "Permission denied\n\n",
		"disable server be/#3":             "\n",
		"disable server #4/s1":             "\n",
	}
	f := startFakeRuntime(t, "tcp", false, func(cmd string) []string {
		if r, ok := replies[cmd]; ok {
			return []string{r}
		}
		return []string{"Unknown command: " + cmd + "\n\n"}
	})
	c := &Client{RuntimeAddr: f.addr}
	ctx := context.Background()

	for _, tc := range []struct {
		run  func() error
		sent string
	}{
		{func() error { return c.DisableServer(ctx, "be", "s1") }, "disable server be/s1"},
		{func() error { return c.EnableServer(ctx, "be", "s1") }, "enable server be/s1"},
		{func() error { return c.SetServerState(ctx, "be", "s1", ServerDrain) }, "set server be/s1 state drain"},
		{func() error { return c.SetServerState(ctx, "be", "s1", ServerReady) }, "set server be/s1 state ready"},
		{func() error { return c.SetServerState(ctx, "be", "s1", ServerMaint) }, "set server be/s1 state maint"},
		{func() error { return c.DisableServer(ctx, "be", "#3") }, "disable server be/#3"},
		{func() error { return c.DisableServer(ctx, "#4", "s1") }, "disable server #4/s1"},
	} {
		if err := tc.run(); err != nil || f.lastCommand() != tc.sent {
			t.Errorf("%s: %v (sent %q)", tc.sent, err, f.lastCommand())
		}
	}

	for _, tc := range []struct {
		err       error
		notFound  bool
		permitted bool
		msg       string
	}{
		{c.DisableServer(ctx, "be", "nope"), true, true, "No such server."},
		{c.EnableServer(ctx, "nope", "s1"), true, true, "No such backend."},
		{c.SetServerState(ctx, "be", "locked", ServerDrain), false, false, "Permission denied"},
	} {
		var ce *CommandError
		if !errors.As(tc.err, &ce) || ce.Message != tc.msg || errors.Is(tc.err, ErrNotFound) != tc.notFound ||
			errors.Is(tc.err, ErrPermissionDenied) == tc.permitted {
			t.Errorf("%v: want message %q, not found %v, permitted %v", tc.err, tc.msg, tc.notFound, tc.permitted)
		}
	}

	// Refused before anything is sent.
	before := f.conns.Load()
	for _, err := range []error{
		c.DisableServer(ctx, "be", "s1;shutdown sessions server be/s2"),
		c.DisableServer(ctx, "be/x", "s1"),
		c.EnableServer(ctx, "", "s1"),
		c.EnableServer(ctx, "be", "s 1"),
		c.EnableServer(ctx, "be", "#"),
		c.EnableServer(ctx, "be", "#1x"),
		c.SetServerState(ctx, "be", "s1", "up"),
		c.SetServerState(ctx, "be", "s1", "drain\nshutdown"),
		c.SetServerState(ctx, "be", "s1", "DRAIN"),
	} {
		if !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("want ErrInvalidArgument, got %v", err)
		}
	}
	if _, err := c.ShowServersState(ctx, "be;x"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("ShowServersState(be;x): %v", err)
	}
	if n := f.conns.Load() - before; n != 0 {
		t.Errorf("%d connections for refused commands", n)
	}
}

func TestShowCommands(t *testing.T) {
	stat := string(readTestdata(t, "show_stat_drain_maint.txt"))
	state := string(readTestdata(t, "servers_state_drain_maint.txt"))
	f := startFakeRuntime(t, "unix", false, func(cmd string) []string {
		switch cmd {
		case "show stat":
			return []string{stat[:100], stat[100:]}
		case "show servers state", "show servers state be_app":
			return []string{state}
		case "show servers state nope":
			return []string{"Can't find backend.\n\n"}
		}
		return []string{"Unknown command.\n\n"}
	})
	c := &Client{RuntimeAddr: "unix@" + f.addr}
	ctx := context.Background()

	res, err := c.ShowStat(ctx)
	if err != nil || len(res.Rows) != 9 {
		t.Fatalf("ShowStat: %d rows, %v", len(res.Rows), err)
	}
	// Without a StatsURL, Stats asks the runtime API.
	if res2, err := c.Stats(ctx); err != nil || len(res2.Rows) != 9 {
		t.Errorf("Stats without StatsURL: %d rows, %v", len(res2.Rows), err)
	}
	for _, backend := range []string{"", "be_app"} {
		st, err := c.ShowServersState(ctx, backend)
		if err != nil || len(st.Servers) != 5 {
			t.Errorf("ShowServersState(%q): %d, %v", backend, len(st.Servers), err)
		}
		want := strings.TrimSpace("show servers state " + backend)
		if f.lastCommand() != want {
			t.Errorf("sent %q, want %q", f.lastCommand(), want)
		}
	}
	_, err = c.ShowServersState(ctx, "nope")
	var ce *CommandError
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &ce) || ce.Message != "Can't find backend." {
		t.Errorf("ShowServersState(nope): %v", err)
	}
	if _, err := (&Client{}).Stats(ctx); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("Stats without addresses: %v", err)
	}
}

func TestShowStatErrorReply(t *testing.T) {
	f := startFakeRuntime(t, "unix", false, func(string) []string { return []string{"Permission denied\n\n"} })
	c := &Client{RuntimeAddr: f.addr}
	if _, err := c.ShowStat(context.Background()); !errors.Is(err, ErrPermissionDenied) {
		t.Errorf("ShowStat: %v", err)
	}
	if _, err := c.ShowServersState(context.Background(), ""); !errors.Is(err, ErrPermissionDenied) {
		t.Errorf("ShowServersState: %v", err)
	}
}

func TestStatsHTTP(t *testing.T) {
	body := readTestdata(t, "stats_http.csv")
	var gotPath, gotUser, gotPass atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath.Store(r.URL.Path)
		u, p, _ := r.BasicAuth()
		gotUser.Store(u)
		gotPass.Store(p)
		switch r.URL.Path {
		case "/stats;csv":
			w.Write(body)
		case "/broken;csv":
			http.Error(w, "nope", http.StatusInternalServerError)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	ctx := context.Background()

	for _, u := range []string{srv.URL + "/stats;csv", srv.URL + "/stats"} {
		res, err := (&Client{StatsURL: u}).Stats(ctx)
		if err != nil || len(res.Rows) != 9 || gotPath.Load() != "/stats;csv" {
			t.Errorf("Stats(%s): %d rows, %v, path %v", u, len(res.Rows), err, gotPath.Load())
		}
	}
	withAuth := strings.Replace(srv.URL, "http://", "http://admin:secret@", 1) + "/stats"
	if _, err := (&Client{StatsURL: withAuth}).Stats(ctx); err != nil || gotUser.Load() != "admin" || gotPass.Load() != "secret" {
		t.Errorf("basic auth: %v, user %v", err, gotUser.Load())
	}
	_, err := (&Client{StatsURL: strings.Replace(srv.URL, "http://", "http://admin:secret@", 1) + "/broken"}).Stats(ctx)
	if err == nil || !strings.Contains(err.Error(), "500") || strings.Contains(err.Error(), "secret") {
		t.Errorf("HTTP 500: %v (must not show the password)", err)
	}
	if _, err := (&Client{StatsURL: "ftp://x/stats"}).Stats(ctx); err == nil {
		t.Errorf("ftp URL: no error")
	}
	if _, err := (&Client{StatsURL: srv.URL + "/stats", MaxReplyBytes: 100}).Stats(ctx); err == nil {
		t.Errorf("reply over MaxReplyBytes: no error")
	}
}

func TestRuntimeAddress(t *testing.T) {
	for _, tc := range []struct{ in, network, addr string }{
		{"/run/haproxy/admin.sock", "unix", "/run/haproxy/admin.sock"},
		{"unix@/run/hap.sock", "unix", "/run/hap.sock"},
		{"admin.sock", "unix", "admin.sock"},
		{"127.0.0.1:9999", "tcp", "127.0.0.1:9999"},
		{"localhost:9999", "tcp", "localhost:9999"},
		{"[::1]:9999", "tcp", "[::1]:9999"},
		{"ipv4@127.0.0.1:9999", "tcp4", "127.0.0.1:9999"},
		{"ipv6@[::1]:9999", "tcp6", "[::1]:9999"},
		{"tcp@127.0.0.1:1", "tcp", "127.0.0.1:1"},
	} {
		network, addr, err := runtimeAddress(tc.in)
		if err != nil || network != tc.network || addr != tc.addr {
			t.Errorf("runtimeAddress(%q) = %s %s %v, want %s %s", tc.in, network, addr, err, tc.network, tc.addr)
		}
	}
}
