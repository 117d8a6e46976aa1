package dashboard

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/templates"
	"github.com/logicspike/comms/pkg/message"
)

// templateList lists the tenant's templates (GET /v1/templates).
func (h *Handler) templateList(w http.ResponseWriter, r *http.Request, sess domain.Session) {
	var page struct {
		Data []domain.Template `json:"data"`
		Next string            `json:"next_cursor"`
	}
	if prob, err := h.call(r, sess, http.MethodGet, "/v1/templates?cursor="+url.QueryEscape(r.URL.Query().Get("cursor")), nil, &page); err != nil || prob != nil {
		h.failCall(w, r, prob, err)
		return
	}
	h.render(w, r, http.StatusOK, "templates.html", map[string]any{"Templates": page.Data, "Next": page.Next})
}

// template shows a template's versions, each activatable, and a preview form: a version and
// locale rendered with the data typed, exactly as a send would render them.
func (h *Handler) template(w http.ResponseWriter, r *http.Request, sess domain.Session) {
	h.templatePage(w, r, sess, nil, nil, "")
}

func (h *Handler) templatePage(w http.ResponseWriter, r *http.Request, sess domain.Session, f *form, p *templates.Preview, frame string) {
	base := "/v1/templates/" + url.PathEscape(r.PathValue("key"))
	var t domain.Template
	var versions struct {
		Data []domain.TemplateVersion `json:"data"`
	}
	for _, c := range []struct {
		path string
		out  any
	}{{base, &t}, {base + "/versions", &versions}} {
		if prob, err := h.call(r, sess, http.MethodGet, c.path, nil, c.out); err != nil || prob != nil {
			h.failCall(w, r, prob, err)
			return
		}
	}
	if f == nil {
		f = &form{Values: map[string]string{"data": "{}"}}
	}
	// The one page with a script: its own, for the live preview, and the fetches it makes.
	w.Header().Set("Content-Security-Policy", strings.Replace(csp, "default-src 'none';", "default-src 'none'; script-src 'self'; connect-src 'self';", 1))
	h.render(w, r, http.StatusOK, "template.html", map[string]any{"T": t, "Versions": versions.Data, "Form": f, "Preview": p, "Frame": frame,
		"Activated": r.URL.Query().Get("activated")})
}

// previewInput reads the preview form (or the HTML frame's query): version, locale and data.
func previewInput(get func(string) string, values map[string]string) (templates.PreviewInput, *api.Problem) {
	var in templates.PreviewInput
	for _, name := range []string{"version", "locale", "data"} {
		values[name] = strings.TrimSpace(get(name))
	}
	in.Locale = values["locale"]
	if values["version"] != "" {
		in.Version, _ = strconv.Atoi(values["version"])
	}
	if values["data"] != "" {
		if err := json.Unmarshal([]byte(values["data"]), &in.Data); err != nil || in.Data == nil {
			return in, &api.Problem{Title: "Invalid data", Errors: []message.FieldError{{Field: "data", Message: "must be a JSON object such as {\"name\": \"Ada\"}"}}}
		}
	}
	return in, nil
}

// preview renders the template of the request's path with the version, locale and data get
// reads (POST /v1/templates/{key}/preview).
func (h *Handler) preview(r *http.Request, sess domain.Session, get func(string) string, values map[string]string) (templates.Preview, *api.Problem, error) {
	var p templates.Preview
	in, prob := previewInput(get, values)
	if prob != nil {
		return p, prob, nil
	}
	prob, err := h.call(r, sess, http.MethodPost, "/v1/templates/"+url.PathEscape(r.PathValue("key"))+"/preview", in, &p)
	return p, prob, err
}

func (h *Handler) previewTemplate(w http.ResponseWriter, r *http.Request, sess domain.Session) {
	values := map[string]string{}
	p, prob, err := h.preview(r, sess, r.PostFormValue, values)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if prob != nil {
		h.templatePage(w, r, sess, refused("preview", values, prob), nil, "")
		return
	}
	frame := ""
	if p.HTML != "" {
		q := url.Values{"version": {strconv.Itoa(p.Version)}, "locale": {p.Locale}, "data": {values["data"]}}
		frame = "/ui/templates/" + url.PathEscape(r.PathValue("key")) + "/html?" + q.Encode()
	}
	h.templatePage(w, r, sess, &form{Name: "preview", Values: values}, &p, frame)
}

// previewCSP lets a template's HTML show as the email would, inline styles and embedded images
// included, in a sandbox: no script, no forms, no origin of its own, nothing fetched.
const previewCSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"

// previewHTML serves a version's HTML rendered with the data in the query, for the preview's
// frame.
func (h *Handler) previewHTML(w http.ResponseWriter, r *http.Request, sess domain.Session) {
	p, prob, err := h.preview(r, sess, r.URL.Query().Get, map[string]string{})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if prob != nil {
		http.Error(w, "the preview did not render: "+prob.Title, http.StatusUnprocessableEntity)
		return
	}
	w.Header().Set("Content-Security-Policy", previewCSP)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(p.HTML))
}

// activateTemplate makes a version the one its locale sends.
func (h *Handler) activateTemplate(w http.ResponseWriter, r *http.Request, sess domain.Session) {
	key := url.PathEscape(r.PathValue("key"))
	prob, err := h.call(r, sess, http.MethodPost, "/v1/templates/"+key+"/versions/"+url.PathEscape(r.PathValue("n"))+"/activate", nil, nil)
	switch {
	case err != nil:
		h.fail(w, r, err)
	case prob != nil:
		h.templatePage(w, r, sess, refused("activate", map[string]string{"data": "{}"}, prob), nil, "")
	default:
		http.Redirect(w, r, "/ui/templates/"+key+"?activated="+url.QueryEscape(r.PathValue("n")), http.StatusSeeOther)
	}
}
