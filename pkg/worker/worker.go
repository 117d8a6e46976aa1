// Package worker dispatches send intents from comms.send through the tenant's provider.
//
// Each fetched intent is processed concurrently, bounded by InFlight (not by the partition count),
// so a slow tenant does not hold up the others in its partition. An intent is claimed in
// PostgreSQL (queued → sending, with a lease) before the provider is called and its outcome is
// recorded after; only then is its offset marked done, and offsets are committed only up to the
// lowest unfinished one. A redelivered intent finds its message no longer queued and is skipped.
//
// The one duplicate window: a crash after the provider accepted a message but before the outcome
// was recorded. The message stays "sending" until its lease expires, the sweeper re-publishes it,
// and the next attempt sends it again.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/logicspike/comms/pkg/batch"
	"github.com/logicspike/comms/pkg/db"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/metrics"
	"github.com/logicspike/comms/pkg/provider"
	"github.com/logicspike/comms/pkg/queue"
	"github.com/logicspike/comms/pkg/ratelimit"
	"github.com/logicspike/comms/pkg/store"
)

// Config tunes a worker. Zero values take the defaults in WithDefaults.
type Config struct {
	InFlight       int           // messages processed at once
	Batch          int           // claims and outcomes per database round trip, at most
	Linger         time.Duration // how long a claim or outcome waits for others to share its round trip
	Lease          time.Duration // how long a claim is exclusive; must outlast AttemptTimeout
	AttemptTimeout time.Duration // one provider call
	CommitInterval time.Duration
	DrainTimeout   time.Duration // graceful shutdown: how long in-flight work may finish
	Brokers        []string      // Kafka
	Group          string        // consumer group of comms.send
	// SendLimiter enforces provider configs' send caps across workers; nil: caps are not enforced.
	SendLimiter SendLimiter
	// PerConfigInFlight bounds the sends in flight through one provider config (a bulkhead).
	// Messages beyond it wait for the config without holding one of the InFlight slots, up to
	// PerConfigWaiting of them and no more than would get a slot within PerConfigLineWait at the
	// config's recent pace; more are parked before they are claimed (and a claimed one beyond
	// PerConfigWaiting is retried). So a provider that hangs holds at most
	// PerConfigInFlight slots and a short line, and a slow but healthy one queues rather than
	// churns. Defaults InFlight/2, 4×PerConfigInFlight and 2 s; a negative PerConfigLineWait
	// bounds the line by PerConfigWaiting alone.
	PerConfigInFlight int
	PerConfigWaiting  int
	PerConfigLineWait time.Duration
	RetryInitial      time.Duration // first retry's wait (before jitter); each next one ×3
	RetryMax          time.Duration // longest wait between attempts
	// A config's breaker opens after BreakerThreshold consecutive unavailable/timeout failures
	// and lets a probe through after BreakerCooldown; each failed probe doubles the wait for the
	// next, up to BreakerMaxCooldown (defaults 5, 10 s, 1.5×BreakerCooldown): a provider's
	// recovery is noticed within 15 s however long it was down, at four probes a minute.
	BreakerThreshold   int
	BreakerCooldown    time.Duration
	BreakerMaxCooldown time.Duration
	// An intent parked behind an open breaker waits ParkWait, doubled for each earlier park up to
	// ParkMaxWait (defaults 3× and 24×BreakerCooldown: 30 s and 4 min), unless it carries the
	// next probe; all are released as
	// soon as the breaker closes on any worker (Announcer and RouteRecovered).
	ParkWait    time.Duration
	ParkMaxWait time.Duration
	// MaxParks bounds how often one intent is deferred unclaimed while every route refuses sends
	// (default 20: over an hour behind a breaker that keeps failing its probes); after that it
	// is attempted, and its retry budget counts down as usual. Negative: never park.
	MaxParks int
	// Announcer tells every worker that a config's breaker closed, so they close theirs and
	// release the intents parked behind it; nil: each worker finds out by its own probes.
	Announcer Announcer
}

// Announcer broadcasts that a provider config recovered (invalidate.Notifier).
type Announcer interface {
	Recovered(ctx context.Context, tenantID, configID string)
}

