package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/urfave/cli/v3"

	"eventlistener/actors"
	"eventlistener/api"
	infraredis "eventlistener/infra/redis"
	"eventlistener/infra/vip"
	"eventlistener/sinks"
	"eventlistener/sources"
)

// config is every setting, filled from flags and environment.
type config struct {
	HTTPAddr           string
	DatabaseURL        string
	ReplaceTemplate    bool // migrate --force
	ElasticsearchURL   string
	ElasticsearchIndex string
	DataDir            string
	FallbackDir        string
	SkipMigrate        bool

	BatchMaxEvents    int
	BatchMaxBytes     string
	BatchIdle         time.Duration
	BatchMaxAge       time.Duration
	MaxInFlight       int
	SinkWindow        int
	WriteTimeout      time.Duration
	MaxPendingBytes   string
	RetryMaxElapsed   time.Duration // replay's
	MaxBodyBytes      string
	MaxRequestEvents  int
	MaxEventBytes     string
	DecodeBudget      string
	MemoryLimit       string
	HTTPReadTimeout   time.Duration
	HTTPWriteTimeout  time.Duration
	HTTPIdleTimeout   time.Duration
	HTTPMaxConns      int
	AdminMaxConns     int
	ConsoleHistory    time.Duration
	ConsoleMaxStreams int
	ConsoleTailRate   float64
	AdminAllowedHosts string
	ShutdownTimeout   time.Duration
	APIKeys           string

	WALDir      string
	WALMaxBytes string
	WALFull     string
	Ack         string
	AckTimeout  time.Duration

	LogLevel  string
	LogFormat string
	AdminAddr string

	RedisURL           string
	RedisSentinels     string
	RedisMasterName    string
	RedisPassword      string
	RedisChannels      string
	RedisCluster       string
	RedisSharded       bool
	RedisStreams       string
	RedisGroup         string
	RedisGroupStart    string
	RedisStreamBatch   int
	RedisStreamClaim   time.Duration
	RedisStreamDead    string
	RedisStreamDeadMax int64
	RedisEventType     string
	RedisNotifyChannel string
	RedisNotifyQueue   int
	NodeID             string
	NodeAddr           string
	ClusterName        string
	NodeHeartbeat      time.Duration
	DutyLease          time.Duration

	HAProxyStatsURL     string
	HAProxyRuntimeAddr  string
	HAProxyPollInterval time.Duration
	AdminToken          string
	VIP                 string

	// Parsed forms.
	batchMaxBytes   int64
	maxPendingBytes int64
	walMaxBytes     int64
	maxBodyBytes    int64
	maxEventBytes   int64
	decodeBudget    int64
	memoryLimit     int64
	apiKeys         []api.APIKey
	esAddresses     []string
	redis           infraredis.Options
	redisChannels   []string
	redisStreams    []string
	vip             *vip.Checker
}

// walSegmentBytes is the WAL's segment size (wal.DefaultOptions).
const walSegmentBytes = 64 << 20

// defaults, with the reasons in actors.DefaultConfig.
func defaultConfig() config {
	d := actors.DefaultConfig
	return config{
		HTTPAddr:           ":8080",
		AdminAddr:          "127.0.0.1:8081",
		ElasticsearchIndex: "events",
		DataDir:            "./data",
		BatchMaxEvents:     d.MaxEvents,
		BatchMaxBytes:      humanize.IBytes(uint64(d.MaxBytes)),
		BatchIdle:          d.Idle,
		BatchMaxAge:        d.MaxAge,
		MaxInFlight:        d.MaxInFlight,
		SinkWindow:         d.Window,
		WriteTimeout:       sinks.DefaultAttemptTimeout,
		MaxPendingBytes:    humanize.IBytes(uint64(d.WAL.QueueBytes)),
		RetryMaxElapsed:    sinks.DefaultRetry.MaxElapsed,
		WALMaxBytes:        humanize.IBytes(uint64(d.WAL.MaxBytes)),
		WALFull:            string(d.WAL.Full),
		Ack:                string(d.Ack),
		// Long enough for a store's retries to ride out a blip, short
		// enough that a client's own timeout (often 30-60s) is later.
		AckTimeout: 10 * time.Second,
		// Large enough for 1,000 events of a few KiB in one request.
		MaxBodyBytes: "16MiB",
		// A full 16 MiB body of 170-byte events, far more than batching
		// clients send; tiny events cost about 300 bytes each once decoded,
		// so a request holds at most ~30 MB of them.
		MaxRequestEvents: 100_000,
		MaxEventBytes:    "1MiB",
		// Room for three requests of the largest body and the most events
		// (83 MiB each, counted at their worst) or hundreds of ordinary
		// ones; with it, eight clients posting 16 MiB bodies at once keep
		// the engine under 512 MiB.
		DecodeBudget: "256MiB",
		// In a container, 90% of its memory limit; elsewhere none.
		MemoryLimit: "auto",
		// A 16 MiB body still arrives over a slow (~2 Mbit/s) link.
		HTTPReadTimeout: time.Minute,
		// Reading the body, waiting for the WAL or for ?ack=stored's
		// --ack-timeout, and writing the answer.
		HTTPWriteTimeout: 90 * time.Second,
		// Keeps a client's idle keep-alive connection, not a dead one's.
		HTTPIdleTimeout: 2 * time.Minute,
		// Far above what producers behind a proxy open, and within the
		// open-file limit of a default container (Go raises it to the hard
		// limit); every connection costs a goroutine and its buffers.
		HTTPMaxConns:  4096,
		AdminMaxConns: 64,
		// 15 one-second samples a minute, about 400 bytes each: 360 KiB.
		ConsoleHistory: 15 * time.Minute,
		// An open console tab holds two streams (stats and tail): 16
		// leave most of --admin-max-conns to Prometheus and curl.
		ConsoleMaxStreams: 16,
		// Enough to read as they scroll by; a stream costs no more at a
		// million events a second.
		ConsoleTailRate: 20,
		// Below Kubernetes' 30s grace period (and with the HTTP drain
		// counted in), so a stop is never a SIGKILL; what the stores do not
		// take in time stays in the WAL for the next start.
		ShutdownTimeout: 20 * time.Second,
		LogLevel:        "info",
		LogFormat:       "text",
		RedisEventType:  "redis.message",
		// The reasons are in sources.DefaultStreams.
		RedisGroup:         sources.DefaultStreams.Group,
		RedisGroupStart:    "oldest",
		RedisStreamBatch:   sources.DefaultStreams.Batch,
		RedisStreamClaim:   sources.DefaultStreams.ClaimIdle,
		RedisStreamDead:    sources.DefaultStreams.DeadSuffix,
		RedisStreamDeadMax: sources.DefaultStreams.DeadMaxLen,
		RedisNotifyQueue:   actors.DefaultNotifyQueue,
		ClusterName:        "eventlistener",
		// An entry lives five heartbeats (10 s): a node killed is seen
		// gone within that, a GC pause or a slow Redis is not a death.
		NodeHeartbeat: 2 * time.Second,
		// Renewed every 2 s; a holder that cannot renew steps down after
		// 4 s, and another node takes over after 6 s to 8 s.
		DutyLease: 6 * time.Second,
		// Often enough to see a server go down within seconds; a poll is one
		// small HTTP request.
		HAProxyPollInterval: 2 * time.Second,
	}
}

