package console

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"eventlistener/event"
)

func benchEvents(n int) []event.Event {
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = event.Event{ID: fmt.Sprint(i), Type: "order.created", Source: "shop", Data: json.RawMessage(`{"n":1}`)}
	}
	return evs
}

// The tail is on the ingest path: what a 1,000-event request pays.
func BenchmarkTailOffer1000(b *testing.B) {
	evs := benchEvents(1000)
	b.Run("no-stream", func(b *testing.B) {
		tail := NewTail(DefaultTailRate)
		for b.Loop() {
			tail.Offer(evs)
		}
	})
	b.Run("one-stream", func(b *testing.B) {
		tail := NewTail(DefaultTailRate)
		sub, _ := tail.subscribe(Filter{Type: "order.*"})
		go func() {
			for range sub.ch {
			}
		}()
		for b.Loop() {
			tail.Offer(evs)
		}
		tail.unsubscribe(sub)
	})
}

// One second's sample reads the registry the way /metrics does.
func BenchmarkRead(b *testing.B) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventlistener_http_requests_total"}, []string{"route", "code"})
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "eventlistener_http_request_seconds",
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9), NativeHistogramBucketFactor: 1.1}, []string{"route"})
	s := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventlistener_sink_events_total"}, []string{"sink", "outcome"})
	reg.MustRegister(c, h, s)
	for i := range 20 {
		c.WithLabelValues("/v1/events", fmt.Sprint(200+i)).Add(float64(i))
		s.WithLabelValues(fmt.Sprint("sink", i%2), fmt.Sprint("outcome", i)).Inc()
	}
	for i := 1; i < 100000; i += 7 {
		h.WithLabelValues("/v1/events").Observe(float64(i) / 1e6)
	}
	for b.Loop() {
		_ = read(reg, time.Now())
	}
}

// What the native buckets (the console's quantiles) add to each request's
// observation, beside the classic buckets alone.
func BenchmarkObserve(b *testing.B) {
	for _, factor := range []float64{0, 1.1} {
		b.Run(fmt.Sprint("native-factor-", factor), func(b *testing.B) {
			h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x", Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9),
				NativeHistogramBucketFactor: factor})
			v := 0.0001
			for b.Loop() {
				h.Observe(v)
				v *= 1.01
				if v > 1 {
					v = 0.0001
				}
			}
		})
	}
}
