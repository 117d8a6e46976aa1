package unsubscribe

import (
	"context"
	"crypto/hmac"
	"encoding/base64"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strings"

	"github.com/logicspike/comms/internal/db"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/platform/secrets"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/message"
)

// Store is what the page reads and changes; *store.Store implements it.
type Store interface {
	GetTenant(ctx context.Context, id string) (domain.Tenant, error)
	ListCategories(ctx context.Context, tenantID string) ([]domain.Category, error)
	GetSubjectPreferences(ctx context.Context, tenantID, subject string) (domain.Preferences, error)
	ChoosePreferences(ctx context.Context, tenantID, subject string, ch message.Channel, p domain.Preferences) (domain.Preferences, error)
}

// csp is the dashboard's policy: no script at all, forms only to this origin, never framed.
const csp = "default-src 'none'; style-src 'self'; img-src 'self'; frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// maxForm bounds what a POST to a link may carry.
const maxForm = 16 << 10

// Handler serves the links: POST /u/{token} with List-Unsubscribe=One-Click (RFC 8058) opts the
// person out of the link's category for email and answers 200; GET /u/{token} is the preference
// page, and its form posts back to the same link.
type Handler struct {
	store Store
	ring  *secrets.Ring
	log   *slog.Logger
	mux   *http.ServeMux
}

// NewHandler returns the handler.
func NewHandler(st Store, ring *secrets.Ring, log *slog.Logger) *Handler {
	h := &Handler{store: st, ring: ring, log: log, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /u/{token}", h.page)
	h.mux.HandleFunc("POST /u/{token}", h.post)
	return h
}

// ServeHTTP serves a link, with the page's security headers on every answer.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer") // the link is the person's key: never pass it on
	hd.Set("Cache-Control", "no-store")
	h.mux.ServeHTTP(w, r)
}

// view is what the page shows.
type view struct {
	Tenant     string
	Token      string
	CSRF       string
	Saved      bool
	Unsubbed   string // the category a one-click left, by name
	Categories []row
}

type row struct {
	Key, Name, Description string
	In, Required, Linked   bool
}

func (h *Handler) token(w http.ResponseWriter, r *http.Request) (Token, bool) {
	t, err := Decode(h.ring, r.PathValue("token"))
	if err != nil {
		h.fail(w, http.StatusNotFound, "This link is not valid. Use the latest link from an email you received.")
		return Token{}, false
	}
	return t, true
}

func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	t, ok := h.token(w, r)
	if !ok {
		return
	}
	h.render(w, r, t, false, "")
}

func (h *Handler) post(w http.ResponseWriter, r *http.Request) {
	t, ok := h.token(w, r)
	if !ok {
		return
	}
	// the person changes their own choices: the audit log names them, never a key
	r = r.WithContext(db.WithActor(r.Context(), db.Actor{Kind: "recipient", ID: t.Subject, TenantID: t.TenantID, RequestID: ids.New("req")}))
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseMultipartForm(maxForm); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		h.fail(w, http.StatusBadRequest, "The form could not be read.")
		return
	}
	if r.PostForm.Get("List-Unsubscribe") == "One-Click" {
		h.oneClick(w, r, t)
		return
	}
	if !sameOrigin(r) || !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(h.csrf(r.PathValue("token")))) {
		h.fail(w, http.StatusForbidden, "This form must be sent from its own page. Open the link again.")
		return
	}
	cats, err := h.store.ListCategories(r.Context(), t.TenantID)
	if err != nil {
		h.unavailable(w, r, err)
		return
	}
	p := domain.Preferences{}
	for _, c := range cats {
		if !c.Required {
			p[c.Key] = map[message.Channel]bool{message.Email: r.PostForm.Get("in."+c.Key) == "on"}
		}
	}
	if _, err := h.store.ChoosePreferences(r.Context(), t.TenantID, t.Subject, message.Email, p); err != nil {
		h.unavailable(w, r, err)
		return
	}
	h.render(w, r, t, true, "")
}

// oneClick opts the person out of the link's category for email; asked again, it changes
// nothing and answers the same.
func (h *Handler) oneClick(w http.ResponseWriter, r *http.Request, t Token) {
	_, err := h.store.ChoosePreferences(r.Context(), t.TenantID, t.Subject, message.Email,
		domain.Preferences{t.Category: {message.Email: false}})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			w.WriteHeader(http.StatusOK) // the category is gone: there is nothing left to receive
			return
		}
		h.unavailable(w, r, err)
		return
	}
	h.render(w, r, t, false, t.Category)
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, t Token, saved bool, unsubbed string) {
	ctx := r.Context()
	ten, err := h.store.GetTenant(ctx, t.TenantID)
	if err != nil {
		h.fail(w, http.StatusNotFound, "This link is no longer valid.")
		return
	}
	cats, err := h.store.ListCategories(ctx, t.TenantID)
	if err != nil {
		h.unavailable(w, r, err)
		return
	}
	chosen, err := h.store.GetSubjectPreferences(ctx, t.TenantID, t.Subject)
	if err != nil {
		h.unavailable(w, r, err)
		return
	}
	v := view{Tenant: ten.Name, Token: r.PathValue("token"), CSRF: h.csrf(r.PathValue("token")), Saved: saved}
	for _, c := range cats {
		in, set := chosen[c.Key][message.Email]
		v.Categories = append(v.Categories, row{Key: c.Key, Name: c.Name, Description: c.Description,
			In: c.Required || (set && in) || (!set && c.DefaultIn), Required: c.Required, Linked: c.Key == t.Category})
		if c.Key == unsubbed {
			v.Unsubbed = c.Name
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pageTemplate.Execute(w, v); err != nil {
		h.log.WarnContext(ctx, "preference page", "err", err)
	}
}

// csrf is the form's proof that it came from the page of this link.
func (h *Handler) csrf(token string) string {
	_, mac := h.ring.Sign("preference page form", []byte(token))
	return base64.RawURLEncoding.EncodeToString(mac[:16])
}

func (h *Handler) fail(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = failTemplate.Execute(w, msg)
}

func (h *Handler) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	h.log.ErrorContext(r.Context(), "unsubscribe link", "err", err)
	h.fail(w, http.StatusServiceUnavailable, "Your choice could not be saved just now. Please try again in a minute.")
}

// sameOrigin reports whether a form comes from a page of this origin (the browser says so in
// Sec-Fetch-Site, or in Origin); a form without either is refused.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin"
	}
	o := r.Header.Get("Origin")
	return o != "" && strings.TrimPrefix(strings.TrimPrefix(o, "https://"), "http://") == r.Host
}

var failTemplate = template.Must(template.New("fail").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Email preferences</title></head><body><main><p class="error">{{.}}</p></main></body></html>`))

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Email preferences</title>
</head><body><main>
<h1>Email from {{.Tenant}}</h1>
{{if .Unsubbed}}<p class="notice" id="unsubscribed">You will no longer receive {{.Unsubbed}} emails.</p>{{end}}
{{if .Saved}}<p class="notice" id="saved">Your choices are saved.</p>{{end}}
<form method="post" action="/u/{{.Token}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
{{range .Categories}}<label><input type="checkbox" name="in.{{.Key}}" id="in.{{.Key}}"{{if .In}} checked{{end}}{{if .Required}} disabled{{end}}>
{{.Name}}{{if .Required}} (always sent){{end}}{{if .Linked}} <strong>(this email)</strong>{{end}}{{if .Description}}<br><small>{{.Description}}</small>{{end}}</label><br>
{{end}}<button type="submit">Save my choices</button>
</form></main></body></html>`))