// env names a setting's environment variables: EVENTLISTENER_ and the
// flag's name in upper snake case, then the ecosystem's usual names.
func env(flag string, more ...string) cli.ValueSourceChain {
	name := "EVENTLISTENER_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
	return cli.EnvVars(append([]string{name}, more...)...)
}

// storeFlags are the settings of serve, replay and migrate.
func storeFlags(c *config) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "database-url", Destination: &c.DatabaseURL, Sources: env("database-url", "DATABASE_URL"),
			Usage: "PostgreSQL connection URL, e.g. postgres://user:pass@host:5432/db; empty: PostgreSQL is not used"},
		&cli.StringFlag{Name: "elasticsearch-url", Destination: &c.ElasticsearchURL, Sources: env("elasticsearch-url", "ELASTICSEARCH_URL"),
			Usage: "Elasticsearch node URLs, comma-separated; empty: Elasticsearch is not used"},
		&cli.StringFlag{Name: "elasticsearch-index", Value: c.ElasticsearchIndex, Destination: &c.ElasticsearchIndex, Sources: env("elasticsearch-index"),
			Usage: "Elasticsearch data stream that events are written to"},
		&cli.StringFlag{Name: "data-dir", Value: c.DataDir, Destination: &c.DataDir, Sources: env("data-dir"),
			Usage: "folder for local data; with no store configured, events are written here as NDJSON files"},
		&cli.StringFlag{Name: "fallback-dir", Destination: &c.FallbackDir, Sources: env("fallback-dir"), DefaultText: "<data-dir>/fallback",
			Usage: "folder of the fallback log: the events a store refused (and, with --wal-full spill, those a full WAL could not keep)"},
		&cli.StringFlag{Name: "log-level", Value: c.LogLevel, Destination: &c.LogLevel, Sources: env("log-level"),
			Usage: "debug, info, warn or error"},
		&cli.StringFlag{Name: "log-format", Value: c.LogFormat, Destination: &c.LogFormat, Sources: env("log-format"),
			Usage: "text or json"},
	}
}

