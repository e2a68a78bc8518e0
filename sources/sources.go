// Package sources holds what feeds the engine besides HTTP: the Redis
// pub/sub subscriber, the Redis Streams consumer and the HAProxy watcher.
// Each is a Source: the engine (package actors) runs it under supervision,
// hands it the ingest function, and shows its Status in GET /v1/node and
// the console. Sources know infra and event, never the engine.
package sources

import (
	"context"
	"errors"
	"log/slog"

	"eventlistener/event"
)

// Placement says where a source runs in a cluster of nodes.
type Placement string

const (
	// Singleton sources run on the duty holder only (the VIP holder, or the
	// holder of the Redis lease): started when this node takes the duties,
	// stopped when it loses them. Redis pub/sub is one: every subscriber
	// hears every message, so two nodes would store each twice.
	Singleton Placement = "singleton"
	// EveryNode sources run on every node. Redis Streams is one (the
	// consumer group spreads the entries); so is the HAProxy watcher, which
	// keeps its snapshot everywhere and stores change events only while
	// this node holds the duties (Env.IngestAsHolder).
	EveryNode Placement = "every_node"
)

// Source is one way events come in besides HTTP.
type Source interface {
	// Name names it in logs, metrics and GET /v1/node: "redis",
	// "redis-streams", "haproxy".
	Name() string
	Placement() Placement
	// Run runs the source until ctx ends, and then returns nil. An error
	// (or a panic) is a crash: the engine starts it again after a delay
	// that grows with each crash, and never gives up.
	Run(ctx context.Context, env Env) error
	// Status is what GET /v1/node and the console show: a pointer to a
	// fresh value, ready for JSON. Where it has a HideDetails method, that
	// blanks what may name hosts or users for callers without the admin
	// token.
	Status() any
}

// Env is what the engine hands a source when it runs it.
type Env struct {
	// Ingest writes events to the write-ahead log, all or none, and
	// returns once they are durable there. While the engine is full it
	// waits (until ctx ends). An error means none were taken: the engine
	// is stopping, its WAL failed, or ctx ended first; for a Singleton,
	// also ErrNotHolder once this node's holding of the duties lapsed.
	Ingest func(ctx context.Context, events []event.Event) error
	// IngestAsHolder is Ingest that takes the events only while this node
	// holds the duties (ErrNotHolder otherwise), checked as they go in: a
	// node that was frozen past its lease stores nothing when it wakes.
	IngestAsHolder func(ctx context.Context, events []event.Event) error
	// Holder says whether this node holds the duties now.
	Holder func() bool
	// NodeID is this node's name in the cluster (a streams consumer's).
	NodeID string
	Logger *slog.Logger
}

// ErrNotHolder refuses what a duty sends after this node's holding of the
// duties lapsed.
var ErrNotHolder = errors.New("this node no longer holds the duties")

// HideDetail replaces a detail that is there with "hidden".
func HideDetail(s *string) {
	if *s != "" {
		*s = "hidden"
	}
}
