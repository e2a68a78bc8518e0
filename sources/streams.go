package sources

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"eventlistener/event"
	infraredis "eventlistener/infra/redis"
)

// StreamsConfig says which Redis Streams the consumer reads, and how.
type StreamsConfig struct {
	Options infraredis.Options
	// Keys are the streams read.
	Keys []string
	// Group is the consumer group; Consumer this node's name in it (its
	// node id: a node that restarts takes back what it had not acked).
	Group, Consumer string
	// Start is where a group made by the engine begins: "0" (every entry
	// the stream holds) or "$" (only entries added from then on).
	Start string
	// Batch is the most entries one read takes (COUNT).
	Batch int
	// Block is how long one read waits for new entries.
	Block time.Duration
	// ClaimIdle is how long an entry may stay pending on another consumer
	// (one that died, or hangs) before this node claims it.
	ClaimIdle time.Duration
	// DeadSuffix names each stream's dead-letter stream: the key and it.
	// DeadMaxLen bounds each (MAXLEN ~).
	DeadSuffix string
	DeadMaxLen int64
	// EventType is the type of entries that are not events themselves;
	// MaxEventBytes bounds one event's data (as --max-event-bytes).
	EventType     string
	MaxEventBytes int
}

// DefaultStreams holds the defaults of StreamsConfig.
var DefaultStreams = StreamsConfig{
	Group: "eventlistener",
	Start: "0",
	// One read is one WAL record and one XACK: as many entries as the
	// buffer flushes at once.
	Batch: 1000,
	// A read blocks this long when the stream is idle; the engine notices
	// a stop within it.
	Block: time.Second,
	// Long enough that a node busy with a batch (or riding out a full
	// WAL) keeps its entries; short enough that a dead node's wait little.
	ClaimIdle:  30 * time.Second,
	DeadSuffix: ":dead",
	// Malformed entries are rare; this many are kept for a look.
	DeadMaxLen: 100000,
	EventType:  "redis.message",
}

// StreamsStatus is what GET /v1/node shows of the streams consumer.
type StreamsStatus struct {
	Group    string         `json:"group"`
	Consumer string         `json:"consumer"`
	Streams  []StreamStatus `json:"streams"`
}

// StreamStatus is one stream as this node reads it.
type StreamStatus struct {
	Key string `json:"key"`
	// Reading says the last command to Redis for this stream succeeded.
	Reading bool `json:"reading"`
	// Pending are the group's entries delivered and not acked (on any
	// consumer); Lag those not delivered yet (-1: Redis cannot tell), as
	// of the last look (every few seconds).
	Pending int64     `json:"pending"`
	Lag     int64     `json:"lag"`
	LagAt   time.Time `json:"lag_at,omitzero"`
	// Counts since start: entries stored (acked after the WAL took them),
	// sent to the dead-letter stream, claimed from other consumers.
	Stored    int64     `json:"stored"`
	Dead      int64     `json:"dead"`
	Claimed   int64     `json:"claimed"`
	LastError string    `json:"last_error,omitempty"`
	ErrorAt   time.Time `json:"last_error_at,omitzero"`
}

// Hidden is the status with its errors blanked, for callers without the
// admin token.
func (s StreamsStatus) Hidden() any {
	s.Streams = slices.Clone(s.Streams)
	for i := range s.Streams {
		HideDetail(&s.Streams[i].LastError)
	}
	return &s
}

type streamsMetrics struct {
	entries  *prometheus.CounterVec
	claimed  *prometheus.CounterVec
	errors   *prometheus.CounterVec
	pending  *prometheus.GaugeVec
	lag      *prometheus.GaugeVec
	batchMax prometheus.Gauge
}

func newStreamsMetrics(reg prometheus.Registerer) *streamsMetrics {
	m := &streamsMetrics{
		entries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventlistener_redis_stream_entries_total",
			Help: "Stream entries this node finished, by stream and outcome (stored: in the WAL and acked; dead: malformed, copied to the dead-letter stream and acked).",
		}, []string{"stream", "outcome"}),
		claimed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventlistener_redis_stream_claimed_total",
			Help: "Entries this node claimed (XAUTOCLAIM) from consumers that left them pending past --redis-stream-claim-idle.",
		}, []string{"stream"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventlistener_redis_stream_errors_total",
			Help: "Failed commands of the streams consumer, by stream (it retries with backoff).",
		}, []string{"stream"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventlistener_redis_stream_pending",
			Help: "The group's entries delivered and not acked yet, on any consumer (XINFO GROUPS pending).",
		}, []string{"stream"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventlistener_redis_stream_lag",
			Help: "The group's entries not delivered yet (XINFO GROUPS lag; -1 when Redis cannot tell).",
		}, []string{"stream"}),
		batchMax: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eventlistener_redis_stream_batch_max",
			Help: "The most entries one read takes (--redis-stream-batch): what this node holds of a stream in memory at once.",
		}),
	}
	reg.MustRegister(m.entries, m.claimed, m.errors, m.pending, m.lag, m.batchMax)
	return m
}