// serveFlags are serve's own settings.
func serveFlags(c *config) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "http-addr", Value: c.HTTPAddr, Destination: &c.HTTPAddr, Sources: env("http-addr"),
			Usage: "address the HTTP API listens on"},
		&cli.BoolFlag{Name: "skip-migrate", Destination: &c.SkipMigrate, Sources: env("skip-migrate"),
			Usage: "do not create the PostgreSQL table and Elasticsearch index template before the first write"},
		&cli.IntFlag{Name: "batch-max-events", Value: c.BatchMaxEvents, Destination: &c.BatchMaxEvents, Sources: env("batch-max-events"),
			Usage: "flush a batch when it holds this many events"},
		&cli.StringFlag{Name: "batch-max-bytes", Value: c.BatchMaxBytes, Destination: &c.BatchMaxBytes, Sources: env("batch-max-bytes"),
			Usage: "flush a batch when it holds this many bytes (e.g. 4MiB)"},
		&cli.DurationFlag{Name: "batch-idle", Value: c.BatchIdle, Destination: &c.BatchIdle, Sources: env("batch-idle"),
			Usage: "flush a batch when no event arrived for this long"},
		&cli.DurationFlag{Name: "batch-max-age", Value: c.BatchMaxAge, Destination: &c.BatchMaxAge, Sources: env("batch-max-age"),
			Usage: "flush a batch when its oldest event is this old, even if events keep coming"},
		&cli.IntFlag{Name: "max-in-flight", Value: c.MaxInFlight, Destination: &c.MaxInFlight, Sources: env("max-in-flight"),
			Usage: "batches each store is written at once"},
		&cli.IntFlag{Name: "sink-window", Value: c.SinkWindow, Destination: &c.SinkWindow, Sources: env("sink-window"),
			Usage: "batches each store keeps in memory while it is behind; the rest it reads back from the WAL, so memory stays flat during an outage"},
		&cli.DurationFlag{Name: "write-timeout", Value: c.WriteTimeout, Destination: &c.WriteTimeout, Sources: env("write-timeout"),
			Usage: "deadline of one write to a store; a write that takes longer is retried"},
		&cli.StringFlag{Name: "max-pending-bytes", Value: c.MaxPendingBytes, Destination: &c.MaxPendingBytes, Sources: env("max-pending-bytes"),
			Usage: "bytes of events read and waiting to be written to the WAL, past which POST answers 503"},
		&cli.StringFlag{Name: "wal-dir", Destination: &c.WALDir, Sources: env("wal-dir"), DefaultText: "<data-dir>/wal",
			Usage: "folder of the write-ahead log: every accepted event is synced here before the 202, and kept until every store has it"},
		&cli.StringFlag{Name: "wal-max-bytes", Value: c.WALMaxBytes, Destination: &c.WALMaxBytes, Sources: env("wal-max-bytes"),
			Usage: "largest the WAL may grow while a store is behind (e.g. 4GiB); see --wal-full"},
		&cli.StringFlag{Name: "wal-full", Value: c.WALFull, Destination: &c.WALFull, Sources: env("wal-full"),
			Usage: "when the WAL is full: spill (the most lagging store's oldest events go to its fallback log; ingest goes on) or reject (POST answers 503)"},
		&cli.StringFlag{Name: "ack", Value: c.Ack, Destination: &c.Ack, Sources: env("ack"),
			Usage: "when POST answers 202: durable (once synced to the WAL; a crash loses nothing) or memory (once queued; a crash loses the last unsynced milliseconds)"},
		&cli.DurationFlag{Name: "ack-timeout", Value: c.AckTimeout, Destination: &c.AckTimeout, Sources: env("ack-timeout"),
			Usage: "how long POST /v1/events?ack=stored waits for every store before answering 504 (the events are still delivered)"},
		&cli.StringFlag{Name: "max-body-bytes", Value: c.MaxBodyBytes, Destination: &c.MaxBodyBytes, Sources: env("max-body-bytes"),
			Usage: "largest request body accepted, after decompression (e.g. 16MiB)"},
		&cli.IntFlag{Name: "max-request-events", Value: c.MaxRequestEvents, Destination: &c.MaxRequestEvents, Sources: env("max-request-events"),
			Usage: "most events in one request (413 beyond): bounds the memory a request of tiny events takes"},
		&cli.StringFlag{Name: "max-event-bytes", Value: c.MaxEventBytes, Destination: &c.MaxEventBytes, Sources: env("max-event-bytes"),
			Usage: "largest data of one event, as stored (a binary-mode body counts escaped as a JSON string); 413 beyond. At most 64MiB, so that an event fits one Elasticsearch request and one fallback line"},
		&cli.StringFlag{Name: "decode-budget", Value: c.DecodeBudget, Destination: &c.DecodeBudget, Sources: env("decode-budget"),
			Usage: "memory all requests being decoded may take together; a request that would pass it gets 503 with Retry-After. At least what the largest request takes (2 x --max-body-bytes, plus about 530 bytes per event of --max-request-events)"},
		&cli.StringFlag{Name: "memory-limit", Value: c.MemoryLimit, Destination: &c.MemoryLimit, Sources: env("memory-limit"),
			Usage: "Go's soft memory limit: the GC works harder as the heap nears it. auto: 90% of the container's (cgroup's) memory limit, none without one; off; or a size such as 400MiB. GOMEMLIMIT, when set, wins"},
		&cli.DurationFlag{Name: "http-read-timeout", Value: c.HTTPReadTimeout, Destination: &c.HTTPReadTimeout, Sources: env("http-read-timeout"),
			Usage: "how long a client may take to send a request, headers and body (a stalled upload is cut)"},
		&cli.DurationFlag{Name: "http-write-timeout", Value: c.HTTPWriteTimeout, Destination: &c.HTTPWriteTimeout, Sources: env("http-write-timeout"),
			Usage: "how long a request may take from its headers to the end of the answer; must exceed --http-read-timeout plus --ack-timeout"},
		&cli.DurationFlag{Name: "http-idle-timeout", Value: c.HTTPIdleTimeout, Destination: &c.HTTPIdleTimeout, Sources: env("http-idle-timeout"),
			Usage: "how long an idle keep-alive connection is kept open"},
		&cli.IntFlag{Name: "http-max-conns", Value: c.HTTPMaxConns, Destination: &c.HTTPMaxConns, Sources: env("http-max-conns"),
			Usage: "most open connections on the ingest listener; more wait to be accepted"},
		&cli.IntFlag{Name: "admin-max-conns", Value: c.AdminMaxConns, Destination: &c.AdminMaxConns, Sources: env("admin-max-conns"), Category: "Admin listener and console",
			Usage: "most open connections on the admin listener (more wait to be accepted): operators and Prometheus, not traffic, so a few dozen do, and the listener stays reachable while the ingest one is full"},
		&cli.DurationFlag{Name: "shutdown-timeout", Value: c.ShutdownTimeout, Destination: &c.ShutdownTimeout, Sources: env("shutdown-timeout"),
			Usage: "how long a clean stop may take: HTTP drains, the buffer flushes, the stores get the rest of it; what they have not taken stays in the WAL for the next start"},
		&cli.StringFlag{Name: "admin-addr", Value: c.AdminAddr, Destination: &c.AdminAddr, Sources: env("admin-addr"), Category: "Admin listener and console",
			Usage: "address of the admin listener: the operator console (/), /metrics, /v1/node, /v1/stats, /v1/proxy/..., /debug/pprof/ and the health routes (the ingest listener serves only POST /v1/events and health). Loopback by default; use e.g. :8081 for Prometheus in another container, on a network producers cannot reach. empty: off"},
		&cli.DurationFlag{Name: "console-history", Value: c.ConsoleHistory, Destination: &c.ConsoleHistory, Sources: env("console-history"), Category: "Admin listener and console",
			Usage: "how much of the one-second history the console keeps, so a page opened now shows it at once (a page gets it all: about 25 KiB a minute of it; at most 1h)"},
		&cli.IntFlag{Name: "console-max-streams", Value: c.ConsoleMaxStreams, Destination: &c.ConsoleMaxStreams, Sources: env("console-max-streams"), Category: "Admin listener and console",
			Usage: "most console streams open at once (a console tab holds two: stats and live tail); more get 503. Keep it well below --admin-max-conns, so Prometheus still gets in"},
		&cli.StringFlag{Name: "admin-allowed-hosts", Destination: &c.AdminAllowedHosts, Sources: env("admin-allowed-hosts"), Category: "Admin listener and console",
			Usage: "host names, comma-separated, the console answers to besides IP addresses and localhost (e.g. the name of an ingress or a tunnel; * for any); other Host headers get 403, so a web page cannot reach the console by pointing its own name at this address (DNS rebinding)"},
		&cli.FloatFlag{Name: "console-tail-rate", Value: c.ConsoleTailRate, Destination: &c.ConsoleTailRate, Sources: env("console-tail-rate"), Category: "Admin listener and console",
			Usage: "most events a second each live tail shows (at most 1000); above it the tail samples and says so"},
		&cli.StringFlag{Name: "api-keys", Destination: &c.APIKeys, Sources: env("api-keys"),
			Usage: "ingest keys as comma-separated name:key pairs, sent as 'Authorization: Bearer KEY' or 'X-Api-Key: KEY'; empty: ingest is open"},
		&cli.StringFlag{Name: "redis-url", Destination: &c.RedisURL, Sources: env("redis-url", "REDIS_URL"), Category: "Redis",
			Usage: "a single Redis, e.g. redis://127.0.0.1:6379/0"},
		&cli.StringFlag{Name: "redis-sentinels", Destination: &c.RedisSentinels, Sources: env("redis-sentinels"), Category: "Redis",
			Usage: "Redis Sentinel addresses host:port, comma-separated (instead of --redis-url)"},
		&cli.StringFlag{Name: "redis-master-name", Destination: &c.RedisMasterName, Sources: env("redis-master-name"), Category: "Redis",
			Usage: "the master's name in Sentinel (sentinel monitor NAME ...)"},
		&cli.StringFlag{Name: "redis-password", Destination: &c.RedisPassword, Sources: env("redis-password"), Category: "Redis",
			Usage: "password of the Redis nodes (and of the sentinels)"},
		&cli.StringFlag{Name: "redis-cluster", Destination: &c.RedisCluster, Sources: env("redis-cluster"), Category: "Redis",
			Usage: "some Redis Cluster nodes host:port, comma-separated (instead of --redis-url or --redis-sentinels); the rest are found from them"},
		&cli.BoolFlag{Name: "redis-sharded", Destination: &c.RedisSharded, Sources: env("redis-sharded"), Category: "Redis",
			Usage: "with --redis-cluster, --redis-channels are sharded channels (SSUBSCRIBE, Redis 7): each is read on the shard that owns it; no patterns"},
		&cli.StringFlag{Name: "redis-channels", Destination: &c.RedisChannels, Sources: env("redis-channels"), Category: "Redis",
			Usage: "channels to ingest, comma-separated; an entry with * ? or [ is a pattern"},
		&cli.StringFlag{Name: "redis-streams", Destination: &c.RedisStreams, Sources: env("redis-streams"), Category: "Redis",
			Usage: "stream keys to read with a consumer group, comma-separated; every node reads them (the group spreads the entries), and an entry is acked once its event is in the WAL"},
		&cli.StringFlag{Name: "redis-group", Value: c.RedisGroup, Destination: &c.RedisGroup, Sources: env("redis-group"), Category: "Redis",
			Usage: "the streams' consumer group (made with MKSTREAM when missing); each node is a consumer named by --node-id"},
		&cli.StringFlag{Name: "redis-group-start", Value: c.RedisGroupStart, Destination: &c.RedisGroupStart, Sources: env("redis-group-start"), Category: "Redis",
			Usage: "where a group the engine makes begins: oldest (every entry the stream holds) or newest (only entries added after)"},
		&cli.IntFlag{Name: "redis-stream-batch", Value: c.RedisStreamBatch, Destination: &c.RedisStreamBatch, Sources: env("redis-stream-batch"), Category: "Redis",
			Usage: "most entries one read takes from a stream (XREADGROUP COUNT): one WAL write and one XACK each; what a node holds of a stream in memory at once"},
		&cli.DurationFlag{Name: "redis-stream-claim-idle", Value: c.RedisStreamClaim, Destination: &c.RedisStreamClaim, Sources: env("redis-stream-claim-idle"), Category: "Redis",
			Usage: "entries pending this long on another consumer (a node that died or hangs) are claimed by this one (XAUTOCLAIM)"},
		&cli.StringFlag{Name: "redis-stream-dead-suffix", Value: c.RedisStreamDead, Destination: &c.RedisStreamDead, Sources: env("redis-stream-dead-suffix"), Category: "Redis",
			Usage: "a malformed entry is copied, with its error, to the stream named by its key and this suffix, and acked"},
		&cli.Int64Flag{Name: "redis-stream-dead-max-len", Value: c.RedisStreamDeadMax, Destination: &c.RedisStreamDeadMax, Sources: env("redis-stream-dead-max-len"), Category: "Redis",
			Usage: "each dead-letter stream keeps about this many entries (MAXLEN ~), the oldest go first"},
		&cli.StringFlag{Name: "redis-event-type", Value: c.RedisEventType, Destination: &c.RedisEventType, Sources: env("redis-event-type"), Category: "Redis",
			Usage: "type of events made from Redis messages and stream entries that are not events themselves"},
		&cli.StringFlag{Name: "node-id", Destination: &c.NodeID, Sources: env("node-id"), Category: "Cluster",
			Usage: "this node's name in the Redis node registry; keep it across restarts (a StatefulSet pod's name does), so a restarted node takes its entry back. empty: the host name"},
		&cli.StringFlag{Name: "node-addr", Destination: &c.NodeAddr, Sources: env("node-addr"), Category: "Cluster",
			Usage: "where other nodes and operators reach this node's ingest listener, as the registry shows it. empty: the host name and --http-addr's port"},
		&cli.StringFlag{Name: "cluster-name", Value: c.ClusterName, Destination: &c.ClusterName, Sources: env("cluster-name"), Category: "Cluster",
			Usage: "the registry's key prefix in Redis (NAME:node:ID, NAME:nodes, NAME:nodes:events): nodes with the same name are one cluster"},
		&cli.DurationFlag{Name: "node-heartbeat", Value: c.NodeHeartbeat, Destination: &c.NodeHeartbeat, Sources: env("node-heartbeat"), Category: "Cluster",
			Usage: "how often this node renews its registry entry; the entry expires after five missed (a node killed is seen gone after that)"},
		&cli.DurationFlag{Name: "duty-lease", Value: c.DutyLease, Destination: &c.DutyLease, Sources: env("duty-lease"), Category: "Cluster",
			Usage: "without --vip, nodes sharing a Redis elect one duty holder (the Redis subscription, HAProxy change events) with a lease of this length in Redis, renewed every third of it; a holder that cannot renew steps down after two thirds, so another takes over within about the lease's length after a holder dies"},
		&cli.IntFlag{Name: "redis-notify-queue", Value: c.RedisNotifyQueue, Destination: &c.RedisNotifyQueue, Sources: env("redis-notify-queue"), Category: "Redis",
			Usage: "batch notifications waiting to be published at most; past it they are dropped (and counted), so a slow Redis never slows the stores"},
		&cli.StringFlag{Name: "redis-notify-channel", Destination: &c.RedisNotifyChannel, Sources: env("redis-notify-channel"), Category: "Redis",
			Usage: "publish one JSON message per written batch (id, events, per-store outcome) on this channel"},
		&cli.StringFlag{Name: "haproxy-stats-url", Destination: &c.HAProxyStatsURL, Sources: env("haproxy-stats-url"), Category: "HAProxy",
			Usage: "HAProxy's stats CSV, e.g. http://127.0.0.1:8404/stats;csv"},
		&cli.StringFlag{Name: "haproxy-runtime-addr", Destination: &c.HAProxyRuntimeAddr, Sources: env("haproxy-runtime-addr"), Category: "HAProxy",
			Usage: "HAProxy's runtime API (level admin): a unix socket path or host:port; needed by the admin routes"},
		&cli.DurationFlag{Name: "haproxy-poll-interval", Value: c.HAProxyPollInterval, Destination: &c.HAProxyPollInterval, Sources: env("haproxy-poll-interval"), Category: "HAProxy",
			Usage: "how often HAProxy is polled, and the --vip is checked"},
		&cli.StringFlag{Name: "admin-token", Destination: &c.AdminToken, Sources: env("admin-token"), Category: "Admin listener and console",
			Usage: "bearer token (16+ characters) of the admin actions (the console's, POST /v1/proxy/servers/... which also needs --haproxy-runtime-addr, and POST /v1/sinks/NAME/replay), of the details in /v1/node and the console (errors, the WAL folder), of the live tail and of /debug/pprof/; empty: the actions are off, and the tail and the profiler are open on the admin listener"},
		&cli.StringFlag{Name: "vip", Destination: &c.VIP, Sources: env("vip"), Category: "HAProxy",
			Usage: "virtual IP whose holder is the master node: only it runs the Redis subscription and stores proxy change events; empty: every node does"},
	}
}

