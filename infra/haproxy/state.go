package haproxy

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// OpState is a server's operational state (srv_op_state).
type OpState int

// The operational states.
const (
	OpStopped  OpState = 0 // down
	OpStarting OpState = 1 // coming up (slowstart)
	OpRunning  OpState = 2 // up
	OpStopping OpState = 3 // going down (draining its sessions)
)

func (s OpState) String() string {
	switch s {
	case OpStopped:
		return "stopped"
	case OpStarting:
		return "starting"
	case OpRunning:
		return "running"
	case OpStopping:
		return "stopping"
	}
	return "unknown(" + strconv.Itoa(int(s)) + ")"
}

// AdminState is a server's administrative state (srv_admin_state), a bit
// mask.
type AdminState uint32

// The bits of AdminState.
const (
	AdminFMaint AdminState = 0x01 // forced maintenance: "disable server", "set server ... state maint"
	AdminIMaint AdminState = 0x02 // maintenance inherited from a tracked server
	AdminCMaint AdminState = 0x04 // "disabled" in the configuration
	AdminFDrain AdminState = 0x08 // forced drain: "set server ... state drain" (or an agent's "drain")
	AdminIDrain AdminState = 0x10 // drain inherited from a tracked server
	AdminRMaint AdminState = 0x20 // maintenance because DNS resolution failed
	AdminHMaint AdminState = 0x40 // maintenance because the server's FQDN changed by the CLI
)

const (
	adminMaintMask = AdminFMaint | AdminIMaint | AdminCMaint | AdminRMaint | AdminHMaint
	adminDrainMask = AdminFDrain | AdminIDrain
)

// Maintenance reports whether any maintenance bit is set (FMAINT, IMAINT,
// CMAINT, RMAINT, HMAINT).
func (a AdminState) Maintenance() bool { return a&adminMaintMask != 0 }

// Draining reports whether a drain bit is set (FDRAIN, IDRAIN).
func (a AdminState) Draining() bool { return a&adminDrainMask != 0 }

var adminBitNames = []struct {
	bit  AdminState
	name string
}{
	{AdminFMaint, "FMAINT"}, {AdminIMaint, "IMAINT"}, {AdminCMaint, "CMAINT"},
	{AdminFDrain, "FDRAIN"}, {AdminIDrain, "IDRAIN"}, {AdminRMaint, "RMAINT"},
	{AdminHMaint, "HMAINT"},
}

// String names the bits, as "FMAINT|CMAINT"; "none" for 0; unknown bits in
// hexadecimal.
func (a AdminState) String() string {
	if a == 0 {
		return "none"
	}
	var parts []string
	for _, b := range adminBitNames {
		if a&b.bit != 0 {
			parts = append(parts, b.name)
			a &^= b.bit
		}
	}
	if a != 0 {
		parts = append(parts, fmt.Sprintf("0x%x", uint32(a)))
	}
	return strings.Join(parts, "|")
}

// ServerState is one server of "show servers state". Strings that HAProxy
// prints as "-" (empty) are empty; numbers missing from the header are 0.
type ServerState struct {
	BackendID              int64      // be_id
	Backend                string     // be_name
	ServerID               int64      // srv_id
	Server                 string     // srv_name
	Addr                   string     // srv_addr: the IP address
	Port                   int64      // srv_port
	FQDN                   string     // srv_fqdn
	OpState                OpState    // srv_op_state
	AdminState             AdminState // srv_admin_state
	UserWeight             int64      // srv_uweight
	InitialWeight          int64      // srv_iweight
	SecondsSinceLastChange int64      // srv_time_since_last_change
	CheckStatus            int64      // srv_check_status (HAProxy's internal HCHK_STATUS_* number)
	CheckResult            int64      // srv_check_result: 0 unknown, 1 neutral, 2 failed, 3 passed, 4 condpass
	CheckHealth            int64      // srv_check_health
	CheckState             int64      // srv_check_state (bit mask)
	AgentState             int64      // srv_agent_state (bit mask)
}

// Maintenance reports whether the server is in maintenance, for whatever
// reason (AdminState.Maintenance).
func (s ServerState) Maintenance() bool { return s.AdminState.Maintenance() }

// Draining reports whether the server is draining (AdminState.Draining).
func (s ServerState) Draining() bool { return s.AdminState.Draining() }

// ServersStateResult is what ParseServersState found.
type ServersStateResult struct {
	// Version is the format version from the first line (1), or 0 when the
	// input started with the header.
	Version int
	// Servers are the servers in HAProxy's order.
	Servers []ServerState
	// Skipped counts the lines that were neither the version, a header, a
	// server nor blank, and server lines that did not parse (too few
	// fields, a number that is not one).
	Skipped int
}

