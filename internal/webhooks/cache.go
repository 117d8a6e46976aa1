package webhooks

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/logicspike/comms/internal/domain"
)

// endpoint is an enabled endpoint ready to deliver to: its keys opened, its gate attached.
type endpoint struct {
	domain.WebhookEndpoint
	keys [][]byte
	gate *gate
}

// wants reports whether the endpoint subscribed to typ (no list: every type).
func (e *endpoint) wants(typ string) bool {
	return len(e.EventTypes) == 0 || slices.Contains(e.EventTypes, typ)
}

// cache keeps each tenant's enabled endpoints for ttl, or until the API announces a change.
// Concurrent misses for one tenant share one load.
type cache struct {
	load func(ctx context.Context, tenantID string) ([]*endpoint, error)
	ttl  time.Duration
	mu   sync.Mutex
	m    map[string]*cacheEntry
}

type cacheEntry struct {
	ready chan struct{}
	eps   []*endpoint
	err   error
	until time.Time
}

func (c *cache) get(ctx context.Context, tenantID string) ([]*endpoint, error) {
	c.mu.Lock()
	e, ok := c.m[tenantID]
	if ok {
		select {
		case <-e.ready:
			if time.Now().After(e.until) || e.err != nil {
				ok = false
			}
		default: // being loaded: wait for it
		}
	}
	if !ok {
		e = &cacheEntry{ready: make(chan struct{})}
		c.m[tenantID] = e
		c.mu.Unlock()
		e.eps, e.err = c.load(ctx, tenantID)
		e.until = time.Now().Add(c.ttl)
		close(e.ready)
		return e.eps, e.err
	}
	c.mu.Unlock()
	select {
	case <-e.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return e.eps, e.err
}

// drop forgets tenantID's endpoints ("" every tenant's).
func (c *cache) drop(tenantID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if tenantID == "" {
		clear(c.m)
		return
	}
	delete(c.m, tenantID)
}
