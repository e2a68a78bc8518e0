package actors

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the engine's Prometheus metrics.
type Metrics struct {
	accepted         prometheus.Counter
	rejected         *prometheus.CounterVec
	rejectedRequests *prometheus.CounterVec
	flushes          *prometheus.CounterVec
	bufferEvents     prometheus.Gauge
	batchEvents      prometheus.Histogram
	inFlight         *prometheus.GaugeVec
	sinkEvents       *prometheus.CounterVec
	sinkFromWAL      *prometheus.CounterVec
	spilled          *prometheus.CounterVec
	breaker          *prometheus.GaugeVec
	writeSeconds     *prometheus.HistogramVec
	retries          *prometheus.CounterVec
	lost             *prometheus.CounterVec
	master           prometheus.Gauge
	walSync          prometheus.Histogram
	walRecords       prometheus.Histogram
	walQuarantined   prometheus.Counter
	notifyDropped    prometheus.Counter
	notifyFailed     prometheus.Counter
	sourceRunning    *prometheus.GaugeVec
	sourceRestarts   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, e *Engine) *Metrics {
	m := &Metrics{
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventlistener_events_accepted_total",
			Help: "Events written to the WAL and handed to the buffer.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventlistener_events_rejected_total",
			Help: "Events refused after they were read (reason: overloaded, shutting_down, wal_full, wal_failed, wal_error); most refusals happen before reading, see eventlistener_requests_rejected_total.",
		}, []string{"reason"}),
		rejectedRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventlistener_requests_rejected_total",
			Help: "Requests refused with 503 (reason: overloaded, shutting_down, wal_full, wal_failed, wal_error).",
		}, []string{"reason"}),
		flushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventlistener_batches_flushed_total",
			Help: "Batches the buffer flushed, by trigger.",
		}, []string{"reason"}),
		bufferEvents: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eventlistener_buffer_events",
			Help: "Events in the batch the buffer is filling (0: the buffer is idle; bound: --batch-max-events).",
		}),
		batchEvents: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "eventlistener_batch_events",
			Help:    "Events per flushed batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventlistener_batches_in_flight",
			Help: "Batches being written, per sink (bound: --max-in-flight).",
		}, []string{"sink"}),
		sinkFromWAL: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventlistener_sink_events_from_wal_total",
			Help: "Events a sink was behind on and read back from the WAL instead of memory (bound: --sink-window).",
		}, []string{"sink"}),
		spilled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventlistener_sink_events_spilled_total",
			Help: "Events moved from the WAL to a sink's fallback log because the WAL was full (--wal-full spill).",
		}, []string{"sink"}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventlistener_sink_breaker_state",
			Help: "A sink's circuit breaker: 0 closed, 1 half_open (probing), 2 open (not trying the store).",
		}, []string{"sink"}),
		walSync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "eventlistener_wal_sync_seconds",
			Help:    "Time of one WAL sync (fdatasync); every acknowledged request waited for one.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2.5, 10),
		}),
		walRecords: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "eventlistener_wal_records_per_sync",
			Help:    "Requests made durable by one WAL sync (group commit).",
			Buckets: prometheus.ExponentialBuckets(1, 4, 7),
		}),
		walQuarantined: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventlistener_wal_quarantined_events_total",
			Help: "Events lost to bad records found in sealed WAL segments at start (their bytes are in the quarantine folder).",
		}),
		notifyDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventlistener_notifications_dropped_total",
			Help: "Batch notifications dropped because the publish queue was full (a slow Redis).",
		}),
		notifyFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventlistener_notifications_failed_total",
			Help: "Batch notifications that could not be published.",
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
			Help: "1 while this node holds the duties that must run once (the singleton sources such as the Redis subscription, and HAProxy change events).",
		}),
		sourceRunning: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventlistener_source_running",
			Help: "1 while the source runs on this node (a singleton: on the duty holder only).",
		}, []string{"source"}),
		sourceRestarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventlistener_source_restarts_total",
			Help: "Restarts of a source after it crashed (failed or panicked); it is started again after a delay growing with each crash.",
		}, []string{"source"}),
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventlistener_events_lost_total",
			Help: "Acknowledged events neither stored nor in a fallback log: unreadable from the WAL (sink), or never written to it with --ack memory (wal).",
		}, []string{"sink"}),
	}
	walBytes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "eventlistener_wal_bytes",
		Help: "Size of the WAL on disk (bound: --wal-max-bytes).",
	}, func() float64 { return float64(e.walBytes.Load()) })
	walMax := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "eventlistener_wal_max_bytes",
		Help: "The WAL's bound, --wal-max-bytes.",
	}, func() float64 { return float64(e.cfg.WAL.MaxBytes) })
	walQueue := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "eventlistener_wal_queue_bytes",
		Help: "Bytes of requests waiting to be written to the WAL (bound: --max-pending-bytes).",
	}, func() float64 {
		if e.wal == nil {
			return 0
		}
		return float64(e.wal.QueuedBytes())
	})
	notifyQueued := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "eventlistener_notifications_queued",
		Help: "Batch notifications waiting to be published (bound: --redis-notify-queue).",
	}, func() float64 {
		if e.notifier == nil {
			return 0
		}
		return float64(len(e.notifier.queue))
	})
	reg.MustRegister(m.accepted, m.rejected, m.rejectedRequests, m.flushes, m.bufferEvents, m.batchEvents, m.inFlight,
		m.sinkEvents, m.sinkFromWAL, m.spilled, m.breaker, m.writeSeconds, m.retries, m.lost, m.master,
		m.walSync, m.walRecords, m.walQuarantined, m.notifyDropped, m.notifyFailed, m.sourceRunning, m.sourceRestarts, walBytes, walMax, walQueue, notifyQueued)
	lag := prometheus.NewDesc("eventlistener_sink_lag_events", "Events in the WAL a sink has not finished yet.", []string{"sink"}, nil)
	lagBytes := prometheus.NewDesc("eventlistener_sink_lag_bytes", "WAL bytes kept on disk for a sink that is behind.", []string{"sink"}, nil)
	queued := prometheus.NewDesc("eventlistener_sink_queued_batches", "Batches a sink keeps in memory waiting to be written (bound: --sink-window; the rest it reads back from the WAL).", []string{"sink"}, nil)
	age := prometheus.NewDesc("eventlistener_sink_oldest_pending_seconds", "How long ago a sink's oldest unfinished event was written to the WAL (0: not behind).", []string{"sink"}, nil)
	reg.MustRegister(collectorFunc{descs: []*prometheus.Desc{lag, lagBytes, queued, age}, collect: func(ch chan<- prometheus.Metric) {
		for _, st := range e.states {
			ch <- prometheus.MustNewConstMetric(queued, prometheus.GaugeValue, float64(st.queued.Load()), st.name)
			ch <- prometheus.MustNewConstMetric(age, prometheus.GaugeValue, e.pendingAge(st), st.name)
			ch <- prometheus.MustNewConstMetric(lag, prometheus.GaugeValue, float64(st.lag()), st.name)
			ch <- prometheus.MustNewConstMetric(lagBytes, prometheus.GaugeValue, float64(e.wal.BytesFrom(st.done.Load())), st.name)
		}
	}})
	for _, r := range []string{"overloaded", "shutting_down", "wal_full", "wal_failed"} {
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

// collectorFunc is a collector of metrics computed when scraped.
type collectorFunc struct {
	descs   []*prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }
