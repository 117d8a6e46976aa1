// Package receiver takes provider delivery callbacks (cmd/webhook serves it):
//
//	POST /webhooks/twilio/{provider_id}  Twilio status callbacks (X-Twilio-Signature)
//	POST /webhooks/ses/{provider_id}     SES events through an SNS HTTPS subscription (SNS signature)
//	POST /webhooks/resend/{provider_id}  Resend webhooks (Svix signature)
//
// Each request is verified with its provider config's secret, normalized (package callback) and
// committed to the callbacks inbox before the 2xx: concurrent callbacks share one insert (a
// batcher), so a burst costs one round trip per batch, not per callback. The tracker applies the
// inbox to messages afterwards. A request that fails verification gets 401 and a malformed or
// oversized one 400 or 413; neither records anything. A provider config that does not exist (or
// is of another type) gets 404.
package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/logicspike/comms/pkg/batch"
	"github.com/logicspike/comms/pkg/callback"
	"github.com/logicspike/comms/pkg/db"
	"github.com/logicspike/comms/pkg/metrics"
	"github.com/logicspike/comms/pkg/provider"
	"github.com/logicspike/comms/pkg/provider/registry"
	"github.com/logicspike/comms/pkg/provider/resend"
	"github.com/logicspike/comms/pkg/provider/ses"
	"github.com/logicspike/comms/pkg/provider/twilio"
	"github.com/logicspike/comms/pkg/store"
)

// Options configure the receiver.
type Options struct {
	// Registry opens the configs' sealed credentials (Twilio's auth token, Resend's signing secret).
	Registry *registry.Registry
	// PublicURL is the base URL providers call (COMMS_PUBLIC_WEBHOOK_URL): Twilio signs the URL
	// as it called it, which behind a proxy or load balancer is not the URL this server sees.
	// Empty: http://<Host header><path>.
	PublicURL string
	// SNS verifies SES events' SNS signatures and confirms subscriptions.
	SNS *callback.SNSVerifier
	// ConfigTTL is how long a config's opened secrets are cached (default 30s): a rotated auth
	// token is honoured within it.
	ConfigTTL time.Duration
	// Now is the clock for signature timestamps (default time.Now).
	Now func() time.Time
}

// Server is the receiver.
type Server struct {
	pool  *pgxpool.Pool
	store *store.Store
	log   *slog.Logger
	mux   *http.ServeMux
	opts  Options
	inbox *batch.Batcher[store.Callback, bool]

	mu      sync.Mutex
	configs map[string]cachedConfig
}

type cachedConfig struct {
	cfg     provider.Config
	fetched time.Time
}

// New returns the receiver; Run must be running for callbacks to be accepted.
func New(pool *pgxpool.Pool, log *slog.Logger, opts Options) *Server {
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
	s.inbox = batch.New(st.InsertCallbacks, batch.Options{Size: 500, Concurrency: 4, Linger: 2 * time.Millisecond, IsolateFailures: db.RowError})

	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := s.pool.Ping(r.Context()); err != nil {
			s.log.WarnContext(r.Context(), "not ready: database unreachable", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "database unreachable"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	s.mux.Handle("GET /metrics", metrics.Handler())
	s.mux.HandleFunc("POST /webhooks/twilio/{provider_id}", s.twilio)
	s.mux.HandleFunc("POST /webhooks/ses/{provider_id}", s.ses)
	s.mux.HandleFunc("POST /webhooks/resend/{provider_id}", s.resend)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, http.StatusNotFound, "not-found", "no callback receiver at this path")
	})
	return s
}

// Run runs the inbox batcher until ctx ends, then finishes what was submitted.
func (s *Server) Run(ctx context.Context) { s.inbox.Run(ctx) }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) twilio(w http.ResponseWriter, r *http.Request) {
	cfg, body, ok := s.begin(w, r, twilio.Type)
	if !ok {
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		s.reject(w, r, twilio.Type, http.StatusBadRequest, "malformed", "body is not application/x-www-form-urlencoded")
		return
	}
	if err := callback.VerifyTwilio(twilio.AuthToken(cfg.Credentials), s.publicURL(r), form, r.Header.Get("X-Twilio-Signature")); err != nil {
		s.unverified(w, r, twilio.Type, cfg, err)
		return
	}
	cb, err := callback.ParseTwilio(cfg.ID, form, s.opts.Now())
	if err != nil {
		s.reject(w, r, twilio.Type, http.StatusBadRequest, "malformed", err.Error())
		return
	}
	s.record(w, r, cb)
}

