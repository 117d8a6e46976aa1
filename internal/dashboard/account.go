package dashboard

import (
	"net/http"
	"net/url"
	"time"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/domain"
)

// keys lists the tenant's API keys (GET /v1/api-keys) with a form to create one, whose secret
// is shown once on the page that answers the form, and a button to revoke each.
func (h *Handler) keys(w http.ResponseWriter, r *http.Request, sess domain.Session) {
	h.keysPage(w, r, sess, nil, "")
}

func (h *Handler) keysPage(w http.ResponseWriter, r *http.Request, sess domain.Session, f *form, secret string) {
	var list struct {
		Data []api.APIKey `json:"data"`
	}
	if prob, err := h.call(r, sess, http.MethodGet, "/v1/api-keys", nil, &list); err != nil || prob != nil {
		h.failCall(w, r, prob, err)
		return
	}
	if f == nil {
		f = &form{}
	}
	h.render(w, r, http.StatusOK, "keys.html", map[string]any{"Keys": list.Data, "Form": f, "Secret": secret, "Now": time.Now()})
}

func (h *Handler) createKey(w http.ResponseWriter, r *http.Request, sess domain.Session) {
	values := map[string]string{}
	body := map[string]any{"name": field(r, "name", values)}
	if d, err := time.Parse(time.DateOnly, field(r, "expires", values)); err == nil {
		body["expires_at"] = d.Format(time.RFC3339)
	}
	var created struct {
		Secret string `json:"secret"`
	}
	prob, err := h.call(r, sess, http.MethodPost, "/v1/api-keys", body, &created)
	switch {
	case err != nil:
		h.fail(w, r, err)
	case prob != nil:
		h.keysPage(w, r, sess, refused("create", values, prob), "")
	default:
		h.keysPage(w, r, sess, nil, created.Secret)
	}
}

// revokeKey revokes a key; revoking the session's own key ends the session.
func (h *Handler) revokeKey(w http.ResponseWriter, r *http.Request, sess domain.Session) {
	id := r.PostFormValue("id")
	prob, err := h.call(r, sess, http.MethodDelete, "/v1/api-keys/"+url.PathEscape(id), nil, nil)
	switch {
	case err != nil || prob != nil:
		h.failCall(w, r, prob, err)
	case id == sess.Key.ID:
		http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
	default:
		http.Redirect(w, r, "/ui/keys", http.StatusSeeOther)
	}
}

// audit lists the changes made to the tenant's account (GET /v1/audit), newest first.
func (h *Handler) audit(w http.ResponseWriter, r *http.Request, sess domain.Session) {
	q := url.Values{}
	for _, name := range []string{"action", "cursor"} {
		if v := r.URL.Query().Get(name); v != "" {
			q.Set(name, v)
		}
	}
	var page struct {
		Data []api.AuditEntry `json:"data"`
		Next string           `json:"next_cursor"`
	}
	if prob, err := h.call(r, sess, http.MethodGet, "/v1/audit?"+q.Encode(), nil, &page); err != nil || prob != nil {
		h.failCall(w, r, prob, err)
		return
	}
	h.render(w, r, http.StatusOK, "audit.html", map[string]any{"Entries": page.Data, "Next": page.Next, "Action": q.Get("action")})
}
