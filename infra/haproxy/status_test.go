package haproxy

import "testing"

func TestParseStatus(t *testing.T) {
	for _, tc := range []struct {
		raw          string
		state        string
		health, span int
		reason, via  string
		noCheck      bool
	}{
		{raw: "UP", state: StateUp},
		{raw: "UP 1/3", state: StateUp, health: 1, span: 3},
		{raw: "UP 2/3", state: StateUp, health: 2, span: 3},
		{raw: "DOWN", state: StateDown},
		{raw: "DOWN 1/2", state: StateDown, health: 1, span: 2},
		{raw: "DOWN (agent)", state: StateDown, reason: "agent"},
		{raw: "NOLB", state: StateNoLB},
		{raw: "NOLB 1/2", state: StateNoLB, health: 1, span: 2},
		{raw: "DRAIN", state: StateDrain},
		{raw: "DRAIN 2/3", state: StateDrain, health: 2, span: 3},
		{raw: "DRAIN (agent)", state: StateDrain, reason: "agent"},
		{raw: "MAINT", state: StateMaint},
		{raw: "MAINT (via be_app/s1)", state: StateMaint, reason: "via be_app/s1", via: "be_app/s1"},
		{raw: "MAINT(via be/s)", state: StateMaint, reason: "via be/s", via: "be/s"},
		{raw: "MAINT (resolution)", state: StateMaint, reason: "resolution"},
		{raw: "no check", state: StateUp, noCheck: true},
		{raw: "OPEN", state: StateOpen},
		{raw: "STOP", state: StateStop},
		{raw: "up", state: StateUp},
		{raw: " UP ", state: StateUp},
		// Not statuses.
		{raw: "", state: StateUnknown},
		{raw: "FOO", state: StateUnknown},
		{raw: "UP x/3", state: StateUnknown},
		{raw: "UP 1/0", state: StateUnknown},
		{raw: "UP -1/3", state: StateUnknown},
		{raw: "UP 1/3 extra", state: StateUnknown},
		{raw: "MAINT 1/2", state: StateUnknown},
		{raw: "UP (agent)", state: StateUnknown},
		{raw: "MAINT (via", state: StateUnknown},
		{raw: "(via x)", state: StateUnknown},
	} {
		got := ParseStatus(tc.raw)
		if got.Raw != tc.raw || got.State != tc.state || NormalizeStatus(tc.raw) != tc.state {
			t.Errorf("ParseStatus(%q) = %+v; NormalizeStatus %q; want state %q", tc.raw, got, NormalizeStatus(tc.raw), tc.state)
			continue
		}
		if tc.state == StateUnknown {
			continue
		}
		if got.Health != tc.health || got.Span != tc.span || got.Transitional() != (tc.span > 0) ||
			got.Reason != tc.reason || got.Via != tc.via || got.NoCheck != tc.noCheck {
			t.Errorf("ParseStatus(%q) = %+v, want health %d/%d reason %q via %q noCheck %v",
				tc.raw, got, tc.health, tc.span, tc.reason, tc.via, tc.noCheck)
		}
	}
}