// validateStores checks the settings every command shares.
func (c *config) validateStores() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir must not be empty"))
	}
	if c.FallbackDir == "" {
		c.FallbackDir = filepath.Join(c.DataDir, "fallback")
	}
	if c.DatabaseURL != "" && !strings.Contains(c.DatabaseURL, "=") {
		if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			errs = append(errs, fmt.Errorf("--database-url must be a postgres:// URL or key=value string, got %q", redact(c.DatabaseURL)))
		}
	}
	c.esAddresses = nil
	for _, a := range strings.Split(c.ElasticsearchURL, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		u, err := url.Parse(a)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--elasticsearch-url: %q is not an http(s) URL", redact(a)))
			continue
		}
		c.esAddresses = append(c.esAddresses, a)
	}
	if c.ElasticsearchIndex == "" {
		errs = append(errs, errors.New("--elasticsearch-index must not be empty"))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("--log-level must be debug, info, warn or error, got %q", c.LogLevel))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("--log-format must be text or json, got %q", c.LogFormat))
	}
	return errors.Join(errs...)
}

// validateServe checks serve's settings, one message per broken rule.
func (c *config) validateServe() error {
	errs := []error{c.validateStores()}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("--http-addr must be host:port or :port, got %q", c.HTTPAddr))
	}
	size := func(flag, v string, min, max int64, dst *int64) {
		n, err := humanize.ParseBytes(v)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("--%s must be a size such as 4MiB or 1000000, got %q", flag, v))
		case int64(n) < min:
			errs = append(errs, fmt.Errorf("--%s must be at least %s, got %q", flag, humanize.IBytes(uint64(min)), v))
		case int64(n) > max:
			errs = append(errs, fmt.Errorf("--%s must be at most %s, got %q", flag, humanize.IBytes(uint64(max)), v))
		default:
			*dst = int64(n)
		}
	}
	size("batch-max-bytes", c.BatchMaxBytes, 1024, 1<<30, &c.batchMaxBytes)
	size("max-pending-bytes", c.MaxPendingBytes, 1<<20, 1<<40, &c.maxPendingBytes)
	// At least a few segments, so segments can be released while a store
	// is behind.
	size("wal-max-bytes", c.WALMaxBytes, 4*walSegmentBytes, 1<<50, &c.walMaxBytes)
	if c.WALDir == "" {
		c.WALDir = filepath.Join(c.DataDir, "wal")
	}
	switch actors.WALFull(c.WALFull) {
	case actors.WALSpill, actors.WALReject:
	default:
		errs = append(errs, fmt.Errorf("--wal-full must be spill or reject, got %q", c.WALFull))
	}
	switch actors.AckMode(c.Ack) {
	case actors.AckDurable, actors.AckMemory:
	default:
		errs = append(errs, fmt.Errorf("--ack must be durable or memory, got %q", c.Ack))
	}
	// One event must fit one line of the fallback log (see fallback.Read).
	size("max-body-bytes", c.MaxBodyBytes, 1024, 64<<20, &c.maxBodyBytes)
	size("max-event-bytes", c.MaxEventBytes, 1024, 64<<20, &c.maxEventBytes)
	size("decode-budget", c.DecodeBudget, 1<<20, 1<<40, &c.decodeBudget)
	if c.MemoryLimit != "auto" && c.MemoryLimit != "off" {
		size("memory-limit", c.MemoryLimit, 64<<20, 1<<50, &c.memoryLimit)
	}
	if need := api.MinDecodeBudget(c.maxBodyBytes, c.MaxRequestEvents); c.decodeBudget > 0 && c.maxBodyBytes > 0 && c.decodeBudget < need {
		errs = append(errs, fmt.Errorf("--decode-budget (%s) is smaller than one request of --max-body-bytes and --max-request-events takes (%s): raise it, or lower those",
			humanize.IBytes(uint64(c.decodeBudget)), humanize.IBytes(uint64(need))))
	}
	positive := func(flag string, ok bool, got any) {
		if !ok {
			errs = append(errs, fmt.Errorf("--%s must be positive, got %v", flag, got))
		}
	}
	positive("batch-max-events", c.BatchMaxEvents > 0, c.BatchMaxEvents)
	positive("batch-idle", c.BatchIdle > 0, c.BatchIdle)
	positive("batch-max-age", c.BatchMaxAge > 0, c.BatchMaxAge)
	positive("max-in-flight", c.MaxInFlight > 0, c.MaxInFlight)
	positive("sink-window", c.SinkWindow > 0, c.SinkWindow)
	positive("redis-notify-queue", c.RedisNotifyQueue > 0, c.RedisNotifyQueue)
	positive("write-timeout", c.WriteTimeout > 0, c.WriteTimeout)
	positive("max-request-events", c.MaxRequestEvents > 0, c.MaxRequestEvents)
	positive("http-read-timeout", c.HTTPReadTimeout > 0, c.HTTPReadTimeout)
	positive("http-idle-timeout", c.HTTPIdleTimeout > 0, c.HTTPIdleTimeout)
	positive("http-max-conns", c.HTTPMaxConns > 0, c.HTTPMaxConns)
	positive("admin-max-conns", c.AdminMaxConns > 0, c.AdminMaxConns)
	positive("console-max-streams", c.ConsoleMaxStreams > 0, c.ConsoleMaxStreams)
	if c.DutyLease < 300*time.Millisecond || c.DutyLease > time.Minute {
		errs = append(errs, fmt.Errorf("--duty-lease must be between 300ms and 1m, got %s", c.DutyLease))
	}
	if strings.ContainsAny(c.NodeID, "|/ ") {
		errs = append(errs, fmt.Errorf("--node-id must not hold '|', '/' or spaces, got %q", c.NodeID))
	}
	if c.NodeHeartbeat < 100*time.Millisecond || c.NodeHeartbeat > time.Minute {
		errs = append(errs, fmt.Errorf("--node-heartbeat must be between 100ms and 1m, got %s", c.NodeHeartbeat))
	}
	if c.ClusterName == "" || strings.ContainsAny(c.ClusterName, " :{}") {
		errs = append(errs, fmt.Errorf("--cluster-name must be a non-empty name without spaces, colons or braces, got %q", c.ClusterName))
	}
	if c.ConsoleTailRate <= 0 || c.ConsoleTailRate > 1000 {
		errs = append(errs, fmt.Errorf("--console-tail-rate must be above 0 and at most 1000 (events a second a person can read, and each tail's buffer), got %v", c.ConsoleTailRate))
	}
	// A page opened gets the whole history at once: an hour is 3,600
	// samples, about 1.5 MB of JSON.
	if c.ConsoleHistory < time.Minute || c.ConsoleHistory > time.Hour {
		errs = append(errs, fmt.Errorf("--console-history must be between 1m and 1h, got %s", c.ConsoleHistory))
	}
	if c.ConsoleMaxStreams >= c.AdminMaxConns {
		errs = append(errs, fmt.Errorf("--console-max-streams (%d) must be below --admin-max-conns (%d), or open consoles can lock Prometheus out", c.ConsoleMaxStreams, c.AdminMaxConns))
	}
	if c.HTTPWriteTimeout <= c.HTTPReadTimeout+c.AckTimeout {
		errs = append(errs, fmt.Errorf("--http-write-timeout (%s) must exceed --http-read-timeout plus --ack-timeout (%s), or slow uploads and ?ack=stored get cut off",
			c.HTTPWriteTimeout, c.HTTPReadTimeout+c.AckTimeout))
	}
	positive("ack-timeout", c.AckTimeout > 0, c.AckTimeout)
	positive("shutdown-timeout", c.ShutdownTimeout > 0, c.ShutdownTimeout)
	if c.AdminAddr != "" {
		if _, _, err := net.SplitHostPort(c.AdminAddr); err != nil {
			errs = append(errs, fmt.Errorf("--admin-addr must be host:port or :port, got %q", c.AdminAddr))
		}
	}
	errs = append(errs, c.validateRedis(), c.validateProxy())
	keys, err := parseAPIKeys(c.APIKeys)
	if err != nil {
		errs = append(errs, err)
	}
	c.apiKeys = keys
	return errors.Join(errs...)
}

