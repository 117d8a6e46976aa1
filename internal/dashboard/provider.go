package dashboard

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/providerconfig"
)

// provider is one config's page: its health, and forms to edit, disable, replace credentials
// (re-tested before anything changes), test-send and delete.
func (h *Handler) provider(w http.ResponseWriter, r *http.Request, sess domain.Session) {
	h.providerPage(w, r, sess, nil, nil)
}

func (h *Handler) providerPage(w http.ResponseWriter, r *http.Request, sess domain.Session, f *form, tested *providerconfig.TestResult) {
	var p api.Provider
	if prob, err := h.call(r, sess, http.MethodGet, providersBase(sess)+"/"+url.PathEscape(r.PathValue("id")), nil, &p); err != nil || prob != nil {
		h.failCall(w, r, prob, err)
		return
	}
	var pt providerType
	for _, t := range providerTypes() {
		if t.Type == p.Type {
			pt = t
		}
	}
	if f == nil {
		f = &form{}
	}
	h.render(w, r, http.StatusOK, "provider.html", map[string]any{"P": p, "Type": pt, "Form": f, "Tested": tested,
		"Saved": r.URL.Query().Get("saved") != ""})
}

// updateProvider applies the settings form (name, priority, rate limit, enabled) or, from the
// credentials form, new credentials and sender, which the API test-sends before storing.
func (h *Handler) updateProvider(w http.ResponseWriter, r *http.Request, sess domain.Session) {
	path := providersBase(sess) + "/" + url.PathEscape(r.PathValue("id"))
	values := map[string]string{}
	patch := map[string]any{}
	which := r.PostFormValue("form")
	switch which {
	case "credentials":
		var p api.Provider
		if prob, err := h.call(r, sess, http.MethodGet, path, nil, &p); err != nil || prob != nil {
			h.failCall(w, r, prob, err)
			return
		}
		for _, t := range providerTypes() {
			if t.Type == p.Type {
				patch["credentials"] = object(r, "credentials", t.Credentials, values)
				if len(t.Sender) > 0 {
					patch["sender"] = object(r, "sender", t.Sender, values)
				}
			}
		}
		patch["test_recipient"] = field(r, "test_recipient", values)
	default:
		which = "settings"
		patch["name"] = field(r, "name", values)
		patch["enabled"] = r.PostFormValue("enabled") == "on"
		for _, name := range []string{"priority", "rate_limit_per_second"} {
			if v := field(r, name, values); v != "" {
				patch[name] = number(v)
			}
		}
	}
	prob, err := h.call(r, sess, http.MethodPatch, path, patch, nil)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if prob != nil {
		h.providerPage(w, r, sess, refused(which, values, prob), nil)
		return
	}
	http.Redirect(w, r, "/ui/providers/"+url.PathEscape(r.PathValue("id"))+"?saved=1", http.StatusSeeOther)
}

// testProvider sends a test message through the stored config and shows the provider's answer.
func (h *Handler) testProvider(w http.ResponseWriter, r *http.Request, sess domain.Session) {
	values := map[string]string{}
	var res providerconfig.TestResult
	prob, err := h.call(r, sess, http.MethodPost, providersBase(sess)+"/"+url.PathEscape(r.PathValue("id"))+"/test",
		map[string]any{"test_recipient": field(r, "test_recipient", values)}, &res)
	switch {
	case err != nil:
		h.fail(w, r, err)
	case prob != nil:
		h.providerPage(w, r, sess, refused("test", values, prob), nil)
	default:
		h.providerPage(w, r, sess, nil, &res)
	}
}

// deleteProvider deletes the config once the form's confirmation box is ticked.
func (h *Handler) deleteProvider(w http.ResponseWriter, r *http.Request, sess domain.Session) {
	if r.PostFormValue("confirm") != "on" {
		h.providerPage(w, r, sess, &form{Name: "delete", Errors: map[string]string{"confirm": "Tick the box to confirm."}}, nil)
		return
	}
	prob, err := h.call(r, sess, http.MethodDelete, providersBase(sess)+"/"+url.PathEscape(r.PathValue("id")), nil, nil)
	if err != nil || prob != nil {
		h.failCall(w, r, prob, err)
		return
	}
	http.Redirect(w, r, "/ui/providers?deleted="+url.QueryEscape(strings.TrimSpace(r.PostFormValue("name"))), http.StatusSeeOther)
}
