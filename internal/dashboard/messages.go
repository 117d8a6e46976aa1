package dashboard

import (
	"errors"
	"net/http"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/intake"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/message"
)

// messages searches the tenant's messages by recipient, status, day and template, newest first, a page of
// 50 at a time (the same query as GET /v1/messages).
func (h *Handler) messages(w http.ResponseWriter, r *http.Request, sess domain.Session) {
	q := r.URL.Query()
	f := domain.MessageFilter{Recipient: q.Get("to"), Status: message.Status(q.Get("status")), Template: q.Get("template"), Cursor: q.Get("cursor"), Limit: 50}
	if f.Status != "" && !f.Status.Valid() {
		f.Status = ""
	}
	if d, err := time.Parse(time.DateOnly, q.Get("day")); err == nil {
		f.CreatedAfter, f.CreatedBefore = d, d.AddDate(0, 0, 1)
	}
	list, next, err := h.svc.Intake.Messages(r.Context(), sess.Key.TenantID, f)
	if errors.Is(err, store.ErrBadCursor) {
		f.Cursor = ""
		list, next, err = h.svc.Intake.Messages(r.Context(), sess.Key.TenantID, f)
	}
	var tpls []domain.Template
	if err == nil {
		tpls, _, err = h.svc.Templates.List(r.Context(), sess.Key.TenantID, "", false, 200)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "messages.html", map[string]any{"Messages": list, "Next": next, "To": f.Recipient,
		"Status": string(f.Status), "Day": q.Get("day"), "Statuses": statuses, "Template": f.Template, "Templates": tpls})
}

var statuses = []message.Status{message.Scheduled, message.Queued, message.Sending, message.Sent, message.Delivered,
	message.Failed, message.Undelivered, message.Bounced, message.Complained, message.Canceled}

// message shows one message with its timeline, the provider's events included.
func (h *Handler) message(w http.ResponseWriter, r *http.Request, sess domain.Session) {
	m, err := h.svc.Intake.Message(r.Context(), sess.Key.TenantID, r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, intake.ErrExpired) {
		h.render(w, r, http.StatusNotFound, "message.html", map[string]any{"Missing": r.PathValue("id"),
			"Expired": errors.Is(err, intake.ErrExpired)})
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "message.html", map[string]any{"M": m})
}
