package sources

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"eventlistener/event"
	"eventlistener/infra/haproxy"
	infraredis "eventlistener/infra/redis"
	"eventlistener/internal/testenv"
)

// node is one node's proxy watcher with the cluster's change log,
// collecting what it would store.
type node struct {
	w      *Proxy
	stored []event.Event
	fails  bool
	master bool
}

func newNode(log ChangeLog) *node {
	n := &node{master: true}
	n.w = NewProxy(ProxyConfig{Source: "haproxy", Changes: log}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	n.w.env = Env{
		IngestAsHolder: func(_ context.Context, evs []event.Event) error {
			if !n.master {
				return ErrNotHolder // as the engine's
			}
			if n.fails {
				return errors.New("the engine is full")
			}
			n.stored = append(n.stored, evs...)
			return nil
		},
		Holder: func() bool { return n.master },
	}
	return n
}

// poll shows the node s1's status at a moment, changed lastchg seconds
// before it.
func (n *node) poll(status string, at time.Time, lastchg int64) {
	n.w.polled(&proxyPolled{rows: []haproxy.Stat{{Proxy: "web", Server: "s1", Type: haproxy.TypeServer, Status: status,
		LastChangeSeconds: lastchg}}, at: at})
}

// A change the last duty holder stored is not stored again by the next,
// a change it could not finish storing gets the same id from both, a
// change like an earlier one but at another moment is stored, and ids do
// not repeat when Redis loses the log.
func TestProxyChangesAreStoredOnceAcrossHandovers(t *testing.T) {
	srv := testenv.RedisServer(t)
	log, err := infraredis.NewChangeLog(infraredis.Options{URL: "redis://" + srv.Addr}, "el-test")
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	t0 := time.Now().UTC().Truncate(time.Second)
	sec := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }

	// Both nodes saw s1 UP; a, the holder, sees it go DOWN and stores it.
	a, b := newNode(log), newNode(log)
	a.poll("UP", sec(0), 100)
	b.poll("UP", sec(0), 100)
	a.poll("DOWN", sec(1), 0)
	if len(a.stored) != 1 {
		t.Fatalf("a stored %d events, want the change", len(a.stored))
	}
	// b takes over and sees the same change against its last poll: it is
	// stored already, so b stores nothing.
	b.poll("DOWN", sec(2), 1)
	if len(b.stored) != 0 {
		t.Fatalf("b stored %v again after a had", b.stored)
	}

	// While b is not the holder, s1 comes UP (nobody stores it) and goes
	// DOWN again: b, holding now, stores this second DOWN.
	b.master = false
	b.poll("UP", sec(10), 0)
	b.master = true
	b.poll("DOWN", sec(20), 0)
	if len(b.stored) != 1 || b.stored[0].ID == a.stored[0].ID {
		t.Fatalf("a second DOWN, 19 s after the first: b stored %v", b.stored)
	}

	// a's engine refuses the next change (it is stopping, say): it is not
	// recorded, so b stores it too, and with the same id.
	a.poll("DOWN", sec(21), 1)
	a.fails = true
	a.poll("MAINT", sec(30), 0)
	b.poll("MAINT", sec(31), 1)
	a.fails = false
	a.w.flush() // a's engine took it in the end
	if len(b.stored) != 2 || len(a.stored) != 2 || a.stored[1].ID != b.stored[1].ID {
		t.Fatalf("the change seen by both: a %v, b %v; want one id", a.stored, b.stored)
	}

	// a sees a change and loses the duties before its engine takes it; b
	// saw it as a member, so it sees no change when it takes the duties:
	// it stores the change against the log, with the id a gave it.
	b.master = false
	a.poll("MAINT", sec(32), 2)
	b.poll("MAINT", sec(32), 2)
	a.fails = true
	a.poll("UP", sec(35), 0)
	if len(a.w.state.unsent) != 1 {
		t.Fatalf("a kept %d events waiting, want the UP", len(a.w.state.unsent))
	}
	lostID := a.w.state.unsent[0].ID
	b.poll("UP", sec(35), 0)
	a.master, a.fails = false, false
	a.w.flush() // refused: a no longer holds the duties
	b.master = true
	b.poll("UP", sec(36), 1)
	if n := len(b.stored); n != 3 || b.stored[2].ID != lostID {
		t.Fatalf("the change a could not store: b stored %v, want it with a's id %s", b.stored[2:], lostID)
	}

	// Redis loses the log (a restart without persistence): the numbering
	// starts again, and its ids are new.
	seen := map[string]bool{}
	for _, e := range append(a.stored, b.stored...) {
		seen[e.ID] = true
	}
	goredis.NewClient(&goredis.Options{Addr: srv.Addr}).FlushAll(context.Background())
	c := newNode(log)
	c.poll("UP", sec(40), 0)
	c.poll("DOWN", sec(41), 0)
	if len(c.stored) != 1 || seen[c.stored[0].ID] {
		t.Fatalf("after the log was lost, a change got an id stored before: %v", c.stored)
	}
}
