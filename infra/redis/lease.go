package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Lease elects one holder among the nodes sharing a Redis: the key
// PREFIX:duties holds "OWNER|TOKEN" with an expiry, set only if absent
// and renewed only by its owner; TOKEN comes from PREFIX:duties:token,
// which only grows, so each holding has a fencing token higher than the
// last. The owner is the node id and a random run id, so a restarted node
// waits for its old lease to expire like any other.
type Lease struct {
	c     goredis.UniversalClient
	key   string
	token string
	Owner string
	TTL   time.Duration
}

// NewLease makes a lease for node id, expiring ttl after its last renewal.
func NewLease(o Options, prefix, id string, ttl time.Duration) (*Lease, error) {
	prefix = o.KeyPrefix(prefix)
	c, err := NewClient(o)
	if err != nil {
		return nil, err
	}
	run := make([]byte, 6)
	_, _ = rand.Read(run)
	return &Lease{c: c, key: prefix + ":duties", token: prefix + ":duties:token", Owner: id + "/" + hex.EncodeToString(run), TTL: ttl}, nil
}

// tryScript takes the lease if it is free, renews it if this owner holds
// it, and answers {held, token, holder}.
var tryScript = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then
  local sep = string.find(v, '|', 1, true)
  local owner = string.sub(v, 1, sep - 1)
  local tok = tonumber(string.sub(v, sep + 1))
  if owner == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {1, tok, owner}
  end
  return {0, tok, owner}
end
local tok = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. tok, 'PX', ARGV[2])
return {1, tok, ARGV[1]}
`)

// releaseScript frees the lease if this owner holds it.
var releaseScript = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. '|' then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// Try takes or renews the lease. It returns whether this owner holds it,
// the fencing token of the holding, and who holds it.
func (l *Lease) Try(ctx context.Context) (held bool, token int64, holder string, err error) {
	res, err := tryScript.Run(ctx, l.c, []string{l.key, l.token}, l.Owner, l.TTL.Milliseconds()).Slice()
	if err != nil {
		return false, 0, "", err
	}
	if len(res) != 3 {
		return false, 0, "", fmt.Errorf("lease script answered %v", res)
	}
	h, _ := res[0].(int64)
	tok, _ := res[1].(int64)
	holder, _ = res[2].(string)
	return h == 1, tok, holder, nil
}

// Release frees the lease if this owner holds it (at a clean stop), so
// another node takes it at once rather than after the expiry.
func (l *Lease) Release(ctx context.Context) error {
	return releaseScript.Run(ctx, l.c, []string{l.key}, l.Owner).Err()
}

// NodeOf is the node id part of an owner.
func NodeOf(owner string) string {
	id, _, _ := strings.Cut(owner, "/")
	return id
}

// Close closes the connection.
func (l *Lease) Close() error { return l.c.Close() }
