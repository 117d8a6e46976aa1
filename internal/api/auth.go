package api

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/logicspike/comms/internal/accounts"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/ids"
)

// Principal is who is calling.
type Principal struct {
	KeyID string
	Kind  domain.KeyKind
	// TenantID is the tenant acted for: the key's own, or X-Tenant-Id for a service key.
	TenantID string
	// Tenant is that tenant (tenant routes only), as cached for AuthCacheTTL.
	Tenant domain.Tenant
}

type principalKey struct{}

func principalFrom(ctx context.Context) Principal {
	p, _ := ctx.Value(principalKey{}).(Principal)
	return p
}

type signedInKey struct{}

// AsKey returns a context whose requests the server takes as made with key, which the caller
// has already looked up and checked: the dashboard calls the API in-process this way for its
// signed-in sessions, so every change it makes passes the same validation, Save & Test and
// audit as the API's own. Only Go code in this process can set it; no header can.
func AsKey(ctx context.Context, key domain.APIKey) context.Context {
	return context.WithValue(ctx, signedInKey{}, key)
}

// authCache remembers key and tenant lookups for ttl, so the hot path does not read the database
// on every request. A revoke through this server's admin API takes effect at once here; through
// another replica or commsctl, within ttl.
type authCache struct {
	keys    *ttlCache[[32]byte, domain.APIKey]
	tenants *ttlCache[string, domain.Tenant]
}

// Bounds of the auth cache. Found entries are what the callers in use need (a deployment has at
// most thousands of live keys and tenants); "not found" entries come from anyone on the internet
// with a made-up key, so they are fewer and short-lived: a flood of distinct bad keys churns
// them without growing the heap.
const (
	authCacheFound     = 16_384
	authCacheMissing   = 4_096
	authCacheMissTTL   = time.Second
	authKeyPrefix      = "ck_"
	authKeyMaxLen      = 200
	authTenantIDMaxLen = 64
)

func newAuthCache(ttl time.Duration) *authCache {
	return &authCache{keys: newTTLCache[[32]byte, domain.APIKey](ttl), tenants: newTTLCache[string, domain.Tenant](ttl)}
}

func (c *authCache) key(ctx context.Context, s *accounts.Service, plain string) (domain.APIKey, bool, error) {
	return c.keys.get(sha256.Sum256([]byte(plain)), func() (domain.APIKey, error) { return s.LookupKey(ctx, plain) })
}

func (c *authCache) tenant(ctx context.Context, s *accounts.Service, id string) (domain.Tenant, bool, error) {
	return c.tenants.get(id, func() (domain.Tenant, error) { return s.Tenant(ctx, id) })
}

func (c *authCache) forgetTenant(id string) {
	c.tenants.forget(func(t domain.Tenant) bool { return t.ID == id })
}

func (c *authCache) forgetKey(id string) {
	c.keys.forget(func(k domain.APIKey) bool { return k.ID == id })
}

// ttlCache caches lookups for ttl (0 disables it), and "not found" (store.ErrNotFound) for at most
// authCacheMissTTL, each in an LRU of bounded size. (The library's expirable LRU keeps a map per
// expiry bucket that never shrinks from its peak, a hundred times the bound under a flood.)
type ttlCache[K comparable, V any] struct {
	ttl     time.Duration
	found   *lru.Cache[K, cached[V]]
	missing *lru.Cache[K, time.Time]
}

type cached[V any] struct {
	v       V
	expires time.Time
}

func newTTLCache[K comparable, V any](ttl time.Duration) *ttlCache[K, V] {
	c := &ttlCache[K, V]{ttl: ttl}
	if ttl > 0 {
		c.found, _ = lru.New[K, cached[V]](authCacheFound)
		c.missing, _ = lru.New[K, time.Time](authCacheMissing)
	}
	return c
}