// Streams reads Redis Streams with a consumer group. Each entry becomes an
// event (see entryEvent) whose id, when it brings none, comes from the
// stream and the entry id, so a redelivered entry is stored once; an entry
// is acked only once its event is durable in the WAL, so a crash delivers
// it again rather than losing it. It runs on every node: the group spreads
// the entries, and what a node that died left pending is claimed by the
// others.
type Streams struct {
	cfg     StreamsConfig
	metrics *streamsMetrics
	log     *slog.Logger
	// newClient makes the client of one Run.
	newClient func() (goredis.UniversalClient, error)

	mu sync.Mutex
	st StreamsStatus
}

// NewStreams makes the consumer; zero fields of cfg take DefaultStreams'.
// Its metrics go to reg.
func NewStreams(cfg StreamsConfig, reg prometheus.Registerer, log *slog.Logger) *Streams {
	d := DefaultStreams
	if cfg.Group == "" {
		cfg.Group = d.Group
	}
	if cfg.Start == "" {
		cfg.Start = d.Start
	}
	if cfg.Batch <= 0 {
		cfg.Batch = d.Batch
	}
	if cfg.Block <= 0 {
		cfg.Block = d.Block
	}
	if cfg.ClaimIdle <= 0 {
		cfg.ClaimIdle = d.ClaimIdle
	}
	if cfg.DeadSuffix == "" {
		cfg.DeadSuffix = d.DeadSuffix
	}
	if cfg.DeadMaxLen <= 0 {
		cfg.DeadMaxLen = d.DeadMaxLen
	}
	if cfg.EventType == "" {
		cfg.EventType = d.EventType
	}
	s := &Streams{cfg: cfg, metrics: newStreamsMetrics(reg), log: log,
		st: StreamsStatus{Group: cfg.Group, Consumer: cfg.Consumer}}
	s.newClient = func() (goredis.UniversalClient, error) { return infraredis.NewClient(cfg.Options) }
	s.metrics.batchMax.Set(float64(cfg.Batch))
	for _, k := range cfg.Keys {
		s.st.Streams = append(s.st.Streams, StreamStatus{Key: k, Lag: -1})
		for _, o := range []string{"stored", "dead"} {
			s.metrics.entries.WithLabelValues(k, o)
		}
		s.metrics.claimed.WithLabelValues(k)
		s.metrics.errors.WithLabelValues(k)
	}
	return s
}

// Name is "redis-streams".
func (s *Streams) Name() string { return "redis-streams" }

// Placement is EveryNode.
func (s *Streams) Placement() Placement { return EveryNode }

// Status is a *StreamsStatus.
func (s *Streams) Status() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Streams = slices.Clone(st.Streams)
	return &st
}

func (s *Streams) update(key string, f func(st *StreamStatus)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.st.Streams {
		if s.st.Streams[i].Key == key {
			f(&s.st.Streams[i])
		}
	}
}

// commandTimeout bounds each command but the blocking read (which gets
// its block time more).
const commandTimeout = 5 * time.Second

// lagEvery is how often each stream's pending count and lag are read.
const lagEvery = 2 * time.Second

// Run reads every stream until ctx ends, each in a goroutine of its own.
func (s *Streams) Run(ctx context.Context, env Env) error {
	c, err := s.newClient()
	if err != nil {
		return err
	}
	defer c.Close()
	var wg sync.WaitGroup
	for _, key := range s.cfg.Keys {
		r := &streamReader{Streams: s, c: c, env: env, key: key, dead: key + s.cfg.DeadSuffix}
		wg.Go(func() { r.run(ctx) })
	}
	wg.Wait()
	return nil
}

// streamReader reads one stream.
type streamReader struct {
	*Streams
	c         goredis.UniversalClient
	env       Env
	key, dead string
}

// run reads the stream until ctx ends, starting over after a failure with
// backoff (50 ms to 2 s).
func (r *streamReader) run(ctx context.Context) {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval = 50*time.Millisecond, 2*time.Second
	for ctx.Err() == nil {
		err := r.session(ctx, bo)
		if ctx.Err() != nil {
			return
		}
		r.failed(err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(bo.NextBackOff()):
		}
	}
}

func (r *streamReader) failed(err error) {
	r.metrics.errors.WithLabelValues(r.key).Inc()
	var was bool
	r.update(r.key, func(st *StreamStatus) {
		was = st.Reading
		st.Reading, st.LastError, st.ErrorAt = false, err.Error(), time.Now().UTC()
	})
	if was {
		r.log.Warn("Redis stream: reading failed; trying again", "stream", r.key, "error", err)
	} else {
		r.log.Debug("Redis stream: reading failed again", "stream", r.key, "error", err)
	}
}

