package haproxy

import (
	"strconv"
	"strings"
)

// The normalized states that NormalizeStatus returns.
const (
	StateUp      = "UP"      // serving (also "UP n/m" going down, and "no check")
	StateDown    = "DOWN"    // not serving (also "DOWN n/m" coming up, "DOWN (agent)")
	StateDrain   = "DRAIN"   // up, but takes no new load-balanced traffic
	StateNoLB    = "NOLB"    // up, but its check asks for no new traffic (http-check disable-on-404)
	StateMaint   = "MAINT"   // in maintenance (by command, by config, through a tracked server, DNS)
	StateOpen    = "OPEN"    // a frontend or listener accepting connections
	StateStop    = "STOP"    // a frontend or listener stopped
	StateUnknown = "UNKNOWN" // anything else
)

// StatusInfo is a status text taken apart by ParseStatus.
type StatusInfo struct {
	// Raw is the text as HAProxy printed it.
	Raw string
	// State is the normalized state, one of the State constants.
	State string
	// Health and Span are n and m of a transitional status such as "UP 1/3"
	// or "DOWN 1/2"; both are 0 when the status is not transitional. For UP,
	// NOLB and DRAIN, n/m counts the checks still allowed to fail before the
	// server goes DOWN; for DOWN, the successful checks so far out of those
	// needed to come UP.
	Health, Span int
	// Reason is the text in parentheses: "agent", "via be/srv", "resolution".
	Reason string
	// Via is the tracked server "be/srv" of "MAINT (via be/srv)".
	Via string
	// NoCheck is true for "no check": a server without a health check, which
	// HAProxy treats as up (State is StateUp).
	NoCheck bool
}

// Transitional reports whether the status is between two states, with a
// health count n/m ("UP 1/3": still up, failing; "DOWN 1/2": still down,
// recovering).
func (s StatusInfo) Transitional() bool { return s.Span > 0 }

// NormalizeStatus reduces an HAProxy status text to one of the State
// constants:
//
//   - "UP", "UP n/m" and "no check" are StateUp: a server going down ("UP 1/3")
//     still takes traffic, and "no check" is a server without a health check,
//     which HAProxy counts as up.
//   - "DOWN", "DOWN n/m", "DOWN (agent)" are StateDown: a server coming up
//     ("DOWN 1/2") takes no traffic yet.
//   - "DRAIN", "DRAIN n/m", "DRAIN (agent)" are StateDrain.
//   - "NOLB", "NOLB n/m" are StateNoLB.
//   - "MAINT", "MAINT (via be/srv)", "MAINT (resolution)" are StateMaint.
//   - "OPEN" and "STOP" (frontends, listeners) are kept.
//   - Anything else, the empty string included, is StateUnknown.
//
// Words are compared without regard to case; "MAINT(via x)" without the
// space, as older documentation spells it, is understood too. ParseStatus
// keeps what normalizing drops.
func NormalizeStatus(raw string) string { return ParseStatus(raw).State }

// ParseStatus takes an HAProxy status text apart; see NormalizeStatus and
// StatusInfo.
func ParseStatus(raw string) StatusInfo {
	info := StatusInfo{Raw: raw, State: StateUnknown}
	s := strings.TrimSpace(raw)
	if strings.EqualFold(s, "no check") {
		info.State = StateUp
		info.NoCheck = true
		return info
	}
	if i := strings.IndexByte(s, '('); i >= 0 {
		if !strings.HasSuffix(s, ")") {
			return info
		}
		info.Reason = strings.TrimSpace(s[i+1 : len(s)-1])
		s = strings.TrimSpace(s[:i])
		if via, ok := cutPrefixFold(info.Reason, "via "); ok {
			info.Via = strings.TrimSpace(via)
		}
	}
	words := strings.Fields(s)
	if len(words) == 0 || len(words) > 2 {
		return info
	}
	state := strings.ToUpper(words[0])
	switch state {
	case StateUp, StateDown, StateDrain, StateNoLB, StateMaint, StateOpen, StateStop:
	default:
		return info
	}
	if len(words) == 2 {
		n, m, ok := parseFraction(words[1])
		if !ok {
			return info
		}
		switch state {
		case StateUp, StateDown, StateDrain, StateNoLB:
		default:
			return info // MAINT 1/2 and the like do not exist
		}
		info.Health, info.Span = n, m
	}
	if info.Reason != "" && state != StateDown && state != StateDrain && state != StateMaint {
		return info // only DOWN (agent), DRAIN (agent), MAINT (...) exist
	}
	info.State = state
	return info
}

// parseFraction parses "n/m" with 0 <= n and 0 < m.
func parseFraction(s string) (n, m int, ok bool) {
	a, b, found := strings.Cut(s, "/")
	if !found {
		return 0, 0, false
	}
	n, err1 := strconv.Atoi(a)
	m, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || n < 0 || m <= 0 {
		return 0, 0, false
	}
	return n, m, true
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}
