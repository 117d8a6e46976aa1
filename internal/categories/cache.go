// Package categories caches each tenant's declared categories (docs/recipients.md): the intake
// reads them on every send with a category of the tenant's, and they change rarely.
//
// Each process keeps a tenant's categories for ttl. A change drops the tenant's entry in the
// process that made it at once, and in every other through a Redis notice; a process that
// misses the notice (disconnected at that moment) serves the old categories until its entry
// expires. A read that raced a change is not kept.
package categories

import (
	"context"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/platform/invalidate"
	"github.com/logicspike/comms/internal/platform/tenantcache"
)

// Channel is the notices' pub/sub channel after the deployment's Redis prefix; the payload is a
// tenant id.
const Channel = "categories-changed"

// DefaultTTL is how long a process keeps a tenant's categories without a notice.
const DefaultTTL = 10 * time.Second

// Store reads what the cache holds; *store.Store implements it.
type Store interface {
	ListCategories(ctx context.Context, tenantID string) ([]domain.Category, error)
}

// Cache holds tenants' categories by key.
type Cache struct {
	store   Store
	rdb     *redis.Client // nil: no notices to or from other processes
	prefix  string
	log     *slog.Logger
	entries *tenantcache.Cache[map[string]domain.Category]
}

// New returns a cache reading st, with notices through rdb (nil: this process only).
func New(st Store, rdb *redis.Client, prefix string, ttl time.Duration, log *slog.Logger) *Cache {
	return &Cache{store: st, rdb: rdb, prefix: prefix, log: log, entries: tenantcache.New[map[string]domain.Category](ttl)}
}

// Get returns tenantID's categories by key.
func (c *Cache) Get(ctx context.Context, tenantID string) (map[string]domain.Category, error) {
	return c.entries.Get(ctx, tenantID, "", func(ctx context.Context) (map[string]domain.Category, error) {
		list, err := c.store.ListCategories(ctx, tenantID)
		if err != nil {
			return nil, err
		}
		byKey := make(map[string]domain.Category, len(list))
		for _, x := range list {
			byKey[x.Key] = x
		}
		return byKey, nil
	})
}

// Changed drops tenantID's categories here and tells the other processes to.
func (c *Cache) Changed(ctx context.Context, tenantID string) {
	c.entries.Drop(tenantID)
	if c.rdb == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := c.rdb.Publish(ctx, c.prefix+Channel, tenantID).Err(); err != nil {
		c.log.WarnContext(ctx, "could not announce a category change; other processes see it when their cache expires",
			"tenant_id", tenantID, "err", err)
	}
}

// Run drops entries as notices arrive until ctx ends; after a Redis outage it drops them all,
// since notices were missed meanwhile.
func (c *Cache) Run(ctx context.Context) {
	if c.rdb == nil {
		return
	}
	invalidate.Subscribe(ctx, c.rdb, c.prefix+Channel, c.log, func() { c.entries.Drop("") }, c.entries.Drop)
}
