package api

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/logicspike/comms/internal/accounts"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/platform/poll"
	"github.com/logicspike/comms/internal/store"
)

// The self-service key routes (/v1/api-keys): a tenant creates, lists and revokes its own tenant
// keys. Service and admin keys stay with the platform's admins (/admin/api-keys).

type tenantKeyRequest struct {
	Name      string     `json:"name"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// byServiceKey refuses a service key on the self-service key routes: it acts for every tenant,
// and a tenant key it made would outlive its own revocation and could sign in to the dashboard,
// which service keys may not. It reports whether it refused.
func byServiceKey(w http.ResponseWriter, r *http.Request) bool {
	if principalFrom(r.Context()).Kind != domain.KindService {
		return false
	}
	writeProblem(w, r, problem(http.StatusForbidden, "forbidden", "Forbidden",
		"a service key cannot create, list or revoke a tenant's keys: only the tenant's own key, or an admin key through /admin/api-keys, can"))
	return true
}

func (s *Server) createTenantKey(w http.ResponseWriter, r *http.Request) {
	if byServiceKey(w, r) {
		return
	}
	var req tenantKeyRequest
	if prob := decodeJSON(r, 16<<10, &req); prob != nil {
		writeProblem(w, r, prob)
		return
	}
	tenant := principalFrom(r.Context()).TenantID
	k, plain, err := s.Accounts.CreateKey(r.Context(), accounts.NewKey{Kind: domain.KindTenant, TenantID: tenant, Name: req.Name, ExpiresAt: req.ExpiresAt})
	if err == nil {
		w.Header().Set("Location", "/v1/api-keys/"+k.ID)
	}
	// The only time the key is ever shown.
	s.answer(w, r, http.StatusCreated, map[string]any{"api_key": KeyView(k), "secret": plain}, err, "the key store", nil)
}

func (s *Server) listTenantKeys(w http.ResponseWriter, r *http.Request) {
	if byServiceKey(w, r) {
		return
	}
	tenant := principalFrom(r.Context()).TenantID
	keys, err := s.Accounts.Keys(r.Context(), tenant)
	if err != nil {
		s.log.ErrorContext(r.Context(), "list api keys failed", "tenant_id", tenant, "err", err)
		writeProblem(w, r, unavailable("the key store is unreachable; retry shortly"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": Views(keys, KeyView)})
}

func (s *Server) revokeTenantKey(w http.ResponseWriter, r *http.Request) {
	if byServiceKey(w, r) {
		return
	}
	tenant := principalFrom(r.Context()).TenantID
	k, err := s.Accounts.RevokeKey(r.Context(), tenant, r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		writeProblem(w, r, errNotFound) // another tenant's key, or a service or admin key: 404
		return
	}
	if err != nil {
		s.log.ErrorContext(r.Context(), "revoke api key failed", "tenant_id", tenant, "err", err)
		writeProblem(w, r, unavailable("the key store is unreachable; retry shortly"))
		return
	}
	s.auth.forgetKey(k.ID)
	writeJSON(w, http.StatusOK, KeyView(k))
}

// keyUses remembers when each key last authenticated a request, for Run to write in one
// statement a minute: a key's last_used_at costs no write per request.
type keyUses struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func (u *keyUses) touch(id string, at time.Time) {
	u.mu.Lock()
	u.m[id] = at
	u.mu.Unlock()
}

func (u *keyUses) take() (ids []string, at []time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for id, t := range u.m {
		ids, at = append(ids, id), append(at, t)
	}
	clear(u.m)
	return ids, at
}

// Run writes the keys' last uses every interval until ctx ends, and once more then.
func (s *Server) Run(ctx context.Context) {
	poll.Every(ctx, s.useEvery, s.FlushKeyUses)
	s.FlushKeyUses(context.WithoutCancel(ctx))
}

// FlushKeyUses writes the key uses seen since the last flush. A failed write is logged and its
// uses dropped: last_used_at is a hint, and the next use sets it again.
func (s *Server) FlushKeyUses(ctx context.Context) {
	ids, at := s.uses.take()
	if len(ids) == 0 {
		return
	}
	if err := s.Accounts.TouchKeys(ctx, ids, at); err != nil && ctx.Err() == nil {
		s.log.WarnContext(ctx, "recording api key use failed", "keys", len(ids), "err", err)
	}
}
