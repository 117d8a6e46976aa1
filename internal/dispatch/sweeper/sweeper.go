// Package sweeper re-publishes intents that are recorded but may not be on the queue: never
// published (the broker was down, the process crashed after the commit), stuck in "sending"
// after their worker's lease expired, or queued and past due for longer than LostAfter with no
// intent published since (an intent dropped anywhere). So no accepted message waits on one Kafka
// record surviving: any lost intent is published again within LostAfter plus one lap of the
// outbox. It also forgets idempotency keys older than 24 hours.
// Several replicas may run it: rows are locked with SKIP LOCKED.
package sweeper

import (
	"context"
	"log/slog"
	"time"

	"github.com/logicspike/comms/internal/intake"
	"github.com/logicspike/comms/internal/platform/poll"
	"github.com/logicspike/comms/internal/queue"
	"github.com/logicspike/comms/internal/store"
)

// Config tunes the sweeper.
type Config struct {
	Interval time.Duration // between sweeps for unpublished intents
	// LeaseInterval is between pages of the sweep for expired leases. Each page looks up Batch
	// unfinished messages, so a lap over N of them takes N/Batch intervals (default: one second
	// per 1,000, against a lease of at least 30 s).
	LeaseInterval time.Duration
	// LostAfter is how long a queued message may stay past due, with no intent published for it,
	// before the sweeper publishes one again. It must be longer than the longest park (the
	// worker's ParkMaxWait, 4 min by default, plus its jitter of half as much again), so a
	// parked intent is not duplicated; and than the consumer lag the fleet runs with, since each
	// duplicate costs a refused claim. Default 10 min.
	LostAfter time.Duration
	// Grace is how long a freshly accepted intent may stay unpublished before it is swept: longer
	// than the normal publish delay, so the sweeper does not race the intake's own publisher.
	Grace time.Duration
	Batch int
}

// WithDefaults fills zero fields.
func (c Config) WithDefaults() Config {
	if c.Interval == 0 {
		c.Interval = time.Second
	}
	if c.LeaseInterval == 0 {
		c.LeaseInterval = c.Interval
	}
	if c.Grace == 0 {
		c.Grace = 10 * time.Second
	}
	if c.LostAfter == 0 {
		c.LostAfter = 10 * time.Minute
	}
	if c.Batch == 0 {
		c.Batch = 1000
	}
	return c
}

// Store is what the sweeper reads and changes; *store.Store implements it.
type Store interface {
	SweepUnpublished(ctx context.Context, grace time.Duration, limit int, publish func(context.Context, []store.Stranded) error) (int, error)
	SweepLost(ctx context.Context, after string, pageSize int, lostAfter time.Duration, publish func(context.Context, []store.Stranded) error) (n int, next string, err error)
	DeleteExpiredIdempotencyKeys(ctx context.Context, ttl time.Duration, limit int) (int, error)
}

// Sweeper is the loop.
type Sweeper struct {
	cfg   Config
	store Store
	pub   intake.Publisher
	log   *slog.Logger
	// leasePage is where the next page of the expired-lease sweep starts (a message id; "" for
	// the beginning of the outbox). Only Run's goroutine uses it.
	leasePage string
}

// New returns a sweeper.
func New(cfg Config, s Store, pub intake.Publisher, log *slog.Logger) *Sweeper {
	return &Sweeper{cfg: cfg.WithDefaults(), store: s, pub: pub, log: log}
}

// Run sweeps every Interval until ctx ends.
func (s *Sweeper) Run(ctx context.Context) {
	var lastKeyCleanup, lastLeaseSweep time.Time
	poll.Every(ctx, s.cfg.Interval, func(ctx context.Context) {
		leases := time.Since(lastLeaseSweep) >= s.cfg.LeaseInterval
		if leases {
			lastLeaseSweep = time.Now()
		}
		if _, err := s.sweep(ctx, leases); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "sweep failed", "err", err)
		}
		if time.Since(lastKeyCleanup) > time.Minute {
			lastKeyCleanup = time.Now()
			if _, err := s.store.DeleteExpiredIdempotencyKeys(ctx, intake.IdempotencyWindow, 10000); err != nil && ctx.Err() == nil {
				s.log.ErrorContext(ctx, "idempotency key cleanup failed", "err", err)
			}
		}
	})
}

// sweep re-publishes unpublished intents and, with leases, the next page of the outbox's lost
// ones (expired leases, queued past due).
func (s *Sweeper) sweep(ctx context.Context, leases bool) (int, error) {
	publish := func(ctx context.Context, found []store.Stranded) error {
		envs := make([]queue.Envelope, len(found))
		now := time.Now().UTC()
		for i, f := range found {
			envs[i] = queue.Envelope{MessageID: f.ID, TenantID: f.TenantID, Channel: f.Channel, Attempt: f.Attempts + 1, EnqueuedAt: now}
			if f.NextAttemptAt != nil {
				envs[i].NotBefore = f.NextAttemptAt.UTC() // a waiting retry: the worker sends it back to its tier
			}
		}
		return s.pub.Publish(ctx, envs...)
	}
	total := 0
	for {
		n, err := s.store.SweepUnpublished(ctx, s.cfg.Grace, s.cfg.Batch, publish)
		total += n
		if err != nil {
			return total, err
		}
		if n > 0 {
			s.log.InfoContext(ctx, "re-published stranded intents", "kind", "unpublished", "count", n)
		}
		if n < s.cfg.Batch {
			break
		}
	}
	if !leases {
		return total, nil
	}
	n, next, err := s.store.SweepLost(ctx, s.leasePage, s.cfg.Batch, s.cfg.LostAfter, publish)
	total += n
	if err != nil {
		return total, err
	}
	if n > 0 {
		s.log.InfoContext(ctx, "re-published stranded intents", "kind", "expired lease or lost intent", "count", n)
	}
	s.leasePage = next
	return total, nil
}
