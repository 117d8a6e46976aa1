package receiver

import (
	"net/http"

	"github.com/logicspike/comms/internal/db"
	"github.com/logicspike/comms/internal/platform/metrics"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// receiveInbound handles a message a person sent to one of a config's numbers
// (POST /webhooks/{type}/{provider_id}/inbound): verified as the type's callbacks are, recorded
// as an inbound message of the config's tenant with its keyword applied (STOP suppresses the
// sender, START lifts it), and answered as the provider expects. The system defaults' numbers
// belong to no tenant: what they receive is acknowledged and not kept.
func (s *Server) receiveInbound(w http.ResponseWriter, r *http.Request) {
	typ := r.PathValue("type")
	handler, ok := s.callbacks[typ].(provider.InboundReceiver)
	if !ok {
		writeProblem(w, r, http.StatusNotFound, "not-found", "this provider type takes no inbound messages")
		return
	}
	cfg, body, ok := s.begin(w, r, typ)
	if !ok {
		return
	}
	msgs, err := handler.ReceiveInbound(r.Context(), provider.CallbackRequest{
		Config: cfg, URL: s.publicURL(r), Header: r.Header, Body: body, Now: s.opts.Now(),
	})
	if s.refused(w, r, cfg, typ, err) {
		return
	}
	for _, m := range msgs {
		if cfg.TenantID == "" {
			s.log.InfoContext(r.Context(), "inbound message to a system default's number not kept", "provider_id", cfg.ID)
			continue
		}
		kw := message.SMSKeyword(m.Text)
		// the person changes their own subscription: the audit log names them, not a key
		ctx := db.WithActor(r.Context(), db.Actor{Kind: "recipient", ID: "inbound " + typ + " " + m.ProviderMessageID, TenantID: cfg.TenantID})
		id, dup, err := s.store.RecordInbound(ctx, store.Inbound{TenantID: cfg.TenantID, ConfigID: cfg.ID, ProviderType: typ, Message: m, Keyword: kw})
		if err != nil {
			s.log.ErrorContext(r.Context(), "inbound message not stored", "provider_id", cfg.ID, "tenant_id", cfg.TenantID, "err", err)
			s.reject(w, r, typ, http.StatusServiceUnavailable, "unavailable", "the message could not be stored; retry")
			return
		}
		outcome := "inbound"
		if dup {
			outcome = "duplicate"
		}
		metrics.Callbacks.WithLabelValues(typ, outcome).Inc()
		s.log.InfoContext(r.Context(), "inbound message", "provider_id", cfg.ID, "tenant_id", cfg.TenantID, "message_id", id, "keyword", kw, "duplicate", dup)
	}
	ct, answer := handler.InboundAnswer()
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(answer)
}
