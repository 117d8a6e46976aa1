// Package api is the HTTP API: public message endpoints under /v1 (tenant keys, or service keys
// with X-Tenant-Id), platform management under /admin (admin keys), and health checks.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/logicspike/comms/docs"
	"github.com/logicspike/comms/internal/accounts"
	"github.com/logicspike/comms/internal/callbacks/apply"
	"github.com/logicspike/comms/internal/dispatch/dlq"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/inbox"
	"github.com/logicspike/comms/internal/intake"
	"github.com/logicspike/comms/internal/platform/metrics"
	"github.com/logicspike/comms/internal/platform/ratelimit"
	"github.com/logicspike/comms/internal/providerconfig"
	"github.com/logicspike/comms/internal/recipients"
	"github.com/logicspike/comms/internal/reports"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/templates"
	"github.com/logicspike/comms/internal/webhooks"
	"github.com/logicspike/comms/pkg/message"
)

// Server serves the API.
type Server struct {
	Services
	limiter  *ratelimit.Limiter
	auth     *authCache
	uses     *keyUses
	useEvery time.Duration
	log      *slog.Logger
	mux      *http.ServeMux
}

// Services are the flows the API serves; the handlers call them, never the store. Each is
// required.
type Services struct {
	Accounts   *accounts.Service
	Intake     *intake.Service
	Providers  *providerconfig.Service
	Templates  *templates.Service
	Webhooks   *webhooks.Service
	DLQ        *dlq.Service
	Reports    *reports.Service
	Recipients *recipients.Service
	Inbox      *inbox.Service // nil: no inbox (recipient tokens are refused)
	Unmatched  *apply.Unmatched
	// Ready reports whether the database answers, for /readyz.
	Ready func(context.Context) error
}

// Options tunes the server.
type Options struct {
	// AuthCacheTTL is how long key and tenant lookups are cached (0 disables the cache).
	AuthCacheTTL time.Duration
	// Limiter enforces each tenant's intake rate; nil: no limit.
	Limiter *ratelimit.Limiter
	// KeyUseInterval is how often Run writes the keys' last_used_at (default 1 min).
	KeyUseInterval time.Duration
}

// New returns the API server.
func New(svc Services, log *slog.Logger, opts Options) *Server {
	srv := &Server{Services: svc, limiter: opts.Limiter, auth: newAuthCache(opts.AuthCacheTTL), log: log, mux: http.NewServeMux(),
		uses: &keyUses{m: map[string]time.Time{}}, useEvery: opts.KeyUseInterval}
	if srv.useEvery <= 0 {
		srv.useEvery = time.Minute
	}
	for _, rt := range srv.routes() {
		h := rt.handler
		if rt.access != accessPublic {
			h = srv.audited(rt.pattern, h)
		}
		srv.mux.Handle(rt.pattern, metrics.Route("api", rt.pattern, srv.authenticate(rt.access, h)))
	}
	srv.mux.Handle("/", metrics.Route("api", "unmatched", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writeProblem(w, r, errNotFound) })))
	return srv
}

type route struct {
	pattern string
	access  access
	handler http.HandlerFunc
}

