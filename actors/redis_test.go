package actors

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
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
		name    string
		crashes int64
		crash   func() error
	}{
		{"connection code panics", 2, func() error { panic("driver bug") }},
		{"connection code fails", 2, func() error { return errors.New("cannot dial") }},
		// More crashes than a one-for-one strategy's ten: still restarted.
		{"connection code fails again and again", 15, func() error { return errors.New("cannot dial") }},
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
					if calls.Add(1) <= tt.crashes {
						return tt.crash()
					}
					return nil
				},
			}
			e := startEngine(t, Config{Sinks: []sinks.Sink{s}, MaxEvents: 1, Redis: rc, restartDelay: 5 * time.Millisecond})
			// HTTP-side ingestion goes on while the subscriber crashes.
			if err := e.Ingest(events("http", 3)); err != nil {
				t.Fatal(err)
			}
			publishUntil(t, r, "events", func() bool { return e.Node(context.Background()).Redis.Messages > 0 })
			waitFor(t, "a Redis event stored", func() bool { return s.count() > 3 })
			if n := testutil.ToFloat64(e.redisMetrics().restarts); n < float64(tt.crashes) {
				t.Fatalf("restarts = %v, want at least %d", n, tt.crashes)
			}
			st := e.Node(context.Background()).Redis
			if !st.Subscribed || st.Restarts < int(tt.crashes) || st.Master != r.Addr || st.LastError == "" {
				t.Fatalf("status = %+v", st)
			}
			e.close(t, 5*time.Second)
		})
	}
}

// freezer is a TCP proxy that can stop passing bytes while keeping its
// connections open: a peer that is there but no longer answers.
type freezer struct {
	ln     net.Listener
	frozen atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func newFreezer(t *testing.T, upstream string) *freezer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln}
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		for _, c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, c, u)
			f.mu.Unlock()
			go f.pipe(c, u)
			go f.pipe(u, c)
		}
	}()
	return f
}

func (f *freezer) pipe(src, dst net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for f.frozen.Load() {
			time.Sleep(5 * time.Millisecond)
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

func TestRedisSilentConnectionIsNoticed(t *testing.T) {
	r := testenv.RedisServer(t)
	f := newFreezer(t, r.Addr)
	s := newFakeSink("a")
	e := startEngine(t, Config{Sinks: []sinks.Sink{s}, MaxEvents: 1,
		Redis: &RedisConfig{Options: infraredis.Options{URL: "redis://" + f.ln.Addr().String()}, Channels: []string{"events"}}})
	subscribed := func(want bool) func() bool {
		return func() bool { return e.Node(context.Background()).Redis.Subscribed == want }
	}
	waitFor(t, "subscribed", subscribed(true))
	f.frozen.Store(true)
	start := time.Now()
	waitFor(t, "the silent subscription noticed", subscribed(false))
	t.Logf("a silent connection was given up after %v", time.Since(start).Round(time.Millisecond))
	if lost := time.Since(start); lost > 2*silence+2*time.Second {
		t.Fatalf("took %v to notice", lost)
	}
	f.frozen.Store(false)
	waitFor(t, "subscribed again", subscribed(true))
	publishUntil(t, r, "events", func() bool { return s.count() > 0 })
}
