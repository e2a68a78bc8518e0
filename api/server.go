package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"eventlistener/actors"
	"eventlistener/event"
	"eventlistener/infra/haproxy"
	"eventlistener/sources"
)

// Engine is what the API needs of the engine (*actors.Engine).
type Engine interface {
	// Ingest takes one request's events, all or none, and returns once
	// they are durable (with --ack durable).
	Ingest(events []event.Event) error
	// IngestStored takes one request's events and returns once every sink
	// is done with them, or ctx is done; with each sink's outcome.
	IngestStored(ctx context.Context, events []event.Event) (map[string]string, error)
	// Admit says whether a request may be read at all (ErrOverloaded,
	// ErrShuttingDown, ErrWALFull, ErrWALFailed).
	Admit() error
	// Accepting is false once shutdown began.
	Accepting() bool
	// Ready says whether this node can take events (nil) or why not.
	Ready() error
	// Node reports the engine's state for GET /v1/node.
	Node(ctx context.Context) actors.NodeStatus
	// Nodes lists the cluster from the node registry (actors.ErrAlone
	// without one).
	Nodes(ctx context.Context) (actors.Cluster, error)
}

// Proxy is what the API needs of the HAProxy watcher (*sources.Proxy).
type Proxy interface {
	// Snapshot is HAProxy's last poll.
	Snapshot() sources.ProxySnapshot
	// Action enables, disables or drains a server and records it.
	Action(ctx context.Context, who, backend, server, action string) error
}

// APIKey is a named ingest key.
type APIKey struct {
	Name string
	Key  string
}

// Options configure the server.
type Options struct {
	// MaxBodyBytes is the largest request body, after decompression.
	MaxBodyBytes int64
	// MaxRequestEvents is the most events in one request (413 beyond).
	MaxRequestEvents int
	// MaxEventBytes is the largest data of one event, as stored (413
	// beyond); zero: no limit beyond MaxBodyBytes.
	MaxEventBytes int
	// DecodeBudget bounds the memory of all requests being decoded
	// together (503 when spent); zero: no bound.
	DecodeBudget int64
	// APIKeys, when any, are required on POST /v1/events.
	APIKeys []APIKey
	// AdminToken is the bearer token of the admin routes; empty: they are
	// off (404).
	AdminToken string
	// AckTimeout bounds how long ?ack=stored waits for the sinks.
	AckTimeout time.Duration
	// Proxy is the HAProxy watcher; nil: HAProxy is not watched.
	Proxy Proxy
	// Gatherer serves /metrics; Registerer takes the API's own metrics.
	Gatherer   prometheus.Gatherer
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Server is the HTTP API.
type Server struct {
	echo   *echo.Echo
	engine Engine
	opt    Options
	log    *slog.Logger

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	budget   *budget // nil: no bound

	adminEcho *echo.Echo
}

// New builds the routes.
func New(engine Engine, opt Options) *Server {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Gatherer == nil {
		opt.Gatherer = prometheus.NewRegistry()
	}
	if opt.Registerer == nil {
		opt.Registerer = prometheus.NewRegistry()
	}
	s := &Server{engine: engine, opt: opt, log: opt.Logger}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eventlistener_http_requests_total",
		Help: "HTTP requests by route and status code.",
	}, []string{"route", "code"})
	s.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "eventlistener_http_request_seconds",
		Help:    "HTTP request duration by route.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9),
		// Native buckets too, within 10% of each other: the console's
		// ack latency quantiles come from them (scrapers that do not ask
		// for native histograms see only the classic buckets).
		NativeHistogramBucketFactor:     1.1,
		NativeHistogramMaxBucketNumber:  200,
		NativeHistogramMinResetDuration: time.Hour,
	}, []string{"route"})
	opt.Registerer.MustRegister(s.requests, s.duration)
	if opt.DecodeBudget > 0 {
		s.budget = newBudget(opt.DecodeBudget, opt.Registerer)
	}

	// The ingest listener: what producers and load balancers need.
	e := s.router()
	e.POST("/v1/events", s.postEvents)
	s.probes(e)
	s.echo = e

	// The admin listener: what operators and Prometheus need.
	a := s.router()
	s.probes(a)
	a.GET("/v1/node", s.node)
	a.GET("/v1/nodes", s.nodes)
	a.GET("/v1/proxy/servers", s.proxyServers)
	a.POST("/v1/proxy/servers/:backend/:server/:action", s.proxyAction)
	a.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(opt.Gatherer, promhttp.HandlerOpts{})))
	a.GET("/debug/pprof/*", s.debug)
	s.adminEcho = a
	return s
}

