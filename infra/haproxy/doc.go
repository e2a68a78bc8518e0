// Package haproxy reads and steers HAProxy 2.6: it reads the statistics CSV
// (over HTTP from a "stats uri" frontend, or with "show stat" on the runtime
// API), reads "show servers state", and puts servers into maintenance, drain
// or back into service through the runtime API.
//
// # Parsing
//
// ParseStats and ParseServersState map columns by the names in the header
// line, not by position: the CSV header starts with "# " and every field, the
// last included, is followed by a comma; after HAProxy's fixed columns comes a
// column named "-" and then columns of optional modules (ssl, h1, h2, ...),
// which are ignored. A header without a required column (pxname, svname,
// status, type for the CSV; be_name, srv_name, srv_op_state, srv_admin_state
// for the servers state) is an error; so is input without a header
// (ErrNoHeader). Lines that are not rows (garbage, rows with fewer fields
// than the header, numbers that do not parse, an unknown type, lines before
// the header, "#" lines that are not headers) are skipped and counted in the
// result's Skipped field; blank lines are ignored. A later header replaces
// the earlier one. The parsers never panic.
//
// # Statuses
//
// Stat.Status is HAProxy's status text as printed: "UP", "UP 1/3", "DOWN",
// "DOWN 1/2", "DOWN (agent)", "NOLB", "DRAIN", "DRAIN (agent)", "MAINT",
// "MAINT (via be/srv)", "MAINT (resolution)", "no check" for servers; "UP" or
// "DOWN" for backends; "OPEN" or "STOP" for frontends and listeners.
// NormalizeStatus reduces it to one word, and ParseStatus keeps the rest (the
// n/m of a transition, the reason in parentheses). See NormalizeStatus for
// the mapping, in short:
//
//	UP, UP n/m, no check             -> UP    (UP n/m is still serving; "no check" is up without a health check)
//	DOWN, DOWN n/m, DOWN (agent)     -> DOWN  (DOWN n/m is not serving yet)
//	DRAIN, DRAIN n/m, DRAIN (agent)  -> DRAIN
//	NOLB, NOLB n/m                   -> NOLB
//	MAINT, MAINT (via b/s), MAINT (resolution) -> MAINT
//	OPEN, STOP                       -> kept
//	anything else                    -> UNKNOWN
//
// # Runtime API
//
// Client.RuntimeAddr is a unix socket path or host:port (HAProxy's own
// prefixes unix@, ipv4@ and ipv6@ are accepted). Each command uses a
// connection of its own; the reply ends with an empty line or when HAProxy
// closes the connection. Commands that succeed silently (disable server,
// enable server, set server ... state) answer with the empty line only;
// anything else is HAProxy's error message and is returned as a
// *CommandError. errors.Is(err, ErrNotFound) holds for "No such server.",
// "No such backend." and "Can't find backend."; errors.Is(err,
// ErrPermissionDenied) for "Permission denied" (a socket without "level
// admin"). The message itself is CommandError.Message, for example for an
// HTTP API that answers 404 with HAProxy's words.
//
// Backend and server names are checked before they are sent (letters, digits
// and . : _ - as HAProxy allows, or #<id>), so a name cannot smuggle a second
// command (";") into the line.
//
// # Addresses in the CSV
//
// HAProxy prints the addr column on the runtime API (level operator or
// admin) but over HTTP only when the stats frontend has "stats show-legends";
// without it Stat.Addr is empty. ServerState.Addr and Port come from "show
// servers state" and are always there.
package haproxy
