package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/logicspike/comms/internal/callbacks/apply"
	"github.com/logicspike/comms/internal/categories"
	"github.com/logicspike/comms/internal/dispatch/pricer"
	"github.com/logicspike/comms/internal/dispatch/retrier"
	"github.com/logicspike/comms/internal/dispatch/worker"
	"github.com/logicspike/comms/internal/events"
	"github.com/logicspike/comms/internal/inbox"
	"github.com/logicspike/comms/internal/platform/config"
	"github.com/logicspike/comms/internal/platform/invalidate"
	"github.com/logicspike/comms/internal/platform/netguard"
	"github.com/logicspike/comms/internal/platform/ratelimit"
	"github.com/logicspike/comms/internal/platform/runner"
	"github.com/logicspike/comms/internal/platform/secrets"
	"github.com/logicspike/comms/internal/queue"
	"github.com/logicspike/comms/internal/registry"
	"github.com/logicspike/comms/internal/retention"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/unsubscribe"
	"github.com/logicspike/comms/internal/webhooks"
)

// WorkerParts is what a worker process runs with. Worker fills it from the configuration; the
// test stack fills it with its fakes and short intervals, so both run the same wiring.
type WorkerParts struct {
	Store    *store.Store
	Redis    *redis.Client
	Prefix   string // Redis key prefix
	Log      *slog.Logger
	Registry *registry.Registry
	Brokers  []string
	Group    string        // the consumer group; the retrier's and the webhooks' are derived from it
	Worker   worker.Config // Brokers, Group, SendLimiter and Announcer are filled in when unset
	RouteTTL time.Duration
	Retrier  retrier.Config // Brokers and Group are filled in
	Fold     time.Duration  // how often callbacks' counts are folded into the rollups
	Pricer   pricer.Config
	Events   events.Config
	// Retention purges message content past each tenant's content retention.
	Retention retention.Config
	// Eraser carries out the erasures of recipients tenants ask for.
	Eraser retention.EraserConfig
	// Partitions makes the days of message history ahead and drops those every retention passed.
	Partitions retention.PartitionConfig
	// Webhooks, when set, delivers events to tenants' endpoints in this process (Brokers and
	// Group are filled in); the test stack runs its deliverers itself.
	Webhooks *webhooks.Config
	// ReportLag exports comms_consumer_lag for comms.send (and comms.events with Webhooks).
	ReportLag bool
	// Ring and PublicURL (COMMS_PUBLIC_WEBHOOK_URL) sign and address the unsubscribe links of
	// emails in tenants' categories; without PublicURL emails carry none.
	Ring      *secrets.Ring
	PublicURL string
}

// WorkerProcess is a worker process's parts, wired: the dispatcher, its retrier, the loops
// that follow what it sends (fold, pricer, event publisher, webhook deliverer), and the
// listeners that keep its caches in step.
type WorkerProcess struct {
	*worker.Worker
	log    *slog.Logger
	stages []runner.Stage
	close  []func() error
}

