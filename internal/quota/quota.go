// Package quota enforces tenants' monthly quotas at intake (docs/usage.md#quotas).
//
// Each (tenant, channel, month) has a counter in Redis, checked and counted by one script, so
// concurrent requests on any number of API replicas never accept more than the hard limit. The
// counter starts from PostgreSQL's count of what the month accepted (the usage rollup), whenever
// Redis does not have it: at the start of a month, and after Redis lost its data. A request that
// records nothing (a duplicate, a suppressed recipient, a failed insert) gives its units back.
//
// With Redis unreachable, each replica falls back to a bounded allowance: it reads the month's
// count from PostgreSQL once and accepts at most 1% of the hard limit (at least 10) beyond it,
// never past the limit itself, until Redis answers again. Beyond that allowance it answers
// ErrUnavailable (503): never silently unlimited.
package quota

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/platform/metrics"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/message"
)

// ExceededError is a request that does not fit in the hard limit; nothing was counted.
type ExceededError struct {
	Channel     message.Channel
	Limit, Used int64
	Requested   int64
	ResetAt     time.Time
}

func (e *ExceededError) Error() string {
	return fmt.Sprintf("%s quota exceeded: %d of %d used this month, %d more requested", e.Channel, e.Used, e.Limit, e.Requested)
}

// ErrUnavailable means the quota could not be checked (Redis down and the fallback allowance
// spent, or PostgreSQL unreachable too): retry shortly.
var ErrUnavailable = errors.New("quota check unavailable")

// Store is what the counter reads and records in PostgreSQL.
type Store interface {
	GetQuotaUsed(ctx context.Context, tenantID string, ch message.Channel, month time.Time) (int64, error)
	RecordQuotaAlert(ctx context.Context, tenantID string, ch message.Channel, month time.Time, level string, q domain.Quota, used int64) (bool, error)
}

// Counter checks and counts quota units.
type Counter struct {
	rdb    *redis.Client
	prefix string
	store  Store
	log    *slog.Logger
	now    func() time.Time

	mu       sync.Mutex
	fallback map[string]*allowance // by counter key, while Redis is unreachable
	alerted  map[string]bool       // counter key + level: alerts this replica recorded
}

type allowance struct {
	base, taken int64
}

// New returns a counter keeping its counters in rdb under prefix.
func New(rdb *redis.Client, prefix string, st Store, log *slog.Logger) *Counter {
	return &Counter{rdb: rdb, prefix: prefix, store: st, log: log, now: time.Now, fallback: map[string]*allowance{}, alerted: map[string]bool{}}
}

