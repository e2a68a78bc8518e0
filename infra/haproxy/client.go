package haproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Defaults of Client.
const (
	DefaultTimeout       = 10 * time.Second
	DefaultMaxReplyBytes = 64 << 20
)

// Client talks to one HAProxy: its statistics page over HTTP and its runtime
// API. The zero value has no addresses; set the fields before use and do not
// change them while it is in use. A Client is safe for concurrent use.
type Client struct {
	// StatsURL is the statistics page, e.g. http://127.0.0.1:8404/stats;csv.
	// ";csv" is added when the path lacks it. User and password in the URL
	// are sent as basic authentication ("stats auth").
	StatsURL string
	// RuntimeAddr is the runtime API: a unix socket path
	// (/run/haproxy/admin.sock) or host:port (127.0.0.1:9999). HAProxy's
	// prefixes unix@, ipv4@, ipv6@ and tcp@ are accepted.
	RuntimeAddr string
	// HTTPClient fetches StatsURL; nil means http.DefaultClient.
	HTTPClient *http.Client
	// Timeout bounds each request when ctx has no earlier deadline; 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// MaxReplyBytes bounds a reply; 0 means DefaultMaxReplyBytes.
	MaxReplyBytes int64
}

func (c *Client) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

func (c *Client) maxReply() int64 {
	if c.MaxReplyBytes > 0 {
		return c.MaxReplyBytes
	}
	return DefaultMaxReplyBytes
}

// Stats fetches and parses the statistics CSV from StatsURL; without a
// StatsURL it asks the runtime API (ShowStat).
func (c *Client) Stats(ctx context.Context) (StatsResult, error) {
	if c.StatsURL == "" {
		if c.RuntimeAddr == "" {
			return StatsResult{}, fmt.Errorf("%w: neither StatsURL nor RuntimeAddr is set", ErrNotConfigured)
		}
		return c.ShowStat(ctx)
	}
	u, err := csvURL(c.StatsURL)
	if err != nil {
		return StatsResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return StatsResult{}, fmt.Errorf("haproxy stats: %w", err)
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return StatsResult{}, fmt.Errorf("haproxy stats: %w", err)
	}
	defer resp.Body.Close()
	body, err := readLimited(resp.Body, c.maxReply())
	if err != nil {
		return StatsResult{}, fmt.Errorf("haproxy stats %s: %w", u.Redacted(), err)
	}
	if resp.StatusCode != http.StatusOK {
		return StatsResult{}, fmt.Errorf("haproxy stats %s: HTTP %s: %.200q", u.Redacted(), resp.Status, bytes.TrimSpace(body))
	}
	res, err := ParseStats(body)
	if err != nil {
		return StatsResult{}, fmt.Errorf("haproxy stats %s: %w", u.Redacted(), err)
	}
	return res, nil
}

// csvURL parses raw and adds ";csv" to its path when missing.
func csvURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("haproxy stats URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("haproxy stats URL %q: scheme must be http or https", u.Redacted())
	}
	if !strings.Contains(u.Path, ";csv") {
		u.Path += ";csv"
		u.RawPath = ""
	}
	return u, nil
}

func readLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("reply longer than %d bytes", limit)
	}
	return b, nil
}

// ShowStat asks the runtime API for "show stat" and parses it like Stats.
func (c *Client) ShowStat(ctx context.Context) (StatsResult, error) {
	const cmd = "show stat"
	reply, err := c.Command(ctx, cmd)
	if err != nil {
		return StatsResult{}, err
	}
	if !strings.HasPrefix(strings.TrimSpace(reply), "#") {
		return StatsResult{}, replyError(cmd, reply)
	}
	res, err := ParseStats([]byte(reply))
	if err != nil {
		return StatsResult{}, fmt.Errorf("haproxy: %s: %w", cmd, err)
	}
	return res, nil
}

// ShowServersState asks the runtime API for "show servers state", of one
// backend or, when backend is empty, of all. An unknown backend is an error
// matching ErrNotFound.
func (c *Client) ShowServersState(ctx context.Context, backend string) (ServersStateResult, error) {
	cmd := "show servers state"
	if backend != "" {
		if err := checkName("backend", backend); err != nil {
			return ServersStateResult{}, err
		}
		cmd += " " + backend
	}
	reply, err := c.Command(ctx, cmd)
	if err != nil {
		return ServersStateResult{}, err
	}
	res, err := ParseServersState([]byte(reply))
	if err != nil {
		var notState *NotServersStateError
		if errors.As(err, &notState) || strings.TrimSpace(reply) == "" {
			return ServersStateResult{}, replyError(cmd, reply)
		}
		return ServersStateResult{}, fmt.Errorf("haproxy: %s: %w", cmd, err)
	}
	return res, nil
}

// DisableServer puts backend's server into maintenance ("disable server"):
// it takes no traffic and its health checks stop.
func (c *Client) DisableServer(ctx context.Context, backend, server string) error {
	return c.serverCommand(ctx, "disable server", backend, server, "")
}

