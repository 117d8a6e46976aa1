package dashboard

import (
	"net/http"
	"net/url"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/domain"
)

// suppressions lists the tenant's suppressed recipients (GET /v1/suppressions, 50 at a time)
// with a form to add one and a button to remove each.
func (h *Handler) suppressions(w http.ResponseWriter, r *http.Request, sess domain.Session) {
	h.suppressionsPage(w, r, sess, nil)
}

func (h *Handler) suppressionsPage(w http.ResponseWriter, r *http.Request, sess domain.Session, f *form) {
	q := url.Values{}
	for _, name := range []string{"channel", "recipient", "cursor"} {
		if v := r.URL.Query().Get(name); v != "" {
			q.Set(name, v)
		}
	}
	var page struct {
		Data []api.Suppression `json:"data"`
		Next string            `json:"next_cursor"`
	}
	prob, err := h.call(r, sess, http.MethodGet, "/v1/suppressions?"+q.Encode(), nil, &page)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if f == nil {
		f = &form{}
	}
	if prob != nil { // a bad filter: say which, and show the form again
		f = refused("filter", map[string]string{}, prob)
	}
	h.render(w, r, http.StatusOK, "suppressions.html", map[string]any{"List": page.Data, "Next": page.Next, "Form": f,
		"Channel": q.Get("channel"), "Recipient": q.Get("recipient"), "Done": r.URL.Query().Get("done")})
}

func (h *Handler) addSuppression(w http.ResponseWriter, r *http.Request, sess domain.Session) {
	values := map[string]string{}
	body := map[string]any{"channel": field(r, "channel", values), "recipient": field(r, "recipient", values)}
	if d := field(r, "detail", values); d != "" {
		body["detail"] = d
	}
	h.suppressionChange(w, r, sess, http.MethodPost, "/v1/suppressions", body, values, "added")
}

func (h *Handler) removeSuppression(w http.ResponseWriter, r *http.Request, sess domain.Session) {
	values := map[string]string{}
	path := "/v1/suppressions/" + url.PathEscape(field(r, "channel", values)) + "/" + url.PathEscape(field(r, "recipient", values))
	h.suppressionChange(w, r, sess, http.MethodDelete, path, nil, values, "removed")
}

func (h *Handler) suppressionChange(w http.ResponseWriter, r *http.Request, sess domain.Session, method, path string, body any, values map[string]string, done string) {
	prob, err := h.call(r, sess, method, path, body, nil)
	switch {
	case err != nil:
		h.fail(w, r, err)
	case prob != nil:
		h.suppressionsPage(w, r, sess, refused(done, values, prob))
	default:
		http.Redirect(w, r, "/ui/suppressions?done="+url.QueryEscape(done+" "+values["recipient"]), http.StatusSeeOther)
	}
}