// reserve checks that units more fit under hard and counts them, atomically:
// {1, used} counted, {0, used} refused, {-1, 0} no counter yet.
var reserve = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return {-1, 0} end
v = tonumber(v)
local n, hard = tonumber(ARGV[1]), tonumber(ARGV[2])
if v + n > hard then return {0, v} end
return {1, redis.call('INCRBY', KEYS[1], n)}
`)

// Reservation is counted units; Release gives back the ones not recorded.
type Reservation struct {
	c     *Counter
	key   string
	units int64
	local bool // counted by the fallback allowance
}

// Release gives back n of the reservation's units (those whose messages were not recorded).
func (r *Reservation) Release(ctx context.Context, n int64) {
	if r == nil || n <= 0 {
		return
	}
	if r.local {
		r.c.mu.Lock()
		if a := r.c.fallback[r.key]; a != nil {
			a.taken -= n
		}
		r.c.mu.Unlock()
		return
	}
	if err := r.c.rdb.DecrBy(context.WithoutCancel(ctx), r.key, n).Err(); err != nil {
		// The counter keeps them: a tenant may be refused slightly early, never let past.
		r.c.log.WarnContext(ctx, "quota units not given back", "key", r.key, "units", n, "err", err)
	}
}

// Reserve counts units against tenantID's quota q on ch for the current month, or returns
// *ExceededError or ErrUnavailable. A quota without a hard limit counts nothing (nil, nil).
func (c *Counter) Reserve(ctx context.Context, tenantID string, ch message.Channel, q domain.Quota, units int64) (*Reservation, error) {
	if q.HardLimit <= 0 || units <= 0 {
		return nil, nil
	}
	month := store.MonthStart(c.now())
	key := fmt.Sprintf("%squota:{%s}:%s:%s", c.prefix, tenantID, ch, month.Format("2006-01"))
	exceeded := func(used int64) error {
		metrics.QuotaRefused.WithLabelValues(tenantID, string(ch)).Inc()
		return &ExceededError{Channel: ch, Limit: q.HardLimit, Used: used, Requested: units, ResetAt: month.AddDate(0, 1, 0)}
	}
	for range 2 {
		res, err := reserve.Run(ctx, c.rdb, []string{key}, units, q.HardLimit).Int64Slice()
		if err != nil {
			return c.reserveLocally(ctx, key, tenantID, ch, month, q, units, exceeded)
		}
		c.recovered(key)
		switch used := res[1]; res[0] {
		case 1:
			// Crossing a threshold: warning at the soft limit, exceeded on reaching the hard one.
			if w := q.Warning(); w > 0 && used-units < w && used >= w {
				c.alert(ctx, key, tenantID, ch, month, q, "warning", used)
			}
			if used >= q.HardLimit {
				c.alert(ctx, key, tenantID, ch, month, q, "exceeded", used)
			}
			return &Reservation{c: c, key: key, units: units}, nil
		case 0:
			c.alert(ctx, key, tenantID, ch, month, q, "exceeded", used) // a request was refused
			return nil, exceeded(used)
		}
		// No counter: start it from PostgreSQL (kept until a week after the month ends).
		used, err := c.store.GetQuotaUsed(ctx, tenantID, ch, month)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		if err := c.rdb.SetNX(ctx, key, used, month.AddDate(0, 1, 7).Sub(c.now())).Err(); err != nil {
			return c.reserveLocally(ctx, key, tenantID, ch, month, q, units, exceeded)
		}
	}
	return nil, fmt.Errorf("%w: the counter vanished twice", ErrUnavailable)
}

// reserveLocally is the fallback while Redis is unreachable: the month's count from PostgreSQL,
// read once per outage, plus at most 1% of the hard limit (at least 10) taken by this replica.
func (c *Counter) reserveLocally(ctx context.Context, key, tenantID string, ch message.Channel, month time.Time, q domain.Quota, units int64,
	exceeded func(int64) error) (*Reservation, error) {
	c.mu.Lock()
	a := c.fallback[key]
	c.mu.Unlock()
	if a == nil {
		used, err := c.store.GetQuotaUsed(ctx, tenantID, ch, month)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		c.mu.Lock()
		if a = c.fallback[key]; a == nil {
			a = &allowance{base: used}
			c.fallback[key] = a
			c.log.WarnContext(ctx, "quota counter unreachable; using the bounded allowance", "tenant_id", tenantID, "channel", ch)
		}
		c.mu.Unlock()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case a.base+a.taken+units > q.HardLimit:
		return nil, exceeded(a.base + a.taken)
	case a.taken+units > max(q.HardLimit/100, 10):
		return nil, fmt.Errorf("%w: the allowance for an unreachable counter is spent", ErrUnavailable)
	}
	a.taken += units
	return &Reservation{c: c, key: key, units: units, local: true}, nil
}

// recovered ends key's fallback allowance once Redis answers: what the allowance accepted is in
// PostgreSQL, and reaches the counter when it next starts from there.
func (c *Counter) recovered(key string) {
	c.mu.Lock()
	delete(c.fallback, key)
	c.mu.Unlock()
}

// alert records a level's event (each once per month, whoever reaches it first); a replica
// remembers the ones it recorded, so that a stream of refused requests writes nothing.
func (c *Counter) alert(ctx context.Context, key, tenantID string, ch message.Channel, month time.Time, q domain.Quota, level string, used int64) {
	c.mu.Lock()
	done := c.alerted[key+level]
	c.alerted[key+level] = true
	c.mu.Unlock()
	if done {
		return
	}
	if _, err := c.store.RecordQuotaAlert(ctx, tenantID, ch, month, level, q, used); err != nil {
		c.mu.Lock()
		delete(c.alerted, key+level)
		c.mu.Unlock()
		c.log.WarnContext(ctx, "quota alert not recorded", "tenant_id", tenantID, "channel", ch, "level", level, "err", err)
	}
}