// WithDefaults fills zero fields.
func (c Config) WithDefaults() Config {
	if c.InFlight == 0 {
		c.InFlight = 1024
	}
	if c.Batch == 0 {
		c.Batch = 500
	}
	if c.Linger == 0 {
		c.Linger = 3 * time.Millisecond
	}
	if c.AttemptTimeout == 0 {
		c.AttemptTimeout = 30 * time.Second
	}
	if c.Lease == 0 {
		c.Lease = 2*c.AttemptTimeout + 30*time.Second
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = 200 * time.Millisecond
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 25 * time.Second
	}
	if c.PerConfigInFlight == 0 {
		c.PerConfigInFlight = max(1, c.InFlight/2)
	}
	if c.PerConfigWaiting == 0 {
		c.PerConfigWaiting = 4 * c.PerConfigInFlight
	}
	if c.PerConfigLineWait == 0 {
		c.PerConfigLineWait = 2 * time.Second
	}
	if c.RetryInitial == 0 {
		c.RetryInitial = 5 * time.Second
	}
	if c.RetryMax == 0 {
		c.RetryMax = time.Hour
	}
	if c.BreakerThreshold == 0 {
		c.BreakerThreshold = 5
	}
	if c.BreakerCooldown == 0 {
		c.BreakerCooldown = 10 * time.Second
	}
	// The rest scale with the cooldown, so that a test's short cooldown shortens them all.
	if c.BreakerMaxCooldown == 0 {
		c.BreakerMaxCooldown = c.BreakerCooldown * 3 / 2
	}
	if c.ParkWait == 0 {
		c.ParkWait = 3 * c.BreakerCooldown
	}
	if c.ParkMaxWait == 0 {
		c.ParkMaxWait = max(c.ParkWait, 24*c.BreakerCooldown)
	}
	if c.MaxParks == 0 {
		c.MaxParks = 20
	}
	return c
}

// Validate names each bad setting.
func (c Config) Validate() error {
	var errs []error
	if c.InFlight < 1 {
		errs = append(errs, errors.New("in-flight must be at least 1"))
	}
	if c.Lease <= c.AttemptTimeout {
		errs = append(errs, fmt.Errorf("lease (%s) must be longer than the attempt timeout (%s)", c.Lease, c.AttemptTimeout))
	}
	return errors.Join(errs...)
}

// SendLimiter is a shared token bucket (ratelimit.Limiter).
type SendLimiter interface {
	Allow(ctx context.Context, key string, rate float64, burst int) (ratelimit.Result, error)
}

// Worker is one dispatcher.
type Worker struct {
	cfg    Config
	store  *store.Store
	router *Router
	dlq    *queue.Producer
	log    *slog.Logger

	claims  *batch.Batcher[store.Ref, *store.Claimed]
	outs    *batch.Batcher[store.Outcome, int]
	retries *queue.Producer // no fixed topic: retry tiers
	// defers carries intents to retry tiers. Concurrent ones share a produce: behind an open
	// breaker every intent of the tenant is deferred, hundreds a second.
	defers *batch.Batcher[queue.Routed, batch.Done]
	// marks records retries as published on their tier, many to a statement: the sends a hanging
	// provider held time out together, and marking each alone was a burst of hundreds of commits
	// every time they did.
	marks     *batch.Batcher[store.Ref, batch.Done]
	breakers  *breakers
	bulkheads *bulkheads

	crashOnce sync.Once
	crash     chan struct{}
}