// validateRedis checks the Redis settings.
func (c *config) validateRedis() error {
	c.redis = infraredis.Options{URL: c.RedisURL, Sentinels: infraredis.SplitList(c.RedisSentinels),
		MasterName: c.RedisMasterName, Cluster: infraredis.SplitList(c.RedisCluster), Password: c.RedisPassword}
	c.redisChannels = nil
	seen := map[string]bool{}
	for _, ch := range infraredis.SplitList(c.RedisChannels) {
		if !seen[ch] {
			seen[ch] = true
			c.redisChannels = append(c.redisChannels, ch)
		}
	}
	c.redisStreams = nil
	clear(seen)
	for _, k := range infraredis.SplitList(c.RedisStreams) {
		if !seen[k] {
			seen[k] = true
			c.redisStreams = append(c.redisStreams, k)
		}
	}
	errs := []error{c.redis.Validate()}
	if c.RedisSharded {
		if !c.redis.IsCluster() {
			errs = append(errs, errors.New("--redis-sharded needs --redis-cluster"))
		}
		for _, ch := range c.redisChannels {
			if strings.ContainsAny(ch, "*?[") {
				errs = append(errs, fmt.Errorf("--redis-sharded: %q is a pattern; sharded channels have none", ch))
			}
		}
	}
	if len(c.redisStreams) > 0 {
		if c.RedisGroup == "" {
			errs = append(errs, errors.New("--redis-group must not be empty"))
		}
		if c.RedisGroupStart != "oldest" && c.RedisGroupStart != "newest" {
			errs = append(errs, fmt.Errorf("--redis-group-start must be oldest or newest, got %q", c.RedisGroupStart))
		}
		if c.RedisStreamBatch < 1 || c.RedisStreamBatch > 100000 {
			errs = append(errs, fmt.Errorf("--redis-stream-batch must be 1 to 100000, got %d", c.RedisStreamBatch))
		}
		if c.RedisStreamClaim < time.Second {
			errs = append(errs, fmt.Errorf("--redis-stream-claim-idle must be at least 1s (shorter claims entries a busy node is still on), got %v", c.RedisStreamClaim))
		}
		if c.RedisStreamDead == "" {
			errs = append(errs, errors.New("--redis-stream-dead-suffix must not be empty (the dead letters would go back into the stream)"))
		}
		if c.RedisStreamDeadMax < 1 {
			errs = append(errs, fmt.Errorf("--redis-stream-dead-max-len must be at least 1, got %d", c.RedisStreamDeadMax))
		}
	}
	switch {
	case !c.redis.Enabled() && len(c.redisChannels) > 0:
		errs = append(errs, errors.New("--redis-channels needs --redis-url, --redis-sentinels or --redis-cluster"))
	case !c.redis.Enabled() && len(c.redisStreams) > 0:
		errs = append(errs, errors.New("--redis-streams needs --redis-url, --redis-sentinels or --redis-cluster"))
	case !c.redis.Enabled() && c.RedisNotifyChannel != "":
		errs = append(errs, errors.New("--redis-notify-channel needs --redis-url, --redis-sentinels or --redis-cluster"))
	}
	if c.RedisEventType == "" || len(c.RedisEventType) > 1024 {
		errs = append(errs, errors.New("--redis-event-type must be 1 to 1024 bytes"))
	}
	return errors.Join(errs...)
}

