// Package api is the HTTP API: public message endpoints under /v1 (tenant keys, or service keys
// with X-Tenant-Id), platform management under /admin (admin keys), and health checks.
package api

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/logicspike/comms/docs"
	"github.com/logicspike/comms/pkg/db"
	"github.com/logicspike/comms/pkg/dlq"
	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/intake"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/metrics"
	"github.com/logicspike/comms/pkg/providers"
	"github.com/logicspike/comms/pkg/ratelimit"
	"github.com/logicspike/comms/pkg/store"
)

// Server serves the API.
type Server struct {
	store     *store.Store
	intake    *intake.Service
	providers *providers.Service
	dlq       *dlq.Service
	limiter   *ratelimit.Limiter
	notify    providers.Notifier
	auth      *authCache
	log       *slog.Logger
	mux       *http.ServeMux
}

// Options tunes the server.
type Options struct {
	// AuthCacheTTL is how long key and tenant lookups are cached (0 disables the cache).
	AuthCacheTTL time.Duration
	// Providers manages provider configs (Save & Test). Required.
	Providers *providers.Service
	// DLQ replays dead letters. Required.
	DLQ *dlq.Service
	// Limiter enforces each tenant's intake rate; nil: no limit.
	Limiter *ratelimit.Limiter
	// Notifier tells workers a tenant's settings changed; nil: they see it when caches expire.
	Notifier providers.Notifier
}

