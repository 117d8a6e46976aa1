package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/platform/poll"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/message"
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
	if bad := checkKey(req.Name, req.ExpiresAt); len(bad) > 0 {
		writeProblem(w, r, fieldProblem(http.StatusUnprocessableEntity, "validation", "Invalid request", bad...))
		return
	}
	tenant := principalFrom(r.Context()).TenantID
	k, plain, err := s.store.CreateAPIKey(r.Context(), domain.KindTenant, tenant, req.Name, req.ExpiresAt)
	if err != nil {
		s.log.ErrorContext(r.Context(), "create api key failed", "tenant_id", tenant, "err", err)
		writeProblem(w, r, unavailable("the key could not be created; retry shortly"))
		return
	}
	w.Header().Set("Location", "/v1/api-keys/"+k.ID)
	// The only time the key is ever shown.
	writeJSON(w, http.StatusCreated, map[string]any{"api_key": KeyView(k), "secret": plain})
}

// checkKey validates what every new key has, whoever creates it: a name and a future expiry.
func checkKey(name string, expiresAt *time.Time) []message.FieldError {
	var bad []message.FieldError
	if strings.TrimSpace(name) == "" || len(name) > 200 {
		bad = append(bad, message.FieldError{Field: "name", Message: "is required, at most 200 characters"})
	}
	if expiresAt != nil && !expiresAt.After(time.Now()) {
		bad = append(bad, message.FieldError{Field: "expires_at", Message: "must be in the future"})
	}
	return bad
}

func (s *Server) listTenantKeys(w http.ResponseWriter, r *http.Request) {
	if byServiceKey(w, r) {
		return
	}
	tenant := principalFrom(r.Context()).TenantID
	keys, err := s.store.ListAPIKeys(r.Context(), tenant)
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
	k, err := s.store.RevokeAPIKey(r.Context(), tenant, r.PathValue("id"))
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
	if err := s.store.TouchAPIKeys(ctx, ids, at); err != nil && ctx.Err() == nil {
		s.log.WarnContext(ctx, "recording api key use failed", "keys", len(ids), "err", err)
	}
}