// New returns a worker. dlq receives intents that cannot be decoded or ran out of retries;
// retries (a producer with no fixed topic) carries waiting intents to the retry tiers.
func New(cfg Config, s *store.Store, r *Router, dlq, retries *queue.Producer, log *slog.Logger) (*Worker, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("worker config: %w", err)
	}
	w := &Worker{cfg: cfg, store: s, router: r, dlq: dlq, retries: retries, log: log,
		crash: make(chan struct{}), breakers: &breakers{threshold: cfg.BreakerThreshold, cooldown: cfg.BreakerCooldown, maxCooldown: cfg.BreakerMaxCooldown, m: map[string]*breaker{}},
		bulkheads: newBulkheads(cfg.PerConfigInFlight, cfg.PerConfigWaiting, cfg.PerConfigLineWait)}
	rows := batch.Options{Size: cfg.Batch, Concurrency: 4, Linger: cfg.Linger, IsolateFailures: db.RowError}
	w.claims = batch.New(w.claimBatch, rows)
	w.outs = batch.New(w.finishBatch, rows)
	w.defers = batch.NewErr(func(ctx context.Context, rs []queue.Routed) error { return w.retries.PublishRouted(ctx, rs...) },
		batch.Options{Size: cfg.Batch, Concurrency: 2, Linger: cfg.Linger})
	w.marks = batch.NewErr(w.markBatch, batch.Options{Size: 10_000, Concurrency: 1, Linger: retryMarkLinger})
	return w, nil
}

// retryMarkLinger is how long a retry put on its tier waits to be marked published with others.
// The mark only keeps the sweeper from publishing the retry again, which it does after its grace
// (10 s by default); a lost mark costs a duplicate intent, which the worker defers or skips.
const retryMarkLinger = 250 * time.Millisecond

func (w *Worker) markBatch(ctx context.Context, refs []store.Ref) error {
	if err := w.store.MarkPublished(ctx, refs); err != nil {
		w.log.WarnContext(ctx, "could not mark retries published; the sweeper may publish them again", "count", len(refs), "err", err)
	}
	return nil
}

// Run dispatches from comms.send until ctx ends, through the one consumer loop (queue.Consume):
// it stops fetching, lets in-flight messages finish for up to DrainTimeout, then cancels what is
// left, commits the offsets of everything finished and leaves the group. The batchers outlive the
// consumption, so the last outcomes are recorded.
func (w *Worker) Run(ctx context.Context) error {
	batchCtx, stopBatchers := context.WithCancel(context.WithoutCancel(ctx))
	var batchers sync.WaitGroup
	for _, run := range []func(context.Context){w.claims.Run, w.outs.Run, w.defers.Run, w.marks.Run} {
		batchers.Add(1)
		go func() { defer batchers.Done(); run(batchCtx) }()
	}
	err := queue.Consume(ctx, queue.ConsumerConfig{
		Brokers: w.cfg.Brokers, Group: w.cfg.Group, Topic: queue.TopicSend,
		InFlight: w.cfg.InFlight, CommitInterval: w.cfg.CommitInterval, DrainTimeout: w.cfg.DrainTimeout,
		Abandon: w.crash, Log: w.log,
	}, func(ctx context.Context, d *queue.Delivery) {
		go func() { d.Finish(w.handle(ctx, d)) }()
	})
	stopBatchers()
	batchers.Wait()
	return err
}

// Crash abandons the worker as a killed process would: in-flight work is cancelled, nothing more
// is committed, and the consumer's connections are closed. Run then returns. It exists for
// crash-safety tests.
func (w *Worker) Crash() {
	w.crashOnce.Do(func() { close(w.crash) })
}

// The stage histograms, looked up once rather than per message.
var (
	queueStage  = metrics.DispatchStage.WithLabelValues("queue")
	claimStage  = metrics.DispatchStage.WithLabelValues("claim")
	recordStage = metrics.DispatchStage.WithLabelValues("record")
)

