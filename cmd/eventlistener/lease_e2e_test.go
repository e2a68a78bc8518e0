package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"eventlistener/internal/testenv"
)

// holding is one answer of a node saying it held the duties.
type holding struct {
	node       int
	token      int64
	sent, recv time.Time
}

// admins is the nodes' admin URLs, which change when a node restarts.
type admins struct {
	mu   sync.Mutex
	urls []string
}

func (a *admins) get() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.urls...)
}

func (a *admins) set(i int, url string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.urls[i] = url
}

// watchHolders polls every node's /v1/node and records who says it holds
// the duties, until stop is closed.
func watchHolders(nodes *admins, stop <-chan struct{}, out chan<- []holding) {
	client := &http.Client{Timeout: 200 * time.Millisecond}
	var seen []holding
	for {
		select {
		case <-stop:
			out <- seen
			return
		default:
		}
		for i, admin := range nodes.get() {
			sent := time.Now()
			res, err := client.Get(admin + "/v1/node")
			if err != nil {
				continue // frozen or down
			}
			var n struct {
				Master struct {
					Master bool
					Token  int64 `json:"fencing_token"`
				}
			}
			json.NewDecoder(res.Body).Decode(&n)
			res.Body.Close()
			if n.Master.Master {
				seen = append(seen, holding{node: i, token: n.Master.Token, sent: sent, recv: time.Now()})
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Without a VIP, nodes sharing a Redis elect one duty holder with a lease:
// over handovers forced by freezing the holder (SIGSTOP) past its lease
// and by killing it, another takes over within a few seconds, and no two
// nodes ever hold the duties at once.
func TestDutyLeaseHandovers(t *testing.T) {
	r := testenv.RedisServer(t)
	nodes := make([]*proc, 3)
	dirs := make([]string, 3)
	args := func(i int) []string {
		return []string{"--redis-url", "redis://" + r.Addr, "--node-id", fmt.Sprint("node-", i), "--duty-lease", "900ms", "--node-heartbeat", "500ms"}
	}
	for i := range nodes {
		dirs[i] = t.TempDir()
		nodes[i] = startServeIn(t, dirs[i], args(i)...)
	}
	holder := func(exclude int) (int, int64) { t.Helper(); return dutyHolder(t, nodes, exclude) }

	urls := &admins{urls: make([]string, len(nodes))}
	for i, p := range nodes {
		urls.set(i, p.admin)
	}
	stop, out := make(chan struct{}), make(chan []holding, 1)
	go watchHolders(urls, stop, out)

	h, tok := holder(-1)
	for round := range 5 {
		p := nodes[h]
		frozeAt := time.Now()
		p.cmd.Process.Signal(syscall.SIGSTOP)
		next, nextTok := holder(h)
		took := time.Since(frozeAt)
		if nextTok <= tok {
			t.Fatalf("round %d: node %d took over with fencing token %d, not above %d", round, next, nextTok, tok)
		}
		t.Logf("round %d: node %d frozen, node %d took over after %s (token %d)", round, h, next, took.Round(10*time.Millisecond), nextTok)
		time.Sleep(300 * time.Millisecond)
		p.cmd.Process.Signal(syscall.SIGCONT)
		time.Sleep(500 * time.Millisecond) // the thawed node answers, and must not claim the duties
		h, tok = next, nextTok
	}
	// The holder killed: another takes over; it comes back as a member.
	nodes[h].cmd.Process.Kill()
	<-nodes[h].done
	killed := h
	h, tok = holder(killed)
	nodes[killed] = startServeIn(t, dirs[killed], args(killed)...)
	urls.set(killed, nodes[killed].admin)
	time.Sleep(time.Second)
	close(stop)
	seen := <-out

	// Each holding (fencing token) belongs to one node, and a node never
	// claimed a holding after another node was seen holding a later one.
	owner := map[int64]int{}
	first, last := map[int64]time.Time{}, map[int64]time.Time{}
	for _, s := range seen {
		if o, ok := owner[s.token]; ok && o != s.node {
			t.Fatalf("fencing token %d claimed by nodes %d and %d", s.token, o, s.node)
		}
		owner[s.token] = s.node
		if f, ok := first[s.token]; !ok || s.recv.Before(f) {
			first[s.token] = s.recv
		}
		if l := last[s.token]; s.sent.After(l) {
			last[s.token] = s.sent
		}
	}
	var tokens []int64
	for k := range owner {
		tokens = append(tokens, k)
	}
	sort.Slice(tokens, func(i, j int) bool { return tokens[i] < tokens[j] })
	for i := 1; i < len(tokens); i++ {
		for _, older := range tokens[:i] {
			if last[older].After(first[tokens[i]]) {
				t.Fatalf("node %d still claimed token %d after node %d was seen holding token %d: two holders at once",
					owner[older], older, owner[tokens[i]], tokens[i])
			}
		}
	}
	if len(tokens) < 6 {
		t.Fatalf("saw %d holdings over 6 handovers: %v", len(tokens), tokens)
	}
	for _, p := range nodes {
		p.stop(t)
	}
}

// dutyHolder waits up to 5 s for a node but exclude (-1: none) to say it
// holds the duties, and returns it and its fencing token.
func dutyHolder(t *testing.T, nodes []*proc, exclude int) (int, int64) {
	t.Helper()
	client := &http.Client{Timeout: 200 * time.Millisecond}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for i, p := range nodes {
			if i == exclude {
				continue
			}
			var n struct {
				Master struct {
					Master bool
					Token  int64 `json:"fencing_token"`
				}
			}
			res, err := client.Get(p.admin + "/v1/node")
			if err != nil {
				continue
			}
			json.NewDecoder(res.Body).Decode(&n)
			res.Body.Close()
			if n.Master.Master {
				return i, n.Master.Token
			}
		}
	}
	t.Fatalf("no node took the duties within 5s (excluding node %d)", exclude)
	return -1, 0
}
