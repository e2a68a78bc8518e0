package api

import (
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"eventlistener/event"
)

// budget bounds the memory all requests being decoded take together: a
// request reserves what its body and events will take before it takes
// it, and gives it back once the events are in the write-ahead log (or
// refused). A request that cannot reserve gets 503 and Retry-After.
type budget struct {
	sem      *semaphore.Weighted
	size     int64
	reserved prometheus.Gauge
	refused  prometheus.Counter
}

func newBudget(size int64, reg prometheus.Registerer) *budget {
	b := &budget{sem: semaphore.NewWeighted(size), size: size,
		reserved: prometheus.NewGauge(prometheus.GaugeOpts{Name: "eventlistener_decode_reserved_bytes",
			Help: "Memory reserved by the requests being decoded (bounded by --decode-budget)."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "eventlistener_decode_budget_refused_total",
			Help: "Requests answered 503 because the decode budget was spent."}),
	}
	max := prometheus.NewGauge(prometheus.GaugeOpts{Name: "eventlistener_decode_budget_bytes",
		Help: "The memory all requests being decoded may take together (--decode-budget)."})
	max.Set(float64(size))
	if reg != nil {
		reg.MustRegister(b.reserved, b.refused, max)
	}
	return b
}

// reservation is one request's share of the budget.
type reservation struct {
	b *budget
	n int64
}

// grow reserves n more bytes, or says the budget is spent.
func (r *reservation) grow(n int64) bool {
	if r.b == nil || n <= 0 {
		return true
	}
	if !r.b.sem.TryAcquire(n) {
		r.b.refused.Inc()
		return false
	}
	r.n += n
	r.b.reserved.Add(float64(n))
	return true
}

// release gives the reservation back.
func (r *reservation) release() {
	if r.b == nil || r.n == 0 {
		return
	}
	r.b.sem.Release(r.n)
	r.b.reserved.Sub(float64(r.n))
	r.n = 0
}

// MinDecodeBudget is the smallest budget in which a request of the largest
// body and the most events fits: twice its body (what the body holds is
// copied into the events' strings and data) and its events.
func MinDecodeBudget(maxBodyBytes int64, maxEvents int) int64 {
	return 2*(maxBodyBytes+1) + int64(maxEvents+event.ReserveStep)*event.EventCost
}
