// Package senders answers the intake's question about a message's own from: may one of the
// provider configs that would send it use that address or number (docs/providers.md#from)?
//
// The answer follows the worker's routing: the tenant's own enabled configs for the channel, and
// the system defaults when the tenant falls back to them for the message's kind. Each config's
// type says what it may send from (pkg/provider.FromRule): an email config, addresses on its own
// from's domain and on the domains it lists as verified; a Twilio config, its from and the other
// senders it lists; a custom webhook, anything. The worker applies the same rule to each route,
// so a failover never sends from an address its config may not use.
//
// Each process keeps a tenant's configs for ttl, and drops them when a change to the tenant's
// configs or settings is announced (internal/platform/invalidate), as the workers' routes do.
package senders

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/platform/invalidate"
	"github.com/logicspike/comms/internal/platform/tenantcache"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// Store reads the tenant and its routes; *store.Store implements it.
type Store interface {
	GetTenant(ctx context.Context, id string) (domain.Tenant, error)
	ListProviderRoutes(ctx context.Context, tenantID string, channel message.Channel) ([]domain.ProviderConfig, error)
}

// Checker answers whether a from may be used.
type Checker struct {
	store   Store
	rdb     *redis.Client // nil: no notices from other processes
	prefix  string
	log     *slog.Logger
	entries *tenantcache.Cache[routes]
}

// routes are a tenant's configs for one channel, as the from rule needs them.
type routes struct {
	tenant domain.Tenant
	rules  []rule
}

type rule struct {
	cfg        domain.ProviderConfig
	allowsFrom func(string) bool
}

// New returns a checker reading st, keeping what it read for ttl and dropping it on the notices
// through rdb (nil: none).
func New(st Store, rdb *redis.Client, prefix string, ttl time.Duration, log *slog.Logger) *Checker {
	return &Checker{store: st, rdb: rdb, prefix: prefix, log: log, entries: tenantcache.New[routes](ttl)}
}

// Allows reports whether tenantID's message on channel, in a category of kind (transactional or
// marketing), may name from as its sender. An empty from is always allowed.
func (c *Checker) Allows(ctx context.Context, tenantID string, channel message.Channel, kind message.Category, from string) (bool, error) {
	if from == "" {
		return true, nil
	}
	rs, err := c.entries.Get(ctx, tenantID, string(channel), func(ctx context.Context) (routes, error) {
		t, err := c.store.GetTenant(ctx, tenantID)
		if err != nil {
			return routes{}, fmt.Errorf("load tenant %s: %w", tenantID, err)
		}
		cfgs, err := c.store.ListProviderRoutes(ctx, tenantID, channel)
		if err != nil {
			return routes{}, fmt.Errorf("load %s routes of %s: %w", channel, tenantID, err)
		}
		rs := routes{tenant: t}
		for _, cfg := range cfgs {
			rs.rules = append(rs.rules, rule{cfg: cfg, allowsFrom: provider.FromRuleOf(cfg.Type, cfg.Sender)})
		}
		return rs, nil
	})
	if err != nil {
		return false, err
	}
	for _, r := range rs.rules {
		if rs.tenant.MayUse(r.cfg, kind) && r.allowsFrom(from) {
			return true, nil
		}
	}
	return false, nil
}

// Changed drops what this process holds of tenantID ("": of every tenant) at once, ahead of the
// notice of the change.
func (c *Checker) Changed(tenantID string) { c.entries.Drop(tenantID) }

// Run drops entries as changes are announced until ctx ends.
func (c *Checker) Run(ctx context.Context) {
	if c.rdb == nil {
		return
	}
	invalidate.Listen(ctx, c.rdb, c.prefix, c.log, c.entries.Drop)
}
