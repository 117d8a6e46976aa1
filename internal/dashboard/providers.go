package dashboard

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// providerType is one provider type's Save & Test form, made from its registration: a new
// adapter appears here without page code.
type providerType struct {
	Type, Name          string
	Channels            []message.Channel
	Credentials, Sender []provider.FormField
}

func providerTypes() []providerType {
	var out []providerType
	for _, r := range provider.Registrations() {
		if r.OperatorOnly {
			continue
		}
		out = append(out, providerType{Type: r.Type, Name: r.Name, Channels: r.Channels,
			Credentials: provider.FormFields(r.Credentials), Sender: provider.FormFields(r.Sender)})
	}
	return out
}

// providersBase is the API collection the session manages: its tenant's configs, or the
// system defaults for an operator.
func providersBase(sess domain.Session) string {
	if sess.Key.Kind == domain.KindAdmin {
		return "/admin/providers"
	}
	return "/v1/providers"
}

func (h *Handler) providers(w http.ResponseWriter, r *http.Request, sess domain.Session) {
	h.providersPage(w, r, sess, nil)
}

func (h *Handler) providersPage(w http.ResponseWriter, r *http.Request, sess domain.Session, f *form) {
	var list struct {
		Data []api.Provider `json:"data"`
	}
	if prob, err := h.call(r, sess, http.MethodGet, providersBase(sess), nil, &list); err != nil || prob != nil {
		h.failCall(w, r, prob, err)
		return
	}
	if f == nil {
		f = &form{}
	}
	h.render(w, r, http.StatusOK, "providers.html", map[string]any{"Providers": list.Data, "Types": providerTypes(), "Form": f,
		"System": sess.Key.Kind == domain.KindAdmin, "Saved": r.URL.Query().Get("saved"), "Deleted": r.URL.Query().Get("deleted")})
}

// createProvider is Save & Test: the API test-sends with the typed credentials and stores the
// config only if the provider accepts; otherwise the form comes back with the provider's reason.
func (h *Handler) createProvider(w http.ResponseWriter, r *http.Request, sess domain.Session) {
	typ := r.PostFormValue("type")
	var pt *providerType
	for _, t := range providerTypes() {
		if t.Type == typ {
			pt = &t
		}
	}
	if pt == nil {
		http.Error(w, "unknown provider type", http.StatusBadRequest)
		return
	}
	values := map[string]string{}
	in := map[string]any{"type": typ, "name": field(r, "name", values), "channel": field(r, "channel", values)}
	if v := field(r, "test_recipient", values); v != "" {
		in["test_recipient"] = v
	}
	if v := field(r, "test_subscription", values); v != "" {
		in["test_subscription"] = jsonOrString(v)
	}
	in["credentials"], in["sender"] = object(r, "credentials", pt.Credentials, values), object(r, "sender", pt.Sender, values)
	if p := field(r, "priority", values); p != "" {
		in["priority"] = number(p)
	}
	var created api.Provider
	prob, err := h.call(r, sess, http.MethodPost, providersBase(sess), in, &created)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if prob != nil {
		h.providersPage(w, r, sess, refused(typ, values, prob))
		return
	}
	http.Redirect(w, r, "/ui/providers?saved="+url.QueryEscape(created.Name), http.StatusSeeOther)
}

// object gathers the posted fields prefix.name into the JSON object the API takes. Empty
// fields are left out; secrets are not kept to show again.
func object(r *http.Request, prefix string, fields []provider.FormField, values map[string]string) map[string]any {
	out := map[string]any{}
	for _, f := range fields {
		name := prefix + "." + f.Name
		v := strings.TrimSpace(r.PostFormValue(name))
		if !f.Secret {
			values[name] = v
		}
		switch {
		case v == "":
		case f.Number:
			out[f.Name] = number(v)
		case f.List:
			out[f.Name] = list(v)
		default:
			out[f.Name] = v
		}
	}
	return out
}
