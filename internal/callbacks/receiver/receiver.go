// Package receiver takes provider delivery callbacks (cmd/webhook serves it) at
//
//	POST /webhooks/{type}/{provider_id}
//
// for every provider type whose registration has Callbacks (Twilio status callbacks, SES events
// through SNS, Resend webhooks). Each request is verified by its provider's callbacks with the
// config's secrets, normalized, and committed to the callbacks inbox before the 2xx: concurrent
// callbacks share one insert (a batcher), so a burst costs one round trip per batch, not per
// callback. The apply loop applies the inbox to messages afterwards. A request that fails
// verification gets 401 and a malformed or oversized one 400 or 413; neither records anything.
// A provider config that does not exist (or is of another type) gets 404.
package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/logicspike/comms/internal/batch"
	"github.com/logicspike/comms/internal/db"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/platform/metrics"
	"github.com/logicspike/comms/internal/registry"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/provider"
)

// Options configure the receiver.
type Options struct {
	// Registry opens the configs' sealed credentials (Twilio's auth token, Resend's signing secret).
	Registry *registry.Registry
	// PublicURL is the base URL providers call (COMMS_PUBLIC_WEBHOOK_URL): Twilio signs the URL
	// as it called it, which behind a proxy or load balancer is not the URL this server sees.
	// Empty: http://<Host header><path>.
	PublicURL string
	// ConfigTTL is how long a config's opened secrets are cached (default 30s): a rotated auth
	// token is honoured within it.
	ConfigTTL time.Duration
	// Now is the clock for signature timestamps (default time.Now).
	Now func() time.Time
}

// Store is what the receiver reads and records; *store.Store implements it.
type Store interface {
	GetProviderConfigByID(ctx context.Context, id string) (domain.ProviderConfig, error)
	InsertCallbacks(ctx context.Context, cbs []provider.Event) ([]bool, error)
	RecordInbound(ctx context.Context, in store.Inbound) (id string, dup bool, err error)
}

// Server is the receiver.
type Server struct {
	pool  *pgxpool.Pool
	store Store
	log   *slog.Logger
	mux   *http.ServeMux
	opts  Options
	inbox *batch.Batcher[provider.Event, bool]
	// callbacks verify and parse each provider type's callbacks, by type
	callbacks map[string]provider.Callbacks

	mu      sync.Mutex
	configs map[string]cachedConfig
}

type cachedConfig struct {
	cfg     provider.Config
	fetched time.Time
}

// New returns the receiver; Run must be running for callbacks to be accepted.
func New(pool *pgxpool.Pool, log *slog.Logger, opts Options) (*Server, error) {
	if opts.ConfigTTL == 0 {
		opts.ConfigTTL = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	st := store.New(pool)
	s := &Server{pool: pool, store: st, log: log, mux: http.NewServeMux(), opts: opts, configs: map[string]cachedConfig{}}
	// Up to 500 callbacks per insert, 4 inserts in flight, 2 ms to gather a batch: the intake's
	// tuning, for the same reason (one commit per batch instead of per request).
	cbs, err := opts.Registry.Callbacks()
	if err != nil {
		return nil, err
	}
	s.callbacks = cbs
	s.inbox = batch.New(st.InsertCallbacks, batch.Options{Size: 500, Concurrency: 4, Linger: 2 * time.Millisecond, IsolateFailures: db.RowError})

	handle := func(pattern string, h http.HandlerFunc) { s.mux.Handle(pattern, metrics.Route("webhook", pattern, h)) }
	handle("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	handle("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := s.pool.Ping(r.Context()); err != nil {
			s.log.WarnContext(r.Context(), "not ready: database unreachable", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "database unreachable"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	handle("POST /webhooks/{type}/{provider_id}", s.receive)
	handle("POST /webhooks/{type}/{provider_id}/inbound", s.receiveInbound)
	s.mux.Handle("/", metrics.Route("webhook", "unmatched", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, http.StatusNotFound, "not-found", "no callback receiver at this path")
	})))
	return s, nil
}

// Run runs the inbox batcher until ctx ends, then finishes what was submitted.
func (s *Server) Run(ctx context.Context) { s.inbox.Run(ctx) }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// receive handles one callback for the provider type in the path.
func (s *Server) receive(w http.ResponseWriter, r *http.Request) {
	typ := r.PathValue("type")
	handler, ok := s.callbacks[typ]
	if !ok {
		writeProblem(w, r, http.StatusNotFound, "not-found", "no callback receiver at this path")
		return
	}
	cfg, body, ok := s.begin(w, r, typ)
	if !ok {
		return
	}
	events, err := handler.Receive(r.Context(), provider.CallbackRequest{
		Config: cfg, URL: s.publicURL(r), Header: r.Header, Body: body, Now: s.opts.Now(),
	})
	switch {
	case s.refused(w, r, cfg, typ, err):
	case len(events) == 0:
		// a call that reports no delivery (an SNS subscription confirmed or ended)
		s.log.InfoContext(r.Context(), "callback acknowledged without events", "provider_id", cfg.ID, "tenant_id", cfg.TenantID, "provider", typ)
		metrics.Callbacks.WithLabelValues(typ, "acknowledged").Inc()
		w.WriteHeader(http.StatusOK)
	default:
		s.record(w, r, events)
	}
}

// refused answers a provider's request that verification or parsing turned away (err, from a
// provider.Callbacks or InboundReceiver), and reports whether it did.
func (s *Server) refused(w http.ResponseWriter, r *http.Request, cfg provider.Config, typ string, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, provider.ErrUnverified):
		s.log.WarnContext(r.Context(), "callback failed verification", "provider_id", cfg.ID, "tenant_id", cfg.TenantID, "provider", typ, "err", err)
		s.reject(w, r, typ, http.StatusUnauthorized, "unverified", "the callback's signature could not be verified")
	case errors.Is(err, provider.ErrUnavailable):
		s.log.WarnContext(r.Context(), "callback not handled; the provider retries", "provider_id", cfg.ID, "tenant_id", cfg.TenantID, "provider", typ, "err", err)
		s.reject(w, r, typ, http.StatusBadGateway, "unavailable", "the callback could not be handled now; the provider retries")
	default:
		s.reject(w, r, typ, http.StatusBadRequest, "malformed", err.Error())
	}
	return true
}

