package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	sse "github.com/tmaxmax/go-sse"

	"eventlistener/actors"
	"eventlistener/sinks/fallback"
)

// The page: plain files, no build step; web/vendor holds uPlot as npm
// built it (scripts/build-console).
//
//go:embed web/index.html web/app.js web/app.css web/vendor
var web embed.FS

// Register adds the console's routes to the admin router:
//
//	GET  /                          the page
//	GET  /console/...               its files
//	GET  /v1/stats                  history and state as JSON
//	GET  /v1/stats/stream           the same, then one sample a second (SSE)
//	GET  /v1/tail/stream            the live tail (SSE); ?type= &source=
//	GET  /v1/replay                 the last replay's progress or result
//	POST /v1/sinks/{sink}/replay    replay a sink's fallback backlog (token)
//
// They answer only requests whose Host is an IP address, localhost or one
// of AllowedHosts: a page on another site that resolves its own name to
// this address (DNS rebinding) is refused.
func (c *Console) Register(e *echo.Echo) {
	files, _ := fs.Sub(web, "web")
	g := e.Group("", c.checkHost)
	static := http.StripPrefix("/console/", http.FileServerFS(files))
	headers := func(ec echo.Context) {
		h := ec.Response().Header()
		h.Set("Cache-Control", "no-cache")
		// Scripts and data only from here; uPlot sets inline styles.
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
	}
	g.GET("/", func(ec echo.Context) error {
		b, err := fs.ReadFile(files, "index.html")
		if err != nil {
			return err
		}
		headers(ec)
		return ec.HTMLBlob(http.StatusOK, b)
	})
	g.GET("/console/*", func(ec echo.Context) error {
		headers(ec)
		static.ServeHTTP(ec.Response(), ec.Request())
		return nil
	})
	g.GET("/v1/stats", c.stats)
	g.GET("/v1/stats/stream", c.statsStream)
	g.GET("/v1/tail/stream", c.tailStream)
	g.GET("/v1/replay", c.replayStatus)
	g.POST("/v1/sinks/:sink/replay", c.replay)
}

// checkHost refuses requests for a Host the console does not answer to.
func (c *Console) checkHost(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ec echo.Context) error {
		host := ec.Request().Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.ToLower(strings.Trim(host, "[]"))
		if net.ParseIP(host) != nil || host == "localhost" || strings.HasSuffix(host, ".localhost") || slices.Contains(c.opt.AllowedHosts, host) || slices.Contains(c.opt.AllowedHosts, "*") {
			return next(ec)
		}
		c.log.Warn("console request refused: its Host is not allowed", "host", host, "client", ec.RealIP())
		return ec.JSON(http.StatusForbidden, errorBody{Error: fmt.Sprintf("the console does not answer to the host name %q: add it to --admin-allowed-hosts", host)})
	}
}

type errorBody struct {
	Error string `json:"error"`
}

// StatsBody is GET /v1/stats, and the stream's first message (event "history").
type StatsBody struct {
	History []Sample `json:"history"`
	State   State    `json:"state"`
}

// SampleBody is each later message of the stream (event "sample").
type SampleBody struct {
	Sample Sample `json:"sample"`
	State  State  `json:"state"`
}

func (c *Console) authorized(r *http.Request) bool {
	return c.opt.Authorize != nil && c.opt.TokenSet && c.opt.Authorize(r)
}

// historyParam is ?history=N: the last N samples (all by default); on a
// bad value it answers 400 and returns false.
func historyParam(ec echo.Context) (int, bool) {
	v := ec.QueryParam("history")
	if v == "" {
		return -1, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		_ = ec.JSON(http.StatusBadRequest, errorBody{Error: fmt.Sprintf("history must be a number of samples, 0 or more, got %q", v)})
		return 0, false
	}
	return n, true
}

func (c *Console) stats(ec echo.Context) error {
	n, ok := historyParam(ec)
	if !ok {
		return nil
	}
	snap := c.current()
	return ec.JSON(http.StatusOK, StatsBody{History: c.hist.last(n), State: snap.state(c.authorized(ec.Request()))})
}

// stream is one open server-sent events response; done closes when the
// client goes or the console stops.
type stream struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	done <-chan struct{}
}

// streamWriteTimeout bounds each write: a client that stopped reading is
// dropped rather than holding a stream slot.
const streamWriteTimeout = 10 * time.Second

func (c *Console) startStream(ec echo.Context) (*stream, func(), error) {
	release, err := c.openStream()
	if err != nil {
		ec.Response().Header().Set("Retry-After", "5")
		return nil, nil, ec.JSON(http.StatusServiceUnavailable, errorBody{Error: err.Error() + fmt.Sprintf(" (%d, --console-max-streams): close a console tab, or raise it", c.opt.MaxStreams)})
	}
	w := ec.Response()
	rc := http.NewResponseController(w)
	// The admin listener's read and write timeouts are for requests; a
	// stream lives as long as the page, so it sets its own per write.
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	ctx, cancel := context.WithCancel(ec.Request().Context())
	stopWith := context.AfterFunc(c.ctx, cancel)
	return &stream{w: w, rc: rc, done: ctx.Done()}, func() { stopWith(); cancel(); release() }, nil
}

