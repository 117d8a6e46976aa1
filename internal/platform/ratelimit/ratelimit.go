// Package ratelimit is a token bucket in Redis, shared by every replica: per tenant at intake,
// per provider config at dispatch.
//
// The bucket is one Redis hash updated by a Lua script (atomic on the server, so replicas never
// race), using Redis's own clock, so replicas with skewed clocks still agree:
//
//	tokens = min(burst, tokens + elapsed × rate)   -- refill since the last call
//	if tokens ≥ n: tokens -= n, allow              -- else deny, with the wait until n are there
//
// The key expires once a full bucket would have refilled, so idle tenants cost no memory.
//
// Concurrent calls share one script run: whoever arrives while a run is in flight waits for the
// next, which takes every call queued by then (group commit). At thousands of requests a second
// that is one Redis round trip per batch instead of per request, which matters because the limiter
// sits on every intake request. The script takes several keys, so every limiter key must live on
// one Redis node: a single Redis (or a primary with replicas), not a cluster.
package ratelimit

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// script: KEYS the buckets, in call order (a key may repeat); ARGV rate (tokens per second),
// burst and cost (tokens taken) for each key in turn. Returns, per key, {allowed (0/1), tokens left
// (floor), wait in ms until the cost is available}. A key's calls are applied in order, so three
// calls of one token against a bucket holding two allow the first two.
var script = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local buckets = {}
local out = {}
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[3 * i - 2])
  local burst = tonumber(ARGV[3 * i - 1])
  local cost = tonumber(ARGV[3 * i])
  local b = buckets[key]
  if b == nil then
    local h = redis.call('HMGET', key, 'tokens', 'ts')
    local tokens = tonumber(h[1])
    local ts = tonumber(h[2])
    if tokens == nil then
      tokens = burst
      ts = now
    end
    b = {tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000), rate = rate, burst = burst}
    buckets[key] = b
  end
  local allowed = 0
  local wait = 0
  if b.tokens >= cost then
    b.tokens = b.tokens - cost
    allowed = 1
  else
    wait = math.ceil((cost - b.tokens) * 1000 / b.rate)
  end
  out[#out + 1] = allowed
  out[#out + 1] = math.floor(b.tokens)
  out[#out + 1] = wait
end
for key, b in pairs(buckets) do
  redis.call('HSET', key, 'tokens', tostring(b.tokens), 'ts', now)
  redis.call('PEXPIRE', key, math.ceil(b.burst * 1000 / b.rate) + 1000)
end
return out
`)

// maxBatch bounds one script run; maxRuns bounds the runs in flight at once.
const (
	maxBatch = 500
	maxRuns  = 2
)

// Limiter checks buckets in one Redis. It needs no goroutine of its own: a caller that finds
// fewer than maxRuns runs in flight starts one. (Not internal/batch, whose Batcher needs Run: the
// limiter is built in several places, and a Batcher nobody ran would hold every request until
// its context ended.)
type Limiter struct {
	rdb    *redis.Client
	prefix string

	mu      sync.Mutex
	queued  []*call
	running int
}

type call struct {
	key   string
	rate  float64
	burst int
	cost  int
	res   Result
	err   error
	done  chan struct{}
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
	return l.AllowN(ctx, key, rate, burst, 1)
}

// AllowN takes n tokens at once, or none: a batch of n sends is allowed whole or refused whole.
// n above burst is never allowed (Wait is then how long a full bucket takes to refill).
func (l *Limiter) AllowN(ctx context.Context, key string, rate float64, burst, n int) (Result, error) {
	if rate <= 0 || burst <= 0 {
		return Result{Allowed: true}, nil // unlimited
	}
	c := &call{key: l.prefix + key, rate: rate, burst: burst, cost: n, done: make(chan struct{})}
	l.mu.Lock()
	l.queued = append(l.queued, c)
	start := l.running < maxRuns
	if start {
		l.running++
	}
	l.mu.Unlock()
	if start {
		l.runQueued()
	}
	select {
	case <-c.done:
		return c.res, c.err
	case <-ctx.Done():
		// The run still happens and may take the token; the caller has stopped waiting.
		return Result{}, ctx.Err()
	}
}

// runQueued runs one batch of what is queued. If more is queued by the time it finishes, another
// goroutine carries on, so no caller waits for batches that are not its own.
func (l *Limiter) runQueued() {
	l.mu.Lock()
	n := min(len(l.queued), maxBatch)
	batch := l.queued[:n:n]
	l.queued = l.queued[n:]
	if len(l.queued) == 0 {
		l.queued = nil // let the backing array go
	}
	l.mu.Unlock()

	if len(batch) > 0 {
		l.run(batch)
	}

	l.mu.Lock()
	more := len(l.queued) > 0
	if !more {
		l.running--
	}
	l.mu.Unlock()
	if more {
		go l.runQueued()
	}
}

func (l *Limiter) run(batch []*call) {
	// The run outlives any one caller's context: the others are waiting on it too.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	keys := make([]string, len(batch))
	args := make([]any, 0, 3*len(batch))
	for i, c := range batch {
		keys[i] = c.key
		args = append(args, c.rate, c.burst, c.cost)
	}
	v, err := script.Run(ctx, l.rdb, keys, args...).Int64Slice()
	if err == nil && len(v) != 3*len(batch) {
		err = fmt.Errorf("script answered %d values for %d calls", len(v), len(batch))
	}
	for i, c := range batch {
		if err != nil {
			c.err = fmt.Errorf("rate limit %s: %w", c.key, err)
		} else {
			r := Result{Allowed: v[3*i] == 1, Limit: c.burst, Remaining: int(v[3*i+1]), Wait: time.Duration(v[3*i+2]) * time.Millisecond}
			r.Reset = time.Duration(math.Ceil(float64(c.burst-r.Remaining)/c.rate*1000)) * time.Millisecond
			c.res = r
		}
		close(c.done)
	}
}
