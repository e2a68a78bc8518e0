package haproxy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rowWant is what a test checks of one row; empty strings are not checked
// except where noted.
type rowWant struct {
	proxy, server string
	typ           Type
	status        string // checked exactly
	state         string
	check         string // checked exactly
	running       bool
	addr          string // checked exactly
	weight        int64
}

// The files in testdata were printed by Debian 12's haproxy 2.6.12 with the
// configurations testdata/haproxy-a.cfg and haproxy-b.cfg (see
// testdata/README).
func TestParseStatsRealOutput(t *testing.T) {
	for _, tc := range []struct {
		file string
		rows int
		want []rowWant
	}{
		{
			file: "stats_http.csv", // over HTTP, no "stats show-legends": no addresses
			rows: 9,
			want: []rowWant{
				{proxy: "stats", server: "FRONTEND", typ: TypeFrontend, status: "OPEN", state: StateOpen},
				{proxy: "be_app", server: "s1", typ: TypeServer, status: "UP", state: StateUp, check: "L7OK", weight: 1},
				{proxy: "be_app", server: "s3", typ: TypeServer, status: "DOWN", state: StateDown, check: "L4CON", weight: 1},
				{proxy: "be_app", server: "s4", typ: TypeServer, status: "no check", state: StateUp, weight: 1},
				{proxy: "be_app", server: "BACKEND", typ: TypeBackend, status: "UP", state: StateUp, weight: 3},
				{proxy: "be_empty", server: "e1", typ: TypeServer, status: "MAINT", state: StateMaint, weight: 1},
				{proxy: "be_empty", server: "BACKEND", typ: TypeBackend, status: "DOWN", state: StateDown},
			},
		},
		{
			file: "show_stat_drain_maint.txt",
			rows: 9,
			want: []rowWant{
				{proxy: "be_app", server: "s1", typ: TypeServer, status: "DRAIN", state: StateDrain, check: "L7OK", addr: "127.0.0.1:18081", weight: 1},
				{proxy: "be_app", server: "s2", typ: TypeServer, status: "MAINT", state: StateMaint, addr: "127.0.0.1:18082", weight: 1},
			},
		},
		{
			file: "show_stat_up_transitional.txt",
			rows: 9,
			want: []rowWant{
				{proxy: "be_app", server: "s2", typ: TypeServer, status: "UP 1/3", state: StateUp, check: "L4CON", addr: "127.0.0.1:18082", weight: 1},
			},
		},
		{
			file: "show_stat_down_transitional.txt",
			rows: 9,
			want: []rowWant{
				{proxy: "be_app", server: "s2", typ: TypeServer, status: "DOWN 1/2", state: StateDown, check: "L7OK", addr: "127.0.0.1:18082", weight: 1},
			},
		},
		{
			file: "show_stat_check_running.txt",
			rows: 9,
			want: []rowWant{
				{proxy: "be_app", server: "s3", typ: TypeServer, status: "DOWN", state: StateDown, check: "L4CON", running: true, addr: "127.0.0.1:18083", weight: 1},
				{proxy: "be_app", server: "s1", typ: TypeServer, status: "UP", state: StateUp, check: "L7OK", addr: "127.0.0.1:18081", weight: 1},
			},
		},
		{
			file: "show_stat_agent_drain_track.txt",
			rows: 12,
			want: []rowWant{
				{proxy: "stats", server: "sock-1", typ: TypeListener, status: "OPEN", state: StateOpen, addr: "127.0.0.1:28404"},
				{proxy: "fe_app", server: "main", typ: TypeListener, status: "OPEN", state: StateOpen, addr: "127.0.0.1:28080"},
				{proxy: "be_app", server: "s2", typ: TypeServer, status: "DRAIN (agent)", state: StateDrain, check: "L4OK", addr: "127.0.0.1:18082", weight: 1},
				{proxy: "be_track", server: "t1", typ: TypeServer, status: "MAINT (via be_app/s1)", state: StateMaint, addr: "127.0.0.1:18081", weight: 1},
				{proxy: "be_track", server: "BACKEND", typ: TypeBackend, status: "DOWN", state: StateDown},
			},
		},
		{
			file: "show_stat_agent_down.txt",
			rows: 12,
			want: []rowWant{
				{proxy: "be_app", server: "s2", typ: TypeServer, status: "DOWN (agent)", state: StateDown, check: "L4OK", addr: "127.0.0.1:18082", weight: 1},
				{proxy: "be_track", server: "t2", typ: TypeServer, status: "DOWN (agent)", state: StateDown, addr: "127.0.0.1:18082", weight: 1},
			},
		},
		{
			file: "stats_http_legends_agent_track.csv", // over HTTP with "stats show-legends"
			rows: 12,
			want: []rowWant{
				{proxy: "be_app", server: "s1", typ: TypeServer, status: "MAINT", state: StateMaint, addr: "127.0.0.1:18081", weight: 1},
				{proxy: "be_track", server: "t1", typ: TypeServer, status: "MAINT (via be_app/s1)", state: StateMaint, addr: "127.0.0.1:18081", weight: 1},
			},
		},
	} {
		t.Run(tc.file, func(t *testing.T) {
			res, err := ParseStats(readTestdata(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Rows) != tc.rows || res.Skipped != 0 {
				t.Errorf("%d rows, %d skipped; want %d, 0", len(res.Rows), res.Skipped, tc.rows)
			}
			for _, w := range tc.want {
				got, ok := res.Find(w.proxy, w.server)
				if !ok {
					t.Errorf("no row %s/%s", w.proxy, w.server)
					continue
				}
				if got.Type != w.typ || got.Status != w.status || got.State() != w.state || got.CheckStatus != w.check ||
					got.CheckRunning != w.running || got.Addr != w.addr || got.Weight != w.weight {
					t.Errorf("%s/%s = %+v\nwant %+v", w.proxy, w.server, got, w)
				}
			}
		})
	}
}

func TestParseStatsDetails(t *testing.T) {
	res, err := ParseStats(readTestdata(t, "stats_http.csv"))
	if err != nil {
		t.Fatal(err)
	}
	s1, _ := res.Find("be_app", "s1")
	if s1.CheckCode != 200 || s1.CheckDesc != "Layer7 check passed" || s1.Mode != "http" ||
		s1.ProxyID != 4 || s1.ServerID != 1 || s1.ActiveServers != 1 || s1.BackupServers != 0 {
		t.Errorf("be_app/s1 = %+v", s1)
	}
	s3, _ := res.Find("be_app", "s3")
	if s3.CheckFailures != 1 || s3.CheckDowns != 1 || s3.CheckCode != 0 {
		t.Errorf("be_app/s3 = %+v", s3)
	}
	fe, _ := res.Find("stats", "FRONTEND")
	if fe.CurrentSessions != 1 || fe.MaxSessions != 1 || fe.SessionLimit != 9983 || fe.TotalSessions != 1 || fe.Weight != 0 {
		t.Errorf("stats/FRONTEND = %+v", fe)
	}
	if got := res.Servers("be_app"); len(got) != 4 || got[0].Server != "s1" || got[3].Server != "s4" {
		t.Errorf("Servers(be_app) = %+v", got)
	}
	if _, ok := res.Find("be_app", "nope"); ok {
		t.Errorf("Find found a server that is not there")
	}
}

// header builds a CSV header the way HAProxy writes it: "# ", every name
// followed by a comma.
func header(names ...string) string { return "# " + strings.Join(names, ",") + ",\n" }

func TestParseStatsByHeaderName(t *testing.T) {
	// Columns in another order, the "-" column, module columns after it,
	// a quoted field with a comma, CRLF line ends.
	in := "# type,status,svname,-,ssl_sess,pxname,addr,scur,check_status,\r\n" +
		"2,UP 2/3,s1,-,5,be,\"10.0.0.1:80\",7,* L7OK,\r\n" +
		"1,DOWN,BACKEND,-,0,be,,,,\r\n" +
		"2,MAINT,\"we,ird\",-,,be,,,,\r\n"
	res, err := ParseStats([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped != 0 || len(res.Rows) != 3 {
		t.Fatalf("%+v", res)
	}
	want := Stat{Proxy: "be", Server: "s1", Type: TypeServer, Status: "UP 2/3", CheckStatus: "L7OK", CheckRunning: true, Addr: "10.0.0.1:80", CurrentSessions: 7}
	if res.Rows[0] != want {
		t.Errorf("row 0 = %+v\nwant    %+v", res.Rows[0], want)
	}
	if r := res.Rows[1]; r.Type != TypeBackend || r.Status != "DOWN" {
		t.Errorf("row 1 = %+v", r)
	}
	if r := res.Rows[2]; r.Server != "we,ird" || r.State() != StateMaint {
		t.Errorf("row 2 = %+v", r)
	}
}

func TestParseStatsSkips(t *testing.T) {
	h := header("pxname", "svname", "scur", "status", "type")
	for _, tc := range []struct {
		name    string
		in      string
		rows    int
		skipped int
	}{
		{"blank lines are not counted", "\n\n" + h + "\n  \npx,s,1,UP,2,\n\n", 1, 0},
		{"garbage before the header", "hello\n" + h + "px,s,1,UP,2,\n", 1, 1},
		{"garbage line", h + "px,s,1,UP,2,\nthis is not csv\n", 1, 1},
		{"too few fields", h + "px,s,1,UP\npx,s,1,UP,2,\n", 1, 1},
		{"no trailing comma is fine", h + "px,s,1,UP,2\n", 1, 0},
		{"more fields than the header", h + "px,s,1,UP,2,x,y,z\n", 1, 0},
		{"number that is not", h + "px,s,lots,UP,2,\n", 0, 1},
		{"unknown type", h + "px,s,1,UP,7,\npx,s,1,UP,,\n", 0, 2},
		{"empty names", h + ",s,1,UP,2,\npx,,1,UP,2,\n", 0, 2},
		{"a comment", "# just a comment\n" + h + "px,s,1,UP,2,\n", 1, 1},
		{"a second header", h + "px,s,1,UP,2,\n" + header("type", "status", "svname", "pxname") + "2,DOWN,t,qx,\n", 2, 0},
		{"stray quote", h + "px,\"s,1,UP,2,\n" + "px,s\"x,1,UP,2,\n", 1, 1},
		{"no final newline", h + "px,s,1,UP,2,", 1, 0},
	} {
		res, err := ParseStats([]byte(tc.in))
		if err != nil || len(res.Rows) != tc.rows || res.Skipped != tc.skipped {
			t.Errorf("%s: %d rows, %d skipped, %v; want %d, %d", tc.name, len(res.Rows), res.Skipped, err, tc.rows, tc.skipped)
		}
	}
}

func TestParseStatsErrors(t *testing.T) {
	for _, in := range []string{"", "\n\n", "px,s,1,UP,2,\n", "No such backend.\n\n"} {
		if _, err := ParseStats([]byte(in)); !errors.Is(err, ErrNoHeader) {
			t.Errorf("ParseStats(%q): %v, want ErrNoHeader", in, err)
		}
	}
	for _, missing := range statsRequired {
		var names []string
		for _, n := range []string{"pxname", "svname", "status", "type", "scur"} {
			if n != missing {
				names = append(names, n)
			}
		}
		_, err := ParseStats([]byte(header(names...) + "a,b,c,d,\n"))
		var mc *MissingColumnError
		if !errors.As(err, &mc) || mc.Column != missing || !strings.Contains(err.Error(), `"`+missing+`"`) {
			t.Errorf("without %s: %v", missing, err)
		}
	}
}
