package api

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/store"
)

// Principal is who is calling.
type Principal struct {
	KeyID string
	Kind  store.KeyKind
	// TenantID is the tenant acted for: the key's own, or X-Tenant-Id for a service key.
	TenantID string
	// Tenant is that tenant (tenant routes only), as cached for AuthCacheTTL.
	Tenant store.Tenant
}

type principalKey struct{}

func principalFrom(ctx context.Context) Principal {
	p, _ := ctx.Value(principalKey{}).(Principal)
	return p
}

// authCache remembers key and tenant lookups for ttl, so the hot path does not read the database
// on every request. A revoke through this server's admin API takes effect at once here; through
// another replica or commsctl, within ttl.
type authCache struct {
	keys    *ttlCache[[32]byte, store.APIKey]
	tenants *ttlCache[string, store.Tenant]
}

func newAuthCache(ttl time.Duration) *authCache {
	return &authCache{keys: newTTLCache[[32]byte, store.APIKey](ttl), tenants: newTTLCache[string, store.Tenant](ttl)}
}

func (c *authCache) key(ctx context.Context, s *store.Store, plain string) (store.APIKey, bool, error) {
	return c.keys.get(sha256.Sum256([]byte(plain)), func() (store.APIKey, error) { return s.LookupAPIKey(ctx, plain) })
}

func (c *authCache) tenant(ctx context.Context, s *store.Store, id string) (store.Tenant, bool, error) {
	return c.tenants.get(id, func() (store.Tenant, error) { return s.GetTenant(ctx, id) })
}

func (c *authCache) forgetTenant(id string) {
	c.tenants.forget(func(t store.Tenant) bool { return t.ID == id })
}

func (c *authCache) forgetKey(id string) {
	c.keys.forget(func(k store.APIKey) bool { return k.ID == id })
}

// ttlCache caches lookups, including "not found" (store.ErrNotFound), for ttl; 0 disables it.
type ttlCache[K comparable, V any] struct {
	ttl     time.Duration
	mu      sync.Mutex
	entries map[K]cached[V]
}

type cached[V any] struct {
	v       V
	found   bool
	expires time.Time
}

func newTTLCache[K comparable, V any](ttl time.Duration) *ttlCache[K, V] {
	return &ttlCache[K, V]{ttl: ttl, entries: map[K]cached[V]{}}
}

// get returns the cached value for k, or calls load. found is false for store.ErrNotFound.
func (c *ttlCache[K, V]) get(k K, load func() (V, error)) (V, bool, error) {
	now := time.Now()
	c.mu.Lock()
	e, ok := c.entries[k]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.v, e.found, nil
	}
	v, err := load()
	found := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return v, false, err
	}
	if c.ttl > 0 {
		c.mu.Lock()
		c.entries[k] = cached[V]{v: v, found: found, expires: now.Add(c.ttl)}
		c.mu.Unlock()
	}
	return v, found, nil
}

// forget drops every entry whose value matches.
func (c *ttlCache[K, V]) forget(match func(V) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.entries {
		if match(e.v) {
			delete(c.entries, k)
		}
	}
}

// access says which kinds of key may call a route.
type access int

const (
	accessTenant access = iota // tenant keys, and service keys with X-Tenant-Id
	accessAdmin                // admin keys
	accessPublic               // no key
)

func (s *Server) authenticate(a access, next http.HandlerFunc) http.HandlerFunc {
	if a == accessPublic {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) {
		plain, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || plain == "" || len(plain) > 200 {
			writeProblem(w, r, errUnauthorized)
			return
		}
		key, found, err := s.auth.key(r.Context(), s.store, strings.TrimSpace(plain))
		if err != nil {
			s.log.ErrorContext(r.Context(), "api key lookup failed", "err", err)
			writeProblem(w, r, unavailable("the key store is unreachable; retry shortly"))
			return
		}
		if !found || !key.Active(time.Now()) {
			writeProblem(w, r, errUnauthorized)
			return
		}
		p := Principal{KeyID: key.ID, Kind: key.Kind, TenantID: key.TenantID}
		switch {
		case a == accessAdmin && key.Kind != store.KindAdmin:
			writeProblem(w, r, errForbidden)
			return
		case a == accessTenant && key.Kind == store.KindAdmin:
			writeProblem(w, r, problem(http.StatusForbidden, "forbidden", "Forbidden",
				"admin keys manage the platform; send messages with a tenant key, or a service key and X-Tenant-Id"))
			return
		case a == accessTenant && key.Kind == store.KindService:
			p.TenantID = r.Header.Get("X-Tenant-Id")
			if p.TenantID == "" {
				writeProblem(w, r, problem(http.StatusBadRequest, "tenant-required", "Tenant required",
					"a service key must name the tenant it acts for in the X-Tenant-Id header"))
				return
			}
		case a == accessTenant && r.Header.Get("X-Tenant-Id") != "" && r.Header.Get("X-Tenant-Id") != key.TenantID:
			writeProblem(w, r, problem(http.StatusForbidden, "forbidden", "Forbidden",
				"a tenant key acts only for its own tenant; X-Tenant-Id names another"))
			return
		}
		if a == accessTenant {
			t, found := store.Tenant{}, false
			if ids.HasPrefix(p.TenantID, ids.Tenant) {
				t, found, err = s.auth.tenant(r.Context(), s.store, p.TenantID)
			}
			if err != nil {
				s.log.ErrorContext(r.Context(), "tenant lookup failed", "tenant_id", p.TenantID, "err", err)
				writeProblem(w, r, unavailable("the tenant store is unreachable; retry shortly"))
				return
			}
			if !found {
				writeProblem(w, r, problem(http.StatusNotFound, "tenant-not-found", "Tenant not found",
					"X-Tenant-Id names no tenant"))
				return
			}
			if t.Status != "active" {
				writeProblem(w, r, problem(http.StatusForbidden, "tenant-suspended", "Tenant suspended",
					"this tenant is suspended and cannot send"))
				return
			}
			p.Tenant = t
		}
		next(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	}
}
