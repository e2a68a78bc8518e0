package haproxy

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Type is what a row of the statistics describes.
type Type string

// The values of the CSV's type column (0 to 3).
const (
	TypeFrontend Type = "frontend"
	TypeBackend  Type = "backend"
	TypeServer   Type = "server"
	TypeListener Type = "listener"
)

var typeByCode = [...]Type{TypeFrontend, TypeBackend, TypeServer, TypeListener}

// Stat is one row of HAProxy's statistics CSV: a frontend, a backend, a
// server or a listener. Numbers that HAProxy leaves empty (a frontend has no
// weight, for example) are 0.
type Stat struct {
	Proxy  string // pxname: the frontend's or backend's name
	Server string // svname: FRONTEND, BACKEND, or the server's or listener's name
	Type   Type   // type

	// Status is the status text exactly as HAProxy printed it ("UP",
	// "UP 1/3", "MAINT (via be/srv)", "no check", "OPEN", ...); see
	// NormalizeStatus and ParseStatus, or the methods State and StatusInfo.
	Status string

	CheckStatus  string // check_status without the "* " that marks a check in progress (L4OK, L4CON, L7OK, L7STS, ...)
	CheckRunning bool   // check_status had the "* " prefix: a check was running
	CheckCode    int64  // check_code: the layer 5-7 code of the last check (an HTTP status)
	CheckDesc    string // check_desc: "Layer7 check passed", "Layer4 connection problem", ...

	Weight        int64 // weight: the effective weight (for a backend, the sum of its servers')
	ActiveServers int64 // act: for a server 1 if active; for a backend, its active servers that are up
	BackupServers int64 // bck: for a server 1 if backup; for a backend, its backup servers that are up

	CurrentSessions int64 // scur
	MaxSessions     int64 // smax
	SessionLimit    int64 // slim
	TotalSessions   int64 // stot
	BytesIn         int64 // bin
	BytesOut        int64 // bout
	CheckFailures   int64 // chkfail
	CheckDowns      int64 // chkdown: UP to DOWN transitions

	LastChangeSeconds int64 // lastchg: seconds since the last UP/DOWN change
	DowntimeSeconds   int64 // downtime: total seconds down

	ProxyID  int64  // iid
	ServerID int64  // sid
	Addr     string // addr: host:port of a server or listener; empty over HTTP without "stats show-legends"
	Mode     string // mode: http, tcp, ...
}

// State returns the normalized status, one of the State constants
// (NormalizeStatus of Status).
func (s Stat) State() string { return NormalizeStatus(s.Status) }

// StatusInfo takes Status apart (ParseStatus of Status).
func (s Stat) StatusInfo() StatusInfo { return ParseStatus(s.Status) }

// StatsResult is what ParseStats found.
type StatsResult struct {
	// Rows are the rows in HAProxy's order.
	Rows []Stat
	// Skipped counts the lines that were neither a header, a row nor blank,
	// and rows that did not parse (too few fields, a number that is not one,
	// an unknown type, an empty pxname or svname).
	Skipped int
}

// Find returns the row of proxy and server (FRONTEND and BACKEND name the
// proxy's own rows).
func (r StatsResult) Find(proxy, server string) (Stat, bool) {
	for _, s := range r.Rows {
		if s.Proxy == proxy && s.Server == server {
			return s, true
		}
	}
	return Stat{}, false
}

// Servers returns the server rows of backend, in HAProxy's order.
func (r StatsResult) Servers(backend string) []Stat {
	var out []Stat
	for _, s := range r.Rows {
		if s.Proxy == backend && s.Type == TypeServer {
			out = append(out, s)
		}
	}
	return out
}

// ErrNoHeader is returned by the parsers for input without a header line.
var ErrNoHeader = errors.New("haproxy: no header line")

// MissingColumnError says that a header lacks a column the parser needs.
type MissingColumnError struct {
	Column string
	Header string // the header line, "# " included
}

func (e *MissingColumnError) Error() string {
	return fmt.Sprintf("haproxy: header has no %q column: %.200q", e.Column, e.Header)
}

// The CSV columns that ParseStats needs.
var statsRequired = []string{"pxname", "svname", "status", "type"}

// statsColumns maps column names to their index in a row.
type statsColumns struct {
	index map[string]int
	n     int // fields a row must have at least: the header's names
}

