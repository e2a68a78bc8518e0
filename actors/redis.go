package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"eventlistener/event"
	infraredis "eventlistener/infra/redis"
)

// RedisConfig says what the Redis subscriber subscribes to.
type RedisConfig struct {
	Options infraredis.Options
	// Channels to subscribe to; an entry with glob characters (* ? [) is a
	// pattern subscription.
	Channels []string
	// EventType is the type of messages that are not events themselves.
	EventType string
	// MaxEventBytes is the largest data of one message's event (as
	// --max-event-bytes for HTTP); zero: no limit.
	MaxEventBytes int

	// beforeSubscribe, in tests, runs before each subscription and may
	// panic or fail like connection code does.
	beforeSubscribe func() error
}

// RedisStatus is what GET /v1/node shows of the subscription.
type RedisStatus struct {
	Mode       string    `json:"mode"`    // "single" or "sentinel"
	Running    bool      `json:"running"` // the subscriber runs on this node (it is master)
	Master     string    `json:"master"`
	Subscribed bool      `json:"subscribed"`
	Channels   []string  `json:"channels"`
	Since      time.Time `json:"since"` // when Subscribed last changed
	LastError  string    `json:"last_error,omitempty"`
	Restarts   int       `json:"restarts"` // of the subscriber actor
	Messages   int64     `json:"messages"`
	Bad        int64     `json:"bad_messages"`
}

// redisState is the subscriber's status, shared with the API; it outlives
// restarts of the actor.
type redisState struct {
	mu sync.Mutex
	s  RedisStatus
}

func (r *redisState) snapshot() RedisStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.s
	s.Channels = append([]string(nil), s.Channels...)
	return s
}

func (r *redisState) update(f func(s *RedisStatus)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.s)
}

type redisMetrics struct {
	up       prometheus.Gauge
	messages *prometheus.CounterVec
	bad      *prometheus.CounterVec
	restored prometheus.Counter
	restarts prometheus.Counter
}

func newRedisMetrics(reg prometheus.Registerer) *redisMetrics {
	m := &redisMetrics{
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eventlistener_redis_subscription_up",
			Help: "1 while every Redis channel and pattern is subscribed on the current master.",
		}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventlistener_redis_messages_total",
			Help: "Redis messages received, by the channel or pattern subscribed.",
		}, []string{"subscription"}),
		bad: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventlistener_redis_bad_messages_total",
			Help: "Redis messages that could not become events, by the channel or pattern subscribed.",
		}, []string{"subscription"}),
		restored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventlistener_redis_subscriptions_restored_total",
			Help: "Times the subscription was made again after it was lost or the master changed.",
		}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventlistener_redis_subscriber_restarts_total",
			Help: "Restarts of the Redis subscriber actor by its supervisor.",
		}),
	}
	reg.MustRegister(m.up, m.messages, m.bad, m.restored, m.restarts)
	return m
}

// subscriptionFailed reports a failure of the subscription goroutine; the
// actor crashes on it so its supervisor restarts it.
type subscriptionFailed struct{ err error }

// redisSubscriber owns the Redis subscription. Its goroutine receives the
// messages and hands them to the engine like HTTP events; Receive only
// starts, stops and crashes it.
type redisSubscriber struct {
	cfg     RedisConfig
	ingest  func([]event.Event) error
	state   *redisState
	metrics *redisMetrics
	log     *slog.Logger

	cancel context.CancelFunc
	done   chan struct{}

	mu            sync.Mutex
	current       *goredis.PubSub
	currentAddr   string             // where the session under way connects
	cancelSession context.CancelFunc // ends the session under way
	switched      chan string
}

func (s *redisSubscriber) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *actor.Started:
		ctx, cancel := context.WithCancel(context.Background())
		s.cancel, s.done, s.switched = cancel, make(chan struct{}), make(chan string, 1)
		self, root := c.Self(), c.ActorSystem().Root
		go s.run(ctx, func(err error) { root.Send(self, &subscriptionFailed{err: err}) })
	case *subscriptionFailed:
		panic(m.err) // the supervisor restarts the actor
	case *actor.Restarting:
		s.metrics.restarts.Inc()
		s.state.update(func(st *RedisStatus) { st.Restarts++ })
		s.stop()
	case *actor.Stopping:
		s.stop()
	}
}

// stop ends the goroutine and waits (briefly) for it.
func (s *redisSubscriber) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.mu.Lock()
	if s.current != nil {
		s.current.Close()
	}
	s.mu.Unlock()
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		s.log.Warn("Redis subscription did not stop within 5s")
	}
	s.setUp(false, "", nil)
}

