package dashboard

import (
	"net/http"
	"net/url"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/webhooks"
	"github.com/logicspike/comms/pkg/event"
)

// webhookList lists the tenant's event endpoints (GET /v1/webhook-endpoints) with a form to add
// one; the new endpoint's signing secret is shown once, on the page that answers the form.
func (h *Handler) webhookList(w http.ResponseWriter, r *http.Request, sess domain.Session) {
	h.webhookListPage(w, r, sess, nil, nil)
}

func (h *Handler) webhookListPage(w http.ResponseWriter, r *http.Request, sess domain.Session, f *form, created *api.WebhookEndpointWithSecret) {
	var list struct {
		Data []api.WebhookEndpoint `json:"data"`
	}
	if prob, err := h.call(r, sess, http.MethodGet, "/v1/webhook-endpoints", nil, &list); err != nil || prob != nil {
		h.failCall(w, r, prob, err)
		return
	}
	if f == nil {
		f = &form{}
	}
	h.render(w, r, http.StatusOK, "webhooks.html", map[string]any{"Endpoints": list.Data, "Form": f, "Created": created, "Types": event.Types})
}

func (h *Handler) createWebhook(w http.ResponseWriter, r *http.Request, sess domain.Session) {
	values := map[string]string{}
	in := webhooks.Input{URL: field(r, "url", values), Description: field(r, "description", values)}
	_ = r.ParseForm()
	in.EventTypes = r.PostForm["event_types"]
	for _, t := range in.EventTypes {
		values["event:"+t] = "on"
	}
	var created api.WebhookEndpointWithSecret
	prob, err := h.call(r, sess, http.MethodPost, "/v1/webhook-endpoints", in, &created)
	switch {
	case err != nil:
		h.fail(w, r, err)
	case prob != nil:
		h.webhookListPage(w, r, sess, refused("add", values, prob), nil)
	default:
		h.webhookListPage(w, r, sess, nil, &created)
	}
}

// webhook shows an endpoint and its latest deliveries (GET .../deliveries), each with its
// attempts, and sends a test event on request.
func (h *Handler) webhook(w http.ResponseWriter, r *http.Request, sess domain.Session) {
	h.webhookPage(w, r, sess, nil, nil)
}

func (h *Handler) webhookPage(w http.ResponseWriter, r *http.Request, sess domain.Session, f *form, tested *api.WebhookDelivery) {
	base := "/v1/webhook-endpoints/" + url.PathEscape(r.PathValue("id"))
	var e api.WebhookEndpoint
	var deliveries struct {
		Data []api.WebhookDelivery `json:"data"`
		Next string                `json:"next_cursor"`
	}
	q := url.Values{}
	if s := r.URL.Query().Get("status"); s != "" {
		q.Set("status", s)
	}
	if c := r.URL.Query().Get("cursor"); c != "" {
		q.Set("cursor", c)
	}
	for _, c := range []struct {
		path string
		out  any
	}{{base, &e}, {base + "/deliveries?" + q.Encode(), &deliveries}} {
		if prob, err := h.call(r, sess, http.MethodGet, c.path, nil, c.out); err != nil || prob != nil {
			h.failCall(w, r, prob, err)
			return
		}
	}
	if f == nil {
		f = &form{}
	}
	h.render(w, r, http.StatusOK, "webhook.html", map[string]any{"E": e, "Deliveries": deliveries.Data, "Next": deliveries.Next,
		"Status": q.Get("status"), "Form": f, "Tested": tested})
}

func (h *Handler) testWebhook(w http.ResponseWriter, r *http.Request, sess domain.Session) {
	var d api.WebhookDelivery
	prob, err := h.call(r, sess, http.MethodPost, "/v1/webhook-endpoints/"+url.PathEscape(r.PathValue("id"))+"/test", nil, &d)
	switch {
	case err != nil:
		h.fail(w, r, err)
	case prob != nil:
		h.webhookPage(w, r, sess, refused("test", map[string]string{}, prob), nil)
	default:
		h.webhookPage(w, r, sess, nil, &d)
	}
}