// handle processes one intent and reports whether its offset may be committed.
func (w *Worker) handle(ctx context.Context, d *queue.Delivery) bool {
	m := d.Message
	fetched := time.Now()
	env, err := queue.Decode(m.Value)
	if err != nil {
		return w.deadLetter(ctx, m, err)
	}
	if since := env.EnqueuedAt; !since.IsZero() {
		if env.NotBefore.After(since) {
			since = env.NotBefore
		}
		// Clocks of the publishing host and this one may disagree by a little.
		queueStage.Observe(max(0, fetched.Sub(since).Seconds()))
	}
	log := w.log.With("tenant_id", env.TenantID, "message_id", env.MessageID)
	ref := store.Ref{TenantID: env.TenantID, ID: env.MessageID}
	if wait := time.Until(env.NotBefore); wait > time.Second {
		// Early (the sweeper re-published a waiting retry): back to its tier, not attempted.
		return retry(ctx, func() error { return w.deferTo(ctx, queue.RetryTopic(wait), env) }) == nil
	}

	if wait, ok := w.parkable(ctx, env); ok {
		// No route would take it now: defer it without claiming, so a tenant whose provider is
		// down costs a produce per intent rather than a claim, an outcome and their events.
		env.Parks++
		env.EnqueuedAt, env.NotBefore = time.Now().UTC(), time.Now().Add(wait).UTC()
		if err := retry(ctx, func() error { return w.deferTo(ctx, queue.RetryTopic(wait), env) }); err != nil {
			return false
		}
		metrics.Parked.WithLabelValues(env.TenantID).Inc()
		log.DebugContext(ctx, "intent parked: every route is refusing sends", "for", wait.Round(time.Millisecond), "parks", env.Parks)
		return true
	}

	var claimed *store.Claimed
	if err := retry(ctx, func() error {
		var err error
		claimed, err = w.claims.Do(ctx, ref)
		return err
	}); err != nil {
		return false // shutting down: the intent is redelivered
	}
	if claimed == nil {
		log.DebugContext(ctx, "intent skipped: message is not queued (already handled, in another attempt, or unknown)")
		return true
	}
	log = log.With("attempt", claimed.Attempt)
	claimStage.Observe(time.Since(fetched).Seconds())

	out, ok := w.attempt(ctx, log, claimed, m.Value, d.Release)
	if !ok {
		return false
	}
	answered := time.Now()
	var recorded int
	if err := retry(ctx, func() error {
		var err error
		recorded, err = w.outs.Do(ctx, out)
		return err
	}); err != nil {
		return false
	}
	if recorded == 0 {
		return true // a newer attempt owns the message now
	}
	recordStage.Observe(time.Since(answered).Seconds())
	switch out.Status {
	case message.Sent:
		metrics.Sent.WithLabelValues(out.TenantID, string(claimed.Channel), out.ProviderType).Inc()
	case message.Queued:
		metrics.Retries.WithLabelValues(out.ProviderType, out.ErrorCode).Inc()
		w.scheduleRetry(ctx, log, env, out)
	default:
		metrics.Failed.WithLabelValues(out.TenantID, string(claimed.Channel), out.ProviderType, out.ErrorCode).Inc()
		if out.DeadLetter {
			metrics.DeadLetters.WithLabelValues(out.ProviderType, out.ErrorCode).Inc()
			w.publishDeadLetter(ctx, log, m, out)
		}
	}
	return true
}

// parkable reports whether every route env's message could take is refusing sends right now (its
// breaker open, or its bulkhead full), and if so how long to defer it.
//
// Behind an open breaker: the first intent parked in each cooldown comes back as it ends, to carry
// the probe; the others wait parkWait, longer with each park, since the breaker closing releases
// them all at once (RouteRecovered). So a provider down for an hour costs a few returns per intent,
// and its recovery is noticed within one cooldown and acted on at once.
//
// Behind a full bulkhead: until its turn, after the intents deferred before it, at the pace the
// provider takes sends (bulkheads.turn), between a first retry's wait and the longest cooldown.
//
// Only the breakers and bulkheads of this worker are consulted; an intent another worker could
// send is at worst delayed by one wait.
func (w *Worker) parkable(ctx context.Context, env queue.Envelope) (time.Duration, bool) {
	if env.Parks >= w.cfg.MaxParks || w.cfg.MaxParks < 0 {
		return 0, false
	}
	categories := []message.Category{env.Category}
	if env.Category == "" {
		categories = []message.Category{message.Transactional, message.Marketing}
	}
	now := time.Now()
	var (
		soonest = time.Duration(-1)
		behind  *breaker // the breaker the soonest wait is for; nil for a bulkhead's turn
		turnOf  string   // the config whose turn the soonest wait is
	)
	for _, cat := range categories {
		plan, err := w.router.Plan(ctx, env.TenantID, env.Channel, cat)
		if err != nil || len(plan.Routes) == 0 {
			return 0, false // the claim path reports it
		}
		for _, r := range plan.Routes {
			b := w.breakers.get(r.Config.ID)
			wait, _, open := b.blocked(now)
			config := ""
			if !open {
				turn, deferred := w.bulkheads.turn(r.Config.ID, env.Parks > 0)
				if !deferred {
					return 0, false
				}
				wait, b, config = min(max(w.cfg.RetryInitial, turn), w.cfg.BreakerMaxCooldown), nil, r.Config.ID
			}
			if soonest < 0 || wait < soonest {
				soonest, behind, turnOf = wait, b, config
			}
		}
	}
	switch {
	case behind == nil:
		w.bulkheads.book(turnOf, soonest)
		return soonest, true
	case behind.bookCarrier(now):
		return soonest, true
	}
	long := w.parkWait(env.Parks)
	return max(soonest, long) + time.Duration(rand.Int64N(int64(long/2)+1)), true //nolint:gosec // jitter
}