// router makes a router with the server's error handling and metrics.
func (s *Server) router() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	// The client's address is the connection's: X-Forwarded-For is not
	// trusted, so an admin action's "who" cannot be forged with a header.
	e.IPExtractor = echo.ExtractIPDirect()
	e.HTTPErrorHandler = s.handleError
	e.Use(s.observe, s.recover)
	return e
}

// probes adds the health routes, which both listeners answer.
func (s *Server) probes(e *echo.Echo) {
	e.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	e.GET("/readyz", s.ready)
	e.HEAD("/readyz", s.ready)
}

// debug serves Go's profiler (net/http/pprof). With --admin-token set it
// needs the token: a profile costs CPU and shows the program's insides.
func (s *Server) debug(c echo.Context) error {
	if s.opt.AdminToken != "" && !s.isAdmin(c.Request()) {
		return c.JSON(http.StatusUnauthorized, errorBody{Error: "the debug routes need the admin token: send Authorization: Bearer TOKEN"})
	}
	switch name := c.Param("*"); name {
	case "profile":
		pprof.Profile(c.Response(), c.Request())
	case "trace":
		pprof.Trace(c.Response(), c.Request())
	case "symbol":
		pprof.Symbol(c.Response(), c.Request())
	case "cmdline":
		pprof.Cmdline(c.Response(), c.Request())
	default:
		pprof.Index(c.Response(), c.Request())
	}
	return nil
}

// Handler is the ingest listener's http.Handler: POST /v1/events and the
// health routes.
func (s *Server) Handler() http.Handler { return s.echo }

// AdminHandler is the admin listener's http.Handler: /metrics, /v1/node,
// /v1/proxy/..., /debug/pprof/ and the health routes.
func (s *Server) AdminHandler() http.Handler { return s.adminEcho }

// Echo gives access to the ingest router, so later parts can add routes.
func (s *Server) Echo() *echo.Echo { return s.echo }

// AdminEcho gives access to the admin router.
func (s *Server) AdminEcho() *echo.Echo { return s.adminEcho }

// errorBody is every error answer.
type errorBody struct {
	Error string `json:"error"`
	Index *int   `json:"index,omitempty"`
}

type acceptedBody struct {
	Accepted int      `json:"accepted"`
	IDs      []string `json:"ids"`
	// Sinks is each sink's outcome, with ?ack=stored: "done" (stored, or
	// in its fallback log) or "pending".
	Sinks map[string]string `json:"sinks,omitempty"`
	Error string            `json:"error,omitempty"`
}

