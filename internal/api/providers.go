package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/providerconfig"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/message"
)

// Provider is a provider config as clients see it: never a credential, only its mask.
type Provider struct {
	ID           string                     `json:"id"`
	Type         string                     `json:"type"`
	Name         string                     `json:"name"`
	Channel      message.Channel            `json:"channel"`
	Sender       json.RawMessage            `json:"sender"`
	Mask         string                     `json:"mask"`
	Enabled      bool                       `json:"enabled"`
	Priority     int                        `json:"priority"`
	RateLimit    float64                    `json:"rate_limit_per_second"`
	UnitPrice    *providerconfig.UnitPrice  `json:"unit_price,omitempty"`
	Health       string                     `json:"health"`
	HealthReason string                     `json:"health_reason,omitempty"`
	System       bool                       `json:"system"`
	LastTestedAt *time.Time                 `json:"last_tested_at,omitempty"`
	CreatedAt    time.Time                  `json:"created_at"`
	UpdatedAt    time.Time                  `json:"updated_at"`
	Test         *providerconfig.TestResult `json:"test,omitempty"`
	// InboundURL is where to point the provider's incoming-message webhook (a Twilio number's
	// "A message comes in"), for the types that take inbound messages.
	InboundURL string `json:"inbound_url,omitempty"`
	// VAPIDPublicKey is a Web Push config's public key: the applicationServerKey a page
	// subscribes with (docs/push.md#web-push).
	VAPIDPublicKey string `json:"vapid_public_key,omitempty"`
}

// ProviderView renders a stored config for clients.
func ProviderView(p domain.ProviderConfig) Provider {
	sender := p.Sender
	if p.Type == "sandbox" {
		sender = p.Settings
	}
	out := Provider{ID: p.ID, Type: p.Type, Name: p.Name, Channel: p.Channel, Sender: sender, Mask: p.Mask,
		Enabled: p.Enabled, Priority: p.Priority, RateLimit: p.SendRatePerSecond, Health: p.Health, HealthReason: p.HealthReason, System: p.TenantID == "",
		LastTestedAt: p.LastTestedAt, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
	if p.UnitPrice != "" {
		out.UnitPrice = &providerconfig.UnitPrice{Amount: p.UnitPrice, Currency: p.UnitCurrency}
	}
	var vapid struct {
		Key string `json:"vapid_public_key"`
	}
	if json.Unmarshal(sender, &vapid) == nil {
		out.VAPIDPublicKey = vapid.Key
	}
	return out
}

// providerView is ProviderView with where its inbound messages go.
func (s *Server) providerView(p domain.ProviderConfig) Provider {
	v := ProviderView(p)
	v.InboundURL = s.Providers.InboundURL(p)
	return v
}

type providerTestRequest struct {
	TestRecipient string `json:"test_recipient"`
}

// owner is whose configs a route manages: the caller's tenant, or the system defaults on /admin.
func owner(r *http.Request, system bool) string {
	if system {
		return ""
	}
	return principalFrom(r.Context()).TenantID
}

const maxProviderBody = 64 << 10

// providerProblem turns a providerconfig.Service error into the client's answer.
func (s *Server) providerProblem(w http.ResponseWriter, r *http.Request, err error, what string) {
	var verr *message.ValidationError
	var failed *providerconfig.TestFailedError
	switch {
	case errors.As(err, &verr):
		writeProblem(w, r, fieldProblem(http.StatusUnprocessableEntity, "validation", "Invalid request", verr.Fields...))
	case errors.As(err, &failed):
		p := problem(http.StatusUnprocessableEntity, "provider-test-failed", "Provider test failed", failed.Err.Describe()+". Nothing was saved.")
		p.Code, p.ProviderCode, p.ProviderMessage, p.Permanent = string(failed.Err.Code), failed.Err.RawCode, failed.Err.Message, &failed.Err.Permanent
		writeProblem(w, r, p)
	case errors.Is(err, store.ErrNotFound):
		writeProblem(w, r, errNotFound)
	case errors.Is(err, store.ErrNameTaken):
		writeProblem(w, r, fieldProblem(http.StatusConflict, "name-taken", "Name taken",
			message.FieldError{Field: "name", Message: "another provider config already has this name"}))
	case errors.Is(err, store.ErrConflict):
		writeProblem(w, r, problem(http.StatusConflict, "conflict", "Conflict", "the config changed while this request ran; fetch it and retry"))
	default:
		if r.Context().Err() == nil {
			s.log.ErrorContext(r.Context(), what+" failed", "tenant_id", principalFrom(r.Context()).TenantID, "err", err)
		}
		writeProblem(w, r, unavailable(what+" failed; nothing was changed; retry shortly"))
	}
}

func (s *Server) createProvider(system bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in providerconfig.Input
		if prob := decodeJSON(r, maxProviderBody, &in); prob != nil {
			writeProblem(w, r, prob)
			return
		}
		p, res, err := s.Providers.Create(r.Context(), owner(r, system), in)
		if err != nil {
			s.providerProblem(w, r, err, "create provider config")
			return
		}
		v := s.providerView(p)
		v.Test = &res
		w.Header().Set("Location", r.URL.Path+"/"+p.ID)
		writeJSON(w, http.StatusCreated, v)
	}
}

func (s *Server) listProviders(system bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ps, err := s.Providers.Configs(r.Context(), owner(r, system))
		if err != nil {
			s.providerProblem(w, r, err, "list provider configs")
			return
		}
		out := make([]Provider, len(ps))
		for i, p := range ps {
			out[i] = s.providerView(p)
		}
		writeJSON(w, http.StatusOK, map[string]any{"data": out})
	}
}

func (s *Server) getProvider(system bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.Providers.Config(r.Context(), owner(r, system), r.PathValue("id"))
		if err != nil {
			s.providerProblem(w, r, err, "get provider config")
			return
		}
		writeJSON(w, http.StatusOK, s.providerView(p))
	}
}

func (s *Server) updateProvider(system bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var patch providerconfig.Patch
		if prob := decodeJSON(r, maxProviderBody, &patch); prob != nil {
			writeProblem(w, r, prob)
			return
		}
		p, res, err := s.Providers.Update(r.Context(), owner(r, system), r.PathValue("id"), patch)
		if err != nil {
			s.providerProblem(w, r, err, "update provider config")
			return
		}
		v := s.providerView(p)
		v.Test = res
		writeJSON(w, http.StatusOK, v)
	}
}

func (s *Server) deleteProvider(system bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.Providers.Delete(r.Context(), owner(r, system), r.PathValue("id")); err != nil {
			s.providerProblem(w, r, err, "delete provider config")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *Server) testProvider(system bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req providerTestRequest
		if prob := decodeJSON(r, maxProviderBody, &req); prob != nil {
			writeProblem(w, r, prob)
			return
		}
		res, err := s.Providers.Test(r.Context(), owner(r, system), r.PathValue("id"), req.TestRecipient)
		if err != nil {
			s.providerProblem(w, r, err, "test provider config")
			return
		}
		writeJSON(w, http.StatusOK, res)
	}
}