// parkWait is how long an intent parked parks times before waits behind an open breaker.
func (w *Worker) parkWait(parks int) time.Duration {
	return min(w.cfg.ParkWait<<min(parks, 16), w.cfg.ParkMaxWait)
}

// RouteRecovered closes this worker's breaker for configID because a probe succeeded elsewhere.
func (w *Worker) RouteRecovered(configID string) {
	if w.breakers.reset(configID) {
		metrics.BreakerState.WithLabelValues(configID).Set(0)
	}
}

// scheduleRetry puts the intent on its retry tier. If that fails the outbox row stays
// unpublished and the sweeper re-publishes it, carrying its time.
func (w *Worker) scheduleRetry(ctx context.Context, log *slog.Logger, env queue.Envelope, out store.Outcome) {
	env.Attempt, env.EnqueuedAt, env.NotBefore = out.Attempt+1, time.Now().UTC(), out.NextAttemptAt.UTC()
	topic := queue.RetryTopic(time.Until(out.NextAttemptAt))
	if err := w.deferTo(ctx, topic, env); err != nil {
		log.WarnContext(ctx, "could not put the retry on its tier; the sweeper will", "topic", topic, "err", err)
		return
	}
	if !w.marks.TrySubmit(out.Ref) {
		log.WarnContext(ctx, "mark queue full: the sweeper may publish this retry again")
	}
}

// deferTo puts env on a retry tier, sharing a produce with concurrent deferrals.
func (w *Worker) deferTo(ctx context.Context, topic string, env queue.Envelope) error {
	_, err := w.defers.Do(ctx, queue.Routed{Topic: topic, Envelope: env})
	return err
}

// publishDeadLetter copies the intent to comms.send.dlq for consumers of the topic. The
// dead_letters row, written with the outcome, is what ops list and replay.
func (w *Worker) publishDeadLetter(ctx context.Context, log *slog.Logger, m queue.Message, out store.Outcome) {
	dl := queue.Message{Key: m.Key, Value: m.Value, Headers: []queue.Header{
		{Key: "error_code", Value: []byte(out.ErrorCode)},
		{Key: "error", Value: []byte(out.ErrorMessage)},
		{Key: "attempts", Value: []byte(strconv.Itoa(out.Attempt))},
		{Key: "provider_id", Value: []byte(out.ProviderConfigID)},
		{Key: "failed_at", Value: []byte(time.Now().UTC().Format(time.RFC3339Nano))},
	}}
	if err := w.dlq.PublishRaw(ctx, dl); err != nil {
		log.WarnContext(ctx, "could not copy the dead letter to the topic; it is indexed for replay", "err", err)
	}
}

