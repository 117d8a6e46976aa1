package dashboard

import (
	"net/http"
	"net/url"
	"time"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/pkg/message"
)

// tenants lists the tenants (GET /admin/tenants, 100 at a time), each with a settings form.
func (h *Handler) tenants(w http.ResponseWriter, r *http.Request, sess domain.Session) {
	h.tenantsPage(w, r, sess, "", nil)
}

func (h *Handler) tenantsPage(w http.ResponseWriter, r *http.Request, sess domain.Session, id string, f *form) {
	var page struct {
		Data []api.Tenant `json:"data"`
		Next string       `json:"next_cursor"`
	}
	path := "/admin/tenants?cursor=" + url.QueryEscape(r.URL.Query().Get("cursor"))
	if prob, err := h.call(r, sess, http.MethodGet, path, nil, &page); err != nil || prob != nil {
		h.failCall(w, r, prob, err)
		return
	}
	if f == nil {
		f = &form{}
	}
	h.render(w, r, http.StatusOK, "tenants.html", map[string]any{"Tenants": page.Data, "Next": page.Next, "Open": id, "Form": f,
		"Saved": r.URL.Query().Get("saved"), "Channels": []message.Channel{message.Email, message.SMS}})
}

// updateTenant applies a tenant's settings form (PATCH /admin/tenants/{id}). An empty hard
// limit removes the channel's quota.
func (h *Handler) updateTenant(w http.ResponseWriter, r *http.Request, sess domain.Session) {
	id := r.PathValue("id")
	values := map[string]string{}
	patch := map[string]any{"plan": field(r, "plan", values), "status": field(r, "status", values),
		"allow_system_fallback": r.PostFormValue("allow_system_fallback") == "on"}
	for _, name := range []string{"rate_per_second", "rate_burst", "max_attempts"} {
		if v := field(r, name, values); v != "" {
			patch[name] = number(v)
		}
	}
	quotas := map[string]any{}
	for _, ch := range []string{"email", "sms"} {
		hard, soft := field(r, "quotas."+ch+".hard_limit", values), field(r, "quotas."+ch+".soft_limit", values)
		if hard == "" {
			quotas[ch] = nil
			continue
		}
		q := map[string]any{"hard_limit": number(hard)}
		if soft != "" {
			q["soft_limit"] = number(soft)
		}
		quotas[ch] = q
	}
	patch["quotas"] = quotas
	prob, err := h.call(r, sess, http.MethodPatch, "/admin/tenants/"+url.PathEscape(id), patch, nil)
	switch {
	case err != nil:
		h.fail(w, r, err)
	case prob != nil:
		h.tenantsPage(w, r, sess, id, refused(id, values, prob))
	default:
		http.Redirect(w, r, "/ui/ops/tenants?saved="+url.QueryEscape(id), http.StatusSeeOther)
	}
}

// dlqFilter is the dead-letter page's filter, from its query or its posted form: the API's
// filter fields, with days (UTC) for from and to.
func dlqFilter(get func(string) string) (url.Values, map[string]any) {
	q, f := url.Values{}, map[string]any{}
	for _, name := range []string{"tenant_id", "provider", "error_code"} {
		if v := get(name); v != "" {
			q.Set(name, v)
			f[name] = v
		}
	}
	for name, shift := range map[string]int{"from": 0, "to": 1} {
		if d, err := time.Parse(time.DateOnly, get(name)); err == nil {
			q.Set(name, d.Format(time.DateOnly))
			f[name] = d.AddDate(0, 0, shift).Format(time.RFC3339)
		}
	}
	return q, f
}

// deadLetters lists dead letters matching the filter (GET /admin/dlq), newest first.
func (h *Handler) deadLetters(w http.ResponseWriter, r *http.Request, sess domain.Session) {
	q, _ := dlqFilter(r.URL.Query().Get)
	h.deadLettersPage(w, r, sess, q, nil, nil)
}

func (h *Handler) deadLettersPage(w http.ResponseWriter, r *http.Request, sess domain.Session, q url.Values, rep *api.Replay, f *form) {
	query := url.Values{"limit": {"50"}}
	_, filter := dlqFilter(q.Get)
	for k, v := range filter {
		query.Set(k, v.(string))
	}
	if c := r.URL.Query().Get("cursor"); c != "" {
		query.Set("cursor", c)
	}
	var page struct {
		Data []api.DeadLetter `json:"data"`
		Next string           `json:"next_cursor"`
	}
	prob, err := h.call(r, sess, http.MethodGet, "/admin/dlq?"+query.Encode(), nil, &page)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if f == nil && prob != nil {
		f = refused("filter", map[string]string{}, prob)
	}
	if f == nil {
		f = &form{}
	}
	h.render(w, r, http.StatusOK, "dlq.html", map[string]any{"Entries": page.Data, "Next": page.Next, "Q": q, "Query": q.Encode(),
		"Replay": rep, "Form": f})
}

// replay counts what the filter selects (a dry run, which asks for confirmation) or, confirmed,
// replays it (POST /admin/dlq/replay).
func (h *Handler) replay(w http.ResponseWriter, r *http.Request, sess domain.Session) {
	q, filter := dlqFilter(r.PostFormValue)
	confirmed := r.PostFormValue("confirm") == "replay"
	body := map[string]any{"filter": filter, "dry_run": !confirmed, "all": len(filter) == 0}
	var rep api.Replay
	prob, err := h.call(r, sess, http.MethodPost, "/admin/dlq/replay", body, &rep)
	switch {
	case err != nil:
		h.fail(w, r, err)
	case prob != nil:
		h.deadLettersPage(w, r, sess, q, nil, refused("replay", map[string]string{}, prob))
	default:
		h.deadLettersPage(w, r, sess, q, &rep, nil)
	}
}