// get returns the cached value for k, or calls load. found is false for store.ErrNotFound.
func (c *ttlCache[K, V]) get(k K, load func() (V, error)) (V, bool, error) {
	now := time.Now()
	if c.ttl > 0 {
		if e, ok := c.found.Get(k); ok && now.Before(e.expires) {
			return e.v, true, nil
		}
		if until, ok := c.missing.Get(k); ok && now.Before(until) {
			var zero V
			return zero, false, nil
		}
	}
	v, err := load()
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return v, false, err
	}
	if c.ttl > 0 {
		if err == nil {
			c.found.Add(k, cached[V]{v: v, expires: now.Add(c.ttl)})
			c.missing.Remove(k)
		} else {
			c.missing.Add(k, now.Add(min(c.ttl, authCacheMissTTL)))
			c.found.Remove(k)
		}
	}
	return v, err == nil, nil
}

// forget drops every entry whose value matches.
func (c *ttlCache[K, V]) forget(match func(V) bool) {
	if c.ttl <= 0 {
		return
	}
	for _, k := range c.found.Keys() {
		if e, ok := c.found.Peek(k); ok && match(e.v) {
			c.found.Remove(k)
		}
	}
}

// access says which kinds of key may call a route.
type access int

const (
	accessTenant    access = iota // tenant keys, and service keys with X-Tenant-Id
	accessAdmin                   // admin keys
	accessPublic                  // no key
	accessRecipient               // a recipient token, for the recipient's own inbox (never a key)
)

// callerKey is the key the request is made with: the in-process caller's (AsKey), or the
// bearer token's. found is false for a missing, malformed or unknown key.
func (s *Server) callerKey(r *http.Request) (domain.APIKey, bool, error) {
	if key, ok := r.Context().Value(signedInKey{}).(domain.APIKey); ok {
		return key, true, nil
	}
	plain, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	plain = strings.TrimSpace(plain)
	// Every key we issue starts with ck_: anything else is refused without a lookup.
	if !ok || !strings.HasPrefix(plain, authKeyPrefix) || len(plain) > authKeyMaxLen {
		return domain.APIKey{}, false, nil
	}
	return s.auth.key(r.Context(), s.Accounts, plain)
}

func (s *Server) authenticate(a access, next http.HandlerFunc) http.HandlerFunc {
	switch a {
	case accessPublic:
		return next
	case accessRecipient:
		return s.authenticateRecipient(next)
	}
	return func(w http.ResponseWriter, r *http.Request) {
		key, found, err := s.callerKey(r)
		if err != nil {
			s.log.ErrorContext(r.Context(), "api key lookup failed", "err", err)
			writeProblem(w, r, unavailable("the key store is unreachable; retry shortly"))
			return
		}
		now := time.Now()
		if !found || !key.Active(now) {
			writeProblem(w, r, errUnauthorized)
			return
		}
		s.uses.touch(key.ID, now)
		p := Principal{KeyID: key.ID, Kind: key.Kind, TenantID: key.TenantID}
		switch {
		case a == accessAdmin && key.Kind != domain.KindAdmin:
			writeProblem(w, r, errForbidden)
			return
		case a == accessTenant && key.Kind == domain.KindAdmin:
			writeProblem(w, r, problem(http.StatusForbidden, "forbidden", "Forbidden",
				"admin keys manage the platform; send messages with a tenant key, or a service key and X-Tenant-Id"))
			return
		case a == accessTenant && key.Kind == domain.KindService:
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
			t, found := domain.Tenant{}, false
			if ids.HasPrefix(p.TenantID, ids.Tenant) && len(p.TenantID) <= authTenantIDMaxLen {
				t, found, err = s.auth.tenant(r.Context(), s.Accounts, p.TenantID)
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
			if t.Status != domain.TenantActive {
				writeProblem(w, r, problem(http.StatusForbidden, "tenant-suspended", "Tenant suspended",
					"this tenant is suspended and cannot send"))
				return
			}
			p.Tenant = t
		}
		next(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	}
}
