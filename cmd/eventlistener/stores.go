package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/cenkalti/backoff/v5"

	"eventlistener/sinks"
	"eventlistener/sinks/elastic"
	"eventlistener/sinks/file"
	"eventlistener/sinks/postgres"
)

// openStores makes the configured sinks: PostgreSQL and Elasticsearch when
// their URLs are set, else (unless storesOnly) the file sink.
func openStores(c *config, log *slog.Logger, maxConns int32, storesOnly bool) ([]sinks.Sink, error) {
	var out []sinks.Sink
	if c.DatabaseURL != "" {
		pg, err := postgres.New(postgres.Options{URL: c.DatabaseURL, MaxConns: maxConns, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("--database-url: %w", err)
		}
		out = append(out, pg)
	}
	if len(c.esAddresses) > 0 {
		es, err := elastic.New(elastic.Options{Addresses: c.esAddresses, Index: c.ElasticsearchIndex, Logger: log,
			ReplaceTemplate: c.ReplaceTemplate})
		if err != nil {
			closeAll(out)
			return nil, fmt.Errorf("--elasticsearch-url: %w", err)
		}
		out = append(out, es)
	}
	if len(out) == 0 && !storesOnly {
		fs, err := file.New(filepath.Join(c.DataDir, "events"))
		if err != nil {
			return nil, fmt.Errorf("--data-dir: %w", err)
		}
		out = append(out, fs)
	}
	return out, nil
}

func closeAll(ss []sinks.Sink) {
	for _, s := range ss {
		s.Close()
	}
}

// migrate creates the stores' table and template, retrying for a while so a
// database that starts alongside the engine is waited for.
func migrate(ctx context.Context, ss []sinks.Sink, log *slog.Logger, wait time.Duration) error {
	for _, s := range ss {
		m, ok := s.(sinks.Migrator)
		if !ok {
			continue
		}
		_, err := backoff.Retry(ctx, func() (struct{}, error) {
			err := m.Migrate(ctx)
			if err != nil {
				log.Warn("cannot prepare store yet; retrying", "sink", s.Name(), "error", err)
			}
			return struct{}{}, err
		}, backoff.WithMaxElapsedTime(wait), backoff.WithBackOff(backoff.NewExponentialBackOff()))
		if err != nil {
			return fmt.Errorf("cannot prepare %s: %w", s.Name(), unwrapPermanent(err))
		}
		log.Info("store ready", "sink", s.Name())
	}
	return nil
}

func unwrapPermanent(err error) error {
	var p *backoff.PermanentError
	if errors.As(err, &p) {
		return p.Err
	}
	return err
}
