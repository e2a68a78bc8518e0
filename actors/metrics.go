package actors

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the engine's Prometheus metrics.
type Metrics struct {
	accepted         prometheus.Counter
	rejected         *prometheus.CounterVec
	rejectedRequests *prometheus.CounterVec
	flushes          *prometheus.CounterVec
	batchEvents      prometheus.Histogram
	inFlight         prometheus.Gauge
	sinkEvents       *prometheus.CounterVec
	writeSeconds     *prometheus.HistogramVec
	retries          *prometheus.CounterVec
	lost             *prometheus.CounterVec
	master           prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, e *Engine) *Metrics {
	m := &Metrics{
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventlistener_events_accepted_total",
			Help: "Events accepted into the buffer.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventlistener_events_rejected_total",
			Help: "Events refused after they were read (reason: overloaded, shutting_down); most refusals happen before reading, see eventlistener_requests_rejected_total.",
		}, []string{"reason"}),
		rejectedRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventlistener_requests_rejected_total",
			Help: "Requests refused with 503 (reason: overloaded, shutting_down).",
		}, []string{"reason"}),
		flushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventlistener_batches_flushed_total",
			Help: "Batches the buffer flushed, by trigger.",
		}, []string{"reason"}),
		batchEvents: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "eventlistener_batch_events",
			Help:    "Events per flushed batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eventlistener_batches_in_flight",
			Help: "Batches being written to the sinks.",
		}),
		sinkEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventlistener_sink_events_total",
			Help: "Events per sink by outcome: stored, or fallback (written to the fallback log).",
		}, []string{"sink", "outcome"}),
		writeSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "eventlistener_sink_write_seconds",
			Help:    "Time to write one batch to a sink, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
		}, []string{"sink"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventlistener_sink_retries_total",
			Help: "Sink writes retried after a temporary failure.",
		}, []string{"sink"}),
		master: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eventlistener_master",
			Help: "1 while this node is master and runs the duties that must run once (Redis subscription, proxy change events).",
		}),
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventlistener_events_lost_total",
			Help: "Events neither stored nor written to the fallback log (the fallback log failed).",
		}, []string{"sink"}),
	}
	pending := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "eventlistener_pending_events",
		Help: "Events accepted and not yet stored or in the fallback log.",
	}, func() float64 { return float64(e.pendingEvents.Load()) })
	pendingBytes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "eventlistener_pending_bytes",
		Help: "Approximate bytes of the pending events.",
	}, func() float64 { return float64(e.pendingBytes.Load()) })
	reg.MustRegister(m.accepted, m.rejected, m.rejectedRequests, m.flushes, m.batchEvents, m.inFlight,
		m.sinkEvents, m.writeSeconds, m.retries, m.lost, m.master, pending, pendingBytes)
	for _, r := range []string{"overloaded", "shutting_down"} {
		m.rejectedRequests.WithLabelValues(r)
	}
	for _, r := range []Reason{ReasonCount, ReasonBytes, ReasonIdle, ReasonAge, ReasonShutdown} {
		m.flushes.WithLabelValues(string(r))
	}
	return m
}

func (m *Metrics) flushed(r Reason, events int) {
	m.flushes.WithLabelValues(string(r)).Inc()
	m.batchEvents.Observe(float64(events))
}
