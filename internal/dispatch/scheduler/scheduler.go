// Package scheduler queues scheduled messages when they fall due: each moves to queued in
// PostgreSQL, with its outbox row, and its intent is published to comms.send, from where it
// flows as any other. A publish that fails is the sweeper's to retry (the outbox row stays
// unpublished); a crash between the two loses nothing either. Several replicas may run it.
package scheduler

import (
	"context"
	"log/slog"
	"time"

	"github.com/logicspike/comms/internal/intake"
	"github.com/logicspike/comms/internal/platform/poll"
	"github.com/logicspike/comms/internal/queue"
	"github.com/logicspike/comms/internal/store"
)

// Config tunes the scheduler.
type Config struct {
	// Interval is between looks for due messages: a message goes out at most this late (plus
	// dispatch). Default 100 ms.
	Interval time.Duration
	// Batch is how many due messages one statement queues; a full batch is followed at once by
	// the next. Default 1,000.
	Batch int
}

// Store is what the scheduler reads and changes; *store.Store implements it.
type Store interface {
	ReleaseDue(ctx context.Context, limit int) ([]store.Due, error)
	MarkPublished(ctx context.Context, refs []store.Ref) error
}

// Scheduler is the loop.
type Scheduler struct {
	cfg   Config
	store Store
	pub   intake.Publisher
	log   *slog.Logger
}

// New returns a scheduler publishing through pub.
func New(cfg Config, s Store, pub intake.Publisher, log *slog.Logger) *Scheduler {
	if cfg.Interval <= 0 {
		cfg.Interval = 100 * time.Millisecond
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 1000
	}
	return &Scheduler{cfg: cfg, store: s, pub: pub, log: log}
}

// Run releases due messages every Interval until ctx ends.
func (s *Scheduler) Run(ctx context.Context) {
	poll.Batches(ctx, s.cfg.Interval, func(ctx context.Context) (bool, error) {
		n, err := s.release(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "releasing due messages failed; retrying next interval", "err", err)
		}
		return n == s.cfg.Batch, err
	})
}

// release queues one batch of due messages and publishes their intents.
func (s *Scheduler) release(ctx context.Context) (int, error) {
	due, err := s.store.ReleaseDue(ctx, s.cfg.Batch)
	if err != nil || len(due) == 0 {
		return 0, err
	}
	now := time.Now().UTC()
	envs := make([]queue.Envelope, len(due))
	refs := make([]store.Ref, len(due))
	for i, d := range due {
		envs[i] = queue.Envelope{MessageID: d.ID, TenantID: d.TenantID, Channel: d.Channel, Category: d.Category, Attempt: 1, EnqueuedAt: now}
		refs[i] = d.Ref
	}
	if err := s.pub.Publish(ctx, envs...); err != nil {
		// Queued and in the outbox: the sweeper publishes them after its grace.
		s.log.WarnContext(ctx, "publishing due messages failed; the sweeper will", "count", len(due), "err", err)
		return len(due), nil
	}
	if err := s.store.MarkPublished(ctx, refs); err != nil {
		s.log.WarnContext(ctx, "mark published failed; the sweeper may publish them again, and the worker skips repeats", "count", len(due), "err", err)
	}
	return len(due), nil
}
