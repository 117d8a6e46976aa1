package api

import (
	"net/http"
	"time"

	"github.com/logicspike/comms/internal/domain"
)

// Plan is a plan's retention defaults, as the admin API shows them; an absent one is the global
// default at creation and the tenant's own on a move.
type Plan struct {
	Name                    string    `json:"name"`
	ContentRetentionSeconds *int64    `json:"content_retention_seconds,omitempty"`
	HistoryRetentionSeconds *int64    `json:"history_retention_seconds,omitempty"`
	AuditRetentionSeconds   *int64    `json:"audit_retention_seconds,omitempty"`
	UpdatedAt               time.Time `json:"updated_at"`
}

// PlanInput is the body of PUT /admin/plans/{name}: the whole plan.
type PlanInput struct {
	ContentRetentionSeconds *int64 `json:"content_retention_seconds"`
	HistoryRetentionSeconds *int64 `json:"history_retention_seconds"`
	AuditRetentionSeconds   *int64 `json:"audit_retention_seconds"`
}

// PlanView is p as the API shows it.
func PlanView(p domain.Plan) Plan {
	return Plan{Name: p.Name, ContentRetentionSeconds: p.ContentRetentionSeconds, HistoryRetentionSeconds: p.HistoryRetentionSeconds,
		AuditRetentionSeconds: p.AuditRetentionSeconds, UpdatedAt: p.UpdatedAt}
}

// putPlan creates or replaces a plan's retention defaults.
func (s *Server) putPlan(w http.ResponseWriter, r *http.Request) {
	var in PlanInput
	if prob := decodeJSON(r, 4<<10, &in); prob != nil {
		writeProblem(w, r, prob)
		return
	}
	p, err := s.Accounts.PutPlan(r.Context(), domain.Plan{Name: r.PathValue("name"), ContentRetentionSeconds: in.ContentRetentionSeconds,
		HistoryRetentionSeconds: in.HistoryRetentionSeconds, AuditRetentionSeconds: in.AuditRetentionSeconds})
	s.answer(w, r, http.StatusOK, PlanView(p), err, "the plan store (nothing changed)", nil)
}

// listPlans lists every plan.
func (s *Server) listPlans(w http.ResponseWriter, r *http.Request) {
	list, err := s.Accounts.Plans(r.Context())
	writePage(s, w, r, "plans", Views(list, PlanView), "", err)
}
