package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/recipients"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/message"
)

// Erasure is the erasure of one recipient, as the API shows it. It never shows the address.
type Erasure struct {
	ID      string          `json:"id"`
	Channel message.Channel `json:"channel"`
	// RecipientHash is the keyed hash that is all comms keeps of the address (an opt-out holds
	// through it), as the audit log and the suppression list name the recipient.
	RecipientHash string        `json:"recipient_hash"`
	Status        string        `json:"status"` // running or done
	Counts        ErasureCounts `json:"counts"`
	CreatedAt     time.Time     `json:"created_at"`
	FinishedAt    *time.Time    `json:"finished_at,omitempty"`
}

// ErasureCounts is what an erasure changed so far.
type ErasureCounts struct {
	Messages          int64 `json:"messages"`
	Canceled          int64 `json:"canceled"`
	Events            int64 `json:"events"`
	Callbacks         int64 `json:"callbacks"`
	DeadLetters       int64 `json:"dead_letters"`
	WebhookDeliveries int64 `json:"webhook_deliveries"`
	Suppressions      int64 `json:"suppressions"`
}

// ErasureView is e as the API shows it.
func ErasureView(e domain.Erasure) Erasure {
	c := e.Counts
	return Erasure{ID: e.ID, Channel: e.Channel, RecipientHash: e.RecipientHash, Status: e.Status,
		Counts: ErasureCounts{Messages: c.Messages, Canceled: c.Canceled, Events: c.Events, Callbacks: c.Callbacks,
			DeadLetters: c.DeadLetters, WebhookDeliveries: c.WebhookDeliveries, Suppressions: c.Suppressions},
		CreatedAt: e.CreatedAt, FinishedAt: e.FinishedAt}
}

type createErasureRequest struct {
	Recipient string `json:"recipient"`
}

// createErasure starts erasing a recipient (202); asking again while it runs answers the same
// erasure (200).
func (s *Server) createErasure(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	var req createErasureRequest
	if prob := decodeJSON(r, 4<<10, &req); prob != nil {
		writeProblem(w, r, prob)
		return
	}
	if req.Recipient == "" {
		writeProblem(w, r, fieldProblem(http.StatusUnprocessableEntity, "validation", "Invalid request",
			message.FieldError{Field: "recipient", Message: "is required: an email address or an E.164 phone number"}))
		return
	}
	if bad := checkSuppressionTarget(recipients.AddressChannel(req.Recipient), req.Recipient); len(bad) > 0 {
		writeProblem(w, r, fieldProblem(http.StatusUnprocessableEntity, "validation", "Invalid request", bad...))
		return
	}
	e, created, err := s.Recipients.Erase(r.Context(), p.TenantID, req.Recipient)
	if err != nil {
		s.log.ErrorContext(r.Context(), "create erasure failed", "tenant_id", p.TenantID, "err", err)
		writeProblem(w, r, unavailable("the erasure could not be recorded; retry shortly"))
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusAccepted
	}
	w.Header().Set("Location", "/v1/erasures/"+e.ID)
	writeJSON(w, status, ErasureView(e))
}

// getErasure shows an erasure's progress.
func (s *Server) getErasure(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	e, err := s.Recipients.Erasure(r.Context(), p.TenantID, r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		writeProblem(w, r, errNotFound)
		return
	}
	if err != nil {
		s.log.ErrorContext(r.Context(), "get erasure failed", "tenant_id", p.TenantID, "err", err)
		writeProblem(w, r, unavailable("erasures are unreachable; retry shortly"))
		return
	}
	writeJSON(w, http.StatusOK, ErasureView(e))
}

// listErasures lists the tenant's erasures, newest first: what a tenant shows when asked whether
// a person was forgotten. recipient finds a person's by the keyed hash, as the address is gone.
func (s *Server) listErasures(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	f := domain.ErasureFilter{Limit: 50}
	bad := pageQuery(r.URL.Query(), &f.Limit, &f.Cursor, func(name, v string) (string, bool) {
		switch name {
		case "status":
			f.Status = v
			if v != domain.ErasureRunning && v != domain.ErasureDone {
				return `must be "running" or "done"`, true
			}
		case "recipient":
			f.Channel, f.Recipient = recipients.AddressChannel(v), v
			if bad := checkSuppressionTarget(f.Channel, v); len(bad) > 0 {
				return bad[0].Message, true
			}
		default:
			return "", false
		}
		return "", true
	})
	if len(bad) > 0 {
		writeProblem(w, r, fieldProblem(http.StatusBadRequest, "validation", "Invalid query", bad...))
		return
	}
	list, next, err := s.Recipients.Erasures(r.Context(), p.TenantID, f)
	writePage(s, w, r, "erasures", Views(list, ErasureView), next, err)
}