func (s *Server) postEvents(c echo.Context) error {
	req := c.Request()
	source, ok := s.authenticate(req)
	if !ok {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="eventlistener"`)
		return c.JSON(http.StatusUnauthorized, errorBody{Error: "missing or invalid API key: send Authorization: Bearer KEY or X-Api-Key: KEY"})
	}
	// Refuse before reading: decoding a body only to refuse it would take
	// CPU from the stores that are behind.
	if err := s.engine.Admit(); err != nil {
		return unavailable(c, err)
	}
	// Decode bounds what it reads, compressed and decompressed, and
	// reserves the memory before it takes it; the reservation holds until
	// the events are in the WAL.
	res := reservation{b: s.budget}
	defer res.release()
	events, err := Decode(req.Header, req.Body, DecodeOptions{
		MaxBytes: s.opt.MaxBodyBytes, MaxEvents: s.opt.MaxRequestEvents, MaxEventBytes: s.opt.MaxEventBytes, Now: time.Now().UTC(), DefaultSource: source,
		Reserve: res.grow,
	})
	if err != nil {
		var re *RequestError
		if errors.As(err, &re) {
			if re.Status == http.StatusServiceUnavailable {
				c.Response().Header().Set("Retry-After", "1")
			}
			eb := errorBody{Error: re.Message}
			if re.Index >= 0 {
				eb.Index = &re.Index
			}
			return c.JSON(re.Status, eb)
		}
		return c.JSON(http.StatusBadRequest, errorBody{Error: "cannot read request body: " + err.Error()})
	}
	ids := make([]string, len(events))
	for i := range events {
		ids[i] = events[i].ID
	}
	switch ack := c.QueryParam("ack"); ack {
	case "", "durable":
	case "stored":
		return s.postStored(c, events, ids)
	default:
		return c.JSON(http.StatusBadRequest, errorBody{Error: fmt.Sprintf("unknown ack %q: use ack=stored, or leave it out", ack)})
	}
	if err := s.engine.Ingest(events); err != nil {
		return unavailable(c, err)
	}
	return c.JSON(http.StatusAccepted, acceptedBody{Accepted: len(events), IDs: ids})
}

// postStored answers once every sink is done with the events: 200, or 504
// after the ack timeout (the events are durable and still delivered).
func (s *Server) postStored(c echo.Context, events []event.Event, ids []string) error {
	timeout := s.opt.AckTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), timeout)
	defer cancel()
	out, err := s.engine.IngestStored(ctx, events)
	switch {
	case err == nil:
		return c.JSON(http.StatusOK, acceptedBody{Accepted: len(events), IDs: ids, Sinks: out})
	case out != nil && errors.Is(err, context.DeadlineExceeded):
		return c.JSON(http.StatusGatewayTimeout, acceptedBody{Accepted: len(events), IDs: ids, Sinks: out,
			Error: fmt.Sprintf("not every store took the events within %s; they are durable and will still be delivered", timeout)})
	case out != nil:
		// The client went away; the events are durable all the same.
		return c.JSON(http.StatusGatewayTimeout, acceptedBody{Accepted: len(events), IDs: ids, Sinks: out, Error: err.Error()})
	}
	return unavailable(c, err)
}

// unavailable answers 503 with Retry-After: the engine is full or stopping.
func unavailable(c echo.Context, err error) error {
	retry := 1
	switch {
	case errors.Is(err, actors.ErrShuttingDown), errors.Is(err, actors.ErrWALFull):
		retry = 5
	case errors.Is(err, actors.ErrWALFailed):
		retry = 30
	}
	c.Response().Header().Set("Retry-After", strconv.Itoa(retry))
	return c.JSON(http.StatusServiceUnavailable, errorBody{Error: err.Error()})
}

// authenticate checks the API key and returns the name it goes by, which
// becomes the source of events that have none. With no keys configured,
// ingest is open and the source is "http".
func (s *Server) authenticate(r *http.Request) (string, bool) {
	if len(s.opt.APIKeys) == 0 {
		return "http", true
	}
	key := r.Header.Get("X-Api-Key")
	if auth := r.Header.Get("Authorization"); key == "" && len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
		key = strings.TrimSpace(auth[7:])
	}
	if key == "" {
		return "", false
	}
	name, found := "", false
	for _, k := range s.opt.APIKeys {
		// Compare every key in constant time, so timing tells nothing.
		if subtle.ConstantTimeCompare([]byte(key), []byte(k.Key)) == 1 && !found {
			name, found = k.Name, true
		}
	}
	return name, found
}

// ready is 200 while this node can take events: not stopping, its WAL
// healthy and not full. A store being down does not make it unready: its
// events wait in the WAL, and taking every node out of the load balancer
// would refuse them all.
func (s *Server) ready(c echo.Context) error {
	if err := s.engine.Ready(); err != nil {
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "not ready", "error": err.Error()})
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) proxyServers(c echo.Context) error {
	if s.opt.Proxy == nil {
		return c.JSON(http.StatusNotFound, errorBody{Error: sources.ErrNoProxy.Error() + ": set --haproxy-stats-url or --haproxy-runtime-addr"})
	}
	return c.JSON(http.StatusOK, s.opt.Proxy.Snapshot())
}

// proxyAction is POST /v1/proxy/servers/{backend}/{server}/{enable|disable|drain}.
func (s *Server) proxyAction(c echo.Context) error {
	if s.opt.AdminToken == "" {
		return c.JSON(http.StatusNotFound, errorBody{Error: "admin routes are off: set --admin-token to enable them"})
	}
	if !s.isAdmin(c.Request()) {
		s.log.Warn("admin request refused: missing or wrong token", "client", c.RealIP(), "path", c.Request().URL.Path)
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="eventlistener admin"`)
		return c.JSON(http.StatusUnauthorized, errorBody{Error: "missing or wrong admin token: send Authorization: Bearer TOKEN"})
	}
	if !s.engine.Accepting() {
		// Stopping: the action's audit event could no longer be stored.
		c.Response().Header().Set("Retry-After", "5")
		return c.JSON(http.StatusServiceUnavailable, errorBody{Error: "shutting down: admin actions are refused"})
	}
	backend, server, action := c.Param("backend"), c.Param("server"), c.Param("action")
	switch action {
	case sources.ActionEnable, sources.ActionDisable, sources.ActionDrain:
	default:
		return c.JSON(http.StatusNotFound, errorBody{Error: fmt.Sprintf("unknown action %q: use enable, disable or drain", action)})
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 10*time.Second)
	defer cancel()
	err := fmt.Errorf("%w: set --haproxy-runtime-addr", sources.ErrNoProxy)
	if s.opt.Proxy != nil {
		err = s.opt.Proxy.Action(ctx, "admin@"+c.RealIP(), backend, server, action)
	}
	var ce *haproxy.CommandError
	switch {
	case err == nil:
		return c.JSON(http.StatusOK, map[string]string{"backend": backend, "server": server, "action": action, "result": "ok"})
	case errors.Is(err, sources.ErrNoProxy):
		return c.JSON(http.StatusNotFound, errorBody{Error: err.Error()})
	case errors.Is(err, haproxy.ErrNotFound) && errors.As(err, &ce):
		return c.JSON(http.StatusNotFound, errorBody{Error: "HAProxy: " + ce.Message})
	case errors.Is(err, haproxy.ErrNotFound):
		return c.JSON(http.StatusNotFound, errorBody{Error: err.Error()})
	case errors.Is(err, haproxy.ErrInvalidArgument):
		return c.JSON(http.StatusBadRequest, errorBody{Error: err.Error()})
	case errors.Is(err, context.DeadlineExceeded):
		return c.JSON(http.StatusGatewayTimeout, errorBody{Error: "HAProxy did not answer in time: " + err.Error()})
	}
	return c.JSON(http.StatusBadGateway, errorBody{Error: "HAProxy: " + err.Error()})
}

