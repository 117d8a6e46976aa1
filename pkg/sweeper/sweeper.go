// Package sweeper re-publishes intents that are recorded but may not be on the queue: never
// published (the broker was down, the process crashed after the commit) or stuck in "sending"
// after their worker's lease expired. It also forgets idempotency keys older than 24 hours.
// Several replicas may run it: rows are locked with SKIP LOCKED.
package sweeper

import (
	"context"
	"log/slog"
	"time"

	"github.com/logicspike/comms/pkg/intake"
	"github.com/logicspike/comms/pkg/queue"
	"github.com/logicspike/comms/pkg/store"
)

// Config tunes the sweeper.
type Config struct {
	Interval time.Duration // between sweeps for unpublished intents
	// LeaseInterval is between sweeps for expired leases, which scan every unfinished message.
	LeaseInterval time.Duration
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
		c.LeaseInterval = 10 * c.Interval
	}
	if c.Grace == 0 {
		c.Grace = 10 * time.Second
	}
	if c.Batch == 0 {
		c.Batch = 1000
	}
	return c
}

// Sweeper is the loop.
type Sweeper struct {
	cfg   Config
	store *store.Store
	pub   intake.Publisher
	log   *slog.Logger
}

// New returns a sweeper.
func New(cfg Config, s *store.Store, pub intake.Publisher, log *slog.Logger) *Sweeper {
	return &Sweeper{cfg: cfg.WithDefaults(), store: s, pub: pub, log: log}
}

// Run sweeps every Interval until ctx ends.
func (s *Sweeper) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	var lastKeyCleanup, lastLeaseSweep time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
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
	}
}

// SweepOnce re-publishes every stranded intent found now (unpublished, or with an expired lease)
// and returns how many.
func (s *Sweeper) SweepOnce(ctx context.Context) (int, error) { return s.sweep(ctx, true) }

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
	type pass struct {
		kind  string
		sweep func() (int, error)
	}
	passes := []pass{{"unpublished", func() (int, error) { return s.store.SweepUnpublished(ctx, s.cfg.Grace, s.cfg.Batch, publish) }}}
	if leases {
		passes = append(passes, pass{"expired lease", func() (int, error) { return s.store.SweepExpiredLeases(ctx, s.cfg.Batch, publish) }})
	}
	total := 0
	for _, p := range passes {
		for {
			n, err := p.sweep()
			total += n
			if err != nil {
				return total, err
			}
			if n > 0 {
				s.log.InfoContext(ctx, "re-published stranded intents", "kind", p.kind, "count", n)
			}
			if n < s.cfg.Batch {
				break
			}
		}
	}
	return total, nil
}
