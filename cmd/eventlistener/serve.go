package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/dustin/go-humanize"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/urfave/cli/v3"
	"golang.org/x/net/netutil"

	"eventlistener/actors"
	"eventlistener/api"
	"eventlistener/console"
	infraredis "eventlistener/infra/redis"
	"eventlistener/sinks"
	"eventlistener/sinks/fallback"
)

func serveCommand() *cli.Command {
	c := defaultConfig()
	return &cli.Command{
		Name:  "serve",
		Usage: "run the engine (the default command)",
		Flags: append(serveFlags(&c), storeFlags(&c)...),
		Action: func(ctx context.Context, _ *cli.Command) error {
			if err := c.validateServe(); err != nil {
				return fmt.Errorf("invalid settings:\n%w", err)
			}
			return serve(ctx, &c)
		},
	}
}

// serve runs until SIGINT or SIGTERM, then stops in the reverse order of
// start: HTTP first, then the buffer and batcher, then the sinks.
func serve(ctx context.Context, c *config) error {
	log := newLogger(c)
	// Event ids need throughput, not secrecy: read randomness in batches
	// rather than one getrandom call per id (a third of decoding time).
	uuid.EnableRandPool()
	infraredis.SetLogger(log)
	setMemoryLimit(c, log)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// The stores are prepared in the background by their pipelines: a
	// store that is down at start must not stop ingest.
	stores, err := openStores(c, log, int32(c.MaxInFlight+2), false)
	if err != nil {
		return err
	}
	fb, err := fallback.Open(c.FallbackDir)
	if err != nil {
		closeAll(stores)
		return fmt.Errorf("--fallback-dir: %w", err)
	}
	var notifier actors.Notifier
	if c.RedisNotifyChannel != "" {
		pub, err := infraredis.NewPublisher(c.redis, c.RedisNotifyChannel)
		if err != nil {
			closeAll(stores)
			return fmt.Errorf("--redis-notify-channel: %w", err)
		}
		defer pub.Close()
		notifier = actors.RedisNotifier{Publisher: pub}
	}
	srcs, proxy, closeSources, err := openSources(c, reg, log)
	if err != nil {
		closeAll(stores)
		return err
	}
	defer closeSources()
	var clusterCfg *actors.ClusterConfig
	var lease *infraredis.Lease
	if c.redis.Enabled() {
		reg, err := infraredis.NewRegistry(c.redis, c.ClusterName, 5*c.NodeHeartbeat)
		if err != nil {
			closeAll(stores)
			return fmt.Errorf("node registry: %w", err)
		}
		defer reg.Close()
		clusterCfg = &actors.ClusterConfig{Registry: reg, NodeID: nodeID(c), Addr: nodeAddr(c), Admin: c.AdminAddr,
			Version: buildVersion(), Interval: c.NodeHeartbeat}
		if c.vip == nil {
			if lease, err = infraredis.NewLease(c.redis, c.ClusterName, nodeID(c), c.DutyLease); err != nil {
				closeAll(stores)
				return fmt.Errorf("duty lease: %w", err)
			}
			defer lease.Close()
		}
	} else {
		log.Info("this node runs alone: no Redis is configured (--redis-url, --redis-sentinels or --redis-cluster), so there is no node registry")
	}
	tail := console.NewTail(c.ConsoleTailRate)
	engine, err := actors.Start(actors.Config{
		MaxEvents: c.BatchMaxEvents, MaxBytes: int(c.batchMaxBytes), Idle: c.BatchIdle, MaxAge: c.BatchMaxAge,
		MaxInFlight: c.MaxInFlight, Window: c.SinkWindow, Migrate: !c.SkipMigrate,
		Retry: sinks.Retry{Initial: sinks.DefaultRetry.Initial, Max: sinks.DefaultRetry.Max, AttemptTimeout: c.WriteTimeout},
		WAL: actors.WALConfig{Dir: c.WALDir, SegmentBytes: walSegmentBytes, MaxBytes: c.walMaxBytes,
			Full: actors.WALFull(c.WALFull), QueueBytes: c.maxPendingBytes},
		Ack:      actors.AckMode(c.Ack),
		Sinks:    stores,
		Fallback: fb,
		Sources:  srcs,
		Notifier: notifier, NotifyQueue: c.RedisNotifyQueue,
		Cluster: clusterCfg,
		VIP:     c.vip, DutyInterval: c.HAProxyPollInterval, Lease: lease,
		Logger: log, Registerer: reg,
		OnIngest: tail.Offer,
	})
	if err != nil {
		closeAll(stores)
		return err
	}
	srv := api.New(engine, api.Options{
		MaxBodyBytes: c.maxBodyBytes, MaxRequestEvents: c.MaxRequestEvents, MaxEventBytes: int(c.maxEventBytes), DecodeBudget: c.decodeBudget, APIKeys: c.apiKeys, AdminToken: c.AdminToken, AckTimeout: c.AckTimeout,
		Gatherer: reg, Registerer: reg, Logger: log, Proxy: apiProxy(proxy),
	})
	byName := make(map[string]sinks.Sink, len(stores))
	for _, s := range stores {
		byName[s.Name()] = s
	}
	cons := console.New(console.Options{Engine: engine, Proxy: consoleProxy(proxy), Gatherer: reg, Registerer: reg, Sinks: byName, FallbackDir: c.FallbackDir,
		Retry:     sinks.Retry{Initial: sinks.DefaultRetry.Initial, Max: sinks.DefaultRetry.Max, AttemptTimeout: c.WriteTimeout, MaxElapsed: 30 * time.Second},
		Authorize: srv.IsAdmin, TokenSet: c.AdminToken != "", Tail: tail, AllowedHosts: infraredis.SplitList(c.AdminAllowedHosts),
		History: c.ConsoleHistory, MaxStreams: c.ConsoleMaxStreams, Version: buildVersion(), Logger: log.With("component", "console")})
	cons.Register(srv.AdminEcho())
	defer cons.Close() // on the error returns below; a second Close is a no-op
	ln, err := net.Listen("tcp", c.HTTPAddr)
	if err != nil {
		_ = engine.Close(context.Background())
		return fmt.Errorf("--http-addr: %w", err)
	}
	ln = countConns(ln, reg, c.HTTPMaxConns, "http", "--http-max-conns")
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: min(10*time.Second, c.HTTPReadTimeout),
		ReadTimeout: c.HTTPReadTimeout, WriteTimeout: c.HTTPWriteTimeout, IdleTimeout: c.HTTPIdleTimeout,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	served := make(chan error, 2)
	var admin *http.Server
	if c.AdminAddr != "" {
		aln, err := net.Listen("tcp", c.AdminAddr)
		if err != nil {
			ln.Close()
			_ = engine.Close(context.Background())
			return fmt.Errorf("--admin-addr: %w", err)
		}
		aln = countConns(aln, reg, c.AdminMaxConns, "admin", "--admin-max-conns")
		// A CPU profile takes 30 s by default: the write timeout allows it.
		admin = &http.Server{Handler: srv.AdminHandler(), ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout: 30 * time.Second, WriteTimeout: 2 * time.Minute, IdleTimeout: c.HTTPIdleTimeout,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
		log.Info("admin listener started: the operator console is at http://"+consoleHost(aln.Addr())+"/", "addr", aln.Addr().String())
		go func() {
			if err := admin.Serve(aln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				served <- fmt.Errorf("admin listener: %w", err)
			}
		}()
	}
	go cons.Run()
	go func() { served <- hs.Serve(ln) }()

	auth := "open"
	if len(c.apiKeys) > 0 {
		auth = fmt.Sprintf("%d API keys", len(c.apiKeys))
	}
	log.Info("eventlistener started", "version", buildVersion(), "addr", ln.Addr().String(),
		"sinks", engine.Sinks(), "wal_dir", c.WALDir, "ack", c.Ack, "fallback_dir", c.FallbackDir, "ingest", auth)

	var failed error
	select {
	case <-ctx.Done():
		log.Info("stopping: new requests get 503; flushing the buffer and giving the stores until the timeout", "timeout", c.ShutdownTimeout)
	case err := <-served:
		failed = fmt.Errorf("HTTP server failed: %w", err)
		log.Error("HTTP server failed; stopping", "error", err)
	}
	stop() // a second signal now kills the process the default way

	// A replay under way stops after the batch it is writing, and its end
	// is stored while the engine still takes events; the streams end.
	cons.Close()
	// Refuse first, so clients and load balancers see 503 and /readyz fails
	// while requests under way finish. HTTP gets its own, short budget: a
	// stalled client must not eat the time the stores need.
	engine.StopAccepting()
	deadline := time.Now().Add(c.ShutdownTimeout)
	httpCtx, cancelHTTP := context.WithTimeout(context.Background(), min(c.ShutdownTimeout/4, httpDrainTimeout))
	if err := hs.Shutdown(httpCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("closing HTTP connections still open", "error", err)
		hs.Close()
	}
	cancelHTTP()
	if admin != nil {
		// Last, so /metrics and /v1/node show the stop until the end.
		defer admin.Close()
	}
	engineCtx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := engine.Close(engineCtx); err != nil {
		log.Error("stopping the engine", "error", err)
		failed = errors.Join(failed, err)
	}
	log.Info("eventlistener stopped")
	return failed
}

// httpDrainTimeout bounds how long requests under way may take to finish at
// shutdown; they are refused with 503 by then anyway.
const httpDrainTimeout = 5 * time.Second

// setMemoryLimit sets Go's soft memory limit (--memory-limit): the GC
// works harder as the heap nears it, so a burst of large requests is
// collected before a container's limit kills the process. GOMEMLIMIT, when
// set, wins.
func setMemoryLimit(c *config, log *slog.Logger) {
	switch {
	case os.Getenv("GOMEMLIMIT") != "":
		log.Info("memory limit from GOMEMLIMIT", "limit", humanize.IBytes(uint64(debug.SetMemoryLimit(-1))))
	case c.MemoryLimit == "off":
	case c.MemoryLimit == "auto":
		limit, err := memlimit.Set(memlimit.WithRatio(0.9), memlimit.WithProvider(memlimit.FromCgroup))
		switch {
		case err != nil:
			log.Info("no memory limit: cannot read the cgroup's", "error", err)
		case limit > 0 && limit < math.MaxInt64:
			log.Info("memory limit: 90% of the cgroup's", "limit", humanize.IBytes(uint64(limit)))
		}
	default:
		debug.SetMemoryLimit(c.memoryLimit)
		log.Info("memory limit", "limit", humanize.IBytes(uint64(c.memoryLimit)))
	}
}

// countConns caps the listener at limit open connections (more wait to be
// accepted) and reports them, and the cap, as the metrics
// eventlistener_<name>_connections and _max. flag names the cap's flag.
func countConns(ln net.Listener, reg prometheus.Registerer, limit int, name, flag string) net.Listener {
	open := prometheus.NewGauge(prometheus.GaugeOpts{Name: "eventlistener_" + name + "_connections",
		Help: "Connections open on the " + name + " listener."})
	max := prometheus.NewGauge(prometheus.GaugeOpts{Name: "eventlistener_" + name + "_connections_max",
		Help: "Most connections the " + name + " listener keeps open (" + flag + "); more wait to be accepted."})
	max.Set(float64(limit))
	reg.MustRegister(open, max)
	return &countingListener{Listener: netutil.LimitListener(ln, limit), open: open}
}

type countingListener struct {
	net.Listener
	open prometheus.Gauge
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.open.Inc()
	return &countedConn{Conn: c, open: l.open}, nil
}

type countedConn struct {
	net.Conn
	open prometheus.Gauge
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(c.open.Dec)
	return c.Conn.Close()
}

// consoleHost is where a browser on this host reaches addr.
func consoleHost(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// nodeID is --node-id, or the host name.
func nodeID(c *config) string {
	if c.NodeID != "" {
		return c.NodeID
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		return "eventlistener"
	}
	return host
}

// nodeAddr is --node-addr, or the host name and --http-addr's port.
func nodeAddr(c *config) string {
	if c.NodeAddr != "" {
		return c.NodeAddr
	}
	host, port, err := net.SplitHostPort(c.HTTPAddr)
	if err != nil {
		return c.HTTPAddr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return net.JoinHostPort(host, port)
}
