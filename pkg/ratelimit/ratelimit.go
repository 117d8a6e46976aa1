// Package ratelimit is a token bucket in Redis, shared by every replica: per tenant at intake,
// per provider config at dispatch.
//
// The bucket is one Redis hash updated by one Lua script (atomic on the server, so replicas never
// race), using Redis's own clock, so replicas with skewed clocks still agree:
//
//	tokens = min(burst, tokens + elapsed × rate)   -- refill since the last call
//	if tokens ≥ cost: tokens -= cost, allow        -- else deny, with the wait until cost is there
//
// The key expires once a full bucket would have refilled, so idle tenants cost no memory.
package ratelimit

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/redis/go-redis/v9"
)

// script: KEYS[1] bucket; ARGV rate (tokens per second), burst, cost. Returns
// {allowed (0/1), tokens left (floor), wait in ms until cost tokens are available}.
var script = redis.NewScript(`
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1])
local ts = tonumber(b[2])
if tokens == nil then
  tokens = burst
  ts = now
end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
local allowed = 0
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  wait = math.ceil((cost - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {allowed, math.floor(tokens), wait}
`)

// Limiter checks buckets in one Redis.
type Limiter struct {
	rdb    *redis.Client
	prefix string
}

// New returns a limiter whose keys start with prefix.
func New(rdb *redis.Client, prefix string) *Limiter {
	return &Limiter{rdb: rdb, prefix: prefix + "rl:"}
}

// Result is one decision.
type Result struct {
	Allowed   bool
	Limit     int           // the burst: requests allowed at once
	Remaining int           // tokens left after this call
	Wait      time.Duration // denied: how long until it would be allowed
	Reset     time.Duration // how long until the bucket is full again
}

// Allow takes one token from bucket key, refilled at rate per second up to burst.
func (l *Limiter) Allow(ctx context.Context, key string, rate float64, burst int) (Result, error) {
	if rate <= 0 || burst <= 0 {
		return Result{Allowed: true}, nil // unlimited
	}
	v, err := script.Run(ctx, l.rdb, []string{l.prefix + key}, rate, burst, 1).Int64Slice()
	if err != nil {
		return Result{}, fmt.Errorf("rate limit %s: %w", key, err)
	}
	r := Result{Allowed: v[0] == 1, Limit: burst, Remaining: int(v[1]), Wait: time.Duration(v[2]) * time.Millisecond}
	r.Reset = time.Duration(math.Ceil(float64(burst-r.Remaining)/rate*1000)) * time.Millisecond
	return r, nil
}
