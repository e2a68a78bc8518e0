package actors

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"eventlistener/event"
	"eventlistener/infra/haproxy"
	infraredis "eventlistener/infra/redis"
	"eventlistener/internal/testenv"
)

// watcherFor is a proxy watcher of one node, master, with the cluster's
// change log, collecting what it would store.
func watcherFor(t *testing.T, log ChangeLog, stored *[]event.Event, fail *bool) *proxyWatcher {
	t.Helper()
	return &proxyWatcher{cfg: ProxyConfig{Source: "haproxy", Changes: log}, state: &proxyState{isMaster: func() bool { return true }},
		metrics: newProxyMetrics(prometheus.NewRegistry()),
		ingest: func(evs []event.Event) error {
			if *fail {
				return ErrOverloaded
			}
			*stored = append(*stored, evs...)
			return nil
		},
		master: func() bool { return true }, log: slog.New(slog.DiscardHandler)}
}

func poll(w *proxyWatcher, status string) {
	w.polled(&proxyPolled{rows: []haproxy.Stat{{Proxy: "web", Server: "s1", Type: haproxy.TypeServer, Status: status}}, at: time.Now().UTC()})
}

// A change the last duty holder stored is not stored again by the next,
// and a change it could not finish storing gets the same id from both.
func TestProxyChangesAreStoredOnceAcrossHandovers(t *testing.T) {
	srv := testenv.RedisServer(t)
	log, err := infraredis.NewChangeLog(infraredis.Options{URL: "redis://" + srv.Addr}, "el-test")
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	var a, b []event.Event
	var aFails, bFails bool

	// Both nodes saw s1 UP; a, the holder, sees it go DOWN and stores it.
	wa, wb := watcherFor(t, log, &a, &aFails), watcherFor(t, log, &b, &bFails)
	poll(wa, "UP")
	poll(wb, "UP")
	poll(wa, "DOWN")
	if len(a) != 1 {
		t.Fatalf("a stored %d events, want the change", len(a))
	}
	// b takes over and sees the same change against its last poll: it is
	// stored already, so b stores nothing.
	poll(wb, "DOWN")
	if len(b) != 0 {
		t.Fatalf("b stored %v again after a had", b)
	}

	// s1 comes back UP: b, now the holder, stores it once.
	poll(wb, "UP")
	if len(b) != 1 || b[0].ID == a[0].ID {
		t.Fatalf("b's change: %v", b)
	}

	// a's engine refuses the next change (it is stopping, say): it is not
	// recorded, so b stores it too, and with the same id.
	poll(wa, "UP")
	aFails = true
	poll(wa, "MAINT")
	poll(wb, "MAINT")
	aFails = false
	wa.flush() // a's engine took it in the end
	if len(b) != 2 || len(a) != 2 || a[1].ID != b[1].ID {
		t.Fatalf("the change seen by both: a %v, b %v; want one id", a, b)
	}
	if _, seq, _ := log.Last(context.Background(), "web/s1"); seq != 3 {
		t.Fatalf("the change log is at %d, want 3", seq)
	}
}
