package actors

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	infraredis "eventlistener/infra/redis"
	"eventlistener/internal/testenv"
	"eventlistener/sinks"
)

// publishUntil publishes numbered messages until cond holds (or 20s pass).
func publishUntil(t *testing.T, r *testenv.Redis, channel string, cond func() bool) {
	t.Helper()
	c := r.Client(t)
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; !cond(); i++ {
		if time.Now().After(deadline) {
			t.Fatal("timed out publishing")
		}
		c.Publish(context.Background(), channel, fmt.Sprintf(`{"id":"m-%d","type":"t"}`, i))
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRedisSubscriberRestartsWithoutTouchingIngest(t *testing.T) {
	tests := []struct {
		name  string
		crash func() error
	}{
		{"connection code panics", func() error { panic("driver bug") }},
		{"connection code fails", func() error { return errors.New("cannot dial") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testenv.RedisServer(t)
			s := newFakeSink("a")
			var calls atomic.Int64
			rc := &RedisConfig{
				Options:  infraredis.Options{URL: "redis://" + r.Addr},
				Channels: []string{"events"},
				beforeSubscribe: func() error {
					if calls.Add(1) <= 2 { // the first two subscriptions crash
						return tt.crash()
					}
					return nil
				},
			}
			e := startEngine(t, Config{Sinks: []sinks.Sink{s}, MaxEvents: 1, Redis: rc})
			// HTTP-side ingestion goes on while the subscriber crashes.
			if err := e.Ingest(events("http", 3)); err != nil {
				t.Fatal(err)
			}
			publishUntil(t, r, "events", func() bool { return e.Node(context.Background()).Redis.Messages > 0 })
			waitFor(t, "a Redis event stored", func() bool { return s.count() > 3 })
			if n := testutil.ToFloat64(e.redisMetrics().restarts); n < 2 {
				t.Fatalf("restarts = %v, want at least 2", n)
			}
			st := e.Node(context.Background()).Redis
			if !st.Subscribed || st.Restarts < 2 || st.Master != r.Addr {
				t.Fatalf("status = %+v", st)
			}
			e.close(t, 5*time.Second)
		})
	}
}
