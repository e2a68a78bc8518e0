package main

import (
	"fmt"
	"log/slog"
	"net/url"

	"github.com/prometheus/client_golang/prometheus"

	"eventlistener/api"
	"eventlistener/infra/haproxy"
	infraredis "eventlistener/infra/redis"
	"eventlistener/sources"
)

// openSources makes the sources the settings ask for; closeAll releases
// what they hold once the engine stopped them. proxy is the HAProxy
// watcher among them, or nil.
func openSources(c *config, reg prometheus.Registerer, log *slog.Logger) (list []sources.Source, proxy *sources.Proxy, closeAll func(), err error) {
	var closers []func() error
	closeAll = func() {
		for _, f := range closers {
			_ = f()
		}
	}
	if len(c.redisChannels) > 0 {
		list = append(list, sources.NewPubSub(sources.PubSubConfig{Options: c.redis, Channels: c.redisChannels, Sharded: c.RedisSharded,
			EventType: c.RedisEventType, MaxEventBytes: int(c.maxEventBytes)}, reg, log.With("source", "redis")))
	}
	if len(c.redisStreams) > 0 {
		start := "0"
		if c.RedisGroupStart == "newest" {
			start = "$"
		}
		list = append(list, sources.NewStreams(sources.StreamsConfig{Options: c.redis, Keys: c.redisStreams,
			Group: c.RedisGroup, Consumer: nodeID(c), Start: start, Batch: c.RedisStreamBatch, ClaimIdle: c.RedisStreamClaim,
			DeadSuffix: c.RedisStreamDead, DeadMaxLen: c.RedisStreamDeadMax, EventType: c.RedisEventType,
			MaxEventBytes: int(c.maxEventBytes)}, reg, log.With("source", "redis-streams")))
	}
	if c.HAProxyStatsURL != "" || c.HAProxyRuntimeAddr != "" {
		name := "haproxy://" + c.HAProxyRuntimeAddr
		if u, err := url.Parse(c.HAProxyStatsURL); err == nil && u.Host != "" {
			name = "haproxy://" + u.Host
		}
		pc := sources.ProxyConfig{Client: &haproxy.Client{StatsURL: c.HAProxyStatsURL, RuntimeAddr: c.HAProxyRuntimeAddr},
			Interval: c.HAProxyPollInterval, Source: name}
		if c.redis.Enabled() {
			changes, err := infraredis.NewChangeLog(c.redis, c.ClusterName)
			if err != nil {
				closeAll()
				return nil, nil, nil, fmt.Errorf("HAProxy change log: %w", err)
			}
			closers = append(closers, changes.Close)
			pc.Changes = changes
		}
		proxy = sources.NewProxy(pc, reg, log.With("source", "haproxy"))
		list = append(list, proxy)
	}
	return list, proxy, closeAll, nil
}

// apiProxy is proxy for the API: nil stays an untyped nil.
func apiProxy(p *sources.Proxy) api.Proxy {
	if p == nil {
		return nil
	}
	return p
}

// consoleProxy is proxy for the console: nil stays an untyped nil.
func consoleProxy(p *sources.Proxy) interface{ Snapshot() sources.ProxySnapshot } {
	if p == nil {
		return nil
	}
	return p
}
