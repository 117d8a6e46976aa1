// Package tenantcache keeps what a process reads about a tenant on every request (its categories,
// its provider configs' senders) for a while, bounded, and forgets a tenant's entries the moment
// a change to them is announced.
//
// A read that raced a change is not kept: a load that started before a Drop returns its value to
// its caller but does not store it, so the cache never holds what was read before a change after
// the change was announced.
package tenantcache

import (
	"context"
	"sync"
	"time"
)

// maxEntries bounds the entries a process keeps.
const maxEntries = 10_000

// Cache holds values of type V by tenant and key.
type Cache[V any] struct {
	ttl time.Duration

	mu      sync.Mutex
	entries map[string]map[string]entry[V] // tenant id → key → entry
	n       int                            // entries held
	gen     uint64                         // counts drops: a load that started before one is not kept
}

type entry[V any] struct {
	v       V
	expires time.Time
}

// New returns a cache keeping each entry for ttl.
func New[V any](ttl time.Duration) *Cache[V] {
	return &Cache[V]{ttl: ttl, entries: map[string]map[string]entry[V]{}}
}

// Get returns tenantID's value under key, calling load when it is missing or expired.
func (c *Cache[V]) Get(ctx context.Context, tenantID, key string, load func(context.Context) (V, error)) (V, error) {
	now := time.Now()
	c.mu.Lock()
	e, ok := c.entries[tenantID][key]
	gen := c.gen
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.v, nil
	}
	v, err := load(ctx)
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return v, nil
	}
	if c.n >= maxEntries {
		c.evict(now)
	}
	byKey := c.entries[tenantID]
	if byKey == nil {
		byKey = map[string]entry[V]{}
		c.entries[tenantID] = byKey
	}
	if _, had := byKey[key]; !had {
		c.n++
	}
	byKey[key] = entry[V]{v: v, expires: now.Add(c.ttl)}
	return v, nil
}

// evict drops the expired entries, or every entry when none had expired. c.mu is held.
func (c *Cache[V]) evict(now time.Time) {
	for tenant, byKey := range c.entries {
		for k, e := range byKey {
			if !now.Before(e.expires) {
				delete(byKey, k)
				c.n--
			}
		}
		if len(byKey) == 0 {
			delete(c.entries, tenant)
		}
	}
	if c.n >= maxEntries {
		clear(c.entries)
		c.n = 0
	}
}

// Drop forgets tenantID's entries, or every tenant's when tenantID is empty.
func (c *Cache[V]) Drop(tenantID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if tenantID == "" {
		clear(c.entries)
		c.n = 0
		return
	}
	c.n -= len(c.entries[tenantID])
	delete(c.entries, tenantID)
}
