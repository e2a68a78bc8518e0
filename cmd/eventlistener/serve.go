package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os/signal"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/urfave/cli/v3"

	"eventlistener/actors"
	"eventlistener/api"
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
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	stores, err := openStores(c, log, int32(c.MaxInFlight+2), false)
	if err != nil {
		return err
	}
	if !c.SkipMigrate {
		if err := migrate(ctx, stores, log, 30*time.Second); err != nil {
			closeAll(stores)
			return fmt.Errorf("%w (start with --skip-migrate to write anyway)", err)
		}
	}
	fb, err := fallback.Open(c.FallbackDir)
	if err != nil {
		closeAll(stores)
		return fmt.Errorf("--fallback-dir: %w", err)
	}
	engine, err := actors.Start(actors.Config{
		MaxEvents: c.BatchMaxEvents, MaxBytes: int(c.batchMaxBytes), Idle: c.BatchIdle, MaxAge: c.BatchMaxAge,
		MaxInFlight: c.MaxInFlight, MaxPendingEvents: c.MaxPendingEvents, MaxPendingBytes: c.maxPendingBytes,
		Retry:    sinks.Retry{Initial: sinks.DefaultRetry.Initial, Max: sinks.DefaultRetry.Max, MaxElapsed: c.RetryMaxElapsed},
		Sinks:    stores,
		Fallback: fb,
		Logger:   log, Registerer: reg,
	})
	if err != nil {
		closeAll(stores)
		return err
	}
	srv := api.New(engine, api.Options{
		MaxBodyBytes: c.maxBodyBytes, APIKeys: c.apiKeys, Gatherer: reg, Registerer: reg, Logger: log,
	})
	ln, err := net.Listen("tcp", c.HTTPAddr)
	if err != nil {
		_ = engine.Close(context.Background())
		return fmt.Errorf("--http-addr: %w", err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	if c.DebugAddr != "" {
		go func() {
			mux := http.NewServeMux()
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
			mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
			log.Info("profiler listening", "addr", c.DebugAddr)
			if err := http.ListenAndServe(c.DebugAddr, mux); err != nil {
				log.Error("profiler stopped", "error", err)
			}
		}()
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()

	auth := "open"
	if len(c.apiKeys) > 0 {
		auth = fmt.Sprintf("%d API keys", len(c.apiKeys))
	}
	log.Info("eventlistener started", "version", buildVersion(), "addr", ln.Addr().String(),
		"sinks", engine.Sinks(), "fallback_dir", c.FallbackDir, "ingest", auth)

	select {
	case <-ctx.Done():
		log.Info("stopping: no new requests; flushing the buffer and waiting for the stores", "timeout", c.ShutdownTimeout)
	case err := <-served:
		log.Error("HTTP server failed; stopping", "error", err)
	}
	stop() // a second signal now kills the process the default way

	deadline, cancel := context.WithTimeout(context.Background(), c.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(deadline); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("HTTP requests still open at the shutdown timeout", "error", err)
	}
	if err := engine.Close(deadline); err != nil {
		log.Error("stopping the engine", "error", err)
	}
	log.Info("eventlistener stopped")
	return nil
}
