package sources

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"eventlistener/event"
	infraredis "eventlistener/infra/redis"
	"eventlistener/internal/testenv"
)

// collector is an Env whose Ingest keeps the events.
type collector struct {
	mu     sync.Mutex
	events []event.Event
}

func (c *collector) env() Env {
	ingest := func(_ context.Context, evs []event.Event) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.events = append(c.events, evs...)
		return nil
	}
	return Env{Ingest: ingest, IngestAsHolder: ingest, Holder: func() bool { return true }}
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events)
}

func (c *collector) all() []event.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]event.Event(nil), c.events...)
}

// run runs src with env until the test ends.
func run(t *testing.T, src Source, env Env) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, env) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: Run: %v", src.Name(), err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s: Run did not return 10s after its context ended", src.Name())
		}
	})
}

func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

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

func pubsubStatus(s *PubSub) *PubSubStatus { return s.Status().(*PubSubStatus) }

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

func TestPubSubNoticesASilentConnection(t *testing.T) {
	r := testenv.RedisServer(t)
	f := newFreezer(t, r.Addr)
	var c collector
	s := NewPubSub(PubSubConfig{Options: infraredis.Options{URL: "redis://" + f.ln.Addr().String()}, Channels: []string{"events"}},
		prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	run(t, s, c.env())
	subscribed := func(want bool) func() bool {
		return func() bool { return pubsubStatus(s).Subscribed == want }
	}
	waitFor(t, "subscribed", 10*time.Second, subscribed(true))
	f.frozen.Store(true)
	start := time.Now()
	waitFor(t, "the silent subscription noticed", 2*silence+2*time.Second, subscribed(false))
	t.Logf("a silent connection was given up after %v", time.Since(start).Round(time.Millisecond))
	f.frozen.Store(false)
	waitFor(t, "subscribed again", 10*time.Second, subscribed(true))
	publishUntil(t, r, "events", func() bool { return c.count() > 0 })
	if ev := c.all()[0]; ev.Source != "redis://events" || ev.Type != "t" {
		t.Fatalf("event = %+v", ev)
	}
}
