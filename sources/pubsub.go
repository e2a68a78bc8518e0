package sources

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"eventlistener/event"
	infraredis "eventlistener/infra/redis"
)

// PubSubConfig says what the Redis subscriber subscribes to.
type PubSubConfig struct {
	Options infraredis.Options
	// Channels to subscribe to; an entry with glob characters (* ? [) is a
	// pattern subscription.
	Channels []string
	// Sharded subscribes to sharded channels (SSUBSCRIBE, Redis 7) in a
	// Redis Cluster: each on the shard that owns it. Channels then has no
	// patterns.
	Sharded bool
	// EventType is the type of messages that are not events themselves.
	EventType string
	// MaxEventBytes is the largest data of one message's event (as
	// --max-event-bytes for HTTP); zero: no limit.
	MaxEventBytes int

	// BeforeSubscribe, in tests, runs before each subscription and may
	// panic or fail like connection code does: a failure ends Run with it.
	BeforeSubscribe func() error
}

// PubSubStatus is what GET /v1/node shows of the subscription.
type PubSubStatus struct {
	Mode       string    `json:"mode"` // "single", "sentinel", "cluster" or "cluster, sharded"
	Master     string    `json:"master"`
	Subscribed bool      `json:"subscribed"`
	Channels   []string  `json:"channels"`
	Since      time.Time `json:"since"` // when Subscribed last changed
	LastError  string    `json:"last_error,omitempty"`
	Messages   int64     `json:"messages"`
	Bad        int64     `json:"bad_messages"`
}

// Hidden is the status with its error blanked, for callers without the
// admin token.
func (r PubSubStatus) Hidden() any {
	HideDetail(&r.LastError)
	return &r
}

type pubsubMetrics struct {
	up       prometheus.Gauge
	messages *prometheus.CounterVec
	bad      *prometheus.CounterVec
	restored prometheus.Counter
}

func newPubSubMetrics(reg prometheus.Registerer) *pubsubMetrics {
	m := &pubsubMetrics{
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
	}
	reg.MustRegister(m.up, m.messages, m.bad, m.restored)
	return m
}

// PubSub owns the Redis subscription: it receives the messages and hands
// them to the engine like HTTP events, and subscribes again whenever the
// subscription is lost or Sentinel moves the master. It is a Singleton:
// every subscriber hears every message.
type PubSub struct {
	cfg     PubSubConfig
	metrics *pubsubMetrics
	log     *slog.Logger

	stMu sync.Mutex
	st   PubSubStatus
}

// pubsubRun is one Run of a PubSub: a stopping Run may overlap the next.
type pubsubRun struct {
	*PubSub
	env Env

	mu            sync.Mutex
	current       *goredis.PubSub
	currentAddr   string             // where the session under way connects
	cancelSession context.CancelFunc // ends the session under way
	switched      chan string
}

// NewPubSub makes the subscriber; its metrics go to reg.
func NewPubSub(cfg PubSubConfig, reg prometheus.Registerer, log *slog.Logger) *PubSub {
	if cfg.EventType == "" {
		cfg.EventType = "redis.message"
	}
	mode := "single"
	switch {
	case cfg.Options.Sentinel():
		mode = "sentinel"
	case cfg.Options.IsCluster() && cfg.Sharded:
		mode = "cluster, sharded"
	case cfg.Options.IsCluster():
		mode = "cluster"
	}
	return &PubSub{cfg: cfg, metrics: newPubSubMetrics(reg), log: log,
		st: PubSubStatus{Mode: mode, Channels: cfg.Channels}}
}

// Name is "redis".
func (s *PubSub) Name() string { return "redis" }

// Placement is Singleton.
func (s *PubSub) Placement() Placement { return Singleton }

// Status is a *PubSubStatus.
func (s *PubSub) Status() any {
	s.stMu.Lock()
	defer s.stMu.Unlock()
	st := s.st
	st.Channels = append([]string(nil), st.Channels...)
	return &st
}

func (s *PubSub) update(f func(st *PubSubStatus)) {
	s.stMu.Lock()
	defer s.stMu.Unlock()
	f(&s.st)
}

// Run subscribes, receives, and subscribes again whenever the subscription
// is lost or the master changes, until ctx is done.
func (s *PubSub) Run(ctx context.Context, env Env) error {
	return (&pubsubRun{PubSub: s, env: env, switched: make(chan string, 1)}).run(ctx)
}

func (s *pubsubRun) run(ctx context.Context) error {
	// Ending ends the session under way at once, whatever it waits for.
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.current != nil {
			s.current.Close()
		}
	})
	defer stop()
	defer s.setUp(false, "", nil)
	if s.cfg.Options.Sentinel() {
		go s.watchSentinels(ctx)
	}
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval = 50*time.Millisecond, 2*time.Second
	target := "" // the master a switch announced; "" means ask
	for ctx.Err() == nil {
		if s.cfg.BeforeSubscribe != nil {
			if err := s.cfg.BeforeSubscribe(); err != nil {
				s.update(func(st *PubSubStatus) { st.LastError = err.Error() })
				return err
			}
		}
		var addr string
		var err error
		if s.cfg.Options.IsCluster() {
			addr, err = s.clusterSession(ctx)
		} else {
			addr, err = s.session(ctx, target)
		}
		target = ""
		if ctx.Err() != nil {
			return nil
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
			return nil
		case to := <-s.switched:
			target = to
		case <-time.After(bo.NextBackOff()):
		}
	}
	return nil
}

