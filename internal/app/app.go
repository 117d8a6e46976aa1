// Package app assembles the binaries from the packages: it opens connections from a config and
// runs each service until its context ends, then shuts it down in a documented order.
package app

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/logicspike/comms/internal/callbacks/apply"
	"github.com/logicspike/comms/internal/callbacks/receiver"
	"github.com/logicspike/comms/internal/db"
	"github.com/logicspike/comms/internal/dispatch/retrier"
	"github.com/logicspike/comms/internal/dispatch/worker"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/platform/config"
	"github.com/logicspike/comms/internal/platform/connlimit"
	"github.com/logicspike/comms/internal/platform/invalidate"
	"github.com/logicspike/comms/internal/platform/metrics"
	"github.com/logicspike/comms/internal/platform/poll"
	"github.com/logicspike/comms/internal/platform/runner"
	"github.com/logicspike/comms/internal/platform/secrets"
	"github.com/logicspike/comms/internal/platform/tracing"
	"github.com/logicspike/comms/internal/queue"
	"github.com/logicspike/comms/internal/registry"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/unsubscribe"
	"github.com/logicspike/comms/pkg/provider/sandbox"
)

// Deps are the connections a service runs on.
type Deps struct {
	Pool  *pgxpool.Pool
	Redis *redis.Client
	Log   *slog.Logger

	unwatch []func() // stops the pools' metrics
}

// Open connects to PostgreSQL and Redis. Close the result with Deps.Close.
func Open(ctx context.Context, cfg config.Config, log *slog.Logger) (Deps, error) {
	pool, err := db.Open(ctx, cfg.DatabaseURL, cfg.DBMaxConns)
	if err != nil {
		return Deps{}, err
	}
	// RESP2: nothing here uses RESP3's push messages, and with RESP3 go-redis checks for them on
	// every reply, a cost paid on every request.
	ropts := *cfg.Redis
	ropts.PoolSize, ropts.Protocol = 64, 2
	rdb := redis.NewClient(&ropts)
	if err := tracing.Redis(rdb); err != nil {
		pool.Close()
		return Deps{}, fmt.Errorf("trace redis: %w", err)
	}
	if err := rdb.Ping(ctx).Err(); isRedisSettingError(err) {
		// A setting to fix, not an outage to ride out.
		_ = rdb.Close()
		pool.Close()
		return Deps{}, fmt.Errorf("redis at %s: %w (check COMMS_REDIS_URL and COMMS_REDIS_TLS_CA_FILE)", cfg.RedisAddr, err)
	} else if err != nil {
		// Redis is only a fast path: start anyway, and say so.
		log.Warn("redis unreachable at start-up; idempotency falls back to the database", "addr", cfg.RedisAddr, "err", err)
	}
	return Deps{Pool: pool, Redis: rdb, Log: log, unwatch: []func(){metrics.WatchPostgres(pool), metrics.WatchRedis(rdb)}}, nil
}

// isRedisSettingError reports whether Redis answered but the settings are wrong: it refused the
// credentials (a wrong password, an unknown ACL user, none given where one is required), or its
// certificate is not one the configured CAs trust.
func isRedisSettingError(err error) bool {
	if err == nil {
		return false
	}
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	if errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "WRONGPASS") || strings.Contains(msg, "NOAUTH") || strings.Contains(msg, "invalid username-password")
}

// Close closes the connections.
func (d Deps) Close() {
	for _, stop := range d.unwatch {
		stop()
	}
	_ = d.Redis.Close()
	d.Pool.Close()
}

// Registry builds provider adapters with the config's key ring and endpoints; rec (may be nil)
// records what sandbox configs receive.
func Registry(cfg config.Config, rec *sandbox.Recorder) *registry.Registry {
	return registry.New(cfg.Ring, cfg.ProviderEnv(), rec)
}

// Factory is the worker's view of a registry.
func Factory(reg *registry.Registry) worker.Factory {
	return func(c domain.ProviderConfig) (worker.Sender, error) { return reg.Stored(c) }
}

// ListenForRecoveries acts on every worker's announcements that a provider config recovered:
// w closes its breaker for the config, and r releases the intents parked for its tenant.
func ListenForRecoveries(ctx context.Context, rdb *redis.Client, prefix string, log *slog.Logger, w *worker.Worker, r *retrier.Retrier) {
	invalidate.ListenRecovered(ctx, rdb, prefix, log, func(tenantID, configID string) {
		w.RouteRecovered(configID)
		if n := r.Release(tenantID); n > 0 {
			log.Info("provider recovered: parked intents released", "tenant_id", tenantID, "provider_id", configID, "released", n)
		}
	})
}