// run subscribes, receives, and subscribes again whenever the subscription
// is lost or the master changes, until ctx is done. A panic or a failure to
// even build the client is reported with fail.
func (s *redisSubscriber) run(ctx context.Context, fail func(error)) {
	defer close(s.done)
	defer func() {
		if r := recover(); r != nil {
			err := fmt.Errorf("redis subscription panicked: %v", r)
			s.state.update(func(st *RedisStatus) { st.LastError = err.Error() })
			fail(err)
		}
	}()
	if s.cfg.Options.Sentinel() {
		go s.watchSentinels(ctx)
	}
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval = 50*time.Millisecond, 2*time.Second
	target := "" // the master a switch announced; "" means ask
	for ctx.Err() == nil {
		if s.cfg.beforeSubscribe != nil {
			if err := s.cfg.beforeSubscribe(); err != nil {
				s.state.update(func(st *RedisStatus) { st.LastError = err.Error() })
				fail(err)
				return
			}
		}
		addr, err := s.session(ctx, target)
		target = ""
		if ctx.Err() != nil {
			return
		}
		s.setUp(false, addr, err)
		var sw switchedTo
		if errors.As(err, &sw) {
			bo.Reset()
			target = string(sw) // a new master is known: subscribe there at once
			continue
		}
		select {
		case <-ctx.Done():
			return
		case to := <-s.switched:
			target = to
		case <-time.After(bo.NextBackOff()):
		}
	}
}

// switchedTo ends a session: Sentinel announced a new master at this address.
type switchedTo string

func (e switchedTo) Error() string { return "sentinel switched the master to " + string(e) }

// session finds the master (target, or what the sentinels say), checks
// that it is a master, subscribes there and receives until something
// fails. It returns the address it used.
func (s *redisSubscriber) session(ctx context.Context, target string) (string, error) {
	o := s.cfg.Options
	addr := target
	if addr == "" {
		var err error
		if addr, err = infraredis.MasterAddr(ctx, o); err != nil {
			return "", err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	s.currentAddr, s.cancelSession = addr, cancel
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.current, s.currentAddr, s.cancelSession = nil, "", nil
		s.mu.Unlock()
	}()
	client, err := infraredis.NodeClient(o, addr)
	if err != nil {
		return addr, err
	}
	defer client.Close()
	if o.Sentinel() {
		// A sentinel that has not heard of a switch yet names the old master;
		// subscribing there would hear nothing that is published on the new.
		if role, err := infraredis.Role(ctx, client); err != nil {
			return addr, err
		} else if role != "master" {
			return addr, fmt.Errorf("%s is a %s, not the master", addr, role)
		}
	}
	ps := client.Subscribe(ctx)
	defer ps.Close()
	s.mu.Lock()
	s.current = ps
	s.mu.Unlock()
	err = s.subscribe(ctx, ps)
	if err == nil {
		err = s.receive(ctx, ps, addr)
	}
	if ctx.Err() != nil && err != nil {
		// Cut short by a switch (the run's own ctx is checked by run).
		select {
		case to := <-s.switched:
			return addr, switchedTo(to)
		default:
		}
	}
	return addr, err
}

func (s *redisSubscriber) subscribe(ctx context.Context, ps *goredis.PubSub) error {
	var channels, patterns []string
	for _, c := range s.cfg.Channels {
		if strings.ContainsAny(c, "*?[") {
			patterns = append(patterns, c)
		} else {
			channels = append(channels, c)
		}
	}
	if len(channels) > 0 {
		if err := ps.Subscribe(ctx, channels...); err != nil {
			return err
		}
	}
	if len(patterns) > 0 {
		if err := ps.PSubscribe(ctx, patterns...); err != nil {
			return err
		}
	}
	return nil
}

// silence is how long a subscription may go without any reply (a message,
// or the PONG of the PING sent after each quiet second) before it is taken
// for dead: a connection that stopped answering would otherwise look
// subscribed until TCP gives up, many minutes later.
const silence = 3 * time.Second

// receive hands messages to the engine until the subscription fails, goes
// silent, or the master switches.
func (s *redisSubscriber) receive(ctx context.Context, ps *goredis.PubSub, addr string) error {
	confirmed := 0
	lastHeard := time.Now()
	for {
		select {
		case to := <-s.switched:
			if to != addr {
				return switchedTo(to)
			}
		default:
		}
		msg, err := ps.ReceiveTimeout(ctx, time.Second)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if time.Since(lastHeard) > silence {
					return fmt.Errorf("no answer from %s for %v", addr, silence)
				}
				if err := ps.Ping(ctx); err != nil {
					return fmt.Errorf("ping: %w", err)
				}
				continue
			}
			select {
			case to := <-s.switched:
				if to != addr {
					return switchedTo(to)
				}
			default:
			}
			return err
		}
		lastHeard = time.Now()
		switch m := msg.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" || m.Kind == "psubscribe" {
				confirmed++
				if confirmed == len(s.cfg.Channels) {
					s.setUp(true, addr, nil)
				}
			}
		case *goredis.Message:
			s.handle(ctx, m)
		}
	}
}