// New returns the API server.
func New(s *store.Store, in *intake.Service, log *slog.Logger, opts Options) *Server {
	srv := &Server{store: s, intake: in, providers: opts.Providers, dlq: opts.DLQ, limiter: opts.Limiter, notify: opts.Notifier, auth: newAuthCache(opts.AuthCacheTTL), log: log, mux: http.NewServeMux()}
	for _, rt := range srv.routes() {
		srv.mux.HandleFunc(rt.pattern, srv.authenticate(rt.access, rt.handler))
	}
	srv.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { writeProblem(w, r, errNotFound) })
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
		{"GET /metrics", accessPublic, metrics.Handler().ServeHTTP},
		{"GET /openapi.json", accessPublic, srv.openAPI},

		{"POST /v1/messages", accessTenant, srv.createMessage},
		{"GET /v1/messages", accessTenant, srv.listMessages},
		{"GET /v1/messages/{id}", accessTenant, srv.getMessage},

		{"GET /v1/analytics/timeseries", accessTenant, srv.timeseries},
		{"GET /v1/analytics/provider-errors", accessTenant, srv.providerErrors},
		{"GET /v1/suppressions", accessTenant, srv.listSuppressions},
		{"POST /v1/suppressions", accessTenant, srv.addSuppression},
		{"DELETE /v1/suppressions/{channel}/{recipient}", accessTenant, srv.deleteSuppression},

		{"POST /v1/providers", accessTenant, srv.createProvider(false)},
		{"GET /v1/providers", accessTenant, srv.listProviders(false)},
		{"GET /v1/providers/{id}", accessTenant, srv.getProvider(false)},
		{"PATCH /v1/providers/{id}", accessTenant, srv.updateProvider(false)},
		{"DELETE /v1/providers/{id}", accessTenant, srv.deleteProvider(false)},
		{"POST /v1/providers/{id}/test", accessTenant, srv.testProvider(false)},

		{"POST /admin/tenants", accessAdmin, srv.createTenant},
		{"GET /admin/tenants", accessAdmin, srv.listTenants},
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
	if prob := checkURL(r); prob != nil {
		writeProblem(w, r, prob)
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
	if err := s.store.Pool().Ping(r.Context()); err != nil {
		writeProblem(w, r, unavailable("database unreachable"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) createMessage(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	if !s.allowIntake(w, r, p.Tenant) {
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if prob := checkIdempotencyKey(key); prob != nil {
		writeProblem(w, r, prob)
		return
	}
	var req message.Request
	if prob := decodeJSON(r, message.MaxRequestBodySize, &req); prob != nil {
		writeProblem(w, r, prob)
		return
	}
	acc, err := s.intake.Submit(r.Context(), p.TenantID, key, req)
	var verr *message.ValidationError
	switch {
	case errors.As(err, &verr):
		writeProblem(w, r, fieldProblem(http.StatusUnprocessableEntity, "validation", "Invalid request", verr.Fields...))
		return
	case errors.Is(err, intake.ErrSuppressed):
		writeProblem(w, r, fieldProblem(http.StatusUnprocessableEntity, "recipient-suppressed", "Recipient suppressed",
			message.FieldError{Field: "to", Message: "is on this tenant's suppression list for " + string(req.Channel) +
				" (an earlier hard bounce, complaint, or manual entry); see GET /v1/suppressions, and DELETE it there to send again"}))
		return
	case errors.Is(err, intake.ErrIdempotencyMismatch):
		writeProblem(w, r, fieldProblem(http.StatusUnprocessableEntity, "idempotency-key-reused", "Idempotency key reused",
			message.FieldError{Field: "Idempotency-Key", Message: "was already used in the last 24 hours with a different request body; use a new key for a new message"}))
		return
	case db.RowError(err):
		// The decoder keeps unstorable text out, so this is a value PostgreSQL refused that
		// validation missed: the request's own fault, and retrying it cannot help.
		s.log.WarnContext(r.Context(), "message refused by the database", "tenant_id", p.TenantID, "err", err)
		writeProblem(w, r, problem(http.StatusUnprocessableEntity, "unstorable", "Message cannot be stored",
			"the database refused a value of this message; nothing was recorded"))
		return
	case err != nil:
		if r.Context().Err() == nil {
			s.log.ErrorContext(r.Context(), "accept message failed", "tenant_id", p.TenantID, "err", err)
		}
		writeProblem(w, r, unavailable("the message could not be recorded and was not accepted; retry with the same Idempotency-Key"))
		return
	}
	if acc.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	} else {
		metrics.Accepted.WithLabelValues(p.TenantID, string(req.Channel)).Inc()
	}
	w.Header().Set("Location", "/v1/messages/"+acc.ID)
	writeJSON(w, http.StatusAccepted, acc)
}

// allowIntake applies the tenant's token bucket, writing the RateLimit headers
// (draft-ietf-httpapi-ratelimit-headers) on every answer and a 429 with Retry-After when the
// bucket is empty. If Redis cannot answer, the request is let through: a lost limit is better than
// lost messages, and it is counted (comms_ratelimit_errors_total).
func (s *Server) allowIntake(w http.ResponseWriter, r *http.Request, t store.Tenant) bool {
	if s.limiter == nil {
		return true
	}
	res, err := s.limiter.Allow(r.Context(), "tenant:"+t.ID, t.RatePerSecond, t.RateBurst)
	if err != nil {
		metrics.RateLimitErrors.WithLabelValues("intake").Inc()
		s.log.WarnContext(r.Context(), "rate limiter unavailable; request let through", "tenant_id", t.ID, "err", err)
		return true
	}
	if res.Limit == 0 {
		return true // unlimited tenant
	}
	h := w.Header()
	h.Set("RateLimit-Limit", strconv.Itoa(res.Limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(res.Remaining))
	h.Set("RateLimit-Reset", strconv.Itoa(int(math.Ceil(res.Reset.Seconds()))))
	if res.Allowed {
		return true
	}
	metrics.RateLimited.WithLabelValues(t.ID).Inc()
	p := problem(http.StatusTooManyRequests, "rate-limited", "Too many requests",
		fmt.Sprintf("this tenant may send %g messages per second (bursts of %d); retry after the given seconds", t.RatePerSecond, t.RateBurst))
	p.retryAfter = max(1, int(math.Ceil(res.Wait.Seconds())))
	writeProblem(w, r, p)
	return false
}

func checkIdempotencyKey(key string) *Problem {
	if key == "" {
		return nil
	}
	if len(key) > intake.MaxIdempotencyKeyLen {
		return fieldProblem(http.StatusBadRequest, "validation", "Invalid request",
			message.FieldError{Field: "Idempotency-Key", Message: "must be at most " + strconv.Itoa(intake.MaxIdempotencyKeyLen) + " characters"})
	}
	for _, c := range key {
		if c < 0x21 || c > 0x7e {
			return fieldProblem(http.StatusBadRequest, "validation", "Invalid request",
				message.FieldError{Field: "Idempotency-Key", Message: "must be printable ASCII without spaces"})
		}
	}
	return nil
}

func (s *Server) getMessage(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	id := r.PathValue("id")
	if !ids.HasPrefix(id, ids.Message) {
		writeProblem(w, r, errNotFound)
		return
	}
	m, err := s.store.GetMessage(r.Context(), p.TenantID, id)
	if errors.Is(err, store.ErrNotFound) {
		writeProblem(w, r, errNotFound) // also for another tenant's message: 404, never 403
		return
	}
	if err != nil {
		s.log.ErrorContext(r.Context(), "get message failed", "tenant_id", p.TenantID, "message_id", id, "err", err)
		writeProblem(w, r, unavailable("the message store is unreachable; retry shortly"))
		return
	}
	writeJSON(w, http.StatusOK, m)
}

// MaxPageSize bounds list pages.
const MaxPageSize = 200

func (s *Server) listMessages(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	q := r.URL.Query()
	f := store.ListFilter{Limit: 50}
	var bad []message.FieldError
	for name, vals := range q {
		v := vals[0]
		switch name {
		case "status":
			f.Status = message.Status(v)
			if !f.Status.Valid() {
				bad = append(bad, message.FieldError{Field: name, Message: "must be one of queued, sending, sent, delivered, failed, undelivered, bounced, complained"})
			}
		case "channel":
			f.Channel = message.Channel(v)
			if !f.Channel.Valid() {
				bad = append(bad, message.FieldError{Field: name, Message: channelHint})
			}
		case "to":
			f.Recipient = v
		case "created_after", "created_before":
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				bad = append(bad, message.FieldError{Field: name, Message: "must be an RFC 3339 timestamp such as 2026-11-22T10:00:00Z"})
			} else if name == "created_after" {
				f.CreatedAfter = t
			} else {
				f.CreatedBefore = t
			}
		case "limit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > MaxPageSize {
				bad = append(bad, message.FieldError{Field: name, Message: "must be an integer from 1 to " + strconv.Itoa(MaxPageSize)})
			}
			f.Limit = n
		case "cursor":
			f.Cursor = v
		default:
			bad = append(bad, message.FieldError{Field: name, Message: "is not a known query parameter"})
		}
	}
	if len(bad) > 0 {
		writeProblem(w, r, fieldProblem(http.StatusBadRequest, "validation", "Invalid query", bad...))
		return
	}
	msgs, next, err := s.store.ListMessages(r.Context(), p.TenantID, f)
	writePage(s, w, r, "messages", msgs, next, err)
}

// writePage answers a cursor-paginated list: {"data", "next_cursor"}, a 400 naming the cursor
// when the store did not recognise it, a 503 when the store failed.
func writePage[T any](s *Server, w http.ResponseWriter, r *http.Request, what string, list []T, next string, err error) {
	if errors.Is(err, store.ErrBadCursor) {
		writeProblem(w, r, fieldProblem(http.StatusBadRequest, "validation", "Invalid query",
			message.FieldError{Field: "cursor", Message: "is not a cursor from a previous page"}))
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

type createTenantRequest struct {
	Name                string `json:"name"`
	Plan                string `json:"plan,omitempty"`
	AllowSystemFallback *bool  `json:"allow_system_fallback,omitempty"`
}

// updateTenant changes a tenant's settings: retry budget, rate limit, fallback, status. Running
// services see the change within COMMS_AUTH_CACHE_TTL (intake) and at once through the route
// notice (workers).
func (s *Server) updateTenant(w http.ResponseWriter, r *http.Request) {
	var p store.TenantPatch
	if prob := decodeJSON(r, 64<<10, &p); prob != nil {
		writeProblem(w, r, prob)
		return
	}
	if errs := p.Validate(); len(errs) > 0 {
		writeProblem(w, r, fieldProblem(http.StatusUnprocessableEntity, "validation", "Invalid request", errs...))
		return
	}
	t, err := s.store.UpdateTenant(r.Context(), r.PathValue("id"), p)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeProblem(w, r, errNotFound)
		return
	case err != nil:
		s.log.ErrorContext(r.Context(), "update tenant failed", "tenant_id", r.PathValue("id"), "err", err)
		writeProblem(w, r, unavailable("the tenant could not be updated; nothing changed; retry shortly"))
		return
	}
	s.auth.forgetTenant(t.ID)
	if s.notify != nil {
		s.notify.Changed(r.Context(), t.ID)
	}
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) createTenant(w http.ResponseWriter, r *http.Request) {
	var req createTenantRequest
	if prob := decodeJSON(r, 64<<10, &req); prob != nil {
		writeProblem(w, r, prob)
		return
	}
	if strings.TrimSpace(req.Name) == "" || len(req.Name) > 200 {
		writeProblem(w, r, fieldProblem(http.StatusUnprocessableEntity, "validation", "Invalid request",
			message.FieldError{Field: "name", Message: "is required, at most 200 characters"}))
		return
	}
	nt := store.NewTenant{Name: req.Name, Plan: req.Plan, AllowSystemFallback: true}
	if req.AllowSystemFallback != nil {
		nt.AllowSystemFallback = *req.AllowSystemFallback
	}
	t, err := s.store.CreateTenant(r.Context(), nt)
	if err != nil {
		s.log.ErrorContext(r.Context(), "create tenant failed", "err", err)
		writeProblem(w, r, unavailable("the tenant could not be created; retry shortly"))
		return
	}
	writeJSON(w, http.StatusCreated, t)
}

func (s *Server) listTenants(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeProblem(w, r, fieldProblem(http.StatusBadRequest, "validation", "Invalid query",
				message.FieldError{Field: "limit", Message: "must be an integer from 1 to 1000"}))
			return
		}
		limit = n
	}
	ts, err := s.store.ListTenants(r.Context(), r.URL.Query().Get("cursor"), limit)
	if err != nil {
		s.log.ErrorContext(r.Context(), "list tenants failed", "err", err)
		writeProblem(w, r, unavailable("the tenant store is unreachable; retry shortly"))
		return
	}
	next := ""
	if len(ts) == limit {
		next = ts[len(ts)-1].ID
	}
	if ts == nil {
		ts = []store.Tenant{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": ts, "next_cursor": next})
}

type createKeyRequest struct {
	Kind      store.KeyKind `json:"kind"`
	TenantID  string        `json:"tenant_id,omitempty"`
	Name      string        `json:"name"`
	ExpiresAt *time.Time    `json:"expires_at,omitempty"`
}

func (s *Server) createAPIKey(w http.ResponseWriter, r *http.Request) {
	var req createKeyRequest
	if prob := decodeJSON(r, 64<<10, &req); prob != nil {
		writeProblem(w, r, prob)
		return
	}
	var bad []message.FieldError
	if !req.Kind.Valid() {
		bad = append(bad, message.FieldError{Field: "kind", Message: `must be "tenant", "service" or "admin"`})
	}
	if req.Kind == store.KindTenant && req.TenantID == "" {
		bad = append(bad, message.FieldError{Field: "tenant_id", Message: "is required for a tenant key"})
	}
	if req.Kind != store.KindTenant && req.TenantID != "" {
		bad = append(bad, message.FieldError{Field: "tenant_id", Message: "is only allowed for a tenant key"})
	}
	if strings.TrimSpace(req.Name) == "" || len(req.Name) > 200 {
		bad = append(bad, message.FieldError{Field: "name", Message: "is required, at most 200 characters"})
	}
	if req.ExpiresAt != nil && !req.ExpiresAt.After(time.Now()) {
		bad = append(bad, message.FieldError{Field: "expires_at", Message: "must be in the future"})
	}
	if len(bad) == 0 && req.TenantID != "" {
		if _, err := s.store.GetTenant(r.Context(), req.TenantID); errors.Is(err, store.ErrNotFound) {
			bad = append(bad, message.FieldError{Field: "tenant_id", Message: "names no tenant"})
		} else if err != nil {
			writeProblem(w, r, unavailable("the tenant store is unreachable; retry shortly"))
			return
		}
	}
	if len(bad) > 0 {
		writeProblem(w, r, fieldProblem(http.StatusUnprocessableEntity, "validation", "Invalid request", bad...))
		return
	}
	k, plain, err := s.store.CreateAPIKey(r.Context(), req.Kind, req.TenantID, req.Name, req.ExpiresAt)
	if err != nil {
		s.log.ErrorContext(r.Context(), "create api key failed", "err", err)
		writeProblem(w, r, unavailable("the key could not be created; retry shortly"))
		return
	}
	// The only time the key is ever shown.
	writeJSON(w, http.StatusCreated, map[string]any{"api_key": k, "secret": plain})
}

func (s *Server) listAPIKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := s.store.ListAPIKeys(r.Context(), r.URL.Query().Get("tenant_id"))
	if err != nil {
		s.log.ErrorContext(r.Context(), "list api keys failed", "err", err)
		writeProblem(w, r, unavailable("the key store is unreachable; retry shortly"))
		return
	}
	if keys == nil {
		keys = []store.APIKey{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": keys})
}

func (s *Server) revokeAPIKey(w http.ResponseWriter, r *http.Request) {
	k, err := s.store.RevokeAPIKey(r.Context(), "", r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		writeProblem(w, r, errNotFound)
		return
	}
	if err != nil {
		s.log.ErrorContext(r.Context(), "revoke api key failed", "err", err)
		writeProblem(w, r, unavailable("the key store is unreachable; retry shortly"))
		return
	}
	s.auth.forgetKey(k.ID)
	writeJSON(w, http.StatusOK, k)
}
