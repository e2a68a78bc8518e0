package actors

import (
	"context"
	"fmt"
	"sync"
	"time"

	infraredis "eventlistener/infra/redis"
	"eventlistener/infra/vip"
	"eventlistener/sources"
)

// leaseChecker decides the duty holder with a lease in Redis, for nodes
// without a VIP. Each check takes or renews the lease.
//
// A holding is good until two thirds of the TTL after the renewal began:
// the holder steps down a third of the TTL before another node can take
// the lease, even if it was frozen and never heard that it lost it
// (masterState's validity, by both the monotonic and the wall clock, as
// the monotonic one stops while a machine is suspended).
//
// A lease just taken (a new fencing token) is held only after two thirds
// of the TTL: if Redis failed over and lost the last holder's key, that
// holder is still within its validity and may act until then.
type leaseChecker struct {
	lease  *infraredis.Lease
	master *masterState

	mu       sync.Mutex
	lastOK   time.Time // the start of the last successful renewal
	token    int64     // the holding's fencing token
	takenAt  time.Time // when this holding was taken
	released bool      // at a clean stop: never take it again
}

// timeout bounds one try; a try that takes longer counts as failed.
func (l *leaseChecker) timeout() time.Duration { return l.lease.TTL / 3 }

// validFor is how long a renewal makes this node the holder.
func (l *leaseChecker) validFor() time.Duration { return l.lease.TTL * 2 / 3 }

func (l *leaseChecker) Check() vip.Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return vip.Status{Master: false, Reason: "stopping: the duty lease is released"}
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout())
	defer cancel()
	held, token, holder, err := l.lease.Try(ctx)
	switch {
	case err == nil && held:
		if token != l.token {
			l.token, l.takenAt = token, start
		}
		l.lastOK = start
		if wait := l.validFor() - start.Sub(l.takenAt); wait > 0 {
			l.master.holdUntil(time.Time{}, 0)
			return vip.Status{Master: false, Reason: fmt.Sprintf("took the duty lease (fencing token %d); holding it in %s, once a holder a Redis failover may have forgotten has stepped down", token, wait.Round(time.Millisecond))}
		}
		l.master.holdUntil(start.Add(l.validFor()), token)
		return vip.Status{Master: true, Reason: fmt.Sprintf("holds the duty lease in Redis (fencing token %d)", token)}
	case err == nil:
		l.token = 0
		l.master.holdUntil(time.Time{}, 0)
		return vip.Status{Master: false, Reason: fmt.Sprintf("node %s holds the duty lease in Redis (fencing token %d)", infraredis.NodeOf(holder), token)}
	case !l.lastOK.IsZero() && time.Now().Before(l.lastOK.Add(l.validFor())):
		// Still holding: one failed renewal must not move the duties.
		return vip.Status{Unknown: true, Reason: "cannot renew the duty lease: " + err.Error()}
	}
	l.token = 0
	l.master.holdUntil(time.Time{}, 0)
	return vip.Status{Master: false, Reason: "cannot reach Redis for the duty lease (" + err.Error() + "); not holding the duties"}
}

// release frees the lease at a clean stop, so another node takes it at
// once, and makes every later check decline it.
func (l *leaseChecker) release() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.released = true
	l.master.holdUntil(time.Time{}, 0)
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout())
	defer cancel()
	return l.lease.Release(ctx)
}

// errNotHolder refuses what a duty sends after its holding lapsed.
var errNotHolder = sources.ErrNotHolder