// handle turns one message into an event and hands it to the engine,
// waiting while the engine is full: a message is dropped only when the
// engine stops.
func (s *redisSubscriber) handle(ctx context.Context, m *goredis.Message) {
	sub := m.Channel
	if m.Pattern != "" {
		sub = m.Pattern
	}
	s.metrics.messages.WithLabelValues(sub).Inc()
	s.state.update(func(st *RedisStatus) { st.Messages++ })
	ev, err := messageToEvent(m.Channel, []byte(m.Payload), s.cfg.EventType, s.cfg.MaxEventBytes, time.Now().UTC())
	if err != nil {
		s.metrics.bad.WithLabelValues(sub).Inc()
		s.state.update(func(st *RedisStatus) { st.Bad++ })
		s.log.Warn("Redis message is not a valid event; skipped", "channel", m.Channel, "error", err,
			"payload", preview(m.Payload))
		return
	}
	wait := 10 * time.Millisecond
	for {
		err := s.ingest([]event.Event{ev})
		if err == nil {
			return
		}
		if errors.Is(err, errNotHolder) {
			s.log.Debug("Redis message dropped: this node no longer holds the duties", "channel", m.Channel, "id", ev.ID)
			return
		}
		if !errors.Is(err, ErrOverloaded) {
			s.log.Error("Redis message dropped", "channel", m.Channel, "id", ev.ID, "error", err)
			return
		}
		select {
		case <-ctx.Done():
			s.log.Error("Redis message dropped at shutdown", "channel", m.Channel, "id", ev.ID)
			return
		case <-time.After(wait):
			wait = min(2*wait, time.Second)
		}
	}
}

func preview(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// setUp records the subscription's state, and logs the change.
func (s *redisSubscriber) setUp(up bool, master string, err error) {
	var was bool
	s.state.update(func(st *RedisStatus) {
		was = st.Subscribed
		if up || st.Master == "" {
			st.Master = master
		}
		if up != st.Subscribed {
			st.Subscribed, st.Since = up, time.Now().UTC()
		}
		if err != nil {
			st.LastError = err.Error()
		}
	})
	switch {
	case up && !was:
		s.metrics.up.Set(1)
		s.metrics.restored.Inc()
		s.log.Info("Redis subscription restored", "master", master, "channels", s.cfg.Channels)
	case !up && was:
		s.metrics.up.Set(0)
		if err != nil {
			s.log.Warn("Redis subscription lost", "master", master, "error", err)
		} else {
			s.log.Info("Redis subscription closed", "master", master)
		}
	}
}

// watchSentinels listens to every sentinel's +switch-master, so a forced
// failover moves the subscription at once instead of after the old master
// is demoted (which drops its clients seconds later). Every sentinel tells
// the news; a subscription already on the new master is left alone.
func (s *redisSubscriber) watchSentinels(ctx context.Context) {
	o := s.cfg.Options
	for _, addr := range o.Sentinels {
		go func() {
			sc := goredis.NewSentinelClient(&goredis.Options{Addr: addr, Password: o.Password, DialTimeout: 2 * time.Second})
			defer sc.Close()
			ps := sc.Subscribe(ctx, "+switch-master")
			defer ps.Close()
			ch := ps.Channel()
			for {
				select {
				case <-ctx.Done():
					return
				case m, ok := <-ch:
					if !ok {
						return
					}
					// "<name> <old ip> <old port> <new ip> <new port>"
					f := strings.Fields(m.Payload)
					if len(f) != 5 || f[0] != o.MasterName {
						continue
					}
					s.masterSwitched(net.JoinHostPort(f[1], f[2]), net.JoinHostPort(f[3], f[4]))
				}
			}
		}()
	}
}

// masterSwitched moves the subscription to the new master, unless it is
// there already.
func (s *redisSubscriber) masterSwitched(from, to string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.currentAddr == to {
		return
	}
	s.log.Info("Sentinel switched the Redis master; subscribing on the new one", "from", from, "to", to)
	select {
	case s.switched <- to:
	default:
		select { // replace an older, unread announcement
		case <-s.switched:
		default:
		}
		s.switched <- to
	}
	// End the session under way at once, whatever it is doing: dialing a
	// dead node, asking its role, or waiting for messages.
	if s.cancelSession != nil {
		s.cancelSession()
	}
	if s.current != nil {
		s.current.Close()
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
