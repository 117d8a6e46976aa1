package api

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/message"
)

// The platform endpoints under /admin for tenants and API keys.

type createTenantRequest struct {
	Name                string `json:"name"`
	Plan                string `json:"plan,omitempty"`
	AllowSystemFallback *bool  `json:"allow_system_fallback,omitempty"`
}

// updateTenant changes a tenant's settings: retry budget, rate limit, fallback, status. Running
// services see the change within COMMS_AUTH_CACHE_TTL (intake) and at once through the route
// notice (workers).
func (s *Server) updateTenant(w http.ResponseWriter, r *http.Request) {
	var req TenantPatch
	if prob := decodeJSON(r, 64<<10, &req); prob != nil {
		writeProblem(w, r, prob)
		return
	}
	p := req.domain()
	if errs := p.Validate(); len(errs) > 0 {
		writeProblem(w, r, fieldProblem(http.StatusUnprocessableEntity, "validation", "Invalid request", errs...))
		return
	}
	t, err := s.store.UpdateTenant(r.Context(), r.PathValue("id"), p)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeProblem(w, r, errNotFound)
		return
	case err != nil:
		s.log.ErrorContext(r.Context(), "update tenant failed", "tenant_id", r.PathValue("id"), "err", err)
		writeProblem(w, r, unavailable("the tenant could not be updated; nothing changed; retry shortly"))
		return
	}
	s.auth.forgetTenant(t.ID)
	if s.notify != nil {
		s.notify.Changed(r.Context(), t.ID)
	}
	writeJSON(w, http.StatusOK, TenantView(t))
}

func (s *Server) createTenant(w http.ResponseWriter, r *http.Request) {
	var req createTenantRequest
	if prob := decodeJSON(r, 64<<10, &req); prob != nil {
		writeProblem(w, r, prob)
		return
	}
	if strings.TrimSpace(req.Name) == "" || len(req.Name) > 200 {
		writeProblem(w, r, fieldProblem(http.StatusUnprocessableEntity, "validation", "Invalid request",
			message.FieldError{Field: "name", Message: "is required, at most 200 characters"}))
		return
	}
	nt := domain.NewTenant{Name: req.Name, Plan: req.Plan, AllowSystemFallback: true}
	if req.AllowSystemFallback != nil {
		nt.AllowSystemFallback = *req.AllowSystemFallback
	}
	t, err := s.store.CreateTenant(r.Context(), nt)
	if err != nil {
		s.log.ErrorContext(r.Context(), "create tenant failed", "err", err)
		writeProblem(w, r, unavailable("the tenant could not be created; retry shortly"))
		return
	}
	writeJSON(w, http.StatusCreated, TenantView(t))
}

func (s *Server) listTenants(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeProblem(w, r, fieldProblem(http.StatusBadRequest, "validation", "Invalid query",
				message.FieldError{Field: "limit", Message: "must be an integer from 1 to 1000"}))
			return
		}
		limit = n
	}
	ts, err := s.store.ListTenants(r.Context(), r.URL.Query().Get("cursor"), limit)
	if err != nil {
		s.log.ErrorContext(r.Context(), "list tenants failed", "err", err)
		writeProblem(w, r, unavailable("the tenant store is unreachable; retry shortly"))
		return
	}
	next := ""
	if len(ts) == limit {
		next = ts[len(ts)-1].ID
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": Views(ts, TenantView), "next_cursor": next})
}

type createKeyRequest struct {
	Kind      domain.KeyKind `json:"kind"`
	TenantID  string         `json:"tenant_id,omitempty"`
	Name      string         `json:"name"`
	ExpiresAt *time.Time     `json:"expires_at,omitempty"`
}

func (s *Server) createAPIKey(w http.ResponseWriter, r *http.Request) {
	var req createKeyRequest
	if prob := decodeJSON(r, 64<<10, &req); prob != nil {
		writeProblem(w, r, prob)
		return
	}
	var bad []message.FieldError
	if !req.Kind.Valid() {
		bad = append(bad, message.FieldError{Field: "kind", Message: `must be "tenant", "service" or "admin"`})
	}
	if req.Kind == domain.KindTenant && req.TenantID == "" {
		bad = append(bad, message.FieldError{Field: "tenant_id", Message: "is required for a tenant key"})
	}
	if req.Kind != domain.KindTenant && req.TenantID != "" {
		bad = append(bad, message.FieldError{Field: "tenant_id", Message: "is only allowed for a tenant key"})
	}
	bad = append(bad, checkKey(req.Name, req.ExpiresAt)...)
	if len(bad) == 0 && req.TenantID != "" {
		if _, err := s.store.GetTenant(r.Context(), req.TenantID); errors.Is(err, store.ErrNotFound) {
			bad = append(bad, message.FieldError{Field: "tenant_id", Message: "names no tenant"})
		} else if err != nil {
			writeProblem(w, r, unavailable("the tenant store is unreachable; retry shortly"))
			return
		}
	}
	if len(bad) > 0 {
		writeProblem(w, r, fieldProblem(http.StatusUnprocessableEntity, "validation", "Invalid request", bad...))
		return
	}
	k, plain, err := s.store.CreateAPIKey(r.Context(), req.Kind, req.TenantID, req.Name, req.ExpiresAt)
	if err != nil {
		s.log.ErrorContext(r.Context(), "create api key failed", "err", err)
		writeProblem(w, r, unavailable("the key could not be created; retry shortly"))
		return
	}
	// The only time the key is ever shown.
	writeJSON(w, http.StatusCreated, map[string]any{"api_key": KeyView(k), "secret": plain})
}

func (s *Server) listAPIKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := s.store.ListAPIKeys(r.Context(), r.URL.Query().Get("tenant_id"))
	if err != nil {
		s.log.ErrorContext(r.Context(), "list api keys failed", "err", err)
		writeProblem(w, r, unavailable("the key store is unreachable; retry shortly"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": Views(keys, KeyView)})
}

func (s *Server) revokeAPIKey(w http.ResponseWriter, r *http.Request) {
	k, err := s.store.RevokeAPIKey(r.Context(), "", r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		writeProblem(w, r, errNotFound)
		return
	}
	if err != nil {
		s.log.ErrorContext(r.Context(), "revoke api key failed", "err", err)
		writeProblem(w, r, unavailable("the key store is unreachable; retry shortly"))
		return
	}
	s.auth.forgetKey(k.ID)
	writeJSON(w, http.StatusOK, KeyView(k))
}
