package sinks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"

	"eventlistener/event"
)

// Retry says how a sink is retried.
type Retry struct {
	Initial    time.Duration // first wait; doubled after each failure, with jitter
	Max        time.Duration // longest single wait
	MaxElapsed time.Duration // give up this long after the first attempt; 0: only when ctx is done
	// AttemptTimeout bounds each call to Write; 0: only ctx does.
	AttemptTimeout time.Duration
}

// DefaultRetry rides out a store restart or a short overload (half a minute)
// when a person waits for the result (replay). The engine retries until the
// store is back, since its events wait in the WAL meanwhile.
var DefaultRetry = Retry{Initial: 100 * time.Millisecond, Max: 5 * time.Second, MaxElapsed: 30 * time.Second, AttemptTimeout: DefaultAttemptTimeout}

// DefaultAttemptTimeout bounds one write: a batch of 1,000 events takes a
// few milliseconds to PostgreSQL and well under a second to Elasticsearch,
// so ten seconds means the store is hung, not slow.
const DefaultAttemptTimeout = 10 * time.Second

// Failed is an event a sink did not store, with the last error it gave.
type Failed struct {
	Event event.Event
	Err   error
}

// Outcome is what became of a batch at one sink.
type Outcome struct {
	Stored   int      // events the sink holds now (already stored ones count)
	Failed   []Failed // events it refused or could not take in time
	Attempts int      // calls to Write
}

// WriteWithRetry writes events to s, retrying what may succeed later with
// jittered exponential backoff until r.MaxElapsed has passed (if set) or
// ctx is done. Each attempt is bounded by r.AttemptTimeout.
// Events the sink refuses for good go into Failed at once with their own
// error; so does what is left when time runs out. onRetry, when not nil, is
// called before each wait.
func WriteWithRetry(ctx context.Context, s Sink, events []event.Event, r Retry, onRetry func(pending int, err error)) Outcome {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = r.Initial
	bo.MaxInterval = r.Max
	bo.Multiplier = 2
	bo.RandomizationFactor = 0.5
	bo.Reset()
	start := time.Now()

	var out Outcome
	pending := events
	for {
		out.Attempts++
		err := attempt(ctx, s, pending, r.AttemptTimeout)
		if err == nil {
			out.Stored += len(pending)
			return out
		}
		var retry []event.Event
		var pe *PartialError
		switch {
		case errors.As(err, &pe):
			failedAt := make(map[int]bool, len(pe.Failures))
			for _, f := range pe.Failures {
				failedAt[f.Index] = true
				if Retryable(f.Err) {
					retry = append(retry, pending[f.Index])
					err = f.Err
				} else {
					out.Failed = append(out.Failed, Failed{Event: pending[f.Index], Err: f.Err})
				}
			}
			out.Stored += len(pending) - len(failedAt)
		case Retryable(err):
			retry = pending
		default:
			for _, e := range pending {
				out.Failed = append(out.Failed, Failed{Event: e, Err: err})
			}
		}
		if len(retry) == 0 {
			return out
		}
		pending = retry

		wait := bo.NextBackOff()
		if ctx.Err() != nil || (r.MaxElapsed > 0 && time.Since(start)+wait > r.MaxElapsed) {
			for _, e := range pending {
				out.Failed = append(out.Failed, Failed{Event: e, Err: err})
			}
			return out
		}
		if onRetry != nil {
			onRetry(len(pending), err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			for _, e := range pending {
				out.Failed = append(out.Failed, Failed{Event: e, Err: err})
			}
			return out
		case <-t.C:
		}
	}
}

// attempt is one bounded call to Write. A deadline of the attempt's own is
// a retryable failure: the store did not answer in time.
func attempt(ctx context.Context, s Sink, events []event.Event, timeout time.Duration) error {
	if timeout <= 0 {
		return s.Write(ctx, events)
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := s.Write(actx, events)
	if err != nil && ctx.Err() == nil && actx.Err() != nil && !Retryable(err) {
		err = MarkRetryable(fmt.Errorf("%s did not answer within %s: %w", s.Name(), timeout, err))
	}
	return err
}
