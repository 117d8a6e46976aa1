// Package retention enforces how long comms keeps what it was given: every interval it blanks the
// subject and bodies of each tenant's messages older than the tenant's content retention (0:
// as soon as the message is final), deletes its messages and everything about them older than
// its history retention, and its audit entries older than its audit retention, a bounded batch
// at a time, so no long statement ever holds a table. Any number of workers run it: each tenant
// is purged by one at a time. The Eraser (eraser.go) erases one person on request.
package retention

import (
	"context"
	"log/slog"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/platform/poll"
	"github.com/logicspike/comms/internal/store"
)

// Store is what the purger reads and changes; *store.Store implements it.
type Store interface {
	ListTenants(ctx context.Context, after string, limit int) ([]domain.Tenant, error)
	PurgeContent(ctx context.Context, tenantID string, cutoff time.Time, limit int) (store.Purged, error)
	PurgeHistory(ctx context.Context, tenantID string, cutoff time.Time, limit int, messages bool) (store.HistoryPurged, error)
	HistoryHorizon(ctx context.Context) (time.Time, error)
	PurgePlatformAudit(ctx context.Context, limit int) (int, bool, error)
}

// Config tunes the purger.
type Config struct {
	Interval time.Duration // between passes over every tenant (default 1 min)
	Batch    int           // messages per statement (default 1,000)
	// PerTenant bounds one tenant's statements in a pass (default 20), so that a tenant with a
	// large backlog (after lowering its retention) does not hold the others up.
	PerTenant int
}

// Purger is the loop.
type Purger struct {
	cfg   Config
	store Store
	log   *slog.Logger
	now   func() time.Time
}

// New returns a purger.
func New(cfg Config, s Store, log *slog.Logger) *Purger {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 1000
	}
	if cfg.PerTenant <= 0 {
		cfg.PerTenant = 20
	}
	return &Purger{cfg: cfg, store: s, log: log, now: time.Now}
}

// Run purges every interval until ctx ends.
func (p *Purger) Run(ctx context.Context) {
	poll.Every(ctx, p.cfg.Interval, func(ctx context.Context) {
		if _, err := p.Pass(ctx); err != nil && ctx.Err() == nil {
			p.log.WarnContext(ctx, "content purge failed; the next pass resumes where it stopped", "err", err)
		}
	})
}

// Pass purges each tenant's expired content and history once and returns how many messages it
// blanked or deleted.
func (p *Purger) Pass(ctx context.Context) (int, error) {
	total, after := 0, ""
	for range p.cfg.PerTenant {
		_, more, err := p.store.PurgePlatformAudit(ctx, p.cfg.Batch)
		if err != nil {
			return 0, err
		}
		if !more {
			break
		}
	}
	// The tenants whose history retention is the longest (within a week) have their messages go
	// with whole weeks of partitions (partitions.go), not row by row.
	horizon, err := p.store.HistoryHorizon(ctx)
	if err != nil {
		return 0, err
	}
	longest := p.now().Sub(horizon)
	for {
		tenants, err := p.store.ListTenants(ctx, after, 500)
		if err != nil {
			return total, err
		}
		for _, t := range tenants {
			cutoff := p.now().Add(-time.Duration(t.ContentRetentionSeconds) * time.Second)
			for range p.cfg.PerTenant {
				res, err := p.store.PurgeContent(ctx, t.ID, cutoff, p.cfg.Batch)
				if err != nil {
					return total, err
				}
				total += res.Purged
				if !res.More {
					break
				}
			}
			retain := time.Duration(t.HistoryRetentionSeconds) * time.Second
			byRow := retain <= longest-7*24*time.Hour
			for range p.cfg.PerTenant {
				res, err := p.store.PurgeHistory(ctx, t.ID, p.now().Add(-retain), p.cfg.Batch, byRow)
				if err != nil {
					return total, err
				}
				total += res.Messages
				if !res.More {
					break
				}
			}
		}
		if len(tenants) < 500 {
			return total, nil
		}
		after = tenants[len(tenants)-1].ID
	}
}
