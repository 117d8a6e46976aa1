package retention

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/logicspike/comms/internal/platform/metrics"
	"github.com/logicspike/comms/internal/platform/poll"
	"github.com/logicspike/comms/internal/store"
)

// PartitionStore is what the partition maintainer reads and changes; *store.Store implements it.
type PartitionStore interface {
	CreatePartitions(ctx context.Context, from, to time.Time) (int, error)
	PartitionedUntil(ctx context.Context, now time.Time) (time.Time, error)
	HistoryHorizon(ctx context.Context) (time.Time, error)
	DropExpiredPartitions(ctx context.Context, before time.Time) ([]store.DroppedWeek, error)
}

// PartitionConfig tunes the partition maintainer.
type PartitionConfig struct {
	Interval time.Duration // between passes (default 10 min)
	Ahead    int           // days ahead of today that have their week's partition (default 14)
}

// Partitions keeps the week partitions of messages and their events (migration 0027): it makes
// them to Ahead days ahead, so that a stalled loop has two weeks before the intake finds no
// partition for a new message, and drops each week once every tenant's history retention has
// passed it. Any number of workers run it: creating and dropping take an advisory lock.
type Partitions struct {
	cfg   PartitionConfig
	store PartitionStore
	log   *slog.Logger
	now   func() time.Time
}

// NewPartitions returns the maintainer.
func NewPartitions(cfg PartitionConfig, s PartitionStore, log *slog.Logger) *Partitions {
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Minute
	}
	if cfg.Ahead <= 0 {
		cfg.Ahead = 14
	}
	return &Partitions{cfg: cfg, store: s, log: log, now: time.Now}
}

// Run maintains the partitions every interval until ctx ends.
func (p *Partitions) Run(ctx context.Context) {
	poll.Every(ctx, p.cfg.Interval, func(ctx context.Context) {
		if _, err := p.Pass(ctx); err != nil && ctx.Err() == nil {
			p.log.WarnContext(ctx, "partition maintenance failed; the next pass tries again", "err", err)
		}
	})
}

// Pass creates the partitions ahead and drops the expired weeks once, and returns the weeks
// dropped. Whether or not it could create them (another worker may hold the lock), it reports how
// far the partitions reach (comms_history_partitions_until_timestamp_seconds).
func (p *Partitions) Pass(ctx context.Context) ([]store.DroppedWeek, error) {
	now := p.now()
	_, err := p.store.CreatePartitions(ctx, now, now.AddDate(0, 0, p.cfg.Ahead))
	if errors.Is(err, store.ErrPartitionsBusy) {
		err = nil
	}
	if until, uerr := p.store.PartitionedUntil(ctx, now); uerr != nil {
		err = errors.Join(err, uerr)
	} else {
		metrics.HistoryPartitionsUntil.Set(float64(until.Unix()))
	}
	if err != nil {
		return nil, err
	}
	horizon, err := p.store.HistoryHorizon(ctx)
	if err != nil {
		return nil, err
	}
	dropped, err := p.store.DropExpiredPartitions(ctx, horizon)
	for _, d := range dropped {
		metrics.HistoryWeekDrop.Observe(d.Took.Seconds())
		p.log.InfoContext(ctx, "dropped a week of history", "week", d.From.Format(time.DateOnly), "messages", d.Messages, "events", d.Events,
			"callbacks", d.Callbacks, "provider_references", d.ProviderReferences, "webhook_deliveries", d.WebhookDeliveries,
			"webhook_attempts", d.WebhookAttempts, "took", d.Took)
	}
	return dropped, err
}
