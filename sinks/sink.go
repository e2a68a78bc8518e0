package sinks

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"eventlistener/event"
)

// Sink is a store that takes batches of events.
type Sink interface {
	// Name is the sink's name in logs, metrics and the fallback log
	// ("postgres", "elasticsearch", "file").
	Name() string

	// Write stores events. It must be safe to call again with events it has
	// already stored (a retry, a replay): an event already stored counts as
	// stored and never makes a second copy. Write does not keep the slice
	// after it returns.
	//
	// It returns nil when every event is stored. Otherwise it returns either
	// a *PartialError, naming the events it did not store and why (the others
	// are stored), or another error meaning none of the events may be assumed
	// stored; Retryable says whether trying that again may succeed.
	Write(ctx context.Context, events []event.Event) error

	// Ping says whether the store is reachable, for the readiness check.
	Ping(ctx context.Context) error

	// Close releases the sink's connections.
	Close() error
}

// Migrator is a sink that can create what it writes into (a table, an
// index template). Migrate must be safe to run again.
type Migrator interface {
	Sink
	Migrate(ctx context.Context) error
}

// Failure is one event a sink did not store.
type Failure struct {
	// Index is the event's position in the slice given to Write.
	Index int
	// Err says why; Retryable(Err) says whether trying again may succeed.
	Err error
}

// PartialError says which events of a batch a sink did not store; every
// other event of the batch is stored.
type PartialError struct {
	Failures []Failure
}

func (e *PartialError) Error() string {
	if len(e.Failures) == 0 {
		return "no event failed"
	}
	return fmt.Sprintf("%d events not stored, first: event %d: %v",
		len(e.Failures), e.Failures[0].Index, e.Failures[0].Err)
}

// Partial builds a *PartialError, in index order.
func Partial(failures []Failure) *PartialError {
	sort.Slice(failures, func(i, j int) bool { return failures[i].Index < failures[j].Index })
	return &PartialError{Failures: failures}
}

// retryable marks an error as temporary.
type retryable struct{ err error }

func (r retryable) Error() string { return r.err.Error() }
func (r retryable) Unwrap() error { return r.err }

// MarkRetryable wraps err to say that trying again later may succeed: the
// store is down or overloaded, not refusing the data.
func MarkRetryable(err error) error {
	if err == nil {
		return nil
	}
	return retryable{err}
}

// Retryable says whether err (or an error it wraps) was marked retryable.
// A context error is retryable too: the write was cut short, not refused.
func Retryable(err error) bool {
	var r retryable
	return errors.As(err, &r) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}