// validateProxy checks the HAProxy, admin and VIP settings.
func (c *config) validateProxy() error {
	var errs []error
	if c.HAProxyStatsURL != "" {
		if u, err := url.Parse(c.HAProxyStatsURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--haproxy-stats-url must be an http(s) URL, got %q", redact(c.HAProxyStatsURL)))
		}
	}
	if a := c.HAProxyRuntimeAddr; a != "" && !strings.Contains(a, "/") && !strings.HasPrefix(a, "unix@") {
		for _, p := range []string{"ipv4@", "ipv6@", "tcp@"} {
			a = strings.TrimPrefix(a, p)
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("--haproxy-runtime-addr must be a unix socket path or host:port, got %q", c.HAProxyRuntimeAddr))
		}
	}
	if c.HAProxyPollInterval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("--haproxy-poll-interval must be at least 100ms, got %v", c.HAProxyPollInterval))
	}
	c.AdminToken = strings.TrimSpace(c.AdminToken)
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		errs = append(errs, errors.New("--admin-token must be at least 16 characters"))
	}
	c.vip = nil
	if c.VIP != "" {
		v, err := vip.Parse(c.VIP)
		if err != nil {
			errs = append(errs, err)
		} else {
			c.vip = &v
		}
	}
	return errors.Join(errs...)
}

