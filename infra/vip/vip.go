// Package vip tells whether this host holds a virtual IP address (one that
// keepalived or a similar tool moves between nodes), which makes it the
// master node.
package vip

import (
	"fmt"
	"net"
	"net/netip"
)

// Status is the answer of one check.
type Status struct {
	Master bool   `json:"master"`
	Reason string `json:"reason"`
	// Unknown says the check itself failed (the interfaces could not be
	// listed): Master means nothing then, and the last answer should stand.
	Unknown bool `json:"-"`
}

// Checker looks for Addr on the host's interfaces.
type Checker struct {
	Addr netip.Addr
	// interfaces lists the interfaces and their addresses; nil means the
	// host's (tests replace it).
	interfaces func() (map[string][]net.Addr, error)
}

// Parse reads a --vip value.
func Parse(s string) (Checker, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return Checker{}, fmt.Errorf("--vip must be an IP address, got %q", s)
	}
	return Checker{Addr: a.Unmap()}, nil
}

// Check says whether an interface holds the address, and why.
func (c Checker) Check() Status {
	list := c.interfaces
	if list == nil {
		list = hostInterfaces
	}
	ifaces, err := list()
	if err != nil {
		return Status{Unknown: true, Reason: fmt.Sprintf("cannot list the interfaces: %v", err)}
	}
	for name, addrs := range ifaces {
		for _, a := range addrs {
			var ip net.IP
			switch v := a.(type) {
			case *net.IPNet:
				ip = v.IP
			case *net.IPAddr:
				ip = v.IP
			}
			if got, ok := netip.AddrFromSlice(ip); ok && got.Unmap() == c.Addr {
				return Status{Master: true, Reason: fmt.Sprintf("this host holds the VIP %s on %s", c.Addr, name)}
			}
		}
	}
	return Status{Reason: fmt.Sprintf("no interface of this host holds the VIP %s", c.Addr)}
}

func hostInterfaces() (map[string][]net.Addr, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	out := make(map[string][]net.Addr, len(ifs))
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, err := i.Addrs()
		if err != nil {
			return nil, err
		}
		out[i.Name] = addrs
	}
	return out, nil
}