// attempt routes and sends one claimed message. ok is false when the worker is shutting down
// hard and the outcome must not be recorded.
//
// Routes are tried in order: a failure that belongs to the account rather than the message
// (unavailable, timing out, throttled, out of funds, refused credentials, an open breaker) fails
// over to the next route within the same attempt. When every route failed, a transient failure
// schedules a retry, while the tenant's budget lasts; a permanent one, or an exhausted budget,
// fails the message, and an exhausted budget also dead-letters it.
// release gives back the message's in-flight slot while it waits for a bulkhead.
func (w *Worker) attempt(ctx context.Context, log *slog.Logger, c *store.Claimed, env []byte, release func()) (store.Outcome, bool) {
	out := store.Outcome{Ref: store.Ref{TenantID: c.TenantID, ID: c.ID}, Attempt: c.Attempt}
	var plan Plan
	if err := retry(ctx, func() error {
		var err error
		plan, err = w.router.Plan(ctx, c.TenantID, c.Channel, c.Category)
		return err
	}); err != nil {
		return out, false
	}
	if len(plan.Routes) == 0 {
		out.Status, out.ErrorCode = message.Failed, string(provider.NoProvider)
		out.ErrorMessage = fmt.Sprintf("no enabled %s provider is configured for this tenant and the system default is not available to its %s messages; add one with POST /v1/providers", c.Channel, c.Category)
		log.WarnContext(ctx, "no provider", "channel", c.Channel)
		return out, true
	}

	var last *provider.Error
	var tried []string
	for i, route := range plan.Routes {
		rlog := log.With("provider", route.Config.Type, "provider_id", route.Config.ID)
		out.ProviderConfigID, out.ProviderType = route.Config.ID, route.Config.Type
		b := w.breakers.get(route.Config.ID)
		if capped := w.waitForSendCap(ctx, route); capped != nil {
			last = capped
		} else if allowed, _ := b.allow(time.Now()); !allowed {
			// Retried on the message's own backoff, not at the breaker's reopening: the messages
			// an open breaker turned away would otherwise come back as one burst, which slows
			// every other tenant.
			last = &provider.Error{Code: provider.ProviderUnavailable, Provider: route.Config.Type,
				Message: "circuit open: recent sends through this provider config failed; it is probed again shortly"}
		} else if !w.bulkheads.acquire(ctx, route.Config.ID, release) {
			b.release()
			if ctx.Err() != nil {
				return out, false
			}
			last = &provider.Error{Code: provider.ProviderUnavailable, Provider: route.Config.Type,
				Message: fmt.Sprintf("%d sends in flight and %d more waiting for this provider config (it is answering slowly)",
					w.cfg.PerConfigInFlight, w.cfg.PerConfigWaiting)}
		} else {
			start := time.Now()
			res, err := w.send(ctx, route.Sender, c)
			w.bulkheads.release(route.Config.ID, time.Since(start))
			if ctx.Err() != nil {
				b.release()
				return out, false // crashed or out of drain time: the outcome is unknown, leave it leased
			}
			outcome := "ok"
			if err != nil {
				last = provider.Classify(route.Config.Type, err)
				outcome = string(last.Code)
			}
			metrics.ProviderLatency.WithLabelValues(route.Config.Type, outcome).Observe(time.Since(start).Seconds())
			if d := time.Since(start); d > w.cfg.AttemptTimeout/2 {
				rlog.WarnContext(ctx, "slow provider attempt", "duration", d)
			}
			if err == nil {
				w.breakerChanged(ctx, route, b.record(true, time.Now()), "")
				out.Status, out.ProviderMessageID, out.Cost, out.Currency = message.Sent, res.ProviderMessageID, res.Cost, res.Currency
				if len(tried) > 0 {
					rlog.InfoContext(ctx, "sent after failing over", "failed_over_from", tried)
				}
				return out, true
			}
			switch last.Code {
			case provider.ProviderUnavailable, provider.Timeout:
				w.breakerChanged(ctx, route, b.record(false, time.Now()), last.Describe())
			case provider.RateLimited:
				b.release() // says nothing about the provider's health
			default:
				w.breakerChanged(ctx, route, b.record(true, time.Now()), "") // the provider answered
			}
			if last.Code == provider.AuthFailed {
				w.credentialsRefused(ctx, rlog, route, last)
			}
			rlog.InfoContext(ctx, "send failed", "code", last.Code, "permanent", last.Permanent, "err", last)
		}
		tried = append(tried, route.Config.ID)
		if !failsOver(last.Code) || i == len(plan.Routes)-1 {
			break
		}
		rlog.InfoContext(ctx, "failing over to the next provider", "code", last.Code)
		metrics.Failovers.WithLabelValues(route.Config.Type, string(last.Code)).Inc()
	}

	out.ErrorCode, out.ErrorMessage = string(last.Code), last.Describe()
	out.Status = message.Failed
	if last.Permanent {
		return out, true
	}
	used := c.Attempt - c.AttemptBase
	delay := w.retryDelay(used, last.RetryAfter)
	next := time.Now().Add(delay)
	switch {
	case used >= plan.MaxAttempts:
		out.ErrorMessage += fmt.Sprintf(" (gave up after %d attempts)", used)
	case next.Sub(c.RetrySince) > plan.MaxRetryAge:
		out.ErrorMessage += fmt.Sprintf(" (gave up: a retry at %s would pass the %s retry window)", next.UTC().Format(time.RFC3339), plan.MaxRetryAge)
	default:
		out.Status, out.NextAttemptAt = message.Queued, next
		log.InfoContext(ctx, "retry scheduled", "code", last.Code, "in", delay.Round(time.Millisecond))
		return out, true
	}
	out.DeadLetter, out.Envelope = true, env
	log.WarnContext(ctx, "retries exhausted: dead-lettered", "code", last.Code, "attempts", used)
	return out, true
}