// IsAdmin says whether the request carries the admin token (the console
// asks it too).
func (s *Server) IsAdmin(r *http.Request) bool { return s.isAdmin(r) }

// isAdmin says whether the request carries the admin token.
func (s *Server) isAdmin(r *http.Request) bool {
	if s.opt.AdminToken == "" {
		return false
	}
	auth := r.Header.Get("Authorization")
	token := ""
	if len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
		token = strings.TrimSpace(auth[7:])
	}
	return subtle.ConstantTimeCompare([]byte(token), []byte(s.opt.AdminToken)) == 1
}

// nodeBody is GET /v1/node's answer.
type nodeBody struct {
	Hostname string `json:"hostname"`
	actors.NodeStatus
	Hidden string `json:"details_hidden,omitempty"`
}

// nodes is GET /v1/nodes: the cluster from the registry; this node alone
// without one; 503 with the last list when the registry cannot be read.
func (s *Server) nodes(c echo.Context) error {
	cl, err := s.engine.Nodes(c.Request().Context())
	switch {
	case err == nil, errors.Is(err, actors.ErrAlone):
		return c.JSON(http.StatusOK, cl)
	}
	if !s.isAdmin(c.Request()) {
		cl.Error = "the node registry cannot be read (the error is shown with the admin token)"
	}
	c.Response().Header().Set("Retry-After", "2")
	return c.JSON(http.StatusServiceUnavailable, cl)
}

func (s *Server) node(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	host, _ := os.Hostname()
	body := nodeBody{Hostname: host, NodeStatus: s.engine.Node(ctx)}
	if !s.isAdmin(c.Request()) {
		body.NodeStatus.HideDetails()
		body.Hidden = "errors and paths are shown with the admin token (Authorization: Bearer TOKEN)"
	}
	return c.JSON(http.StatusOK, body)
}

// observe counts requests by route and status.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		route := c.Path()
		if route == "" {
			route = "unknown"
		}
		s.requests.WithLabelValues(route, strconv.Itoa(c.Response().Status)).Inc()
		s.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
		return nil
	}
}

// recover turns a panic in a handler into a logged 500, never a crash.
func (s *Server) recover(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				s.log.Error("handler panicked", "route", c.Path(), "panic", r)
				err = echo.NewHTTPError(http.StatusInternalServerError, "internal error")
			}
		}()
		return next(c)
	}
}

// handleError answers every error as JSON.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code, msg := http.StatusInternalServerError, "internal error"
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code = he.Code
		msg = fmt.Sprint(he.Message)
	} else {
		s.log.Error("request failed", "route", c.Path(), "error", err)
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(code)
		return
	}
	_ = c.JSON(code, errorBody{Error: msg})
}
