package sinks

import (
	"context"
	"errors"
	"testing"
	"time"

	"eventlistener/event"
)

type scripted struct {
	calls int
	fn    func(call int, evs []event.Event) error
}

func (s *scripted) Name() string               { return "scripted" }
func (s *scripted) Ping(context.Context) error { return nil }
func (s *scripted) Close() error               { return nil }
func (s *scripted) Write(_ context.Context, evs []event.Event) error {
	s.calls++
	return s.fn(s.calls, evs)
}

func evs(n int) []event.Event {
	out := make([]event.Event, n)
	for i := range out {
		out[i] = event.Event{ID: string(rune('a' + i)), Type: "t"}
	}
	return out
}

var fast = Retry{Initial: time.Millisecond, Max: 2 * time.Millisecond, MaxElapsed: 200 * time.Millisecond}

func TestWriteWithRetry(t *testing.T) {
	down := MarkRetryable(errors.New("connection refused"))
	tests := []struct {
		name        string
		fn          func(call int, evs []event.Event) error
		stored      int
		failed      int
		minAttempts int
		maxAttempts int
	}{
		{"stored at once", func(int, []event.Event) error { return nil }, 5, 0, 1, 1},
		{"permanent error: no retry", func(int, []event.Event) error { return errors.New("bad") }, 0, 5, 1, 1},
		{"down, then up", func(call int, _ []event.Event) error {
			if call < 3 {
				return down
			}
			return nil
		}, 5, 0, 3, 3},
		{"down for good: bounded", func(int, []event.Event) error { return down }, 0, 5, 3, 1000},
		{"partial: only retryable items are resent", func(call int, evs []event.Event) error {
			if call == 1 {
				return Partial([]Failure{{Index: 1, Err: down}, {Index: 3, Err: errors.New("bad")}})
			}
			if len(evs) != 1 || evs[0].ID != "b" {
				return errors.New("resent the wrong events")
			}
			return nil
		}, 4, 1, 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &scripted{fn: tt.fn}
			start := time.Now()
			out := WriteWithRetry(context.Background(), s, evs(5), fast, nil)
			if out.Stored != tt.stored || len(out.Failed) != tt.failed {
				t.Fatalf("stored %d failed %d, want %d and %d (%v)", out.Stored, len(out.Failed), tt.stored, tt.failed, out.Failed)
			}
			if out.Attempts < tt.minAttempts || out.Attempts > tt.maxAttempts {
				t.Fatalf("attempts = %d, want %d..%d", out.Attempts, tt.minAttempts, tt.maxAttempts)
			}
			if time.Since(start) > 5*fast.MaxElapsed {
				t.Fatalf("took %v, far past MaxElapsed", time.Since(start))
			}
		})
	}
}

func TestWriteWithRetryStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &scripted{fn: func(int, []event.Event) error { return MarkRetryable(errors.New("down")) }}
	time.AfterFunc(20*time.Millisecond, cancel)
	out := WriteWithRetry(ctx, s, evs(3), Retry{Initial: time.Second, Max: time.Second, MaxElapsed: time.Hour}, nil)
	if len(out.Failed) != 3 || out.Failed[0].Err.Error() != "down" {
		t.Fatalf("failed = %v, want all 3 with the store's last error", out.Failed)
	}
}
