package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/logicspike/comms/internal/accounts"
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
	t, err := s.Accounts.UpdateTenant(r.Context(), r.PathValue("id"), req.domain())
	if err == nil {
		s.auth.forgetTenant(t.ID)
	}
	s.answer(w, r, http.StatusOK, TenantView(t), err, "the tenant store (nothing changed)", nil)
}

// getSettings shows the tenant its own settings: plan, retry budget, rate limit, fallback,
// quotas and how long its history is kept.
func (s *Server) getSettings(w http.ResponseWriter, r *http.Request) {
	t, err := s.Accounts.Tenant(r.Context(), principalFrom(r.Context()).TenantID)
	s.answer(w, r, http.StatusOK, TenantView(t), err, "the tenant store", nil)
}

// updateSettings changes what a tenant may change of its own settings.
func (s *Server) updateSettings(w http.ResponseWriter, r *http.Request) {
	var req SettingsPatch
	if prob := decodeJSON(r, 64<<10, &req); prob != nil {
		writeProblem(w, r, prob)
		return
	}
	t, err := s.Accounts.UpdateTenant(r.Context(), principalFrom(r.Context()).TenantID, domain.TenantPatch{UnsubscribeMailto: req.UnsubscribeMailto,
		InboxOrigins: req.InboxOrigins})
	if err == nil {
		s.auth.forgetTenant(t.ID) // the inbox routes read its origins through the cache
	}
	s.answer(w, r, http.StatusOK, TenantView(t), err, "the tenant store (nothing changed)", nil)
}

func (s *Server) createTenant(w http.ResponseWriter, r *http.Request) {
	var req createTenantRequest
	if prob := decodeJSON(r, 64<<10, &req); prob != nil {
		writeProblem(w, r, prob)
		return
	}
	nt := domain.NewTenant{Name: req.Name, Plan: req.Plan, AllowSystemFallback: true}
	if req.AllowSystemFallback != nil {
		nt.AllowSystemFallback = *req.AllowSystemFallback
	}
	t, err := s.Accounts.CreateTenant(r.Context(), nt)
	s.answer(w, r, http.StatusCreated, TenantView(t), err, "the tenant store", nil)
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
	ts, err := s.Accounts.Tenants(r.Context(), r.URL.Query().Get("cursor"), limit)
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
	k, plain, err := s.Accounts.CreateKey(r.Context(), accounts.NewKey{Kind: req.Kind, TenantID: req.TenantID, Name: req.Name, ExpiresAt: req.ExpiresAt})
	// The only time the key is ever shown.
	s.answer(w, r, http.StatusCreated, map[string]any{"api_key": KeyView(k), "secret": plain}, err, "the key store", nil)
}

func (s *Server) listAPIKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := s.Accounts.Keys(r.Context(), r.URL.Query().Get("tenant_id"))
	if err != nil {
		s.log.ErrorContext(r.Context(), "list api keys failed", "err", err)
		writeProblem(w, r, unavailable("the key store is unreachable; retry shortly"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": Views(keys, KeyView)})
}

func (s *Server) revokeAPIKey(w http.ResponseWriter, r *http.Request) {
	k, err := s.Accounts.RevokeKey(r.Context(), "", r.PathValue("id"))
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