// routes is every route, with who may call it, in one table. docs/openapi.json documents each;
// a test keeps the two in step.
func (srv *Server) routes() []route {
	return []route{
		{"GET /healthz", accessPublic, srv.healthz},
		{"GET /readyz", accessPublic, srv.readyz},
		{"GET /openapi.json", accessPublic, srv.openAPI},
		{"GET /docs", accessPublic, srv.reference},
		{"GET /docs/{file}", accessPublic, srv.reference},

		{"POST /v1/messages", accessTenant, srv.createMessage},
		{"POST /v1/messages/batch", accessTenant, srv.createBatch},
		{"GET /v1/messages", accessTenant, srv.listMessages},
		{"GET /v1/messages/{id}", accessTenant, srv.getMessage},
		{"POST /v1/messages/{id}/cancel", accessTenant, srv.cancelMessage},

		{"GET /v1/analytics/timeseries", accessTenant, srv.timeseries},
		{"GET /v1/analytics/provider-errors", accessTenant, srv.providerErrors},
		{"GET /v1/usage", accessTenant, srv.usage},
		{"GET /v1/usage/export", accessTenant, srv.exportUsage},
		{"GET /v1/quota", accessTenant, srv.quotas},
		{"GET /v1/audit", accessTenant, srv.listAudit(false)},
		{"GET /v1/settings", accessTenant, srv.getSettings},
		{"PATCH /v1/settings", accessTenant, srv.updateSettings},
		{"POST /v1/settings/inbox-secret", accessTenant, srv.rotateInboxSecret},
		{"DELETE /v1/settings/inbox-secret", accessTenant, srv.removeInboxSecret},
		{"GET /v1/suppressions", accessTenant, srv.listSuppressions},
		{"POST /v1/suppressions", accessTenant, srv.addSuppression},
		{"DELETE /v1/suppressions/{channel}/{recipient}", accessTenant, srv.deleteSuppression},
		{"GET /v1/recipients", accessTenant, srv.listRecipients},
		{"PUT /v1/recipients/{id}", accessTenant, srv.putRecipient},
		{"GET /v1/recipients/{id}", accessTenant, srv.getRecipient},
		{"PATCH /v1/recipients/{id}", accessTenant, srv.updateRecipient},
		{"DELETE /v1/recipients/{id}", accessTenant, srv.deleteRecipient},
		{"GET /v1/recipients/{id}/preferences", accessTenant, srv.getPreferences},
		{"PUT /v1/recipients/{id}/preferences", accessTenant, srv.putPreferences},
		{"POST /v1/recipients/{id}/inbox-tokens", accessTenant, srv.createInboxToken},
		{"POST /v1/recipients/{id}/devices", accessTenant, srv.registerDevice},
		{"GET /v1/recipients/{id}/devices", accessTenant, srv.listDevices},
		{"DELETE /v1/recipients/{id}/devices/{device}", accessTenant, srv.removeDevice},
		{"GET /v1/inbox", accessRecipient, srv.listInbox},
		{"GET /v1/inbox/stream", accessRecipient, srv.streamInbox},
		{"GET /v1/inbox/embed.js", accessPublic, serveInboxEmbed},
		{"POST /v1/inbox/read-all", accessRecipient, srv.readAllInbox},
		{"POST /v1/inbox/{id}/seen", accessRecipient, srv.markInbox(domain.InboxSeen)},
		{"POST /v1/inbox/{id}/read", accessRecipient, srv.markInbox(domain.InboxRead)},
		{"POST /v1/inbox/{id}/archived", accessRecipient, srv.markInbox(domain.InboxArchived)},
		{"GET /v1/preferences", accessTenant, srv.getPreferences},
		{"PUT /v1/preferences", accessTenant, srv.putPreferences},
		{"POST /v1/categories", accessTenant, srv.createCategory},
		{"GET /v1/categories", accessTenant, srv.listCategories},
		{"GET /v1/categories/{key}", accessTenant, srv.getCategory},
		{"PATCH /v1/categories/{key}", accessTenant, srv.updateCategory},
		{"DELETE /v1/categories/{key}", accessTenant, srv.deleteCategory},
		{"POST /v1/erasures", accessTenant, srv.createErasure},
		{"GET /v1/erasures", accessTenant, srv.listErasures},
		{"GET /v1/erasures/{id}", accessTenant, srv.getErasure},

		{"POST /v1/templates", accessTenant, srv.createTemplate},
		{"GET /v1/templates", accessTenant, srv.listTemplates},
		{"GET /v1/templates/{key}", accessTenant, srv.getTemplate},
		{"PATCH /v1/templates/{key}", accessTenant, srv.updateTemplate},
		{"DELETE /v1/templates/{key}", accessTenant, srv.archiveTemplate},
		{"POST /v1/templates/{key}/versions", accessTenant, srv.createTemplateVersion},
		{"GET /v1/templates/{key}/versions", accessTenant, srv.listTemplateVersions},
		{"GET /v1/templates/{key}/versions/{n}", accessTenant, srv.getTemplateVersion},
		{"POST /v1/templates/{key}/versions/{n}/activate", accessTenant, srv.activateTemplateVersion},
		{"POST /v1/templates/{key}/preview", accessTenant, srv.previewTemplate},

		{"POST /v1/providers", accessTenant, srv.createProvider(false)},
		{"GET /v1/providers", accessTenant, srv.listProviders(false)},
		{"GET /v1/providers/{id}", accessTenant, srv.getProvider(false)},
		{"PATCH /v1/providers/{id}", accessTenant, srv.updateProvider(false)},
		{"DELETE /v1/providers/{id}", accessTenant, srv.deleteProvider(false)},
		{"POST /v1/providers/{id}/test", accessTenant, srv.testProvider(false)},

		{"POST /v1/api-keys", accessTenant, srv.createTenantKey},
		{"GET /v1/api-keys", accessTenant, srv.listTenantKeys},
		{"DELETE /v1/api-keys/{id}", accessTenant, srv.revokeTenantKey},

		{"POST /v1/webhook-endpoints", accessTenant, srv.createWebhookEndpoint},
		{"GET /v1/webhook-endpoints", accessTenant, srv.listWebhookEndpoints},
		{"GET /v1/webhook-endpoints/{id}", accessTenant, srv.getWebhookEndpoint},
		{"PATCH /v1/webhook-endpoints/{id}", accessTenant, srv.updateWebhookEndpoint},
		{"DELETE /v1/webhook-endpoints/{id}", accessTenant, srv.deleteWebhookEndpoint},
		{"POST /v1/webhook-endpoints/{id}/rotate-secret", accessTenant, srv.rotateWebhookSecret},
		{"POST /v1/webhook-endpoints/{id}/test", accessTenant, srv.testWebhookEndpoint},
		{"GET /v1/webhook-endpoints/{id}/deliveries", accessTenant, srv.listWebhookDeliveries},
		{"POST /v1/webhook-endpoints/{id}/replay", accessTenant, srv.replayWebhookDeliveries},

		{"POST /admin/tenants", accessAdmin, srv.createTenant},
		{"GET /admin/tenants", accessAdmin, srv.listTenants},
		{"GET /admin/plans", accessAdmin, srv.listPlans},
		{"PUT /admin/plans/{name}", accessAdmin, srv.putPlan},
		{"PATCH /admin/tenants/{id}", accessAdmin, srv.updateTenant},
		{"POST /admin/api-keys", accessAdmin, srv.createAPIKey},
		{"GET /admin/api-keys", accessAdmin, srv.listAPIKeys},
		{"DELETE /admin/api-keys/{id}", accessAdmin, srv.revokeAPIKey},
		{"POST /admin/providers", accessAdmin, srv.createProvider(true)},
		{"GET /admin/providers", accessAdmin, srv.listProviders(true)},
		{"GET /admin/providers/{id}", accessAdmin, srv.getProvider(true)},
		{"PATCH /admin/providers/{id}", accessAdmin, srv.updateProvider(true)},
		{"DELETE /admin/providers/{id}", accessAdmin, srv.deleteProvider(true)},
		{"POST /admin/providers/{id}/test", accessAdmin, srv.testProvider(true)},
		{"GET /admin/dlq", accessAdmin, srv.listDLQ},
		{"GET /admin/dlq/{id}", accessAdmin, srv.getDLQ},
		{"POST /admin/dlq/replay", accessAdmin, srv.replayDLQ},
		{"GET /admin/dlq/replays", accessAdmin, srv.listReplays},
		{"GET /admin/usage/export", accessAdmin, srv.exportAllUsage},
		{"GET /admin/audit", accessAdmin, srv.listAudit(true)},
		{"GET /admin/callbacks/unmatched", accessAdmin, srv.listUnmatchedCallbacks},
		{"POST /admin/callbacks/unmatched/retry", accessAdmin, srv.retryUnmatchedCallbacks},
	}
}

