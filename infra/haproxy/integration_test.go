package haproxy_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"eventlistener/infra/haproxy"
	"eventlistener/internal/testenv"
)

// Bounds for what the real HAProxy does on its own (checks every 100ms).
const (
	checkInterval = 100 * time.Millisecond
	transition    = 5 * time.Second // a state change seen through stats
)

type realSetup struct {
	h                  *testenv.HAProxyProc
	app1, app2, other  *testenv.BackendServer
	httpc, unixc, tcpc *haproxy.Client
	ctx                context.Context
	// statsReaders read the statistics over HTTP, the unix socket and TCP;
	// runtimes are the last two.
	statsReaders, runtimes []namedClient
}

type namedClient struct {
	name string
	c    *haproxy.Client
	// stats reads the statistics CSV the way this client can.
	stats func(context.Context) (haproxy.StatsResult, error)
}

func setup(t *testing.T) *realSetup {
	t.Helper()
	s := &realSetup{app1: testenv.TestHTTPServer(t), app2: testenv.TestHTTPServer(t), other: testenv.TestHTTPServer(t)}
	s.h = testenv.HAProxy(t, testenv.HAProxyConfig{
		Backends: map[string][]string{
			"be_app":   {s.app1.Addr, s.app2.Addr},
			"be_other": {s.other.Addr},
		},
		CheckInterval: checkInterval,
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	s.ctx = ctx
	s.httpc = &haproxy.Client{StatsURL: s.h.StatsURL, Timeout: 5 * time.Second}
	s.unixc = &haproxy.Client{RuntimeAddr: s.h.SocketPath, Timeout: 5 * time.Second}
	s.tcpc = &haproxy.Client{RuntimeAddr: s.h.RuntimeAddr, Timeout: 5 * time.Second}
	s.statsReaders = []namedClient{
		{"http", s.httpc, s.httpc.Stats},
		{"unix", s.unixc, s.unixc.ShowStat},
		{"tcp", s.tcpc, s.tcpc.ShowStat},
	}
	s.runtimes = s.statsReaders[1:]
	return s
}

// waitStatus waits until every way of reading the statistics shows
// backend/server with the normalized state want.
func (s *realSetup) waitStatus(t *testing.T, backend, server, want string) haproxy.Stat {
	t.Helper()
	deadline := time.Now().Add(transition)
	var last haproxy.Stat
	for _, nc := range s.statsReaders {
		for {
			res, err := nc.stats(s.ctx)
			if err != nil {
				t.Fatalf("%s stats: %v", nc.name, err)
			}
			if res.Skipped != 0 {
				t.Errorf("%s stats: %d lines skipped", nc.name, res.Skipped)
			}
			st, ok := res.Find(backend, server)
			if !ok {
				t.Fatalf("%s stats: no %s/%s in %+v", nc.name, backend, server, res.Rows)
			}
			last = st
			if st.State() == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s stats: %s/%s is %q (%s), want %s within %v", nc.name, backend, server, st.Status, st.CheckStatus, want, transition)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return last
}

// serverState returns backend/server from "show servers state", asked both
// for all backends and for backend alone, through c.
func (s *realSetup) serverState(t *testing.T, c *haproxy.Client, backend, server string) haproxy.ServerState {
	t.Helper()
	var found []haproxy.ServerState
	for _, which := range []string{"", backend} {
		res, err := c.ShowServersState(s.ctx, which)
		if err != nil {
			t.Fatalf("ShowServersState(%q) through %s: %v", which, c.RuntimeAddr, err)
		}
		if res.Version != 1 || res.Skipped != 0 {
			t.Errorf("ShowServersState(%q): version %d, %d skipped", which, res.Version, res.Skipped)
		}
		st, ok := res.Find(backend, server)
		if !ok {
			t.Fatalf("ShowServersState(%q): no %s/%s in %+v", which, backend, server, res.Servers)
		}
		found = append(found, st)
	}
	return found[1]
}

func TestRealStatsListsBackends(t *testing.T) {
	s := setup(t)
	for _, nc := range s.statsReaders {
		res, err := nc.stats(s.ctx)
		if err != nil {
			t.Fatalf("%s: %v", nc.name, err)
		}
		for _, w := range []struct {
			backend, server, addr string
			typ                   haproxy.Type
		}{
			{"be_app", "s1", s.app1.Addr, haproxy.TypeServer},
			{"be_app", "s2", s.app2.Addr, haproxy.TypeServer},
			{"be_other", "s1", s.other.Addr, haproxy.TypeServer},
			{"be_app", "BACKEND", "", haproxy.TypeBackend},
			{"be_other", "BACKEND", "", haproxy.TypeBackend},
		} {
			st, ok := res.Find(w.backend, w.server)
			if !ok {
				t.Errorf("%s: no %s/%s", nc.name, w.backend, w.server)
				continue
			}
			if st.Type != w.typ || st.State() != haproxy.StateUp || st.Addr != w.addr {
				t.Errorf("%s: %s/%s = %+v; want type %s, UP, addr %q", nc.name, w.backend, w.server, st, w.typ, w.addr)
			}
		}
		if fe, ok := res.Find("stats", "FRONTEND"); !ok || fe.Type != haproxy.TypeFrontend || fe.State() != haproxy.StateOpen {
			t.Errorf("%s: stats frontend %+v", nc.name, fe)
		}
		if got := res.Servers("be_app"); len(got) != 2 {
			t.Errorf("%s: Servers(be_app) = %d rows", nc.name, len(got))
		}
	}
	for _, nc := range s.runtimes {
		st := s.serverState(t, nc.c, "be_app", "s2")
		host, port, _ := net.SplitHostPort(s.app2.Addr)
		if st.OpState != haproxy.OpRunning || st.AdminState != 0 || st.Addr != host || strconv.FormatInt(st.Port, 10) != port || st.ServerID != 2 {
			t.Errorf("%s: be_app/s2 state %+v (server at %s)", nc.name, st, s.app2.Addr)
		}
	}
}

func TestRealServerDownAndUp(t *testing.T) {
	s := setup(t)
	s.waitStatus(t, "be_app", "s1", haproxy.StateUp)

	s.app1.Stop()
	st := s.waitStatus(t, "be_app", "s1", haproxy.StateDown)
	if st.CheckStatus != "L4CON" {
		t.Errorf("down server's check status %q, want L4CON", st.CheckStatus)
	}
	for _, nc := range s.runtimes {
		if ss := s.serverState(t, nc.c, "be_app", "s1"); ss.OpState != haproxy.OpStopped || ss.Maintenance() {
			t.Errorf("%s: down server state %+v", nc.name, ss)
		}
	}
	// The other servers are untouched; the backend stays up with one.
	s.waitStatus(t, "be_app", "s2", haproxy.StateUp)
	s.waitStatus(t, "be_app", "BACKEND", haproxy.StateUp)

	s.app1.Start()
	s.waitStatus(t, "be_app", "s1", haproxy.StateUp)
}

func TestRealDisableEnable(t *testing.T) {
	s := setup(t)
	for _, pair := range [][2]*haproxy.Client{{s.unixc, s.tcpc}, {s.tcpc, s.unixc}} {
		disabler, enabler := pair[0], pair[1]
		if err := disabler.DisableServer(s.ctx, "be_app", "s2"); err != nil {
			t.Fatalf("DisableServer through %s: %v", disabler.RuntimeAddr, err)
		}
		for _, nc := range s.runtimes {
			ss := s.serverState(t, nc.c, "be_app", "s2")
			if !ss.Maintenance() || ss.AdminState&haproxy.AdminFMaint == 0 || ss.Draining() {
				t.Errorf("%s: after DisableServer: admin state %v", nc.name, ss.AdminState)
			}
		}
		st := s.waitStatus(t, "be_app", "s2", haproxy.StateMaint)
		if st.Status != "MAINT" {
			t.Errorf("status %q, want MAINT", st.Status)
		}
		// Disabling twice is fine.
		if err := disabler.DisableServer(s.ctx, "be_app", "s2"); err != nil {
			t.Errorf("second DisableServer: %v", err)
		}

		if err := enabler.EnableServer(s.ctx, "be_app", "s2"); err != nil {
			t.Fatalf("EnableServer through %s: %v", enabler.RuntimeAddr, err)
		}
		if ss := s.serverState(t, enabler, "be_app", "s2"); ss.Maintenance() || ss.AdminState != 0 {
			t.Errorf("after EnableServer: admin state %v", ss.AdminState)
		}
		s.waitStatus(t, "be_app", "s2", haproxy.StateUp)
	}
}

func TestRealSetServerState(t *testing.T) {
	s := setup(t)
	for _, nc := range s.runtimes {
		c := nc.c
		if err := c.SetServerState(s.ctx, "be_app", "s1", haproxy.ServerDrain); err != nil {
			t.Fatalf("%s: drain: %v", nc.name, err)
		}
		st := s.waitStatus(t, "be_app", "s1", haproxy.StateDrain)
		if st.Status != "DRAIN" {
			t.Errorf("%s: status %q, want DRAIN", nc.name, st.Status)
		}
		if ss := s.serverState(t, c, "be_app", "s1"); !ss.Draining() || ss.Maintenance() || ss.OpState != haproxy.OpRunning {
			t.Errorf("%s: drained server state %+v (%v)", nc.name, ss, ss.AdminState)
		}

		if err := c.SetServerState(s.ctx, "be_app", "s1", haproxy.ServerMaint); err != nil {
			t.Fatalf("%s: maint: %v", nc.name, err)
		}
		s.waitStatus(t, "be_app", "s1", haproxy.StateMaint)
		if ss := s.serverState(t, c, "be_app", "s1"); !ss.Maintenance() {
			t.Errorf("%s: maint: admin state %v", nc.name, ss.AdminState)
		}

		if err := c.SetServerState(s.ctx, "be_app", "s1", haproxy.ServerReady); err != nil {
			t.Fatalf("%s: ready: %v", nc.name, err)
		}
		s.waitStatus(t, "be_app", "s1", haproxy.StateUp)
		if ss := s.serverState(t, c, "be_app", "s1"); ss.AdminState != 0 {
			t.Errorf("%s: ready: admin state %v", nc.name, ss.AdminState)
		}
	}
}

func TestRealNotFound(t *testing.T) {
	s := setup(t)
	for _, nc := range s.runtimes {
		c := nc.c
		for _, tc := range []struct {
			name string
			err  error
			msg  string
		}{
			{"DisableServer unknown server", c.DisableServer(s.ctx, "be_app", "nope"), "No such server."},
			{"EnableServer unknown server", c.EnableServer(s.ctx, "be_app", "nope"), "No such server."},
			{"SetServerState unknown server", c.SetServerState(s.ctx, "be_app", "nope", haproxy.ServerDrain), "No such server."},
			{"DisableServer unknown backend", c.DisableServer(s.ctx, "nope", "s1"), "No such backend."},
			{"SetServerState unknown backend", c.SetServerState(s.ctx, "nope", "s1", haproxy.ServerReady), "No such backend."},
			{"server id not there", c.DisableServer(s.ctx, "be_app", "#99"), "No such server."},
			{"ShowServersState unknown backend", func() error { _, err := c.ShowServersState(s.ctx, "nope"); return err }(), "Can't find backend."},
		} {
			var ce *haproxy.CommandError
			if !errors.Is(tc.err, haproxy.ErrNotFound) || !errors.As(tc.err, &ce) || ce.Message != tc.msg {
				t.Errorf("%s: %s: %v; want ErrNotFound with %q", nc.name, tc.name, tc.err, tc.msg)
			}
		}
		// Not a not-found error: HAProxy's own message, as is.
		reply, err := c.Command(s.ctx, "set server be_app/s1 state sideways")
		if err != nil || reply != "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n\n" {
			t.Errorf("%s: bad state: %q, %v", nc.name, reply, err)
		}
		// Ids work like names.
		if err := c.DisableServer(s.ctx, "be_app", "#2"); err != nil {
			t.Errorf("%s: DisableServer(be_app, #2): %v", nc.name, err)
		}
		if err := c.EnableServer(s.ctx, "be_app", "#2"); err != nil {
			t.Errorf("%s: EnableServer(be_app, #2): %v", nc.name, err)
		}
	}
	// Nothing was changed by all this.
	s.waitStatus(t, "be_app", "s1", haproxy.StateUp)
	s.waitStatus(t, "be_app", "s2", haproxy.StateUp)
}