// NewWorkerProcess wires p.
func NewWorkerProcess(p WorkerParts) (*WorkerProcess, error) {
	log := p.Log
	if p.Worker.SendLimiter == nil {
		p.Worker.SendLimiter = ratelimit.New(p.Redis, p.Prefix)
	}
	if p.Worker.Announcer == nil {
		p.Worker.Announcer = invalidate.NewNotifier(p.Redis, p.Prefix, log)
	}
	p.Worker.Brokers, p.Worker.Group = p.Brokers, p.Group
	if p.Worker.Inbox == nil {
		p.Worker.Inbox = inbox.NewAnnouncer(p.Redis, p.Prefix, log)
	}
	var cats *categories.Cache
	if p.Worker.Unsubscribe == nil && p.Ring != nil && p.PublicURL != "" {
		cats = categories.New(p.Store, p.Redis, p.Prefix, categories.DefaultTTL, log)
		p.Worker.Unsubscribe = &unsubscribe.Links{Ring: p.Ring, Base: p.PublicURL, Cats: cats, Subjects: p.Store}
	}
	dlq := queue.NewProducer(p.Brokers, queue.TopicDLQ)
	retries := queue.NewProducer(p.Brokers, "")
	evProd := queue.NewProducer(p.Brokers, queue.TopicEvents)
	wp := &WorkerProcess{log: log, close: []func() error{dlq.Close, retries.Close, evProd.Close}}
	router := worker.NewRouter(p.Store, Factory(p.Registry), p.RouteTTL, log)
	w, err := worker.New(p.Worker, p.Store, router, dlq, retries, log)
	if err != nil {
		wp.closeAll()
		return nil, err
	}
	wp.Worker = w
	p.Retrier.Brokers, p.Retrier.Group = p.Brokers, p.Group+"-retrier"
	rt := retrier.New(p.Retrier, log)

	// Stopped in this order: the dispatcher drains its in-flight sends and commits; then what
	// carries their consequences on (retries waiting, events, webhooks, prices, rollups); then
	// the listeners and gauges.
	consume := runner.Stage{{Name: "worker", Run: w.Run}}
	follow := runner.Stage{
		runner.Loop("retrier", rt.Run),
		runner.Loop("events publisher", events.New(p.Events, p.Store, evProd, log).Run),
		runner.Loop("pricer", pricer.New(p.Pricer, p.Store, p.Registry, log).Run),
		runner.Loop("fold", func(ctx context.Context) { apply.Fold(ctx, p.Store, p.Fold, log) }),
		runner.Loop("content retention", retention.New(p.Retention, p.Store, log).Run),
		runner.Loop("eraser", retention.NewEraser(p.Eraser, p.Store, log).Run),
		runner.Loop("partitions", retention.NewPartitions(p.Partitions, p.Store, log).Run),
	}
	listen := runner.Stage{
		runner.Loop("route invalidations", func(ctx context.Context) { invalidate.Listen(ctx, p.Redis, p.Prefix, log, router.Invalidate) }),
		runner.Loop("recoveries", func(ctx context.Context) { ListenForRecoveries(ctx, p.Redis, p.Prefix, log, w, rt) }),
		runner.Loop("probe requests", func(ctx context.Context) { ListenForProbeRequests(ctx, p.Redis, p.Prefix, log, rt) }),
	}
	if cats != nil {
		listen = append(listen, runner.Loop("category invalidations", cats.Run))
	}
	if p.ReportLag {
		listen = append(listen, runner.Loop("lag "+queue.TopicSend, func(ctx context.Context) { reportLag(ctx, p.Brokers, p.Group, queue.TopicSend, log) }))
	}
	if p.Webhooks != nil {
		p.Webhooks.Brokers, p.Webhooks.Group = p.Brokers, p.Group+"-webhooks"
		d := webhooks.New(*p.Webhooks, p.Store, p.Registry.Ring(), log)
		follow = append(follow, runner.Service{Name: "webhook deliverer", Run: d.Run})
		listen = append(listen, runner.Loop("endpoint invalidations", func(ctx context.Context) {
			invalidate.ListenEndpoints(ctx, p.Redis, p.Prefix, log, d.Changed)
		}))
		if p.ReportLag {
			listen = append(listen, runner.Loop("lag "+queue.TopicEvents, func(ctx context.Context) {
				reportLag(ctx, p.Brokers, p.Webhooks.Group, queue.TopicEvents, log)
			}))
		}
	}
	wp.stages = []runner.Stage{consume, follow, listen}
	return wp, nil
}

// Run runs the process until ctx ends (or a part stops early), stops its parts in order and
// closes its producers.
func (wp *WorkerProcess) Run(ctx context.Context) error {
	defer wp.closeAll()
	return runner.Run(ctx, wp.log, wp.stages...)
}

func (wp *WorkerProcess) closeAll() {
	for _, c := range wp.close {
		_ = c()
	}
}

// Worker dispatches until ctx ends, then drains (see WorkerProcess).
func Worker(ctx context.Context, cfg config.Config, d Deps, reg *registry.Registry) error {
	wp, err := NewWorkerProcess(WorkerParts{
		Store: store.New(d.Pool), Redis: d.Redis, Prefix: cfg.RedisPrefix, Log: d.Log.With("service", "worker"), Registry: reg,
		Brokers: cfg.KafkaBrokers, Group: cfg.WorkerGroup,
		Worker:    worker.Config{InFlight: cfg.WorkerInFlight, AttemptTimeout: cfg.AttemptTimeout, DrainTimeout: cfg.ShutdownTimeout},
		RouteTTL:  cfg.RouteCacheTTL,
		Eraser:    retention.EraserConfig{Batch: cfg.EraserBatch, Busy: cfg.EraserBusy},
		Fold:      apply.FoldInterval,
		Webhooks:  &webhooks.Config{Dial: netguard.DialFunc(10*time.Second, cfg.AllowPrivateNetwork), DrainTimeout: cfg.ShutdownTimeout},
		ReportLag: true,
		Ring:      cfg.Ring, PublicURL: cfg.PublicWebhookURL,
	})
	if err != nil {
		return err
	}
	return wp.Run(ctx)
}
