package actors

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"eventlistener/infra/vip"
	"eventlistener/sources"
)

// MasterStatus says whether this node runs the duties that must run once
// (the singleton sources, the proxy watcher's change events), and why.
type MasterStatus struct {
	Master bool      `json:"master"`
	Reason string    `json:"reason"`
	VIP    string    `json:"vip,omitempty"`
	Since  time.Time `json:"since"`
	// Lease and Token are set when the duty lease in Redis decides.
	Lease bool  `json:"lease,omitempty"`
	Token int64 `json:"fencing_token,omitempty"`
}

// masterState is shared by the duties actor, the proxy watcher and the API.
type masterState struct {
	mu sync.Mutex
	s  MasterStatus
	// With the lease, the holding is good until until, by the monotonic
	// clock and by the wall clock (the monotonic one stops while the
	// machine is suspended): past it this node is not master, whatever the
	// duties actor last decided, so a node frozen past its lease holds
	// nothing when it wakes.
	leased bool
	until  time.Time
}

// holding says whether the lease's holding is still good now.
func (m *masterState) holding() bool {
	now := time.Now()
	return now.Before(m.until) && now.Round(0).Before(m.until.Round(0))
}

func (m *masterState) get() MasterStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.s
	if m.leased && s.Master && !m.holding() {
		s.Master, s.Token = false, 0
		s.Reason = "the duty lease was not renewed in time: not holding the duties"
	}
	return s
}

// holdUntil records the lease's holding (zero: none).
func (m *masterState) holdUntil(t time.Time, token int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.leased, m.until = true, t
	m.s.Lease, m.s.Token = true, token
}

func (m *masterState) isMaster() bool { return m.get().Master }

// vipChecked carries one VIP check to the duties actor.
type vipChecked struct{ status vip.Status }

// duties decides whether this node is master and runs the sources: with a
// VIP, master while an interface holds it (checked every interval); with
// the lease, while this node holds it; with neither, always. It supervises
// one runner per source: those that run on every node from its start, the
// singletons while this node is master.
type duties struct {
	e        *Engine
	vip      *vip.Checker
	lease    *leaseChecker // without a VIP, with Redis
	interval time.Duration
	log      *slog.Logger

	cancel     context.CancelFunc
	singletons map[*sourceState]*actor.PID // running
	decided    bool                        // set has run once in this instance
	isMaster   bool
}

// spawn starts st's runner as a child.
func (d *duties) spawn(c actor.Context, st *sourceState) *actor.PID {
	r := func() actor.Actor {
		return &sourceRunner{st: st, metrics: d.e.metrics, log: d.e.log.With("source", st.src.Name())}
	}
	pid := c.Spawn(actor.PropsFromProducer(r))
	st.setRunning(d.e.metrics, true)
	return pid
}

func (d *duties) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *actor.Started:
		d.singletons = map[*sourceState]*actor.PID{}
		for _, st := range d.e.sources {
			if st.src.Placement() != sources.Singleton {
				d.spawn(c, st)
			}
		}
		var checker interface{ Check() vip.Status }
		switch {
		case d.vip != nil:
			checker = *d.vip
		case d.lease != nil:
			checker = d.lease
		default:
			d.set(c, vip.Status{Master: true, Reason: "no --vip is set and no Redis for a lease: every node runs the duties"})
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		d.cancel = cancel
		self, root, every := c.Self(), c.ActorSystem().Root, d.interval
		go func() {
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				root.Send(self, &vipChecked{status: checker.Check()})
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	case *vipChecked:
		d.set(c, m.status)
	case *actor.Stopping, *actor.Restarting:
		if d.cancel != nil {
			d.cancel()
		}
	case *actor.Stopped:
		for _, st := range d.e.sources {
			st.setRunning(d.e.metrics, false)
		}
	}
}

// set records the master status and starts or stops the duties on a change.
func (d *duties) set(c actor.Context, s vip.Status) {
	ms := d.e.master
	if s.Unknown {
		// One failed look at the interfaces must not move the duties.
		ms.mu.Lock()
		ms.s.Reason = s.Reason + "; keeping the last decision"
		ms.mu.Unlock()
		d.log.Warn("cannot check the VIP; keeping the last decision", "reason", s.Reason)
		return
	}
	ms.mu.Lock()
	ms.s.Reason = s.Reason
	if ms.s.Master != s.Master || ms.s.Since.IsZero() {
		ms.s.Master, ms.s.Since = s.Master, time.Now().UTC()
	}
	ms.mu.Unlock()
	if d.decided && d.isMaster == s.Master {
		return
	}
	d.decided, d.isMaster = true, s.Master
	if s.Master {
		d.e.metrics.master.Set(1)
		d.log.Info("this node is master: running the master's duties", "reason", s.Reason)
		for _, st := range d.e.sources {
			if st.src.Placement() == sources.Singleton && d.singletons[st] == nil {
				d.singletons[st] = d.spawn(c, st)
			}
		}
		return
	}
	d.e.metrics.master.Set(0)
	d.log.Info("this node is not master: pausing the master's duties", "reason", s.Reason)
	for st, pid := range d.singletons {
		c.Poison(pid)
		delete(d.singletons, st)
		st.setRunning(d.e.metrics, false)
	}
}
