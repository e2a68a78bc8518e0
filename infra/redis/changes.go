package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// ChangeLog keeps, for each HAProxy server, the last status change the
// cluster stored: its status, its sequence number and when HAProxy says it
// happened (the hash PREFIX:haproxy:changes, field BACKEND/SERVER, value
// "STATUS|SEQ|UNIX SECONDS"), so a new duty holder neither stores a change
// the last one stored nor gives it another id. The field "_epoch" holds a
// random value made when the log is: if Redis loses the log, a new epoch
// starts, and ids of the new numbering do not repeat the old ones.
type ChangeLog struct {
	c   goredis.UniversalClient
	key string
}

// Change is a server's last stored change.
type Change struct {
	Status string
	Seq    int64
	At     int64 // Unix seconds, by HAProxy's lastchg
}

// NewChangeLog makes the change log of a cluster.
func NewChangeLog(o Options, prefix string) (*ChangeLog, error) {
	prefix = o.KeyPrefix(prefix)
	c, err := NewClient(o)
	if err != nil {
		return nil, err
	}
	return &ChangeLog{c: c, key: prefix + ":haproxy:changes"}, nil
}

// Last is the log's epoch and server's last stored change (zero before the
// first).
func (l *ChangeLog) Last(ctx context.Context, server string) (epoch string, last Change, err error) {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	if err := l.c.HSetNX(ctx, l.key, "_epoch", hex.EncodeToString(b)).Err(); err != nil {
		return "", Change{}, err
	}
	vals, err := l.c.HMGet(ctx, l.key, "_epoch", server).Result()
	if err != nil {
		return "", Change{}, err
	}
	epoch, _ = vals[0].(string)
	v, _ := vals[1].(string)
	parts := strings.Split(v, "|")
	if len(parts) == 3 {
		last.Status = parts[0]
		last.Seq, _ = strconv.ParseInt(parts[1], 10, 64)
		last.At, _ = strconv.ParseInt(parts[2], 10, 64)
	}
	return epoch, last, nil
}

// recordScript sets the last change if its sequence number is above the
// one stored, in the same epoch.
var recordScript = goredis.NewScript(`
if redis.call('HGET', KEYS[1], '_epoch') ~= ARGV[4] then return 0 end
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then
  local a = string.find(v, '|', 1, true)
  local b = string.find(v, '|', a + 1, true)
  if tonumber(string.sub(v, a + 1, b - 1)) >= tonumber(ARGV[3]) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. ARGV[3] .. '|' .. ARGV[5])
return 1
`)

// Record stores server's change c as the last, once its event is durable;
// an older number, or another epoch, changes nothing.
func (l *ChangeLog) Record(ctx context.Context, epoch, server string, c Change) error {
	return recordScript.Run(ctx, l.c, []string{l.key}, server, c.Status, c.Seq, epoch, c.At).Err()
}

// Close closes the connection.
func (l *ChangeLog) Close() error { return l.c.Close() }
