package redis

import (
	"context"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// ChangeLog keeps, for each HAProxy server, the last status change the
// cluster stored and its sequence number (the hash PREFIX:haproxy:changes,
// field BACKEND/SERVER, value "STATUS|SEQ"), so a new duty holder neither
// stores a change the last one stored nor gives it another id.
type ChangeLog struct {
	c   *goredis.Client
	key string
}

// NewChangeLog makes the change log of a cluster.
func NewChangeLog(o Options, prefix string) (*ChangeLog, error) {
	c, err := NewClient(o)
	if err != nil {
		return nil, err
	}
	return &ChangeLog{c: c, key: prefix + ":haproxy:changes"}, nil
}

// Last is the last stored change of server: its status and sequence
// number ("" and 0 before the first).
func (l *ChangeLog) Last(ctx context.Context, server string) (string, int64, error) {
	v, err := l.c.HGet(ctx, l.key, server).Result()
	if err == goredis.Nil {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, err
	}
	status, seq, _ := strings.Cut(v, "|")
	n, _ := strconv.ParseInt(seq, 10, 64)
	return status, n, nil
}

// recordScript sets the last change if its sequence number is above the
// one stored.
var recordScript = goredis.NewScript(`
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then
  local sep = string.find(v, '|', 1, true)
  if tonumber(string.sub(v, sep + 1)) >= tonumber(ARGV[3]) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. ARGV[3])
return 1
`)

// Record stores server's change to status as number seq, once its event
// is durable; an older number than the stored one changes nothing.
func (l *ChangeLog) Record(ctx context.Context, server, status string, seq int64) error {
	return recordScript.Run(ctx, l.c, []string{l.key}, server, status, seq).Err()
}

// Close closes the connection.
func (l *ChangeLog) Close() error { return l.c.Close() }
