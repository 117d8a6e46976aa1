package retention

import (
	"context"
	"log/slog"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/platform/poll"
)

// EraserStore is what the eraser changes; *store.Store implements it.
type EraserStore interface {
	EraseNext(ctx context.Context, limit int) (domain.Erasure, bool, error)
}

// EraserConfig tunes the eraser.
type EraserConfig struct {
	Interval time.Duration // between looks for waiting erasures (default 1 s)
	Batch    int           // messages per transaction (default 1,000)
	// Busy is the share of the eraser's time spent in transactions (default 0.5): after each one
	// it rests for as long again, so that an erasure, which may wait for hours under the law but
	// not for intake, takes at most about half of a core from the database beside live traffic.
	Busy float64
}

// Eraser carries out the erasures tenants ask for (POST /v1/erasures), a bounded batch per
// transaction, so that erasing a person with a long history never holds the tables for long. Any
// number of workers run it: an erasure is worked on by one at a time, and what one leaves (a
// crash, a message still being sent) the next finds by the address.
type Eraser struct {
	cfg   EraserConfig
	store EraserStore
	log   *slog.Logger
}

// NewEraser returns an eraser.
func NewEraser(cfg EraserConfig, s EraserStore, log *slog.Logger) *Eraser {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 1000
	}
	if cfg.Busy <= 0 || cfg.Busy > 1 {
		cfg.Busy = 0.5
	}
	return &Eraser{cfg: cfg, store: s, log: log}
}

// Run erases until ctx ends.
func (e *Eraser) Run(ctx context.Context) {
	poll.Every(ctx, e.cfg.Interval, func(ctx context.Context) {
		if _, err := e.Pass(ctx); err != nil && ctx.Err() == nil {
			e.log.WarnContext(ctx, "erasure failed; the next pass resumes it", "err", err)
		}
	})
}

// Pass works on the waiting erasures until none is waiting or each one left is waiting on
// messages being sent (its counts did not move since it was last taken), and returns how many
// it finished.
func (e *Eraser) Pass(ctx context.Context) (int, error) {
	finished := 0
	last := map[string]domain.ErasureCounts{}
	stalled := map[string]bool{}
	for ctx.Err() == nil {
		start := time.Now()
		er, found, err := e.store.EraseNext(ctx, e.cfg.Batch)
		if err != nil || !found {
			return finished, err
		}
		if rest := time.Duration(float64(time.Since(start)) * (1 - e.cfg.Busy) / e.cfg.Busy); rest > 0 {
			select {
			case <-ctx.Done():
				return finished, ctx.Err()
			case <-time.After(rest):
			}
		}
		if er.Status == domain.ErasureDone {
			finished++
			delete(last, er.ID)
			delete(stalled, er.ID)
			e.log.InfoContext(ctx, "recipient erased", "tenant_id", er.TenantID, "erasure_id", er.ID,
				"messages", er.Counts.Messages, "events", er.Counts.Events)
			continue
		}
		if c, seen := last[er.ID]; seen && c == er.Counts {
			stalled[er.ID] = true
		} else {
			delete(stalled, er.ID)
		}
		last[er.ID] = er.Counts
		if len(stalled) == len(last) {
			return finished, nil
		}
	}
	return finished, ctx.Err()
}