// waitForSendCap takes a token from the config's shared send cap, waiting for one if it comes
// within a second; otherwise it returns a rate_limited failure carrying the wait, which fails over
// or schedules a retry like the provider's own 429 would.
func (w *Worker) waitForSendCap(ctx context.Context, route Route) *provider.Error {
	rate := route.Config.SendRatePerSecond
	if rate <= 0 || w.cfg.SendLimiter == nil {
		return nil
	}
	burst := max(1, int(rate))
	for {
		res, err := w.cfg.SendLimiter.Allow(ctx, "prv:"+route.Config.ID, rate, burst)
		if err != nil {
			metrics.RateLimitErrors.WithLabelValues("send").Inc()
			return nil // the cap is a courtesy to the provider; Redis trouble must not stop sending
		}
		if res.Allowed {
			return nil
		}
		if res.Wait > time.Second {
			return &provider.Error{Code: provider.RateLimited, Provider: route.Config.Type, RetryAfter: res.Wait,
				Message: fmt.Sprintf("send cap of %g per second for this provider config reached", rate)}
		}
		sleep(ctx, res.Wait)
		if ctx.Err() != nil {
			return &provider.Error{Code: provider.Timeout, Provider: route.Config.Type, Message: "stopped waiting for the send cap"}
		}
	}
}

// failsOver reports whether a failure belongs to the provider account, so another config may
// succeed where this one failed; a bad recipient or content fails everywhere alike.
func failsOver(c provider.Code) bool {
	switch c {
	case provider.ProviderUnavailable, provider.Timeout, provider.RateLimited, provider.InsufficientFunds, provider.AuthFailed:
		return true
	}
	return false
}

// retryDelay is the wait before the next attempt after used attempts: exponential with jitter
// from a fresh backoff per message, never shorter than the provider's Retry-After (or the wait an
// open breaker or a full bulkhead asks for).
func (w *Worker) retryDelay(used int, retryAfter time.Duration) time.Duration {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.Multiplier, b.RandomizationFactor = w.cfg.RetryInitial, 3, 0.3
	b.MaxInterval, b.MaxElapsedTime = w.cfg.RetryMax, 0
	b.Reset()
	d := b.NextBackOff()
	for i := 1; i < used; i++ {
		d = b.NextBackOff()
	}
	if retryAfter > d {
		// Spread what must wait the same time (everything turned away by one open breaker, or
		// told the same Retry-After): never earlier than asked, up to half as late again, so
		// they do not all come back in the same instant.
		d = retryAfter + time.Duration(rand.Int64N(int64(retryAfter/2)+1)) //nolint:gosec // jitter, not a secret
	}
	return d
}