func (r *streamReader) reading() {
	var was bool
	r.update(r.key, func(st *StreamStatus) { was, st.Reading = st.Reading, true })
	if !was {
		r.log.Info("Redis stream: reading", "stream", r.key, "group", r.cfg.Group, "consumer", r.cfg.Consumer)
	}
}

// session makes the group if it is missing, finishes what this consumer
// had pending (a restart after a crash), then reads new entries and
// claims those left idle by others, until something fails.
func (r *streamReader) session(ctx context.Context, bo *backoff.ExponentialBackOff) error {
	if err := r.ensureGroup(ctx); err != nil {
		return err
	}
	// This consumer's own pending entries: delivered before a crash, or
	// before Redis lost an ack.
	for from := "0"; ; {
		msgs, err := r.read(ctx, from, 0)
		if err != nil {
			return err
		}
		if len(msgs) == 0 {
			break
		}
		if err := r.handle(ctx, msgs, false); err != nil {
			return err
		}
		from = msgs[len(msgs)-1].ID
	}
	r.reading()
	bo.Reset()
	claimEvery := min(max(r.cfg.ClaimIdle/4, time.Second), 30*time.Second)
	nextClaim, nextLag := time.Now(), time.Now()
	for ctx.Err() == nil {
		if now := time.Now(); !now.Before(nextLag) {
			r.lookAtLag(ctx)
			nextLag = now.Add(lagEvery)
		}
		if now := time.Now(); !now.Before(nextClaim) {
			if err := r.claim(ctx); err != nil {
				return err
			}
			nextClaim = now.Add(claimEvery)
		}
		msgs, err := r.read(ctx, ">", r.cfg.Block)
		if err != nil {
			return err
		}
		if err := r.handle(ctx, msgs, false); err != nil {
			return err
		}
	}
	return nil
}

// ensureGroup makes the group (and the stream) when missing.
func (r *streamReader) ensureGroup(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	err := r.c.XGroupCreateMkStream(cctx, r.key, r.cfg.Group, r.cfg.Start).Err()
	if err == nil {
		r.log.Info("Redis stream: consumer group made", "stream", r.key, "group", r.cfg.Group, "start", r.cfg.Start)
		return nil
	}
	if strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return nil
	}
	return fmt.Errorf("XGROUP CREATE %s %s: %w", r.key, r.cfg.Group, err)
}

// read is one XREADGROUP from id ("0": this consumer's pending entries;
// ">": new ones), blocking up to block for new ones.
func (r *streamReader) read(ctx context.Context, id string, block time.Duration) ([]goredis.XMessage, error) {
	cctx, cancel := context.WithTimeout(ctx, commandTimeout+block)
	defer cancel()
	args := &goredis.XReadGroupArgs{Group: r.cfg.Group, Consumer: r.cfg.Consumer, Streams: []string{r.key, id},
		Count: int64(r.cfg.Batch), Block: block}
	if block == 0 {
		args.Block = -1 // no BLOCK: the pending entries are there or not
	}
	res, err := r.c.XReadGroup(cctx, args).Result()
	switch {
	case errors.Is(err, goredis.Nil):
		return nil, nil
	case err != nil:
		if ctx.Err() != nil {
			return nil, nil
		}
		// NOGROUP (the stream or the group was deleted under us) too: the
		// next session makes them again.
		return nil, fmt.Errorf("XREADGROUP %s: %w", r.key, err)
	}
	var out []goredis.XMessage
	for _, st := range res {
		out = append(out, st.Messages...)
	}
	return out, nil
}

// claim takes the entries other consumers left pending past ClaimIdle,
// and handles them.
func (r *streamReader) claim(ctx context.Context) error {
	for start := "0-0"; ; {
		cctx, cancel := context.WithTimeout(ctx, commandTimeout)
		msgs, next, err := r.c.XAutoClaim(cctx, &goredis.XAutoClaimArgs{Stream: r.key, Group: r.cfg.Group,
			MinIdle: r.cfg.ClaimIdle, Start: start, Count: int64(r.cfg.Batch), Consumer: r.cfg.Consumer}).Result()
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("XAUTOCLAIM %s: %w", r.key, err)
		}
		if len(msgs) > 0 {
			r.log.Info("Redis stream: claimed entries another consumer left pending", "stream", r.key,
				"entries", len(msgs), "idle_over", r.cfg.ClaimIdle)
			if err := r.handle(ctx, msgs, true); err != nil {
				return err
			}
		}
		if next == "0-0" || next == "" {
			return nil
		}
		start = next
	}
}