// Find returns the state of backend's server.
func (r ServersStateResult) Find(backend, server string) (ServerState, bool) {
	for _, s := range r.Servers {
		if s.Backend == backend && s.Server == server {
			return s, true
		}
	}
	return ServerState{}, false
}

// ServersStateVersion is the only format version of "show servers state"
// that ParseServersState reads.
const ServersStateVersion = 1

// UnsupportedVersionError is returned for a "show servers state" dump whose
// first line is a version other than ServersStateVersion.
type UnsupportedVersionError struct{ Version string }

func (e *UnsupportedVersionError) Error() string {
	return fmt.Sprintf("haproxy: servers state format version %.40q, want %d", e.Version, ServersStateVersion)
}

// NotServersStateError is returned when the input starts with a line that is
// neither the version nor the header, such as an error message.
type NotServersStateError struct{ Line string }

func (e *NotServersStateError) Error() string {
	return fmt.Sprintf("haproxy: not a servers state dump: starts with %.200q", e.Line)
}

var stateRequired = []string{"be_name", "srv_name", "srv_op_state", "srv_admin_state"}

// ParseServersState parses the reply to "show servers state [<backend>]":
// the version line "1", then the header "# be_id be_name ..." naming the
// space-separated fields of the lines that follow. Input may start with the
// header itself. Errors: *NotServersStateError, *UnsupportedVersionError,
// ErrNoHeader, *MissingColumnError.
func ParseServersState(data []byte) (ServersStateResult, error) {
	var res ServersStateResult
	var index map[string]int // nil until the header
	ncols := 0
	first := true
	for len(data) > 0 {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		text := strings.TrimSpace(string(line))
		if text == "" {
			continue
		}
		if first {
			first = false
			if text[0] != '#' {
				if !isDigits(text) {
					return ServersStateResult{}, &NotServersStateError{Line: text}
				}
				v, err := strconv.Atoi(text)
				if err != nil || v != ServersStateVersion {
					return ServersStateResult{}, &UnsupportedVersionError{Version: text}
				}
				res.Version = v
				continue
			}
		}
		if text[0] == '#' {
			names := strings.Fields(text[1:])
			idx := make(map[string]int, len(names))
			for i, n := range names {
				if _, dup := idx[n]; !dup {
					idx[n] = i
				}
			}
			_, hasBe := idx["be_name"]
			_, hasSrv := idx["srv_name"]
			if !hasBe && !hasSrv {
				res.Skipped++ // a comment
				continue
			}
			for _, n := range stateRequired {
				if _, ok := idx[n]; !ok {
					return ServersStateResult{}, &MissingColumnError{Column: n, Header: text}
				}
			}
			index, ncols = idx, len(names)
			continue
		}
		if index == nil {
			res.Skipped++
			continue
		}
		s, ok := parseStateLine(index, ncols, strings.Fields(text))
		if !ok {
			res.Skipped++
			continue
		}
		res.Servers = append(res.Servers, s)
	}
	if index == nil {
		return ServersStateResult{}, ErrNoHeader
	}
	return res, nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func parseStateLine(index map[string]int, ncols int, fields []string) (ServerState, bool) {
	if len(fields) < ncols {
		return ServerState{}, false
	}
	str := func(name string) string {
		i, ok := index[name]
		if !ok || fields[i] == "-" {
			return ""
		}
		return fields[i]
	}
	bad := false
	num := func(name string) int64 {
		v := str(name)
		if v == "" {
			return 0
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			bad = true
		}
		return n
	}
	s := ServerState{
		BackendID:              num("be_id"),
		Backend:                str("be_name"),
		ServerID:               num("srv_id"),
		Server:                 str("srv_name"),
		Addr:                   str("srv_addr"),
		Port:                   num("srv_port"),
		FQDN:                   str("srv_fqdn"),
		UserWeight:             num("srv_uweight"),
		InitialWeight:          num("srv_iweight"),
		SecondsSinceLastChange: num("srv_time_since_last_change"),
		CheckStatus:            num("srv_check_status"),
		CheckResult:            num("srv_check_result"),
		CheckHealth:            num("srv_check_health"),
		CheckState:             num("srv_check_state"),
		AgentState:             num("srv_agent_state"),
	}
	op, err := strconv.ParseInt(fields[index["srv_op_state"]], 10, 32)
	if err != nil || op < 0 {
		return ServerState{}, false
	}
	admin, err := strconv.ParseUint(fields[index["srv_admin_state"]], 10, 32)
	if err != nil {
		return ServerState{}, false
	}
	s.OpState, s.AdminState = OpState(op), AdminState(admin)
	if bad || s.Backend == "" || s.Server == "" {
		return ServerState{}, false
	}
	return s, true
}
