package vip

import (
	"errors"
	"net"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	ipnet := func(s string) net.Addr {
		ip, n, _ := net.ParseCIDR(s)
		n.IP = ip
		return n
	}
	tests := []struct {
		name   string
		vip    string
		ifaces map[string][]net.Addr
		err    error
		master bool
		reason string
	}{
		{"held", "10.0.0.5", map[string][]net.Addr{"eth0": {ipnet("10.0.0.2/24"), ipnet("10.0.0.5/32")}}, nil, true, "on eth0"},
		{"not held", "10.0.0.5", map[string][]net.Addr{"eth0": {ipnet("10.0.0.2/24")}}, nil, false, "no interface"},
		{"ipv6", "fd00::5", map[string][]net.Addr{"eth0": {ipnet("fd00::5/128")}}, nil, true, "fd00::5"},
		{"listing fails", "10.0.0.5", nil, errors.New("netlink: permission denied"), false, "cannot list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(tt.vip)
			if err != nil {
				t.Fatal(err)
			}
			c.interfaces = func() (map[string][]net.Addr, error) { return tt.ifaces, tt.err }
			s := c.Check()
			if s.Master != tt.master || !strings.Contains(s.Reason, tt.reason) || s.Unknown != (tt.err != nil) {
				t.Fatalf("Check() = %+v, want master=%v and a reason with %q", s, tt.master, tt.reason)
			}
		})
	}
}

func TestRealInterfaces(t *testing.T) {
	held, _ := Parse("127.0.0.1")
	if s := held.Check(); !s.Master {
		t.Fatalf("127.0.0.1 is not found on this host: %+v", s)
	}
	// 192.0.2.0/24 is TEST-NET-1: no host holds it; it is never contacted.
	other, _ := Parse("192.0.2.10")
	if s := other.Check(); s.Master {
		t.Fatalf("192.0.2.10 found on this host: %+v", s)
	}
	if _, err := Parse("not-an-ip"); err == nil {
		t.Fatal("Parse accepted not-an-ip")
	}
}
