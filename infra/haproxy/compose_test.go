package haproxy

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"

	"eventlistener/internal/testenv"
)

// loadCompose loads the repository's docker-compose.yml as Docker Compose
// would (there is no Docker engine to run it).
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "docker-compose.yml")}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) { o.SetProjectName("eventlistener", true) })
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	return p
}

// engineAddr reads the address the engine's environment variable name
// gives, with the engine's service.
func engineAddr(t *testing.T, p *types.Project, name string) (engine types.ServiceConfig, host, port string) {
	t.Helper()
	engine, err := p.GetService("eventlistener")
	if err != nil {
		t.Fatal(err)
	}
	addr := engine.Environment[name]
	if addr == nil {
		t.Fatalf("the engine has no %s", name)
	}
	if host, port, err = net.SplitHostPort(*addr); err != nil {
		t.Fatalf("%s %q: %v", name, *addr, err)
	}
	return engine, host, port
}

// statsSockets lists the addresses of the runtime API in haproxy.cfg.
func statsSockets(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && fields[0] == "stats" && fields[1] == "socket" {
			out = append(out, fields[2])
		}
	}
	return out
}

// In docker-compose, HAProxy's runtime API (level admin, no authentication)
// is reachable from the engine alone: HAProxy binds it to its address on an
// internal network that only HAProxy and the engine join, and no port of it
// is published.
func TestComposeRuntimeAPIIsReachableOnlyFromTheEngine(t *testing.T) {
	p := loadCompose(t)
	hap, err := p.GetService("haproxy")
	if err != nil {
		t.Fatal(err)
	}
	_, host, port := engineAddr(t, p, "EVENTLISTENER_HAPROXY_RUNTIME_ADDR")

	// The network HAProxy has that address on.
	var netName string
	for name, cfg := range hap.Networks {
		if cfg != nil && cfg.Ipv4Address == host {
			netName = name
		}
	}
	if netName == "" {
		t.Fatalf("HAProxy has no fixed address %s on any network: the engine's runtime address must be HAProxy's address on a private network", host)
	}
	nw := p.Networks[netName]
	if !nw.Internal {
		t.Errorf("network %s is not internal", netName)
	}
	if len(nw.Ipam.Config) == 0 {
		t.Errorf("network %s has no subnet", netName)
	} else if _, sub, err := net.ParseCIDR(nw.Ipam.Config[0].Subnet); err != nil || !sub.Contains(net.ParseIP(host)) {
		t.Errorf("network %s: subnet %q does not hold %s (%v)", netName, nw.Ipam.Config[0].Subnet, host, err)
	}
	var members []string
	for _, s := range p.Services {
		if _, ok := s.Networks[netName]; ok {
			members = append(members, s.Name)
		}
	}
	slices.Sort(members)
	if !slices.Equal(members, []string{"eventlistener", "eventlistener-2", "haproxy"}) {
		t.Errorf("network %s is joined by %v, want only the engine nodes and haproxy", netName, members)
	}

	// HAProxy binds the runtime API to that address alone.
	socks := statsSockets(t)
	if len(socks) == 0 {
		t.Fatal("haproxy.cfg has no stats socket")
	}
	for _, s := range socks {
		if strings.HasPrefix(s, "/") || strings.HasPrefix(s, "unix@") {
			continue // a unix socket: only who can open the file
		}
		if want := "ipv4@" + net.JoinHostPort(host, port); s != want {
			t.Errorf("haproxy.cfg: stats socket %s, want %s (bound to the private network's address alone)", s, want)
		}
	}

	// And no port of it is published.
	for _, s := range p.Services {
		for _, pc := range s.Ports {
			if pc.Published == port || (s.Name == "haproxy" && pc.Target == mustAtoi(t, port)) {
				t.Errorf("service %s publishes port %s", s.Name, port)
			}
		}
	}
}

// The engine's admin listener is published on the host's loopback only.
func TestComposeAdminListenerIsLoopbackOnly(t *testing.T) {
	p := loadCompose(t)
	engine, _, port := engineAddr(t, p, "EVENTLISTENER_ADMIN_ADDR")
	found := false
	for _, pc := range engine.Ports {
		if pc.Target == mustAtoi(t, port) {
			found = true
			if pc.HostIP != "127.0.0.1" {
				t.Errorf("the admin port is published on %q, want 127.0.0.1", pc.HostIP)
			}
		}
	}
	if !found {
		t.Errorf("the admin port %s is not published", port)
	}
	for _, s := range p.Services {
		for _, pc := range s.Ports {
			if pc.HostIP != "127.0.0.1" {
				t.Errorf("service %s publishes %s on %q, not the loopback", s.Name, pc.Published, pc.HostIP)
			}
		}
	}
}

func mustAtoi(t *testing.T, s string) uint32 {
	t.Helper()
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		t.Fatalf("port %q: %v", s, err)
	}
	return uint32(n)
}

// HAProxy itself takes docker-compose's haproxy.cfg.
func TestComposeHAProxyConfigIsValid(t *testing.T) {
	bin := testenv.RequireBinary(t, "haproxy", "haproxy")
	out, err := exec.Command(bin, "-c", "-f", "haproxy.cfg").CombinedOutput()
	if err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
}

// docker-compose runs two engine nodes behind HAProxy: each its own node id
// (the host name) and WAL volume, both in haproxy.cfg's backend, both
// scraped by Prometheus with the alert rules and shown by Grafana.
func TestComposeRunsTwoNodes(t *testing.T) {
	p := loadCompose(t)
	cfg, err := os.ReadFile("haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	prom, err := os.ReadFile("../prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	hosts, volumes := map[string]bool{}, map[string]bool{}
	for _, name := range []string{"eventlistener", "eventlistener-2"} {
		s, err := p.GetService(name)
		if err != nil {
			t.Fatal(err)
		}
		if s.Hostname == "" || hosts[s.Hostname] {
			t.Errorf("%s: host name (its node id) %q is empty or taken", name, s.Hostname)
		}
		hosts[s.Hostname] = true
		if len(s.Volumes) != 1 || volumes[s.Volumes[0].Source] {
			t.Errorf("%s: the WAL volume %v must be its own", name, s.Volumes)
		} else {
			volumes[s.Volumes[0].Source] = true
		}
		if s.Environment["EVENTLISTENER_REDIS_SENTINELS"] == nil {
			t.Errorf("%s has no Redis: no registry, no lease", name)
		}
		if !strings.Contains(string(cfg), " "+name+":8080 check") {
			t.Errorf("haproxy.cfg does not send to %s", name)
		}
		if !strings.Contains(string(prom), `"`+name+`:8081"`) {
			t.Errorf("Prometheus does not scrape %s's admin listener", name)
		}
	}
	for _, name := range []string{"prometheus", "grafana"} {
		s, err := p.GetService(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range s.Volumes {
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("%s mounts %s, which is not in the repository: %v", name, v.Source, err)
			}
		}
	}
	bin := testenv.RequireBinary(t, "promtool", "prometheus")
	if out, err := exec.Command(bin, "check", "config", "--syntax-only", "../prometheus/prometheus.yml").CombinedOutput(); err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
}