func (s *Server) ses(w http.ResponseWriter, r *http.Request) {
	cfg, body, ok := s.begin(w, r, ses.Type)
	if !ok {
		return
	}
	if s.opts.SNS == nil {
		s.reject(w, r, ses.Type, http.StatusNotFound, "unknown_config", "SES callbacks are not configured on this receiver")
		return
	}
	m, err := callback.ParseSNS(body)
	if err != nil {
		s.reject(w, r, ses.Type, http.StatusBadRequest, "malformed", err.Error())
		return
	}
	if err := s.opts.SNS.Verify(r.Context(), m); err != nil {
		s.unverified(w, r, ses.Type, cfg, err)
		return
	}
	// AWS signs every topic's messages alike: only the config's own topic may speak for it.
	if topic := ses.SNSTopic(cfg.Sender); topic != "" && m.TopicArn != topic {
		s.unverified(w, r, ses.Type, cfg, errors.New("TopicArn is not the config's sns_topic_arn"))
		return
	}
	switch m.Type {
	case "SubscriptionConfirmation":
		if err := s.opts.SNS.Confirm(r.Context(), m); err != nil {
			s.log.WarnContext(r.Context(), "SNS subscription not confirmed", "provider_id", cfg.ID, "tenant_id", cfg.TenantID, "topic", m.TopicArn, "err", err)
			// SNS re-sends the confirmation; a 5xx asks for that.
			s.reject(w, r, ses.Type, http.StatusBadGateway, "unavailable", "could not confirm the subscription; SNS will retry")
			return
		}
		s.log.InfoContext(r.Context(), "SNS subscription confirmed", "provider_id", cfg.ID, "tenant_id", cfg.TenantID, "topic", m.TopicArn)
		metrics.Callbacks.WithLabelValues(ses.Type, "subscription_confirmed").Inc()
		w.WriteHeader(http.StatusOK)
		return
	case "UnsubscribeConfirmation":
		s.log.WarnContext(r.Context(), "SNS subscription ended", "provider_id", cfg.ID, "tenant_id", cfg.TenantID, "topic", m.TopicArn)
		w.WriteHeader(http.StatusOK)
		return
	}
	cb, err := callback.ParseSES(cfg.ID, m)
	if err != nil {
		s.reject(w, r, ses.Type, http.StatusBadRequest, "malformed", err.Error())
		return
	}
	s.record(w, r, cb)
}

func (s *Server) resend(w http.ResponseWriter, r *http.Request) {
	cfg, body, ok := s.begin(w, r, resend.Type)
	if !ok {
		return
	}
	secret := resend.WebhookSecret(cfg.Credentials)
	if secret == "" {
		s.unverified(w, r, resend.Type, cfg, errors.New("the config has no webhook_secret: set it to the Resend webhook's signing secret"))
		return
	}
	if err := callback.VerifyResend(secret, r.Header, body, s.opts.Now()); err != nil {
		s.unverified(w, r, resend.Type, cfg, err)
		return
	}
	cb, err := callback.ParseResend(cfg.ID, r.Header.Get("svix-id"), body)
	if err != nil {
		s.reject(w, r, resend.Type, http.StatusBadRequest, "malformed", err.Error())
		return
	}
	s.record(w, r, cb)
}

// begin reads the body (bounded) and finds the config named in the path, which must be of typ.
func (s *Server) begin(w http.ResponseWriter, r *http.Request, typ string) (provider.Config, []byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, callback.MaxBody))
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
	p, err := s.store.ProviderConfigByID(ctx, id)
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

// record makes cb durable, then answers 200. A provider retry of a stored event is also 200.
func (s *Server) record(w http.ResponseWriter, r *http.Request, cb store.Callback) {
	fresh, err := s.inbox.Do(r.Context(), cb)
	if err != nil {
		s.log.ErrorContext(r.Context(), "callback not stored", "provider_id", cb.ProviderConfigID, "provider", cb.ProviderType, "err", err)
		s.reject(w, r, cb.ProviderType, http.StatusServiceUnavailable, "unavailable", "the callback could not be stored; retry")
		return
	}
	outcome := "accepted"
	if !fresh {
		outcome = "duplicate"
	}
	metrics.Callbacks.WithLabelValues(cb.ProviderType, outcome).Inc()
	s.log.DebugContext(r.Context(), "callback stored", "provider_id", cb.ProviderConfigID, "provider", cb.ProviderType,
		"provider_message_id", cb.ProviderMessageID, "status", cb.Status, "duplicate", !fresh)
	w.WriteHeader(http.StatusOK)
}

func (s *Server) unverified(w http.ResponseWriter, r *http.Request, typ string, cfg provider.Config, err error) {
	s.log.WarnContext(r.Context(), "callback failed verification", "provider_id", cfg.ID, "tenant_id", cfg.TenantID, "provider", typ, "err", err)
	s.reject(w, r, typ, http.StatusUnauthorized, "unverified", "the callback's signature could not be verified")
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
