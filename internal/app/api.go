package app

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/logicspike/comms/internal/accounts"
	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/callbacks/apply"
	"github.com/logicspike/comms/internal/categories"
	"github.com/logicspike/comms/internal/dashboard"
	"github.com/logicspike/comms/internal/dispatch/dlq"
	"github.com/logicspike/comms/internal/dispatch/scheduler"
	"github.com/logicspike/comms/internal/dispatch/sweeper"
	"github.com/logicspike/comms/internal/inbox"
	"github.com/logicspike/comms/internal/intake"
	"github.com/logicspike/comms/internal/platform/config"
	"github.com/logicspike/comms/internal/platform/invalidate"
	"github.com/logicspike/comms/internal/platform/netguard"
	"github.com/logicspike/comms/internal/platform/ratelimit"
	"github.com/logicspike/comms/internal/platform/runner"
	"github.com/logicspike/comms/internal/platform/tracing"
	"github.com/logicspike/comms/internal/providerconfig"
	"github.com/logicspike/comms/internal/queue"
	"github.com/logicspike/comms/internal/quota"
	"github.com/logicspike/comms/internal/recipients"
	"github.com/logicspike/comms/internal/registry"
	"github.com/logicspike/comms/internal/reports"
	"github.com/logicspike/comms/internal/senders"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/templates"
	"github.com/logicspike/comms/internal/webhooks"
)

// APIParts is what an API process runs with. API fills it from the configuration; the test
// stack with its fakes and short intervals.
type APIParts struct {
	Store    *store.Store
	Redis    *redis.Client
	Prefix   string
	Log      *slog.Logger
	Registry *registry.Registry
	Producer *queue.Producer // comms.send, for the sweeper, the scheduler and dead-letter replays
	// Publisher is what the intake and the scheduler publish with (default Producer); tests make
	// it fail.
	Publisher    intake.Publisher
	Sweeper      *sweeper.Config // nil: no sweeper in this process
	Scheduler    scheduler.Config
	AuthCacheTTL time.Duration
	RouteTTL     time.Duration // how long the intake keeps a tenant's configs to check a from
	TestTimeout  time.Duration // a Save & Test send's bound
	Webhooks     webhooks.ServiceConfig
	// AllowPrivateNetwork (COMMS_ALLOW_PRIVATE_NETWORKS) accepts http:// and private Web Push
	// endpoints, as Webhooks.AllowPrivate does for webhook endpoints.
	AllowPrivateNetwork bool
	Limiter             *ratelimit.Limiter // default: on Redis
}

// APIProcess is an API process wired: its handler (API and dashboard) and the parts that run
// behind it.
type APIProcess struct {
	Handler  http.Handler
	Intake   *intake.Service
	Server   *api.Server
	Webhooks *webhooks.Service
	// Streams are the open inbox streams; the HTTP server ends them as it starts shutting down.
	Streams *inbox.Hub
	// Behind are the stages that stop after the HTTP server: the intake's batches and the
	// keys' last use are flushed, then the loops stop.
	Behind []runner.Stage
}