// handle makes events of the entries, copies the malformed ones to the
// dead-letter stream, hands the events to the engine, and acks them all
// once the engine has them durable. An error leaves them pending: they
// come back at the next session (or to another consumer).
func (r *streamReader) handle(ctx context.Context, msgs []goredis.XMessage, claimed bool) error {
	if len(msgs) == 0 {
		return nil
	}
	if claimed {
		r.metrics.claimed.WithLabelValues(r.key).Add(float64(len(msgs)))
		r.update(r.key, func(st *StreamStatus) { st.Claimed += int64(len(msgs)) })
	}
	now := time.Now().UTC()
	source := "redis-stream://" + r.key
	events := make([]event.Event, 0, len(msgs))
	ids := make([]string, 0, len(msgs))
	dead := 0
	for _, m := range msgs {
		ids = append(ids, m.ID)
		if len(m.Values) == 0 {
			continue // deleted (XDEL, or trimmed) while pending: nothing to store
		}
		ev, err := entryEvent(source, EntryEventID(r.key, m.ID, m.Values), m.ID, m.Values, r.cfg.EventType, r.cfg.MaxEventBytes, now)
		if err != nil {
			if err := r.toDead(ctx, m, err); err != nil {
				return err
			}
			dead++
			continue
		}
		events = append(events, ev)
	}
	if len(events) > 0 {
		if err := r.env.Ingest(ctx, events); err != nil {
			if ctx.Err() != nil {
				return nil // pending: delivered again at the next start
			}
			return fmt.Errorf("the engine did not take %d entries (they stay pending): %w", len(events), err)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	if err := r.c.XAck(cctx, r.key, r.cfg.Group, ids...).Err(); err != nil {
		// Durable in the WAL but still pending: delivered again later,
		// and stored once (the ids are the same).
		return fmt.Errorf("XACK %s: %w", r.key, err)
	}
	r.metrics.entries.WithLabelValues(r.key, "stored").Add(float64(len(events)))
	r.metrics.entries.WithLabelValues(r.key, "dead").Add(float64(dead))
	r.update(r.key, func(st *StreamStatus) { st.Stored += int64(len(events)); st.Dead += int64(dead) })
	return nil
}

// Fields the dead-letter stream adds to a malformed entry's own.
const (
	DeadErrorField  = "eventlistener.error"
	DeadStreamField = "eventlistener.stream"
	DeadIDField     = "eventlistener.id"
)

// toDead copies a malformed entry, with its error, to the dead-letter
// stream (bounded by DeadMaxLen).
func (r *streamReader) toDead(ctx context.Context, m goredis.XMessage, cause error) error {
	values := make([]any, 0, 2*len(m.Values)+6)
	values = append(values, DeadErrorField, cause.Error(), DeadStreamField, r.key, DeadIDField, m.ID)
	keys := make([]string, 0, len(m.Values))
	for k := range m.Values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		values = append(values, k, m.Values[k])
	}
	cctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	if err := r.c.XAdd(cctx, &goredis.XAddArgs{Stream: r.dead, MaxLen: r.cfg.DeadMaxLen, Approx: true, Values: values}).Err(); err != nil {
		return fmt.Errorf("XADD %s (a malformed entry): %w", r.dead, err)
	}
	r.log.Warn("Redis stream entry is not a valid event; copied to the dead-letter stream", "stream", r.key,
		"entry", m.ID, "dead_letter", r.dead, "error", cause)
	return nil
}

// lookAtLag reads the group's pending count and lag (XINFO GROUPS); a
// failure only leaves the last figures.
func (r *streamReader) lookAtLag(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	groups, err := r.c.XInfoGroups(cctx, r.key).Result()
	if err != nil {
		return
	}
	for _, g := range groups {
		if g.Name != r.cfg.Group {
			continue
		}
		r.metrics.pending.WithLabelValues(r.key).Set(float64(g.Pending))
		r.metrics.lag.WithLabelValues(r.key).Set(float64(g.Lag))
		r.update(r.key, func(st *StreamStatus) { st.Pending, st.Lag, st.LagAt = g.Pending, g.Lag, time.Now().UTC() })
	}
}

// entryNamespace makes the ids of stream entries that bring none (UUIDv5).
var entryNamespace = uuid.MustParse("0c4f4a8e-93c5-4c53-9f0e-5a1f6f2b7d21")

// EntryEventID is the id of the event of the entry entryID of stream key,
// when the entry brings none: the same on every node and at every
// delivery. It is a UUIDv5 of the key, the entry id and the fields: after
// a failover that lost the last entries, the new master may give their
// ids to other entries, which must not pass for them.
func EntryEventID(key, entryID string, values map[string]any) string {
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	// Each string with its length first, so no two entries run together
	// into the same bytes.
	b := make([]byte, 0, 256)
	add := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	add(key)
	add(entryID)
	for _, k := range keys {
		add(k)
		add(fmt.Sprint(values[k]))
	}
	return uuid.NewSHA1(entryNamespace, b).String()
}