// breakerChanged records a breaker transition on the config, where GET /v1/providers shows it.
func (w *Worker) breakerChanged(ctx context.Context, route Route, state, reason string) {
	if state == "" {
		return
	}
	w.log.WarnContext(ctx, "circuit breaker changed", "tenant_id", route.Config.TenantID, "provider_id", route.Config.ID, "state", state)
	metrics.BreakerState.WithLabelValues(route.Config.ID).Set(map[string]float64{BreakerClosed: 0, BreakerHalfOpen: 1, BreakerOpen: 2}[state])
	if state == BreakerClosed {
		reason = ""
		if w.cfg.Announcer != nil {
			w.cfg.Announcer.Recovered(ctx, route.Config.TenantID, route.Config.ID)
		}
	}
	if err := w.store.SetProviderHealth(context.WithoutCancel(ctx), route.Config.ID, state, reason); err != nil {
		w.log.WarnContext(ctx, "could not record breaker state", "provider_id", route.Config.ID, "err", err)
	}
}

// credentialsRefused marks a tenant's config unhealthy, so it is skipped (not retried into the
// wall) until the tenant updates its credentials, and says so where the tenant looks.
func (w *Worker) credentialsRefused(ctx context.Context, log *slog.Logger, route Route, pe *provider.Error) {
	reason := pe.Describe() + " — update your credentials"
	if err := w.store.SetProviderHealth(context.WithoutCancel(ctx), route.Config.ID, store.HealthAuthFailed, reason); err != nil {
		log.WarnContext(ctx, "could not mark config unhealthy", "err", err)
		return
	}
	log.WarnContext(ctx, "provider refused the credentials: config marked unhealthy until they change")
	w.router.Invalidate(route.Config.TenantID)
}

// send calls the adapter with the attempt timeout, turning a panic into an error.
func (w *Worker) send(ctx context.Context, s Sender, c *store.Claimed) (res provider.Result, err error) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.AttemptTimeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("provider adapter panicked: %v\n%s", r, debug.Stack())
		}
	}()
	return s.Send(ctx, provider.Message{
		ID: c.ID, TenantID: c.TenantID, Channel: c.Channel, To: c.To, From: c.From,
		Subject: c.Subject, Text: c.Text, HTML: c.HTML, Metadata: c.Metadata,
	})
}

func (w *Worker) deadLetter(ctx context.Context, m queue.Message, cause error) bool {
	w.log.ErrorContext(ctx, "unprocessable intent sent to the dead-letter topic", "err", cause,
		"partition", m.Partition, "offset", m.Offset)
	dl := queue.Message{Key: m.Key, Value: m.Value, Headers: append(m.Headers,
		queue.Header{Key: "error", Value: []byte(cause.Error())},
		queue.Header{Key: "failed_at", Value: []byte(time.Now().UTC().Format(time.RFC3339Nano))},
	)}
	return retry(ctx, func() error { return w.dlq.PublishRaw(ctx, dl) }) == nil
}

func (w *Worker) claimBatch(ctx context.Context, refs []store.Ref) ([]*store.Claimed, error) {
	claimed, err := w.store.ClaimMessages(ctx, refs, w.cfg.Lease)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*store.Claimed, len(claimed))
	for i := range claimed {
		byID[claimed[i].ID] = &claimed[i]
	}
	out := make([]*store.Claimed, len(refs))
	for i, r := range refs {
		// The same intent twice in one batch (a redelivery) must be claimed once.
		out[i] = byID[r.ID]
		delete(byID, r.ID)
	}
	return out, nil
}

// finishBatch records outcomes; each caller learns whether its own was recorded (1) or belonged to
// a superseded attempt (0).
func (w *Worker) finishBatch(ctx context.Context, outs []store.Outcome) ([]int, error) {
	recorded, err := w.store.FinishMessages(ctx, outs)
	if err != nil {
		return nil, err
	}
	ok := make(map[string]bool, len(recorded))
	for _, id := range recorded {
		ok[id] = true
	}
	res := make([]int, len(outs))
	for i, o := range outs {
		if ok[o.ID] {
			res[i] = 1
		}
	}
	return res, nil
}

func newBackoff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 50 * time.Millisecond
	b.MaxInterval = 5 * time.Second
	b.MaxElapsedTime = 0 // infrastructure errors: keep trying until shutdown
	return b
}

// retry runs op until it succeeds or ctx ends, with a fresh backoff each call.
func retry(ctx context.Context, op func() error) error {
	return backoff.Retry(op, backoff.WithContext(newBackoff(), ctx))
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