func (c *statsColumns) get(row []string, name string) (string, bool) {
	i, ok := c.index[name]
	if !ok || i >= len(row) {
		return "", false
	}
	return row[i], true
}

// ParseStats parses HAProxy's statistics CSV (the body of "<stats uri>;csv"
// or the reply to "show stat"). See the package documentation for what it
// accepts and skips. Its only errors are ErrNoHeader and
// *MissingColumnError.
func ParseStats(data []byte) (StatsResult, error) {
	var res StatsResult
	var cols *statsColumns
	for len(data) > 0 {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if line[0] == '#' {
			c, err := parseStatsHeader(string(line))
			if err != nil {
				return StatsResult{}, err
			}
			if c == nil { // a comment, not a header
				res.Skipped++
				continue
			}
			cols = c
			continue
		}
		if cols == nil {
			res.Skipped++
			continue
		}
		st, ok := parseStatsRow(cols, string(line))
		if !ok {
			res.Skipped++
			continue
		}
		res.Rows = append(res.Rows, st)
	}
	if cols == nil {
		return StatsResult{}, ErrNoHeader
	}
	return res, nil
}

// splitCSVLine splits one line of CSV, quotes as RFC 4180 (HAProxy quotes
// fields holding a comma or a quote), lazily about stray quotes.
func splitCSVLine(line string) ([]string, error) {
	r := csv.NewReader(strings.NewReader(line))
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	fields, err := r.Read()
	if err != nil {
		return nil, err
	}
	// A quoted field may hold a line break only if the line had one; ours
	// has none, so one record is the whole line.
	return fields, nil
}

// parseStatsHeader returns the columns of a "# pxname,svname,..." line, or
// nil when the line has no comma (a comment, not a header).
func parseStatsHeader(line string) (*statsColumns, error) {
	names, err := splitCSVLine(strings.TrimLeft(strings.TrimPrefix(line, "#"), " "))
	if err != nil {
		names = nil
	}
	// Every field is followed by a comma: drop the empty name after the last.
	for len(names) > 0 && names[len(names)-1] == "" {
		names = names[:len(names)-1]
	}
	c := &statsColumns{index: make(map[string]int, len(names)), n: len(names)}
	for i, name := range names {
		name = strings.TrimSpace(name)
		if name == "" || name == "-" {
			continue
		}
		if _, dup := c.index[name]; !dup {
			c.index[name] = i
		}
	}
	if !strings.Contains(line, ",") {
		return nil, nil
	}
	for _, name := range statsRequired {
		if _, ok := c.index[name]; !ok {
			return nil, &MissingColumnError{Column: name, Header: line}
		}
	}
	return c, nil
}

func parseStatsRow(c *statsColumns, line string) (Stat, bool) {
	row, err := splitCSVLine(line)
	if err != nil || len(row) < c.n {
		return Stat{}, false
	}
	str := func(name string) string {
		v, _ := c.get(row, name)
		return v
	}
	bad := false
	num := func(name string) int64 {
		v, ok := c.get(row, name)
		if !ok || v == "" {
			return 0
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			bad = true
		}
		return n
	}

	st := Stat{
		Proxy:  str("pxname"),
		Server: str("svname"),
		Status: str("status"),
	}
	if st.Proxy == "" || st.Server == "" {
		return Stat{}, false
	}
	code, err := strconv.Atoi(str("type"))
	if err != nil || code < 0 || code >= len(typeByCode) {
		return Stat{}, false
	}
	st.Type = typeByCode[code]

	check := str("check_status")
	if rest, ok := strings.CutPrefix(check, "* "); ok {
		check, st.CheckRunning = rest, true
	}
	st.CheckStatus = check
	st.CheckCode = num("check_code")
	st.CheckDesc = str("check_desc")
	st.Weight = num("weight")
	st.ActiveServers = num("act")
	st.BackupServers = num("bck")
	st.CurrentSessions = num("scur")
	st.MaxSessions = num("smax")
	st.SessionLimit = num("slim")
	st.TotalSessions = num("stot")
	st.BytesIn = num("bin")
	st.BytesOut = num("bout")
	st.CheckFailures = num("chkfail")
	st.CheckDowns = num("chkdown")
	st.LastChangeSeconds = num("lastchg")
	st.DowntimeSeconds = num("downtime")
	st.ProxyID = num("iid")
	st.ServerID = num("sid")
	st.Addr = str("addr")
	st.Mode = str("mode")
	if bad {
		return Stat{}, false
	}
	return st, true
}
