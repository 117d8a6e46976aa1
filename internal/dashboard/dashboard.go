// Package dashboard is the dashboard served by the API binary under /ui/ (docs/dashboard.md):
// pages rendered on the server that need no script. Its Content-Security-Policy allows none,
// except on the template page, whose live preview loads one script from here.
//
// Signing in exchanges an API key for a session: a random token in an HttpOnly, SameSite=Strict
// cookie (Secure behind https), whose SHA-256 the database keeps with the key's id. Every request
// reads the session with its key, so revoking the key ends it. Every form that changes something
// carries the session's CSRF token, and every POST must come from this origin.
package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// SessionTTL is how long a sign-in lasts.
const SessionTTL = 8 * time.Hour

const cookieName = "comms_session"

// csp allows this origin's stylesheet and images, and nothing else: no script, no framing by
// others. The only frame is a template's HTML preview, served from here with its own sandbox.
const csp = "default-src 'none'; style-src 'self'; img-src 'self'; frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Handler serves the dashboard.
type Handler struct {
	svc   api.Services // for what it reads; changes go through the API
	api   http.Handler // the API, called in-process for every change (call)
	log   *slog.Logger
	pages *template.Template
	mux   *http.ServeMux
}

// New returns the dashboard, which makes its changes through apiHandler.
func New(svc api.Services, apiHandler http.Handler, log *slog.Logger) *Handler {
	h := &Handler{svc: svc, api: apiHandler, log: log, mux: http.NewServeMux(),
		pages: template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html"))}
	static, _ := fs.Sub(staticFS, "static")
	h.mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", http.FileServerFS(static)))
	h.mux.HandleFunc("GET /ui/signin", h.signinForm)
	h.mux.HandleFunc("POST /ui/signin", h.signin)
	h.mux.HandleFunc("POST /ui/signout", h.signedIn(h.signout))
	for _, rt := range h.pagesTable() {
		h.mux.HandleFunc(rt.pattern, h.signedIn(only(rt.kind, rt.page)))
	}
	return h
}

// ServeHTTP implements http.Handler, with the security headers on every answer.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
	if r.Method == http.MethodPost && !sameOrigin(r) {
		http.Error(w, "cross-origin form refused", http.StatusForbidden)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// sameOrigin reports whether a POST comes from a page of this origin (the browser says so in
// Sec-Fetch-Site, or in Origin).
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin"
	}
	o := r.Header.Get("Origin")
	return o != "" && strings.TrimPrefix(strings.TrimPrefix(o, "https://"), "http://") == r.Host
}

type sessionKey struct{}

// signedIn runs next with the request's session, or sends the browser to sign in.
func (h *Handler) signedIn(next pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(cookieName)
		if err != nil {
			http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
			return
		}
		sess, err := h.svc.Accounts.Session(r.Context(), c.Value)
		switch {
		case errors.Is(err, store.ErrNotFound):
			clearCookie(w, r)
			http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
			return
		case err != nil:
			h.fail(w, r, err)
			return
		}
		if suspended(sess.Key.Kind, sess.TenantStatus) {
			// The API's rule (403 tenant-suspended): the session ends at once, on any page.
			if err := h.svc.Accounts.EndSession(r.Context(), c.Value); err != nil {
				h.fail(w, r, err)
				return
			}
			clearCookie(w, r)
			http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost && subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(sess.CSRF)) != 1 {
			http.Error(w, "the form is stale: reload the page", http.StatusForbidden)
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, sess)), sess)
	}
}

// suspended applies the API's rule to a dashboard session: a tenant key acts only while its
// tenant is active.
func suspended(kind domain.KeyKind, tenantStatus domain.TenantStatus) bool {
	return kind == domain.KindTenant && tenantStatus != domain.TenantActive
}

func (h *Handler) signinForm(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, "signin.html", map[string]any{})
}

// signin exchanges a tenant key (or, for the ops pages, an admin key) for a session. Service
// keys act for any tenant and belong to programs, so they cannot sign in.
func (h *Handler) signin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	plain := strings.TrimSpace(r.PostFormValue("key"))
	k, err := h.svc.Accounts.LookupKey(r.Context(), plain)
	if err != nil || !k.Active(time.Now()) || k.Kind == domain.KindService {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			h.fail(w, r, err)
			return
		}
		// 200, not 401: the form is the answer, shown again with why.
		h.render(w, r, http.StatusOK, "signin.html", map[string]any{"Error": "That is not a valid, unrevoked tenant or admin key."})
		return
	}
	if k.Kind == domain.KindTenant {
		t, err := h.svc.Accounts.Tenant(r.Context(), k.TenantID)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if suspended(k.Kind, t.Status) {
			h.render(w, r, http.StatusForbidden, "signin.html", map[string]any{"Error": "This tenant is suspended: its keys cannot sign in. Ask the platform's operators."})
			return
		}
	}
	token, csrf := random(), random()
	if err := h.svc.Accounts.StartSession(r.Context(), token, k.ID, csrf, time.Now().Add(SessionTTL)); err != nil {
		h.fail(w, r, err)
		return
	}
	//nolint:gosec // Secure whenever the browser came over https; plain http serves local development
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: token, Path: "/ui/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: secure(r), MaxAge: int(SessionTTL.Seconds())})
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

func (h *Handler) signout(w http.ResponseWriter, r *http.Request, _ domain.Session) {
	if c, err := r.Cookie(cookieName); err == nil {
		if err := h.svc.Accounts.EndSession(r.Context(), c.Value); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	clearCookie(w, r)
	http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
}

func clearCookie(w http.ResponseWriter, r *http.Request) {
	//nolint:gosec // as in signin
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/ui/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure(r), MaxAge: -1})
}

// secure: the browser reached us over https (directly, or through a proxy that says so).
func secure(r *http.Request) bool {
	return r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
}

func random() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, page string, data map[string]any) {
	if sess, ok := r.Context().Value(sessionKey{}).(domain.Session); ok {
		data["Session"] = sess
	}
	data["Path"] = r.URL.Path
	var b strings.Builder
	if err := h.pages.ExecuteTemplate(&b, page, data); err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	h.log.ErrorContext(r.Context(), "dashboard page failed", "path", r.URL.Path, "err", err)
	http.Error(w, "Something is unreachable; retry shortly.", http.StatusServiceUnavailable)
}

// WithAPI serves the dashboard under /ui/ (and / sends browsers there) beside api, which
// serves everything else: one listener, one binary.
func WithAPI(apiHandler http.Handler, ui *Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/ui/", ui)
	mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusSeeOther))
	mux.Handle("/", apiHandler)
	return mux
}
