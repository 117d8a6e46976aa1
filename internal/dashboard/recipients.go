package dashboard

import (
	"errors"
	"net/http"
	"strings"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/recipients"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/message"
)

// recipientList shows the tenant's categories and its recipient profiles, 50 at a time, or those
// found by id, email or phone.
func (h *Handler) recipientList(w http.ResponseWriter, r *http.Request, sess domain.Session) {
	tenantID := sess.Key.TenantID
	cats, err := h.svc.Recipients.Categories(r.Context(), tenantID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	people, next, err := h.svc.Recipients.Profiles(r.Context(), tenantID, domain.RecipientFilter{Limit: 50, Cursor: r.URL.Query().Get("cursor"), Find: q})
	if err != nil && !errors.Is(err, store.ErrBadCursor) {
		h.fail(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "recipients.html", map[string]any{"Categories": api.Views(cats, api.CategoryView),
		"People": api.Views(people, api.RecipientView), "Next": next, "Q": q})
}

// recipient shows one profile: its fields, its preferences on every category and channel, and
// the latest messages sent to it.
func (h *Handler) recipient(w http.ResponseWriter, r *http.Request, sess domain.Session) {
	tenantID, id := sess.Key.TenantID, r.PathValue("id")
	x, err := h.svc.Recipients.Profile(r.Context(), tenantID, id)
	if errors.Is(err, store.ErrNotFound) || recipients.ValidID(id) != "" {
		h.render(w, r, http.StatusNotFound, "recipient.html", map[string]any{"Missing": id})
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	prefs, err := h.svc.Recipients.Preferences(r.Context(), tenantID, domain.PreferenceSubject{RecipientID: id})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	cats, err := h.svc.Recipients.Categories(r.Context(), tenantID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	msgs, _, err := h.svc.Intake.Messages(r.Context(), tenantID, domain.MessageFilter{RecipientID: id, Limit: 20})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	type choice struct {
		Category        api.Category
		Email, SMS, Set bool
	}
	var rows []choice
	for _, c := range cats {
		byCh := prefs.Categories[c.Key]
		_, set := prefs.Chosen[c.Key]
		rows = append(rows, choice{Category: api.CategoryView(c), Email: byCh[message.Email], SMS: byCh[message.SMS], Set: set})
	}
	h.render(w, r, http.StatusOK, "recipient.html", map[string]any{"X": api.RecipientView(x), "Choices": rows, "Messages": msgs})
}