// switchedTo ends a session: Sentinel announced a new master at this address.
type switchedTo string

func (e switchedTo) Error() string { return "sentinel switched the master to " + string(e) }

// session finds the master (target, or what the sentinels say), checks
// that it is a master, subscribes there and receives until something
// fails. It returns the address it used.
func (s *pubsubRun) session(ctx context.Context, target string) (string, error) {
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
		var confirmed atomic.Int32
		err = s.receive(ctx, ps, addr, &confirmed)
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

func (s *pubsubRun) subscribe(ctx context.Context, ps *goredis.PubSub) error {
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

// clusterSession subscribes through a Redis Cluster and receives until
// something fails: classic channels and patterns on one node (the cluster
// passes every message to every node), or each sharded channel on the
// shard that owns it. A failover ends the session; the next one asks the
// cluster again where to go.
func (s *pubsubRun) clusterSession(ctx context.Context) (string, error) {
	const addr = "cluster"
	c, err := infraredis.NewClient(s.cfg.Options)
	if err != nil {
		return addr, err
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var groups [][]string // the channels of each connection
	if s.cfg.Sharded {
		for _, ch := range s.cfg.Channels {
			groups = append(groups, []string{ch})
		}
	} else {
		groups = [][]string{nil}
	}
	var confirmed atomic.Int32
	errs := make(chan error, len(groups))
	var subs []*goredis.PubSub
	for _, g := range groups {
		var ps *goredis.PubSub
		if s.cfg.Sharded {
			ps = c.SSubscribe(ctx, g...)
		} else {
			ps = c.Subscribe(ctx)
			if err := s.subscribe(ctx, ps); err != nil {
				ps.Close()
				return addr, err
			}
		}
		subs = append(subs, ps)
		go func() { errs <- s.receive(ctx, ps, addr, &confirmed) }()
	}
	s.mu.Lock()
	s.cancelSession = cancel
	s.mu.Unlock()
	defer func() {
		for _, ps := range subs {
			ps.Close()
		}
	}()
	select {
	case err = <-errs:
	case <-ctx.Done():
	}
	cancel()
	for _, ps := range subs {
		ps.Close()
	}
	return addr, err
}

// silence is how long a subscription may go without any reply (a message,
// or the PONG of the PING sent after each quiet second) before it is taken
// for dead: a connection that stopped answering would otherwise look
// subscribed until TCP gives up, many minutes later.
const silence = 3 * time.Second

// receive hands messages to the engine until the subscription fails, goes
// silent, or the master switches.
func (s *pubsubRun) receive(ctx context.Context, ps *goredis.PubSub, addr string, confirmed *atomic.Int32) error {
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
			if m.Kind == "subscribe" || m.Kind == "psubscribe" || m.Kind == "ssubscribe" {
				if int(confirmed.Add(1)) == len(s.cfg.Channels) {
					s.setUp(true, addr, nil)
				}
			}
		case *goredis.Message:
			s.handle(ctx, m)
		}
	}
}

// handle turns one message into an event and hands it to the engine,
// which waits while it is full: a message is dropped only when the
// engine stops or this node lost the duties.
func (s *pubsubRun) handle(ctx context.Context, m *goredis.Message) {
	sub := m.Channel
	if m.Pattern != "" {
		sub = m.Pattern
	}
	s.metrics.messages.WithLabelValues(sub).Inc()
	s.update(func(st *PubSubStatus) { st.Messages++ })
	ev, err := payloadEvent("redis://"+m.Channel, "", []byte(m.Payload), s.cfg.EventType, s.cfg.MaxEventBytes, time.Now().UTC())
	if err != nil {
		s.metrics.bad.WithLabelValues(sub).Inc()
		s.update(func(st *PubSubStatus) { st.Bad++ })
		s.log.Warn("Redis message is not a valid event; skipped", "channel", m.Channel, "error", err,
			"payload", preview(m.Payload))
		return
	}
	switch err := s.env.Ingest(ctx, []event.Event{ev}); {
	case err == nil:
	case errors.Is(err, ErrNotHolder):
		s.log.Debug("Redis message dropped: this node no longer holds the duties", "channel", m.Channel, "id", ev.ID)
	case ctx.Err() != nil:
		s.log.Error("Redis message dropped at shutdown", "channel", m.Channel, "id", ev.ID)
	default:
		s.log.Error("Redis message dropped", "channel", m.Channel, "id", ev.ID, "error", err)
	}
}

func preview(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// setUp records the subscription's state, and logs the change.
func (s *PubSub) setUp(up bool, master string, err error) {
	var was bool
	s.update(func(st *PubSubStatus) {
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
func (s *pubsubRun) watchSentinels(ctx context.Context) {
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
func (s *pubsubRun) masterSwitched(from, to string) {
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