// Routes returns the pattern of every route ("METHOD /path/{param}").
func Routes() []string {
	var out []string
	for _, rt := range (&Server{}).routes() {
		out = append(out, rt.pattern)
	}
	return out
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(v) // net/http's own signal to abort the response
			}
			s.log.ErrorContext(r.Context(), "handler panicked", "panic", v, "path", r.URL.Path)
			writeProblem(w, r, problem(http.StatusInternalServerError, "internal", "Internal error", ""))
		}
	}()
	r = withRequestID(w, r)
	if prob := checkURL(r); prob != nil {
		writeProblem(w, r, prob)
		return
	}
	if r.Method == http.MethodOptions && inboxPreflight(w, r) {
		return
	}
	s.mux.ServeHTTP(w, r)
}

// openAPI serves the OpenAPI document this server was built with.
func (s *Server) openAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(docs.OpenAPI)
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if err := s.Ready(r.Context()); err != nil {
		writeProblem(w, r, unavailable("database unreachable"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// pageQuery reads a list's query: limit (1 to MaxPageSize) into *limit, cursor into *cursor, and
// every other parameter through other, which says what is wrong with its value ("" if nothing)
// and whether it knows the name at all (nil: no other parameter is known). It returns every bad
// parameter, named, for one 400.
func pageQuery(q url.Values, limit *int, cursor *string, other func(name, v string) (problem string, known bool)) []message.FieldError {
	var bad []message.FieldError
	for name, vals := range q {
		v := vals[0]
		switch name {
		case "limit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > MaxPageSize {
				bad = append(bad, message.FieldError{Field: name, Message: "must be an integer from 1 to " + strconv.Itoa(MaxPageSize)})
			}
			*limit = n
		case "cursor":
			*cursor = v
		default:
			problem, known := "", false
			if other != nil {
				problem, known = other(name, v)
			}
			if !known {
				problem = "is not a known query parameter"
			}
			if problem != "" {
				bad = append(bad, message.FieldError{Field: name, Message: problem})
			}
		}
	}
	return bad
}

// writePage answers a cursor-paginated list: {"data", "next_cursor"}, a 400 naming the cursor
// when the store did not recognise it, a 503 when the store failed.
func writePage[T any](s *Server, w http.ResponseWriter, r *http.Request, what string, list []T, next string, err error) {
	if errors.Is(err, store.ErrBadCursor) {
		writeProblem(w, r, fieldProblem(http.StatusBadRequest, "validation", "Invalid query",
			message.FieldError{Field: "cursor", Message: "is not a cursor from a previous page"}))
		return
	}
	if errors.Is(err, store.ErrNotFound) { // what the list is of does not exist
		writeProblem(w, r, errNotFound)
		return
	}
	if err != nil {
		s.log.ErrorContext(r.Context(), "list "+what+" failed", "tenant_id", principalFrom(r.Context()).TenantID, "err", err)
		writeProblem(w, r, unavailable("the "+what+" are unreachable; retry shortly"))
		return
	}
	if list == nil {
		list = []T{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": list, "next_cursor": next})
}