// begin reads the body (bounded) and finds the config named in the path, which must be of typ.
func (s *Server) begin(w http.ResponseWriter, r *http.Request, typ string) (provider.Config, []byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, provider.MaxCallbackBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.reject(w, r, typ, http.StatusRequestEntityTooLarge, "too_large", "callback bodies are limited to 256 KiB")
		} else {
			s.reject(w, r, typ, http.StatusBadRequest, "malformed", "could not read the body")
		}
		return provider.Config{}, nil, false
	}
	cfg, err := s.config(r.Context(), r.PathValue("provider_id"))
	switch {
	case errors.Is(err, store.ErrNotFound) || err == nil && cfg.Type != typ:
		s.reject(w, r, typ, http.StatusNotFound, "unknown_config", "no "+typ+" provider config with this id")
		return provider.Config{}, nil, false
	case err != nil:
		s.log.ErrorContext(r.Context(), "provider config unavailable", "provider_id", r.PathValue("provider_id"), "err", err)
		s.reject(w, r, typ, http.StatusServiceUnavailable, "unavailable", "try again")
		return provider.Config{}, nil, false
	}
	return cfg, body, true
}

// config returns the opened config id, cached for ConfigTTL.
func (s *Server) config(ctx context.Context, id string) (provider.Config, error) {
	s.mu.Lock()
	c, ok := s.configs[id]
	s.mu.Unlock()
	if ok && time.Since(c.fetched) < s.opts.ConfigTTL {
		return c.cfg, nil
	}
	if len(id) > 64 {
		return provider.Config{}, store.ErrNotFound
	}
	p, err := s.store.GetProviderConfigByID(ctx, id)
	if err != nil {
		return provider.Config{}, err
	}
	cfg, err := s.opts.Registry.Open(p)
	if err != nil {
		return provider.Config{}, err
	}
	s.mu.Lock()
	if len(s.configs) > 10000 {
		clear(s.configs)
	}
	s.configs[id] = cachedConfig{cfg: cfg, fetched: time.Now()}
	s.mu.Unlock()
	return cfg, nil
}

// publicURL is the URL as the provider called it.
func (s *Server) publicURL(r *http.Request) string {
	if s.opts.PublicURL != "" {
		return strings.TrimRight(s.opts.PublicURL, "/") + r.URL.RequestURI()
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.RequestURI()
}

// record makes events durable, then answers 200. A provider retry of a stored event is also 200.
func (s *Server) record(w http.ResponseWriter, r *http.Request, events []provider.Event) {
	for _, ev := range events {
		fresh, err := s.inbox.Do(r.Context(), ev)
		if err != nil {
			s.log.ErrorContext(r.Context(), "callback not stored", "provider_id", ev.ProviderConfigID, "provider", ev.ProviderType, "err", err)
			s.reject(w, r, ev.ProviderType, http.StatusServiceUnavailable, "unavailable", "the callback could not be stored; retry")
			return
		}
		outcome := "accepted"
		if !fresh {
			outcome = "duplicate"
		}
		metrics.Callbacks.WithLabelValues(ev.ProviderType, outcome).Inc()
		s.log.DebugContext(r.Context(), "callback stored", "provider_id", ev.ProviderConfigID, "provider", ev.ProviderType,
			"provider_message_id", ev.ProviderMessageID, "status", ev.Status, "duplicate", !fresh)
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) reject(w http.ResponseWriter, r *http.Request, typ string, status int, outcome, detail string) {
	metrics.Callbacks.WithLabelValues(typ, outcome).Inc()
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeProblem(w, r, status, strings.ReplaceAll(outcome, "_", "-"), detail)
}

func writeProblem(w http.ResponseWriter, r *http.Request, status int, slug, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"type":   "https://github.com/logicspike/comms/blob/main/docs/errors.md#callback-" + slug,
		"title":  http.StatusText(status),
		"status": status, "detail": detail, "instance": r.URL.Path,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
