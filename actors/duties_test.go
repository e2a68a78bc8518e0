package actors

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"eventlistener/infra/vip"
	"eventlistener/internal/testenv"
	"eventlistener/sinks"
	"eventlistener/sources"
)

func mustVIP(t *testing.T, s string) *vip.Checker {
	t.Helper()
	v, err := vip.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return &v
}

// waitMaster waits until the engine's node status says master == want
// and its singleton source runs (or not) to match.
func waitMaster(t *testing.T, e *testEngine, src *fakeSource, want bool, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var n NodeStatus
	for time.Now().Before(deadline) {
		n = e.Node(context.Background())
		if !n.Master.Since.IsZero() && n.Master.Master == want && n.Source(src.name).Running == want && src.active() == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("within %v: master=%v (%s), source running=%v (Run active: %v); want %v",
		within, n.Master.Master, n.Master.Reason, n.Source(src.name).Running, src.active(), want)
}

func TestVIPDecidesTheMasterDuties(t *testing.T) {
	newEngine := func(vipAddr string) (*testEngine, *fakeSink, *fakeSource) {
		s, src := newFakeSink("a"), newFakeSource("single", sources.Singleton)
		e := startEngine(t, Config{Sinks: []sinks.Sink{s}, MaxEvents: 1, VIP: mustVIP(t, vipAddr), DutyInterval: 50 * time.Millisecond,
			Sources: []sources.Source{src}})
		return e, s, src
	}
	holder, stored, hs := newEngine("127.0.0.1")
	// 192.0.2.10 is TEST-NET-1: no interface here holds it; it is never contacted.
	other, notStored, otherSrc := newEngine("192.0.2.10")
	waitMaster(t, holder, hs, true, 5*time.Second)
	waitMaster(t, other, otherSrc, false, 5*time.Second)
	if n := other.Node(context.Background()); !strings.Contains(n.Master.Reason, "no interface") || n.Master.VIP != "192.0.2.10" {
		t.Fatalf("master status = %+v", n.Master)
	}
	waitFor(t, "the singleton's events stored", func() bool { return stored.count() >= 3 })
	if notStored.count() != 0 || otherSrc.runs.Load() != 0 {
		t.Fatalf("the node without the VIP ran its singleton %d times and stored %d of its events", otherSrc.runs.Load(), notStored.count())
	}
}

// TestVIPMoves adds the VIP to, and removes it from, the loopback interface
// of a network namespace of its own, and checks that the master's duties
// start and stop within one interval. It needs root and ip(8); it runs
// itself again inside the namespace.
func TestVIPMoves(t *testing.T) {
	const vipAddr = "192.0.2.10"
	const interval = 200 * time.Millisecond
	if os.Getenv("EVENTLISTENER_TEST_IN_NETNS") == "" {
		ip := testenv.RequireBinary(t, "ip", "iproute2")
		if os.Geteuid() != 0 {
			t.Skip("needs root to make a network namespace")
		}
		ns := fmt.Sprintf("eventlistener-test-%d", os.Getpid())
		if out, err := exec.Command(ip, "netns", "add", ns).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add: %v %s", err, out)
		}
		t.Cleanup(func() { exec.Command(ip, "netns", "del", ns).Run() })
		if out, err := exec.Command(ip, "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
			t.Fatalf("lo up: %v %s", err, out)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, ip, "netns", "exec", ns, os.Args[0], "-test.run", "^TestVIPMoves$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "EVENTLISTENER_TEST_IN_NETNS="+ns)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestVIPMoves") {
			t.Fatalf("inside the namespace: %v\n%s", err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "became") {
				t.Log(strings.TrimSpace(line))
			}
		}
		return
	}

	// Inside the namespace: its own loopback, nothing else.
	ip := testenv.RequireBinary(t, "ip", "iproute2")
	src := newFakeSource("single", sources.Singleton)
	e := startEngine(t, Config{Sinks: []sinks.Sink{newFakeSink("a")}, VIP: mustVIP(t, vipAddr), DutyInterval: interval,
		Sources: []sources.Source{src}})
	waitMaster(t, e, src, false, 5*time.Second)
	for round := 0; round < 2; round++ {
		start := time.Now()
		if out, err := exec.Command(ip, "addr", "add", vipAddr+"/32", "dev", "lo").CombinedOutput(); err != nil {
			t.Fatalf("ip addr add: %v %s", err, out)
		}
		// One interval to notice, plus time to start.
		waitMaster(t, e, src, true, interval+time.Second)
		t.Logf("became master %v after the VIP arrived", time.Since(start).Round(time.Millisecond))
		start = time.Now()
		if out, err := exec.Command(ip, "addr", "del", vipAddr+"/32", "dev", "lo").CombinedOutput(); err != nil {
			t.Fatalf("ip addr del: %v %s", err, out)
		}
		waitMaster(t, e, src, false, interval+time.Second)
		t.Logf("became not master %v after the VIP left", time.Since(start).Round(time.Millisecond))
	}
}