func (s *stream) send(typ string, data []byte) error {
	m := &sse.Message{Type: sse.Type(typ)}
	m.AppendData(string(data))
	_ = s.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	if _, err := m.WriteTo(s.w); err != nil {
		return err
	}
	return s.rc.Flush()
}

// statsStream sends the history, then a sample and the state every tick.
func (c *Console) statsStream(ec echo.Context) error {
	n, ok := historyParam(ec)
	if !ok {
		return nil
	}
	auth := c.authorized(ec.Request())
	ch, _ := c.subscribe()
	defer c.unsubscribe(ch)
	s, release, err := c.startStream(ec)
	if s == nil {
		return err
	}
	defer release()
	snap := c.current()
	hist := c.hist.last(n)
	if err := s.send("history", encode(StatsBody{History: hist, State: snap.state(auth)})); err != nil {
		return nil
	}
	var lastT int64 // a sample the history held already is not sent again
	if len(hist) > 0 {
		lastT = hist[len(hist)-1].Time
	}
	for {
		select {
		case <-s.done:
			return nil
		case snap := <-ch:
			if snap.sample.Time <= lastT {
				continue
			}
			if err := s.send("sample", encode(SampleBody{Sample: snap.sample, State: snap.state(auth)})); err != nil {
				return nil
			}
		}
	}
}

// tailRate is each second's count of what the tail's filter matched and
// what of it was sent.
type tailRate struct {
	Matched int64 `json:"matched"`
	Shown   int64 `json:"shown"`
}

// tailStream sends the events ingested that the filter matches, sampled.
// With --admin-token set it needs the token: events are the producers'
// data.
func (c *Console) tailStream(ec echo.Context) error {
	if c.opt.TokenSet && !c.authorized(ec.Request()) {
		ec.Response().Header().Set("WWW-Authenticate", `Bearer realm="eventlistener admin"`)
		return ec.JSON(http.StatusUnauthorized, errorBody{Error: "the live tail shows events' data: it needs the admin token (Authorization: Bearer TOKEN)"})
	}
	f := Filter{Type: ec.QueryParam("type"), Source: ec.QueryParam("source")}
	sub, recent := c.opt.Tail.subscribe(f)
	defer c.opt.Tail.unsubscribe(sub)
	s, release, err := c.startStream(ec)
	if s == nil {
		return err
	}
	defer release()
	for i := range recent {
		if err := s.send("event", encode(recent[i])); err != nil {
			return nil
		}
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var matched, shown int64
	for {
		select {
		case <-s.done:
			return nil
		case e := <-sub.ch:
			if err := s.send("event", encode(e)); err != nil {
				return nil
			}
		case <-t.C:
			m, sh := sub.matched.Load(), sub.shown.Load()
			c.tailEvents.WithLabelValues("shown").Add(float64(sh - shown))
			c.tailEvents.WithLabelValues("skipped").Add(float64((m - matched) - (sh - shown)))
			if err := s.send("rate", encode(tailRate{Matched: m - matched, Shown: sh - shown})); err != nil {
				return nil
			}
			matched, shown = m, sh
		}
	}
}

func (c *Console) replayStatus(ec echo.Context) error {
	st := c.replays.status()
	if st == nil {
		return ec.JSON(http.StatusNotFound, errorBody{Error: "no replay was started since the engine started"})
	}
	if !c.authorized(ec.Request()) {
		actors.HideDetail(&st.Error)
	}
	return ec.JSON(http.StatusOK, st)
}

// replay is POST /v1/sinks/{sink}/replay: 202 with the replay's status;
// its progress is in the stats stream and GET /v1/replay.
func (c *Console) replay(ec echo.Context) error {
	if !c.opt.TokenSet {
		return ec.JSON(http.StatusNotFound, errorBody{Error: "admin routes are off: set --admin-token to enable them"})
	}
	if !c.authorized(ec.Request()) {
		c.log.Warn("admin request refused: missing or wrong token", "client", ec.RealIP(), "path", ec.Request().URL.Path)
		ec.Response().Header().Set("WWW-Authenticate", `Bearer realm="eventlistener admin"`)
		return ec.JSON(http.StatusUnauthorized, errorBody{Error: "missing or wrong admin token: send Authorization: Bearer TOKEN"})
	}
	if c.ctx.Err() != nil {
		ec.Response().Header().Set("Retry-After", "5")
		return ec.JSON(http.StatusServiceUnavailable, errorBody{Error: "shutting down: admin actions are refused"})
	}
	sink := ec.Param("sink")
	who := "admin@" + ec.RealIP()
	st, err := c.replays.start(c.ctx, sink, who)
	switch {
	case err == nil:
		c.log.Info("console replay started", "sink", sink, "who", who, "records", st.Records)
		return ec.JSON(http.StatusAccepted, st)
	case errors.Is(err, errNoSink):
		return ec.JSON(http.StatusNotFound, errorBody{Error: fmt.Sprintf("no sink %q is configured here", sink)})
	case errors.Is(err, ErrReplayRunning):
		return ec.JSON(http.StatusConflict, errorBody{Error: err.Error() + ": wait for it to finish"})
	case errors.Is(err, fallback.ErrLocked):
		return ec.JSON(http.StatusConflict, errorBody{Error: err.Error()})
	}
	c.log.Error("cannot start the replay", "sink", sink, "error", err)
	return ec.JSON(http.StatusInternalServerError, errorBody{Error: err.Error()})
}
