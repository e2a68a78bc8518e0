package haproxy

import (
	"errors"
	"strings"
	"testing"
)

func TestParseServersStateRealOutput(t *testing.T) {
	type want struct {
		backend, server string
		op              OpState
		admin           AdminState
		maint, drain    bool
	}
	for _, tc := range []struct {
		file string
		n    int
		want []want
	}{
		{"servers_state.txt", 5, []want{
			{"be_app", "s1", OpRunning, 0, false, false},
			{"be_app", "s3", OpStopped, 0, false, false},
			{"be_empty", "e1", OpStopped, AdminFMaint | AdminCMaint, true, false}, // "disabled" in the configuration
		}},
		{"servers_state_drain_maint.txt", 5, []want{
			{"be_app", "s1", OpRunning, AdminFDrain, false, true},
			{"be_app", "s2", OpStopped, AdminFMaint, true, false},
		}},
		{"servers_state_agent_track.txt", 5, []want{
			{"be_app", "s1", OpStopped, AdminFMaint, true, false},
			{"be_app", "s2", OpRunning, AdminFDrain, false, true}, // the agent said "drain"
			{"be_track", "t1", OpStopped, AdminIMaint, true, false},
			{"be_track", "t2", OpRunning, AdminIDrain, false, true},
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			res, err := ParseServersState(readTestdata(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if res.Version != 1 || len(res.Servers) != tc.n || res.Skipped != 0 {
				t.Errorf("version %d, %d servers, %d skipped; want 1, %d, 0", res.Version, len(res.Servers), res.Skipped, tc.n)
			}
			for _, w := range tc.want {
				got, ok := res.Find(w.backend, w.server)
				if !ok {
					t.Errorf("no server %s/%s", w.backend, w.server)
					continue
				}
				if got.OpState != w.op || got.AdminState != w.admin || got.Maintenance() != w.maint || got.Draining() != w.drain {
					t.Errorf("%s/%s = %+v (%v, %v), want %+v", w.backend, w.server, got, got.OpState, got.AdminState, w)
				}
			}
		})
	}

	res, err := ParseServersState(readTestdata(t, "servers_state_agent_track.txt"))
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := res.Find("be_app", "s2")
	wantS2 := ServerState{
		BackendID: 4, Backend: "be_app", ServerID: 2, Server: "s2", Addr: "127.0.0.1", Port: 18082,
		OpState: OpRunning, AdminState: AdminFDrain, UserWeight: 1, InitialWeight: 1,
		SecondsSinceLastChange: 1, CheckStatus: 6, CheckResult: 3, CheckHealth: 4, CheckState: 6, AgentState: 22,
	}
	if s2 != wantS2 {
		t.Errorf("be_app/s2 = %+v\nwant       %+v", s2, wantS2)
	}
}

func TestAdminState(t *testing.T) {
	for _, tc := range []struct {
		a            AdminState
		maint, drain bool
		s            string
	}{
		{0, false, false, "none"},
		{AdminFMaint, true, false, "FMAINT"},
		{AdminIMaint, true, false, "IMAINT"},
		{AdminCMaint, true, false, "CMAINT"},
		{AdminRMaint, true, false, "RMAINT"},
		{AdminHMaint, true, false, "HMAINT"},
		{AdminFDrain, false, true, "FDRAIN"},
		{AdminIDrain, false, true, "IDRAIN"},
		{AdminFMaint | AdminCMaint, true, false, "FMAINT|CMAINT"},
		{AdminFDrain | AdminFMaint, true, true, "FMAINT|FDRAIN"},
		{0x180, false, false, "0x180"},
	} {
		if tc.a.Maintenance() != tc.maint || tc.a.Draining() != tc.drain || tc.a.String() != tc.s {
			t.Errorf("%#x: maintenance %v, draining %v, %q; want %v, %v, %q", uint32(tc.a), tc.a.Maintenance(), tc.a.Draining(), tc.a.String(), tc.maint, tc.drain, tc.s)
		}
	}
	for op, s := range map[OpState]string{0: "stopped", 1: "starting", 2: "running", 3: "stopping", 9: "unknown(9)"} {
		if op.String() != s {
			t.Errorf("OpState(%d) = %q, want %q", int(op), op.String(), s)
		}
	}
}

const stateHeader = "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n"

func TestParseServersStateSkips(t *testing.T) {
	line := "3 be 1 s1 127.0.0.1 2 0 1 1 12 6 3 4 6 0 0 0 - 8081 - 0 0 - - 0\n"
	for _, tc := range []struct {
		name       string
		in         string
		n, skipped int
	}{
		{"the reference example", "1\n" + stateHeader + line, 1, 0},
		{"without the version", stateHeader + line, 1, 0},
		{"blank lines, CRLF", "\n1\r\n\n" + stateHeader + "\r\n" + strings.TrimSuffix(line, "\n") + "\r\n\n", 1, 0},
		{"garbage between", "1\nhello\n" + stateHeader + line + "what?\n" + line, 2, 2},
		{"too few fields", "1\n" + stateHeader + "3 be 1 s1 127.0.0.1 2 0\n" + line, 1, 1},
		{"op state not a number", "1\n" + stateHeader + strings.Replace(line, " 2 0 ", " x 0 ", 1), 0, 1},
		{"admin state negative", "1\n" + stateHeader + strings.Replace(line, " 2 0 ", " 2 -1 ", 1), 0, 1},
		{"other number not a number", "1\n" + stateHeader + strings.Replace(line, " 8081 ", " port ", 1), 0, 1},
		{"- as a name", "1\n" + stateHeader + strings.Replace(line, " s1 ", " - ", 1), 0, 1},
		{"a comment", "1\n# hello there\n" + stateHeader + line, 1, 1},
		{"minimal header", "1\n# be_name srv_name srv_op_state srv_admin_state\nbe s 2 8\n", 1, 0},
	} {
		res, err := ParseServersState([]byte(tc.in))
		if err != nil || len(res.Servers) != tc.n || res.Skipped != tc.skipped {
			t.Errorf("%s: %d servers, %d skipped, %v; want %d, %d", tc.name, len(res.Servers), res.Skipped, err, tc.n, tc.skipped)
		}
	}
	res, _ := ParseServersState([]byte("1\n" + stateHeader + line))
	if s := res.Servers[0]; s.FQDN != "" || s.Port != 8081 || s.Addr != "127.0.0.1" || s.OpState != OpRunning {
		t.Errorf("reference example: %+v", s)
	}
}

func TestParseServersStateErrors(t *testing.T) {
	var notState *NotServersStateError
	var version *UnsupportedVersionError
	var missing *MissingColumnError
	for _, tc := range []struct {
		in    string
		check func(error) bool
	}{
		{"", func(err error) bool { return errors.Is(err, ErrNoHeader) }},
		{"1\n", func(err error) bool { return errors.Is(err, ErrNoHeader) }},
		{"Can't find backend.\n\n", func(err error) bool { return errors.As(err, &notState) && notState.Line == "Can't find backend." }},
		{"2\n" + stateHeader, func(err error) bool { return errors.As(err, &version) && version.Version == "2" }},
		{"99999999999999999999\n", func(err error) bool { return errors.As(err, &version) }},
		{"1\n# be_name srv_name srv_op_state\n", func(err error) bool { return errors.As(err, &missing) && missing.Column == "srv_admin_state" }},
		{"1\n# be_id srv_name srv_op_state srv_admin_state\n", func(err error) bool { return errors.As(err, &missing) && missing.Column == "be_name" }},
	} {
		if _, err := ParseServersState([]byte(tc.in)); !tc.check(err) {
			t.Errorf("ParseServersState(%q): %v (%T)", tc.in, err, err)
		}
	}
}
