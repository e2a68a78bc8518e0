package actors

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	infraredis "eventlistener/infra/redis"
)

// Notifier tells other services about each batch a sink finished, e.g. on a
// Redis channel. It is a courtesy: its errors are logged, never retried.
type Notifier interface {
	Notify(ctx context.Context, r BatchReport) error
}

// BatchReport is what a Notifier publishes: one sink's outcome of a batch.
type BatchReport struct {
	Batch    string    `json:"batch"`
	Sink     string    `json:"sink"`
	Events   int       `json:"events"`
	Stored   int       `json:"stored"`
	Fallback int       `json:"fallback"`
	Time     time.Time `json:"time"`
}

// DefaultNotifyQueue is how many reports wait to be published: a few
// seconds of batches at full speed. Past it, reports are dropped and
// counted, so a slow or silent Redis never slows a sink.
const DefaultNotifyQueue = 1024

// notifyTimeout bounds one publish.
const notifyTimeout = 2 * time.Second

// notifier publishes reports from a goroutine of its own.
type notifier struct {
	n       Notifier
	queue   chan BatchReport
	metrics *Metrics
	log     *slog.Logger
	stop    chan struct{}
	done    chan struct{}
}

func startNotifier(n Notifier, size int, m *Metrics, log *slog.Logger) *notifier {
	q := &notifier{n: n, queue: make(chan BatchReport, size), metrics: m, log: log, stop: make(chan struct{}), done: make(chan struct{})}
	go q.run()
	return q
}

// offer queues r, or drops it when the queue is full. It never blocks.
func (q *notifier) offer(r BatchReport) {
	select {
	case q.queue <- r:
	default:
		q.metrics.notifyDropped.Inc()
	}
}

func (q *notifier) run() {
	defer close(q.done)
	failing := false
	for {
		var r BatchReport
		select {
		case r = <-q.queue:
		case <-q.stop:
			select {
			case r = <-q.queue:
			default:
				return
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), notifyTimeout)
		err := q.n.Notify(ctx, r)
		cancel()
		switch {
		case err != nil:
			q.metrics.notifyFailed.Inc()
			if !failing {
				q.log.Warn("cannot publish batch notifications; dropping them until it works", "error", err)
			}
			failing = true
		case failing:
			q.log.Info("batch notifications published again")
			failing = false
		}
	}
}

// close publishes what is queued, for at most wait, then stops.
func (q *notifier) close(wait time.Duration) {
	close(q.stop)
	select {
	case <-q.done:
	case <-time.After(wait):
	}
}

// RedisNotifier publishes each BatchReport as JSON on a Redis channel.
type RedisNotifier struct {
	Publisher *infraredis.Publisher
}

// Notify publishes r.
func (n RedisNotifier) Notify(ctx context.Context, r BatchReport) error {
	payload, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return n.Publisher.Publish(ctx, payload)
}