// NewAPIProcess wires p.
func NewAPIProcess(p APIParts) *APIProcess {
	log := p.Log
	if p.Publisher == nil {
		p.Publisher = p.Producer
	}
	if p.Limiter == nil {
		p.Limiter = ratelimit.New(p.Redis, p.Prefix)
	}
	tmplCache := templates.NewCache(p.Redis, p.Prefix, log)
	tmpl := templates.New(p.Store, tmplCache, log)
	cats := categories.New(p.Store, p.Redis, p.Prefix, categories.DefaultTTL, log)
	from := senders.New(p.Store, p.Redis, p.Prefix, p.RouteTTL, log)
	in := intake.New(p.Store, intake.NewIdempotencyCache(p.Redis, p.Prefix), p.Publisher, log).WithTemplates(tmpl).
		WithQuotas(quota.New(p.Redis, p.Prefix, p.Store, log)).WithCategories(cats).WithSenders(from)
	notifier := announcer{invalidate.NewNotifier(p.Redis, p.Prefix, log), from}
	ps := providerconfig.New(p.Store, p.Registry, log, p.TestTimeout).WithNotifier(notifier)
	p.Webhooks.Notifier = notifier
	hooks := webhooks.NewService(p.Webhooks, p.Store, p.Registry.Ring(), log)
	streams := inbox.NewHub(p.Redis, p.Prefix, log)
	svc := api.Services{
		Accounts:   accounts.New(p.Store, notifier),
		Intake:     in,
		Providers:  ps,
		Templates:  tmpl,
		Webhooks:   hooks,
		DLQ:        dlq.New(p.Store, p.Producer, log),
		Reports:    reports.New(p.Store),
		Recipients: recipients.New(p.Store).WithCategories(cats).AllowHTTPPush(p.AllowPrivateNetwork),
		Inbox:      inbox.New(p.Store, p.Registry.Ring()).WithHub(streams),
		Unmatched:  apply.NewUnmatched(p.Store),
		Ready:      func(ctx context.Context) error { return p.Store.Pool().Ping(ctx) },
	}
	srv := api.New(svc, log, api.Options{AuthCacheTTL: p.AuthCacheTTL, Limiter: p.Limiter})
	loops := runner.Stage{
		runner.Loop("scheduler", scheduler.New(p.Scheduler, p.Store, p.Publisher, log).Run),
		runner.Loop("template invalidations", tmplCache.Run),
		runner.Loop("category invalidations", cats.Run),
		runner.Loop("sender invalidations", from.Run),
		runner.Loop("inbox streams", streams.Run),
	}
	if p.Sweeper != nil {
		loops = append(loops, runner.Loop("sweeper", sweeper.New(*p.Sweeper, p.Store, p.Producer, log).Run))
	}
	return &APIProcess{
		Handler:  tracing.Handler(dashboard.WithAPI(srv, dashboard.New(svc, srv, log)), "api"),
		Intake:   in,
		Server:   srv,
		Webhooks: hooks,
		Streams:  streams,
		Behind: []runner.Stage{
			{runner.Loop("intake batches", in.Run), runner.Loop("key use", srv.Run)},
			loops,
		},
	}
}

// announcer announces a change of a tenant's configs or settings to every process, dropping
// this process's own view of them at once rather than when its notice comes back.
type announcer struct {
	*invalidate.Notifier
	senders *senders.Checker
}

func (a announcer) Changed(ctx context.Context, tenantID string) {
	a.senders.Changed(tenantID)
	a.Notifier.Changed(ctx, tenantID)
}

// API serves the HTTP API on ln until ctx ends. Shutdown order: stop accepting requests and let
// in-flight ones finish (after the drain delay); flush the intake's batches (records, then
// publishes) and the keys' last use; stop the sweeper, the scheduler and the listeners; close
// the producer.
func API(ctx context.Context, cfg config.Config, d Deps, ln net.Listener) error {
	log := d.Log.With("service", "api")
	prod := queue.NewProducer(cfg.KafkaBrokers, queue.TopicSend)
	defer prod.Close()
	p := NewAPIProcess(APIParts{
		Store: store.New(d.Pool), Redis: d.Redis, Prefix: cfg.RedisPrefix, Log: d.Log, Registry: Registry(cfg, nil),
		Producer:            prod,
		Sweeper:             &sweeper.Config{Interval: cfg.SweepInterval, Grace: cfg.SweepGrace, LostAfter: cfg.SweepLostAfter},
		AuthCacheTTL:        cfg.AuthCacheTTL,
		RouteTTL:            cfg.RouteCacheTTL,
		TestTimeout:         cfg.ProviderTestTimeout,
		Webhooks:            webhooks.ServiceConfig{Dial: netguard.DialFunc(10*time.Second, cfg.AllowPrivateNetwork), AllowPrivate: cfg.AllowPrivateNetwork},
		AllowPrivateNetwork: cfg.AllowPrivateNetwork,
	})
	srv := newHTTPServer(p.Handler, log)
	srv.RegisterOnShutdown(p.Streams.Close)
	http := runner.Stage{{Name: "http", Run: func(ctx context.Context) error {
		return serve(ctx, srv, ln, "COMMS_API_MAX_CONNS", cfg.APIMaxConns, cfg.DrainDelay, cfg.ShutdownTimeout, log)
	}}}
	return runner.Run(ctx, log, append([]runner.Stage{http}, p.Behind...)...)
}