// EnableServer takes backend's server out of maintenance ("enable server").
func (c *Client) EnableServer(ctx context.Context, backend, server string) error {
	return c.serverCommand(ctx, "enable server", backend, server, "")
}

// The states of SetServerState.
const (
	ServerReady = "ready" // in service (like EnableServer, and ends a drain)
	ServerDrain = "drain" // no new load-balanced traffic; checks and persistence go on
	ServerMaint = "maint" // maintenance (like DisableServer)
)

// SetServerState sets backend's server to state, one of ServerReady,
// ServerDrain and ServerMaint ("set server <b>/<s> state <state>"). Another
// state is an ErrInvalidArgument, not sent.
func (c *Client) SetServerState(ctx context.Context, backend, server, state string) error {
	switch state {
	case ServerReady, ServerDrain, ServerMaint:
	default:
		return fmt.Errorf("%w: server state %q: want %s, %s or %s", ErrInvalidArgument, state, ServerReady, ServerDrain, ServerMaint)
	}
	return c.serverCommand(ctx, "set server", backend, server, " state "+state)
}

func (c *Client) serverCommand(ctx context.Context, verb, backend, server, suffix string) error {
	if err := checkName("backend", backend); err != nil {
		return err
	}
	if err := checkName("server", server); err != nil {
		return err
	}
	cmd := verb + " " + backend + "/" + server + suffix
	reply, err := c.Command(ctx, cmd)
	if err != nil {
		return err
	}
	if strings.TrimSpace(reply) != "" {
		return replyError(cmd, reply)
	}
	return nil
}

func replyError(cmd, reply string) error {
	msg := strings.TrimSpace(reply)
	if msg == "" {
		msg = "(empty reply)"
	}
	return &CommandError{Command: cmd, Message: msg}
}

// checkName accepts what HAProxy accepts as a proxy or server name (letters,
// digits, '.', ':', '_', '-') and "#<id>".
func checkName(what, name string) error {
	ok := name != "" && len(name) <= 256
	if ok && name[0] == '#' {
		ok = isDigits(name[1:])
	} else {
		for i := 0; ok && i < len(name); i++ {
			ch := name[i]
			ok = ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' ||
				ch == '.' || ch == ':' || ch == '_' || ch == '-'
		}
	}
	if !ok {
		return fmt.Errorf("%w: %s name %.80q", ErrInvalidArgument, what, name)
	}
	return nil
}

// Command sends one command line to the runtime API on a connection of its
// own and returns the reply as HAProxy wrote it (its final empty line
// included). The reply ends with an empty line or when HAProxy closes the
// connection. HAProxy's error messages are replies like any other: Command
// does not interpret them. cmd must not hold a line break; HAProxy runs
// commands separated by ';' one after the other.
func (c *Client) Command(ctx context.Context, cmd string) (string, error) {
	if strings.ContainsAny(cmd, "\r\n") {
		return "", fmt.Errorf("%w: command holds a line break", ErrInvalidArgument)
	}
	network, address, err := runtimeAddress(c.RuntimeAddr)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, address)
	if err != nil {
		return "", fmt.Errorf("haproxy runtime API: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()

	fail := func(err error) (string, error) {
		if e := ctx.Err(); e != nil {
			err = e
		} else if errors.Is(err, os.ErrDeadlineExceeded) {
			err = context.DeadlineExceeded // ctx's deadline, a moment before ctx says so
		}
		return "", fmt.Errorf("haproxy runtime API %s: %s: %w", address, cmd, err)
	}
	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		return fail(err)
	}
	limit := c.maxReply()
	var buf []byte
	chunk := make([]byte, 32<<10)
	for {
		n, err := conn.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if int64(len(buf)) > limit {
			return fail(fmt.Errorf("reply longer than %d bytes", limit))
		}
		if replyComplete(buf) {
			return string(buf), nil
		}
		if errors.Is(err, io.EOF) {
			return string(buf), nil
		}
		if err != nil {
			return fail(err)
		}
	}
}

// replyComplete reports whether buf ends with the empty line that ends a
// reply.
func replyComplete(buf []byte) bool {
	return bytes.Equal(buf, []byte("\n")) || bytes.HasSuffix(buf, []byte("\n\n"))
}

// runtimeAddress turns RuntimeAddr into a network and an address for Dial.
func runtimeAddress(addr string) (network, address string, err error) {
	switch {
	case addr == "":
		return "", "", fmt.Errorf("%w: RuntimeAddr is not set", ErrNotConfigured)
	case strings.HasPrefix(addr, "unix@"):
		return "unix", strings.TrimPrefix(addr, "unix@"), nil
	case strings.HasPrefix(addr, "ipv4@"):
		return "tcp4", strings.TrimPrefix(addr, "ipv4@"), nil
	case strings.HasPrefix(addr, "ipv6@"):
		return "tcp6", strings.TrimPrefix(addr, "ipv6@"), nil
	case strings.HasPrefix(addr, "tcp@"):
		return "tcp", strings.TrimPrefix(addr, "tcp@"), nil
	case strings.Contains(addr, "/"):
		return "unix", addr, nil
	}
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return "tcp", addr, nil
	}
	return "unix", addr, nil
}