// ListenForProbeRequests acts on every worker's requests for a probe's carrier: r brings back the
// parked intent of the tenant due soonest, whose dispatch probes the config.
func ListenForProbeRequests(ctx context.Context, rdb *redis.Client, prefix string, log *slog.Logger, r *retrier.Retrier) {
	invalidate.ListenProbeWanted(ctx, rdb, prefix, log, func(tenantID, configID string) {
		if r.ReleaseOne(tenantID) {
			log.Debug("a parked intent released to carry a provider's probe", "tenant_id", tenantID, "provider_id", configID)
		}
	})
}

// Webhook serves the callback receiver on ln until ctx ends, and runs the applier that applies
// what it receives. Shutdown order: stop accepting callbacks and let in-flight ones be stored;
// then stop the inbox batcher and the applier (whose batches are transactions: an interrupted one
// is applied again by the next applier).
func Webhook(ctx context.Context, cfg config.Config, d Deps, ln net.Listener) error {
	srv, err := receiver.New(d.Pool, d.Log, receiver.Options{Registry: Registry(cfg, nil), PublicURL: cfg.PublicWebhookURL})
	if err != nil {
		return err
	}
	log := d.Log.With("service", "webhook")
	http := runner.Stage{{Name: "http", Run: func(ctx context.Context) error {
		return serve(ctx, newHTTPServer(tracing.Handler(WebhookHandler(srv, store.New(d.Pool), cfg.Ring, log), "webhook"), log), ln,
			"COMMS_WEBHOOK_MAX_CONNS", cfg.WebhookMaxConns, cfg.DrainDelay, cfg.ShutdownTimeout, log)
	}}}
	stored := runner.Stage{runner.Loop("inbox batches", srv.Run), runner.Loop("applier", apply.New(apply.Config{}, store.New(d.Pool), d.Log).Run)}
	return runner.Run(ctx, log, http, stored)
}

// WebhookHandler is the public receiver's whole surface: the provider callbacks (srv) and the
// unsubscribe links emails carry (/u/{token}).
func WebhookHandler(srv http.Handler, st *store.Store, ring *secrets.Ring, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/u/", metrics.Route("webhook", "/u/{token}", unsubscribe.NewHandler(st, ring, log)))
	// what a browser asks for beside the preference page: nothing to show, and no 404 to log
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.Handle("/", srv)
	return mux
}

// MaxHeaderBytes bounds a request's headers (Go's default is 1 MiB); larger ones get 431.
const MaxHeaderBytes = 64 << 10

func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		ErrorLog:          httpErrorLog(log),
		Handler:           h,
		MaxHeaderBytes:    MaxHeaderBytes,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
}

// serve runs srv on ln, holding at most maxConns connections open (setting names the variable),
// until ctx ends. Then it drains: for drain it goes on serving while /readyz answers 503, so that
// load balancers and Kubernetes endpoints stop sending before it stops accepting; then it lets
// in-flight requests finish for up to timeout.
func serve(ctx context.Context, srv *http.Server, ln net.Listener, setting string, maxConns int, drain, timeout time.Duration, log *slog.Logger) error {
	if err := checkFileLimit(setting, maxConns); err != nil {
		return err
	}
	var draining atomic.Bool
	next := srv.Handler
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" && draining.Load() {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":"draining"}`))
			return
		}
		next.ServeHTTP(w, r)
	})
	lim := connlimit.Wrap(ln, maxConns, strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(setting, "COMMS_"), "_MAX_CONNS")))
	errc := make(chan error, 1)
	go func() { errc <- lim.Serve(srv) }()
	log.Info("listening", "addr", ln.Addr().String(), "max_conns", maxConns)
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	if drain > 0 {
		draining.Store(true)
		log.Info("draining: /readyz fails while requests are still served", "for", drain)
		select {
		case err := <-errc:
			return fmt.Errorf("serve %s: %w", ln.Addr(), err)
		case <-time.After(drain):
		}
	}
	shCtx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := srv.Shutdown(shCtx); err != nil {
		return fmt.Errorf("shut down %s: %w", ln.Addr(), err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

// reportLag sets comms_consumer_lag every 5 s until ctx ends.
func reportLag(ctx context.Context, brokers []string, group, topic string, log *slog.Logger) {
	poll.Every(ctx, 5*time.Second, func(ctx context.Context) {
		lag, err := queue.GroupLag(ctx, brokers, group, topic)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("consumer lag unknown", "err", err)
			}
			return
		}
		metrics.ConsumerLag.WithLabelValues(topic, group).Set(float64(lag))
	})
}
