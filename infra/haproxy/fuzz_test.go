package haproxy

import (
	"bytes"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func addTestdataSeeds(f *testing.F, glob string) {
	files, err := filepath.Glob(filepath.Join("testdata", glob))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds %s: %v", glob, err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

var normalized = map[string]bool{
	StateUp: true, StateDown: true, StateDrain: true, StateNoLB: true, StateMaint: true,
	StateOpen: true, StateStop: true, StateUnknown: true,
}

var statColumns = []string{
	"pxname", "svname", "type", "status", "check_status", "check_code", "check_desc", "weight", "act", "bck",
	"scur", "smax", "slim", "stot", "bin", "bout", "chkfail", "chkdown", "lastchg", "downtime", "iid", "sid",
	"addr", "mode",
}

// encodeStats writes rows as HAProxy would, with every column ParseStats
// reads, so that parsing it again gives the same rows.
func encodeStats(rows []Stat) []byte {
	var b bytes.Buffer
	b.WriteString("# " + strings.Join(statColumns, ",") + ",-,\n")
	w := csv.NewWriter(&b)
	n := func(v int64) string { return strconv.FormatInt(v, 10) }
	for _, s := range rows {
		typ := map[Type]string{TypeFrontend: "0", TypeBackend: "1", TypeServer: "2", TypeListener: "3"}[s.Type]
		check := s.CheckStatus
		if s.CheckRunning {
			check = "* " + check
		}
		_ = w.Write([]string{
			s.Proxy, s.Server, typ, s.Status, check, n(s.CheckCode), s.CheckDesc, n(s.Weight), n(s.ActiveServers), n(s.BackupServers),
			n(s.CurrentSessions), n(s.MaxSessions), n(s.SessionLimit), n(s.TotalSessions), n(s.BytesIn), n(s.BytesOut),
			n(s.CheckFailures), n(s.CheckDowns), n(s.LastChangeSeconds), n(s.DowntimeSeconds), n(s.ProxyID), n(s.ServerID),
			s.Addr, s.Mode, "-", "",
		})
	}
	w.Flush()
	return b.Bytes()
}

// roundTrips reports whether a string field survives encodeStats and a line
// based parse: no line breaks, and nothing a first field could turn into a
// header.
func roundTrips(s Stat) bool {
	for _, v := range []string{s.Proxy, s.Server, s.Status, s.CheckStatus, s.CheckDesc, s.Addr, s.Mode} {
		if strings.ContainsAny(v, "\r\n") {
			return false
		}
	}
	return !strings.HasPrefix(s.Proxy, "#")
}

func FuzzParseStats(f *testing.F) {
	addTestdataSeeds(f, "*.csv")
	addTestdataSeeds(f, "show_stat_*.txt")
	f.Add([]byte("# pxname,svname,status,type,\npx,s,\"UP 1/3\",2,\n"))
	f.Add([]byte("# type,status,svname,pxname,-,x,\n2,MAINT (via a/b),s,\"p,q\",-,1,\n"))
	f.Add([]byte("# comment\nbad\n# pxname,svname,status,type,scur\npx,s,UP,9,x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := ParseStats(data)
		if err != nil {
			var mc *MissingColumnError
			if !errors.Is(err, ErrNoHeader) && !errors.As(err, &mc) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			if len(res.Rows) != 0 || res.Skipped != 0 {
				t.Fatalf("error with a result: %+v", res)
			}
			return
		}
		lines := 0
		for _, l := range bytes.Split(data, []byte("\n")) {
			if len(bytes.TrimSpace(l)) > 0 {
				lines++
			}
		}
		if res.Skipped < 0 || len(res.Rows)+res.Skipped >= lines+1 {
			t.Fatalf("%d rows + %d skipped from %d non-blank lines (one is the header)", len(res.Rows), res.Skipped, lines)
		}
		for _, s := range res.Rows {
			switch s.Type {
			case TypeFrontend, TypeBackend, TypeServer, TypeListener:
			default:
				t.Fatalf("row with type %q", s.Type)
			}
			if s.Proxy == "" || s.Server == "" {
				t.Fatalf("row without a name: %+v", s)
			}
			if !s.CheckRunning && strings.HasPrefix(s.CheckStatus, "* ") {
				t.Fatalf("check status %q kept its \"* \"", s.CheckStatus)
			}
			if st := s.State(); !normalized[st] || st != NormalizeStatus(s.Status) {
				t.Fatalf("State() %q for %q", st, s.Status)
			}
			info := s.StatusInfo()
			if info.Raw != s.Status || (info.Health < 0) || (info.Span < 0) || (info.Health > 0 && info.Span == 0) {
				t.Fatalf("StatusInfo %+v", info)
			}
		}
		again, err := ParseStats(data)
		if err != nil || !reflect.DeepEqual(again, res) {
			t.Fatalf("second parse differs: %v", err)
		}
		// Written back as HAProxy would, the rows parse the same.
		var keep []Stat
		for _, s := range res.Rows {
			if roundTrips(s) {
				keep = append(keep, s)
			}
		}
		back, err := ParseStats(encodeStats(keep))
		if err != nil || back.Skipped != 0 || !reflect.DeepEqual(back.Rows, keep) {
			t.Fatalf("round trip: %v, %d skipped\n got %+v\nwant %+v", err, back.Skipped, back.Rows, keep)
		}
	})
}

func encodeServersState(servers []ServerState) []byte {
	var b bytes.Buffer
	b.WriteString("1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state srv_fqdn srv_port\n")
	s := func(v string) string {
		if v == "" {
			return "-"
		}
		return v
	}
	n := func(v int64) string { return strconv.FormatInt(v, 10) }
	for _, x := range servers {
		b.WriteString(strings.Join([]string{
			n(x.BackendID), s(x.Backend), n(x.ServerID), s(x.Server), s(x.Addr),
			strconv.Itoa(int(x.OpState)), strconv.FormatUint(uint64(x.AdminState), 10),
			n(x.UserWeight), n(x.InitialWeight), n(x.SecondsSinceLastChange), n(x.CheckStatus), n(x.CheckResult),
			n(x.CheckHealth), n(x.CheckState), n(x.AgentState), s(x.FQDN), n(x.Port),
		}, " "))
		b.WriteString("\n")
	}
	return b.Bytes()
}

func FuzzParseServersState(f *testing.F) {
	addTestdataSeeds(f, "servers_state*.txt")
	f.Add([]byte("1\n# be_name srv_name srv_op_state srv_admin_state\nbe s 2 8\nbe t x 1\n"))
	f.Add([]byte("Can't find backend.\n\n"))
	f.Add([]byte("# be_id be_name srv_name srv_op_state srv_admin_state\n1 b s 0 4294967295\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := ParseServersState(data)
		if err != nil {
			var mc *MissingColumnError
			var uv *UnsupportedVersionError
			var ns *NotServersStateError
			if !errors.Is(err, ErrNoHeader) && !errors.As(err, &mc) && !errors.As(err, &uv) && !errors.As(err, &ns) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			return
		}
		if res.Version != 0 && res.Version != ServersStateVersion {
			t.Fatalf("version %d", res.Version)
		}
		for _, s := range res.Servers {
			if s.Backend == "" || s.Server == "" || strings.ContainsAny(s.Backend+s.Server+s.Addr+s.FQDN, " \t\r\n") {
				t.Fatalf("bad names: %+v", s)
			}
			if s.OpState < 0 {
				t.Fatalf("negative op state: %+v", s)
			}
			a := s.AdminState
			if a.Maintenance() != (a&(AdminFMaint|AdminIMaint|AdminCMaint|AdminRMaint|AdminHMaint) != 0) ||
				a.Draining() != (a&(AdminFDrain|AdminIDrain) != 0) || s.Maintenance() != a.Maintenance() {
				t.Fatalf("helpers disagree with the bits of %#x", uint32(a))
			}
			if a.String() == "" || s.OpState.String() == "" {
				t.Fatal("empty String()")
			}
		}
		back, err := ParseServersState(encodeServersState(res.Servers))
		if err != nil || back.Skipped != 0 || len(back.Servers) != len(res.Servers) {
			t.Fatalf("round trip: %v, %+v", err, back)
		}
		for i := range res.Servers {
			if back.Servers[i] != res.Servers[i] {
				t.Fatalf("round trip:\n got %+v\nwant %+v", back.Servers[i], res.Servers[i])
			}
		}
	})
}
