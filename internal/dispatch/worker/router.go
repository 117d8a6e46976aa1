package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// Sender is what the worker needs of a provider adapter.
type Sender interface {
	Send(ctx context.Context, m provider.Message) (provider.Result, error)
}

// Factory builds the Sender of one stored provider config (decrypting its credentials).
type Factory func(cfg domain.ProviderConfig) (Sender, error)

// Route is a config chosen to send a message, with its adapter.
type Route struct {
	Config     domain.ProviderConfig
	Sender     Sender
	allowsFrom func(from string) bool // the config's rule for a message's own from
}

// RouteStore is what the router reads; *store.Store implements it.
type RouteStore interface {
	GetTenant(ctx context.Context, id string) (domain.Tenant, error)
	ListProviderRoutes(ctx context.Context, tenantID string, channel message.Channel) ([]domain.ProviderConfig, error)
	GetCategory(ctx context.Context, tenantID, key string) (domain.Category, error)
}

// Router picks the provider configs for a tenant's message: the tenant's own enabled configs by
// priority, then the system defaults if the tenant may fall back. Lookups are cached for ttl, so a
// config change reaches running workers within ttl; adapters are cached per config version.
type Router struct {
	store   RouteStore
	factory Factory
	ttl     time.Duration
	log     *slog.Logger

	mu      sync.Mutex
	routes  map[string]routeEntry
	senders map[string]versioned // by config id: the adapter of its latest version seen
}

type versioned struct {
	updatedAt time.Time
	sender    Sender
}

type routeEntry struct {
	plan    Plan
	expires time.Time
}

// Plan is where a tenant's message may go, and how long it may keep trying.
type Plan struct {
	Routes      []Route
	MaxAttempts int
	MaxRetryAge time.Duration
}

// For returns the routes that may send a message whose own from is from (all of them for a
// message without one): a failover never sends from an address its config may not use.
func (p Plan) For(from string) []Route {
	if from == "" {
		return p.Routes
	}
	var out []Route
	for _, r := range p.Routes {
		if r.allowsFrom == nil || r.allowsFrom(from) {
			out = append(out, r)
		}
	}
	return out
}

// NewRouter returns a router building adapters with factory.
func NewRouter(s RouteStore, factory Factory, ttl time.Duration, log *slog.Logger) *Router {
	return &Router{store: s, factory: factory, ttl: ttl, log: log, routes: map[string]routeEntry{}, senders: map[string]versioned{}}
}

// Plan returns the configs to try for tenantID's message on channel, in order, with the
// tenant's retry limits. No routes means no provider may send it.
func (r *Router) Plan(ctx context.Context, tenantID string, channel message.Channel, category message.Category) (Plan, error) {
	if category == "" {
		category = message.Transactional
	}
	key := tenantID + "|" + string(channel) + "|" + string(category)
	now := time.Now()
	r.mu.Lock()
	e, ok := r.routes[key]
	r.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.plan, nil
	}

	tenant, err := r.store.GetTenant(ctx, tenantID)
	if err != nil {
		return Plan{}, fmt.Errorf("load tenant %s: %w", tenantID, err)
	}
	cfgs, err := r.store.ListProviderRoutes(ctx, tenantID, channel)
	if err != nil {
		return Plan{}, err
	}
	// A tenant's own category routes as its kind; one deleted since the message was accepted, as
	// a message without a category.
	kind := category
	if !category.BuiltIn() {
		kind = message.Transactional
		c, err := r.store.GetCategory(ctx, tenantID, string(category))
		switch {
		case err == nil:
			kind = c.Kind
		case !errors.Is(err, store.ErrNotFound):
			return Plan{}, fmt.Errorf("load category %s: %w", category, err)
		}
	}
	var routes []Route
	for _, c := range cfgs {
		if !tenant.MayUse(c, kind) {
			continue // this tenant's policy keeps the message on its own accounts
		}
		s, err := r.sender(c)
		if err != nil {
			// One broken config (a key missing from the ring, say) must not stop the others
			// from sending: skip it, loudly.
			r.log.Error("provider config unusable; skipping it", "tenant_id", tenantID, "provider_id", c.ID, "type", c.Type, "err", err)
			continue
		}
		routes = append(routes, Route{Config: c, Sender: s, allowsFrom: provider.FromRuleOf(c.Type, c.Sender)})
	}
	plan := Plan{Routes: routes, MaxAttempts: tenant.MaxAttempts, MaxRetryAge: time.Duration(tenant.MaxRetryAgeSeconds) * time.Second}
	r.mu.Lock()
	r.routes[key] = routeEntry{plan: plan, expires: now.Add(r.ttl)}
	r.mu.Unlock()
	return plan, nil
}

// sender returns c's adapter, building it (and decrypting its credentials) only when the config
// changed since the last build: decrypted clients are cached per config version.
func (r *Router) sender(c domain.ProviderConfig) (Sender, error) {
	r.mu.Lock()
	v, ok := r.senders[c.ID]
	r.mu.Unlock()
	if ok && v.updatedAt.Equal(c.UpdatedAt) {
		return v.sender, nil
	}
	s, err := r.factory(c)
	if err != nil {
		return nil, fmt.Errorf("provider config %s: %w", c.ID, err)
	}
	r.mu.Lock()
	r.senders[c.ID] = versioned{updatedAt: c.UpdatedAt, sender: s}
	r.mu.Unlock()
	return s, nil
}

// Invalidate forgets the cached routes of tenantID, or of every tenant when tenantID is empty
// (a system default changed). Adapters stay cached: they are keyed by config version.
func (r *Router) Invalidate(tenantID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if tenantID == "" {
		clear(r.routes)
		return
	}
	for key := range r.routes { // every channel and category of the tenant
		if strings.HasPrefix(key, tenantID+"|") {
			delete(r.routes, key)
		}
	}
}
