package api

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/webhooks"
	"github.com/logicspike/comms/pkg/event"
)

// The webhook endpoint routes (/v1/webhook-endpoints): a tenant's endpoints, their secrets, test
// sends, delivery logs and replays (docs/webhooks.md).

const maxEndpointBody = 16 << 10

// webhookAnswer writes v with status, or the problem err stands for.
func (s *Server) webhookAnswer(w http.ResponseWriter, r *http.Request, status int, v any, err error) {
	s.answer(w, r, status, v, err, "the webhook endpoint store", func(err error) *Problem {
		if errors.Is(err, webhooks.ErrTooManyEndpoints) {
			return problem(http.StatusConflict, "endpoint-limit", "Too many webhook endpoints",
				"a tenant may have at most "+strconv.Itoa(webhooks.MaxEndpoints)+" webhook endpoints; delete one first")
		}
		return nil
	})
}

func (s *Server) createWebhookEndpoint(w http.ResponseWriter, r *http.Request) {
	var in webhooks.Input
	if prob := decodeJSON(r, maxEndpointBody, &in); prob != nil {
		writeProblem(w, r, prob)
		return
	}
	e, err := s.Webhooks.Create(r.Context(), principalFrom(r.Context()).TenantID, in)
	if err == nil {
		w.Header().Set("Location", "/v1/webhook-endpoints/"+e.ID)
	}
	s.webhookAnswer(w, r, http.StatusCreated, endpointWithSecret(e), err)
}

func (s *Server) listWebhookEndpoints(w http.ResponseWriter, r *http.Request) {
	list, err := s.Webhooks.Endpoints(r.Context(), principalFrom(r.Context()).TenantID)
	s.webhookAnswer(w, r, http.StatusOK, map[string]any{"data": Views(list, EndpointView)}, err)
}

func (s *Server) getWebhookEndpoint(w http.ResponseWriter, r *http.Request) {
	e, err := s.Webhooks.Endpoint(r.Context(), principalFrom(r.Context()).TenantID, r.PathValue("id"))
	s.webhookAnswer(w, r, http.StatusOK, EndpointView(e), err)
}

func (s *Server) updateWebhookEndpoint(w http.ResponseWriter, r *http.Request) {
	var p WebhookEndpointPatch
	if prob := decodeJSON(r, maxEndpointBody, &p); prob != nil {
		writeProblem(w, r, prob)
		return
	}
	e, err := s.Webhooks.Update(r.Context(), principalFrom(r.Context()).TenantID, r.PathValue("id"), p.domain())
	s.webhookAnswer(w, r, http.StatusOK, EndpointView(e), err)
}

func (s *Server) deleteWebhookEndpoint(w http.ResponseWriter, r *http.Request) {
	err := s.Webhooks.Delete(r.Context(), principalFrom(r.Context()).TenantID, r.PathValue("id"))
	s.webhookAnswer(w, r, http.StatusNoContent, nil, err)
}

func (s *Server) rotateWebhookSecret(w http.ResponseWriter, r *http.Request) {
	e, err := s.Webhooks.Rotate(r.Context(), principalFrom(r.Context()).TenantID, r.PathValue("id"))
	s.webhookAnswer(w, r, http.StatusOK, endpointWithSecret(e), err)
}

func (s *Server) testWebhookEndpoint(w http.ResponseWriter, r *http.Request) {
	d, err := s.Webhooks.Test(r.Context(), principalFrom(r.Context()).TenantID, r.PathValue("id"))
	s.webhookAnswer(w, r, http.StatusOK, DeliveryView(d), err)
}

func (s *Server) listWebhookDeliveries(w http.ResponseWriter, r *http.Request) {
	limit, cursor, status := 50, "", ""
	bad := pageQuery(r.URL.Query(), &limit, &cursor, func(name, v string) (string, bool) {
		if name != "status" {
			return "", false
		}
		status = v
		if !event.DeliveryStatus(v).Valid() {
			return "must be pending, succeeded or failed", true
		}
		return "", true
	})
	if len(bad) > 0 {
		writeProblem(w, r, fieldProblem(http.StatusBadRequest, "validation", "Invalid query", bad...))
		return
	}
	tenant, id := principalFrom(r.Context()).TenantID, r.PathValue("id")
	list, next, err := s.Webhooks.Deliveries(r.Context(), tenant, id, status, cursor, limit)
	if errors.Is(err, store.ErrNotFound) {
		s.webhookAnswer(w, r, 0, nil, err)
		return
	}
	writePage(s, w, r, "webhook deliveries", Views(list, DeliveryView), next, err)
}

func (s *Server) replayWebhookDeliveries(w http.ResponseWriter, r *http.Request) {
	var in WebhookReplay
	if prob := decodeJSON(r, maxEndpointBody, &in); prob != nil {
		writeProblem(w, r, prob)
		return
	}
	res, err := s.Webhooks.Replay(r.Context(), principalFrom(r.Context()).TenantID, r.PathValue("id"), in.domain())
	s.webhookAnswer(w, r, http.StatusOK, res, err)
}