// parseAPIKeys reads name:key pairs.
func parseAPIKeys(s string) ([]api.APIKey, error) {
	var keys []api.APIKey
	names, secrets := map[string]bool{}, map[string]bool{}
	for i, pair := range strings.Split(s, ",") {
		if pair = strings.TrimSpace(pair); pair == "" {
			continue
		}
		name, key, ok := strings.Cut(pair, ":")
		name, key = strings.TrimSpace(name), strings.TrimSpace(key)
		switch {
		case !ok || name == "" || key == "":
			return nil, fmt.Errorf("--api-keys: entry %d must be name:key", i+1)
		case names[name]:
			return nil, fmt.Errorf("--api-keys: name %q appears twice", name)
		case secrets[key]:
			return nil, fmt.Errorf("--api-keys: the key of %q is used by another name", name)
		case len(key) < 16:
			return nil, fmt.Errorf("--api-keys: the key of %q is shorter than 16 characters", name)
		}
		names[name], secrets[key] = true, true
		keys = append(keys, api.APIKey{Name: name, Key: key})
	}
	return keys, nil
}

// redact hides the secrets of a connection string for messages: the
// password of a URL (user:password@, or a password query parameter) or of
// a key=value string. A URL that does not parse loses everything between
// its scheme and its last '@', since where the password ends is unknown.
func redact(s string) string {
	const hidden = "xxxxx"
	if !strings.Contains(s, "://") {
		return kvPassword.ReplaceAllString(s, "${1}"+hidden)
	}
	u, err := url.Parse(s)
	if err != nil {
		scheme, rest, _ := strings.Cut(s, "://")
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			rest = hidden + rest[at:]
		}
		return kvPassword.ReplaceAllString(scheme+"://"+rest, "${1}"+hidden)
	}
	scheme, rest, _ := strings.Cut(s, "://")
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), hidden)
		}
	} else if authority, _, _ := strings.Cut(rest, "?"); strings.Contains(authority, "@") {
		// An '@' the parser did not take for userinfo (a password with a
		// '/' in it): hide everything before the last one.
		at := strings.LastIndex(authority, "@")
		return kvPassword.ReplaceAllString(scheme+"://"+hidden+rest[at:], "${1}"+hidden)
	}
	if q := u.Query(); len(q) > 0 {
		changed := false
		for k := range q {
			if strings.Contains(strings.ToLower(k), "password") || strings.EqualFold(k, "token") {
				q.Set(k, hidden)
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	// A query the parser skipped in part (a bad escape, a ';') is raw.
	return kvPassword.ReplaceAllString(u.String(), "${1}"+hidden)
}

// kvPassword finds the value of a password in a key=value string (libpq's
// form: password=secret or password='se cret').
var kvPassword = regexp.MustCompile(`(?i)(\b\w*password\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s&]*)`)
