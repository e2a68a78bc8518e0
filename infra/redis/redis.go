// Package redis builds eventlistener's Redis client: one node from a URL, or
// the master behind Redis Sentinel, and watches Sentinel for master changes.
package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Options say where Redis is: URL for one node, Sentinels and MasterName
// for a master behind Sentinel, or Cluster for a Redis Cluster.
type Options struct {
	URL        string   // redis://[user:pass@]host:port/db
	Sentinels  []string // host:port of each sentinel
	MasterName string
	Cluster    []string // host:port of some cluster nodes (seeds)
	Password   string   // for the data nodes (and the sentinels, when they need one)
}

// Enabled says whether Redis is configured at all.
func (o Options) Enabled() bool { return o.URL != "" || len(o.Sentinels) > 0 || len(o.Cluster) > 0 }

// IsCluster says whether Redis is a Redis Cluster.
func (o Options) IsCluster() bool { return len(o.Cluster) > 0 }

// KeyPrefix is the prefix of the keys the engine keeps together (the node
// registry, the lease, the change log): in a cluster a hash tag, so a
// script's keys are in one slot.
func (o Options) KeyPrefix(name string) string {
	if o.IsCluster() {
		return "{" + name + "}"
	}
	return name
}

// clusterReload is how old the cluster client's slot map may be when it
// is used. go-redis reloads it on MOVED, but not when a master it knows
// refuses connections (go-redis issue 3979), and by default only once a
// minute: without this a killed master's slots would fail that long.
const clusterReload = time.Second

// Sentinel says whether the master is found through Sentinel.
func (o Options) Sentinel() bool { return len(o.Sentinels) > 0 }

// Validate checks the settings, one message per broken rule, naming the flag.
func (o Options) Validate() error {
	var errs []error
	given := 0
	for _, set := range []bool{o.URL != "", len(o.Sentinels) > 0, len(o.Cluster) > 0} {
		if set {
			given++
		}
	}
	if given > 1 {
		errs = append(errs, errors.New("--redis-url, --redis-sentinels and --redis-cluster exclude each other: give one"))
	}
	for _, s := range o.Cluster {
		if _, _, err := net.SplitHostPort(s); err != nil {
			errs = append(errs, fmt.Errorf("--redis-cluster: %q is not host:port", s))
		}
	}
	if o.URL != "" {
		if _, err := goredis.ParseURL(o.URL); err != nil {
			errs = append(errs, fmt.Errorf("--redis-url: %v", err))
		}
	}
	for _, s := range o.Sentinels {
		if _, _, err := net.SplitHostPort(s); err != nil {
			errs = append(errs, fmt.Errorf("--redis-sentinels: %q is not host:port", s))
		}
	}
	if len(o.Sentinels) > 0 && o.MasterName == "" {
		errs = append(errs, errors.New("--redis-master-name is required with --redis-sentinels"))
	}
	if len(o.Sentinels) == 0 && o.MasterName != "" {
		errs = append(errs, errors.New("--redis-master-name needs --redis-sentinels"))
	}
	return errors.Join(errs...)
}

// SplitList splits a comma-separated flag value, dropping blanks.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// NewClient makes the client: a plain one for URL, a cluster client for
// Cluster, a failover client that asks the sentinels for the master
// otherwise. It does not connect yet.
func NewClient(o Options) (goredis.UniversalClient, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.IsCluster() {
		return goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: o.Cluster, Password: o.Password,
			DialTimeout: 2 * time.Second, ClusterStateReloadInterval: clusterReload}), nil
	}
	if o.URL != "" {
		return urlClient(o)
	}
	return goredis.NewFailoverClient(&goredis.FailoverOptions{
		MasterName:       o.MasterName,
		SentinelAddrs:    o.Sentinels,
		Password:         o.Password,
		SentinelPassword: o.Password,
		DialTimeout:      2 * time.Second,
	}), nil
}

// MasterAddr asks the sentinels where the master is now; for a single node
// it is the URL's address.
func MasterAddr(ctx context.Context, o Options) (string, error) {
	if !o.Sentinel() {
		opt, err := goredis.ParseURL(o.URL)
		if err != nil {
			return "", err
		}
		return opt.Addr, nil
	}
	var last error
	for _, s := range o.Sentinels {
		sc := goredis.NewSentinelClient(&goredis.Options{Addr: s, Password: o.Password, DialTimeout: 2 * time.Second})
		addr, err := sc.GetMasterAddrByName(ctx, o.MasterName).Result()
		sc.Close()
		if err == nil && len(addr) == 2 {
			return net.JoinHostPort(addr[0], addr[1]), nil
		}
		last = err
	}
	return "", fmt.Errorf("no sentinel knows master %q: %v", o.MasterName, last)
}

// Publisher publishes messages on one channel.
type Publisher struct {
	client  goredis.UniversalClient
	channel string
}

// NewPublisher makes a publisher on channel.
func NewPublisher(o Options, channel string) (*Publisher, error) {
	c, err := NewClient(o)
	if err != nil {
		return nil, err
	}
	return &Publisher{client: c, channel: channel}, nil
}

// Publish sends payload.
func (p *Publisher) Publish(ctx context.Context, payload []byte) error {
	return p.client.Publish(ctx, p.channel, payload).Err()
}

// Close closes the connection.
func (p *Publisher) Close() error { return p.client.Close() }

// SetLogger sends go-redis's own log lines (reconnects, dropped messages)
// to log, at INFO (go-redis does not say how grave a line is).
func SetLogger(log *slog.Logger) {
	goredis.SetLogger(redisLog{log.With("component", "go-redis")})
}

type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(_ context.Context, format string, v ...interface{}) {
	l.log.Info(fmt.Sprintf(format, v...))
}

// urlClient is the client of the single Redis at o.URL.
func urlClient(o Options) (*goredis.Client, error) {
	opt, err := goredis.ParseURL(o.URL)
	if err != nil {
		return nil, err
	}
	if o.Password != "" && opt.Password == "" {
		opt.Password = o.Password
	}
	opt.DialTimeout = 2 * time.Second
	return goredis.NewClient(opt), nil
}

// NodeClient is a client of the one node at addr (a single Redis: the URL's
// settings; through Sentinel: a master the sentinels named), without
// Sentinel's failover logic: the caller decides where to connect.
func NodeClient(o Options, addr string) (*goredis.Client, error) {
	if !o.Sentinel() {
		return urlClient(o)
	}
	// One quick try per call: the caller has its own backoff, and a dead
	// node must not hold it for seconds of hidden retries.
	return goredis.NewClient(&goredis.Options{Addr: addr, Password: o.Password, DialTimeout: 2 * time.Second,
		MaxRetries: -1, DialerRetries: 1}), nil
}

// Role asks a node for its role: "master", "slave" or "sentinel".
func Role(ctx context.Context, c *goredis.Client) (string, error) {
	v, err := c.Do(ctx, "ROLE").Slice()
	if err != nil {
		return "", err
	}
	if len(v) == 0 {
		return "", errors.New("empty ROLE reply")
	}
	role, _ := v[0].(string)
	return role, nil
}
