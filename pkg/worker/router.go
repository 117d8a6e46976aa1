package worker

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
	"github.com/logicspike/comms/pkg/store"
)

// Sender is what the worker needs of a provider adapter.
type Sender interface {
	Send(ctx context.Context, m provider.Message) (provider.Result, error)
}

// Factory builds a Sender for one provider config.
type Factory func(cfg store.ProviderConfig) (Sender, error)

// Route is a config chosen to send a message, with its adapter.
type Route struct {
	Config store.ProviderConfig
	Sender Sender
}

// Router picks the provider configs for a tenant's message: the tenant's own enabled configs by
// priority, then the system defaults if the tenant may fall back. Lookups are cached for ttl, so a
// config change reaches running workers within ttl; adapters are cached per config version.
type Router struct {
	store     *store.Store
	factories map[string]Factory
	ttl       time.Duration

	mu      sync.Mutex
	routes  map[string]routeEntry
	senders map[string]Sender // by config id + updated_at
}

type routeEntry struct {
	routes  []Route
	expires time.Time
}

// NewRouter returns a router building adapters with factories, keyed by provider type.
func NewRouter(s *store.Store, factories map[string]Factory, ttl time.Duration) *Router {
	return &Router{store: s, factories: factories, ttl: ttl, routes: map[string]routeEntry{}, senders: map[string]Sender{}}
}

// Routes returns the configs to try for tenantID's message on channel, in order. An empty result
// means no provider may send it.
func (r *Router) Routes(ctx context.Context, tenantID string, channel message.Channel) ([]Route, error) {
	key := tenantID + "|" + string(channel)
	now := time.Now()
	r.mu.Lock()
	e, ok := r.routes[key]
	r.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.routes, nil
	}

	tenant, err := r.store.GetTenant(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("load tenant %s: %w", tenantID, err)
	}
	cfgs, err := r.store.ProviderRoutes(ctx, tenantID, channel)
	if err != nil {
		return nil, err
	}
	var routes []Route
	for _, c := range cfgs {
		if c.TenantID == "" && !tenant.AllowSystemFallback {
			continue
		}
		s, err := r.sender(c)
		if err != nil {
			return nil, err
		}
		routes = append(routes, Route{Config: c, Sender: s})
	}
	r.mu.Lock()
	r.routes[key] = routeEntry{routes: routes, expires: now.Add(r.ttl)}
	r.mu.Unlock()
	return routes, nil
}

func (r *Router) sender(c store.ProviderConfig) (Sender, error) {
	version := c.ID + "@" + strconv.FormatInt(c.UpdatedAt.UnixNano(), 10)
	r.mu.Lock()
	s, ok := r.senders[version]
	r.mu.Unlock()
	if ok {
		return s, nil
	}
	f, ok := r.factories[c.Type]
	if !ok {
		return nil, fmt.Errorf("provider config %s: no adapter for type %q", c.ID, c.Type)
	}
	s, err := f(c)
	if err != nil {
		return nil, fmt.Errorf("provider config %s: %w", c.ID, err)
	}
	r.mu.Lock()
	r.senders[version] = s
	r.mu.Unlock()
	return s, nil
}
