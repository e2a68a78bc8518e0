package actors

import (
	"context"
	"errors"
	"fmt"
	"time"

	infraredis "eventlistener/infra/redis"
	"eventlistener/infra/vip"
)

// leaseChecker decides the duty holder with a lease in Redis, for nodes
// without a VIP. Each check takes or renews the lease. A holding is good
// until two thirds of the TTL after the renewal began: the holder steps
// down a third of the TTL before another node can take the lease, even if
// it was frozen and never heard that it lost it (masterState's validity).
type leaseChecker struct {
	lease  *infraredis.Lease
	master *masterState
	lastOK time.Time // the start of the last successful renewal
}

// leaseTimeout bounds one try; a try that takes longer counts as failed.
func (l *leaseChecker) timeout() time.Duration { return l.lease.TTL / 3 }

// valid is how long a renewal started at t makes this node the holder.
func (l *leaseChecker) valid(t time.Time) time.Time { return t.Add(l.lease.TTL * 2 / 3) }

func (l *leaseChecker) Check() vip.Status {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout())
	defer cancel()
	held, token, holder, err := l.lease.Try(ctx)
	switch {
	case err == nil && held:
		l.lastOK = start
		l.master.holdUntil(l.valid(start), token)
		return vip.Status{Master: true, Reason: fmt.Sprintf("holds the duty lease in Redis (fencing token %d)", token)}
	case err == nil:
		l.master.holdUntil(time.Time{}, 0)
		return vip.Status{Master: false, Reason: fmt.Sprintf("node %s holds the duty lease in Redis (fencing token %d)", infraredis.NodeOf(holder), token)}
	case !l.lastOK.IsZero() && time.Now().Before(l.valid(l.lastOK)):
		// Still holding: one failed renewal must not move the duties.
		return vip.Status{Unknown: true, Reason: "cannot renew the duty lease: " + err.Error()}
	}
	l.master.holdUntil(time.Time{}, 0)
	return vip.Status{Master: false, Reason: "cannot reach Redis for the duty lease (" + err.Error() + "); not holding the duties"}
}

// release frees the lease at a clean stop, so another node takes it at
// once.
func (l *leaseChecker) release() error {
	l.master.holdUntil(time.Time{}, 0)
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout())
	defer cancel()
	return l.lease.Release(ctx)
}

// errNotHolder refuses what a duty sends after its holding lapsed.
var errNotHolder = errors.New("this node no longer holds the duties")
