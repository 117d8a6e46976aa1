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
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/logicspike/comms/internal/batch"
	"github.com/logicspike/comms/internal/db"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/platform/metrics"
	"github.com/logicspike/comms/internal/platform/retry"
	"github.com/logicspike/comms/internal/platform/tracing"
	"github.com/logicspike/comms/internal/queue"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// Store is what the dispatcher reads and changes; *store.Store implements it.
type Store interface {
	ClaimMessages(ctx context.Context, refs []store.Ref, lease time.Duration) ([]store.Claimed, error)
	RetryDue(ctx context.Context, ref store.Ref, attempts int) (time.Time, bool, error)
	FinishAttempts(ctx context.Context, fn func(tx *store.OutcomeTx) error) ([]string, error)
	MarkPublished(ctx context.Context, refs []store.Ref) error
	SetProviderHealth(ctx context.Context, id, health, reason string) error
	PushTargets(ctx context.Context, attempts []store.PushAttempt) ([][]domain.Device, error)
	RecordPushDeliveries(ctx context.Context, recs []store.PushRecord) ([][]domain.PushDelivery, error)
}

// Worker is one dispatcher.
type Worker struct {
	cfg    Config
	store  Store
	router *Router
	dlq    *queue.Producer
	log    *slog.Logger

	claims  *batch.Batcher[store.Ref, *store.Claimed]
	outs    *batch.Batcher[outcome, int]
	retries *queue.Producer // no fixed topic: retry tiers
	// defers carries intents to retry tiers. Concurrent ones share a produce: behind an open
	// breaker every intent of the tenant is deferred, hundreds a second.
	defers *batch.Batcher[queue.Routed, batch.Done]
	// marks records retries as published on their tier, many to a statement: the sends a hanging
	// provider held time out together, and marking each alone was a burst of hundreds of commits
	// every time they did.
	marks *batch.Batcher[store.Ref, batch.Done]
	// targets and deliveries look up and record push messages' devices, many messages to a
	// statement: a fan-out attempts thousands of push messages a second.
	targets    *batch.Batcher[store.PushAttempt, []domain.Device]
	deliveries *batch.Batcher[store.PushRecord, []domain.PushDelivery]
	admission  *admission
}

// New returns a worker. dlq receives intents that cannot be decoded or ran out of retries;
// retries (a producer with no fixed topic) carries waiting intents to the retry tiers.
func New(cfg Config, s Store, r *Router, dlq, retries *queue.Producer, log *slog.Logger) (*Worker, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("worker config: %w", err)
	}
	w := &Worker{cfg: cfg, store: s, router: r, dlq: dlq, retries: retries, log: log}
	w.admission = newAdmission(cfg, w.breakerChanged)
	rows := batch.Options{Size: cfg.Batch, Concurrency: 4, Linger: cfg.Linger, IsolateFailures: db.RowError}
	w.claims = batch.New(w.claimBatch, rows)
	w.outs = batch.New(w.finishBatch, rows)
	w.defers = batch.NewErr(func(ctx context.Context, rs []queue.Routed) error { return w.retries.PublishRouted(ctx, rs...) },
		batch.Options{Size: cfg.Batch, Concurrency: 2, Linger: cfg.Linger})
	w.marks = batch.NewErr(w.markBatch, batch.Options{Size: 10_000, Concurrency: 1, Linger: retryMarkLinger})
	w.targets = batch.New(w.store.PushTargets, rows)
	w.deliveries = batch.New(w.store.RecordPushDeliveries, rows)
	return w, nil
}

// Run dispatches from comms.send until ctx ends, through the one consumer loop (queue.Consume):
// it stops fetching, lets in-flight messages finish for up to DrainTimeout, then cancels what is
// left, commits the offsets of everything finished and leaves the group. The batchers outlive the
// consumption, so the last outcomes are recorded.
func (w *Worker) Run(ctx context.Context) error {
	batchCtx, stopBatchers := context.WithCancel(context.WithoutCancel(ctx))
	var batchers sync.WaitGroup
	for _, run := range []func(context.Context){w.claims.Run, w.outs.Run, w.defers.Run, w.marks.Run, w.targets.Run, w.deliveries.Run} {
		batchers.Add(1)
		go func() { defer batchers.Done(); run(batchCtx) }()
	}
	err := queue.Consume(ctx, queue.ConsumerConfig{
		Brokers: w.cfg.Brokers, Group: w.cfg.Group, Topic: queue.TopicSend,
		InFlight: w.cfg.InFlight, CommitInterval: w.cfg.CommitInterval, DrainTimeout: w.cfg.DrainTimeout,
		Log: w.log,
	}, func(ctx context.Context, d *queue.Delivery) {
		go func() { d.Finish(w.handle(ctx, d)) }()
	})
	stopBatchers()
	batchers.Wait()
	return err
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
	env, err := queue.DecodeMessage(m)
	if err != nil {
		return w.deadLetter(ctx, m, err)
	}
	if tracing.Enabled() {
		var span trace.Span
		ctx, span = tracing.Start(tracing.Remote(ctx, env.TraceParent), "comms.dispatch", trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(attribute.String("comms.tenant_id", env.TenantID), attribute.String("comms.message_id", env.MessageID)))
		defer span.End()
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
		return retry.UntilDone(ctx, func() error { return w.deferTo(ctx, queue.RetryTopic(wait), env) }) == nil
	}

	if wait, ok := w.parkable(ctx, env); ok {
		// No route would take it now: defer it without claiming, so a tenant whose provider is
		// down costs a produce per intent rather than a claim, an outcome and their events.
		env.Parks, env.Parked = env.Parks+1, true
		env.EnqueuedAt, env.NotBefore = time.Now().UTC(), time.Now().Add(wait).UTC()
		if err := retry.UntilDone(ctx, func() error { return w.deferTo(ctx, queue.RetryTopic(wait), env) }); err != nil {
			return false
		}
		metrics.Parked.WithLabelValues(env.TenantID).Inc()
		log.DebugContext(ctx, "intent parked: every route is refusing sends", "for", wait.Round(time.Millisecond), "parks", env.Parks)
		return true
	}

	var claimed *store.Claimed
	if err := retry.UntilDone(ctx, func() error {
		var err error
		claimed, err = w.claims.Do(ctx, ref)
		return err
	}); err != nil {
		return false // shutting down: the intent is redelivered
	}
	if claimed == nil {
		return w.unclaimed(ctx, log, ref, env)
	}
	log = log.With("attempt", claimed.Attempt)
	claimStage.Observe(time.Since(fetched).Seconds())

	out, ok := w.attempt(ctx, log, claimed, m.Value, d.Release)
	if !ok {
		return false
	}
	answered := time.Now()
	var recorded int
	if err := retry.UntilDone(ctx, func() error {
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
		w.sent(ctx, claimed, env, out.ProviderType)
	case message.Queued:
		metrics.Retries.WithLabelValues(out.ProviderType, out.ErrorCode).Inc()
		w.scheduleRetry(ctx, log, env, out.Outcome)
	default:
		metrics.Failed.WithLabelValues(out.TenantID, string(claimed.Channel), out.ProviderType, out.ErrorCode).Inc()
		if out.envelope != nil {
			metrics.DeadLetters.WithLabelValues(out.ProviderType, out.ErrorCode).Inc()
			w.publishDeadLetter(ctx, log, m, out.Outcome)
		}
	}
	return true
}

// parkable reports whether every route env's message could take refuses sends right now, and if
// so how long to defer it (admission.park).
func (w *Worker) parkable(ctx context.Context, env queue.Envelope) (time.Duration, bool) {
	if env.Parks >= w.cfg.MaxParks || w.cfg.MaxParks < 0 {
		return 0, false
	}
	categories := []message.Category{env.Category}
	if env.Category == "" {
		categories = []message.Category{message.Transactional, message.Marketing}
	}
	var routes []Route
	for _, cat := range categories {
		plan, err := w.router.Plan(ctx, env.TenantID, env.Channel, cat)
		if err != nil || len(plan.Routes) == 0 {
			return 0, false // the claim path reports it
		}
		routes = append(routes, plan.Routes...)
	}
	return w.admission.park(routes, env.Parks)
}

// RouteRecovered closes this worker's breaker for configID because a probe succeeded elsewhere.
func (w *Worker) RouteRecovered(configID string) { w.admission.recovered(configID) }

// scheduleRetry puts the intent on its retry tier. If that fails the outbox row stays
// unpublished and the sweeper re-publishes it, carrying its time.
func (w *Worker) scheduleRetry(ctx context.Context, log *slog.Logger, env queue.Envelope, out store.Outcome) {
	env.Attempt, env.EnqueuedAt, env.NotBefore = out.Attempt+1, time.Now().UTC(), out.NextAttemptAt.UTC()
	env.Parked = false // a real backoff now, which a provider's recovery must not cut short
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

// attempt routes and sends one claimed message. ok is false when the worker is shutting down
// hard and the outcome must not be recorded.
//
// Routes are tried in order: a failure that belongs to the account rather than the message
// (unavailable, timing out, throttled, out of funds, refused credentials, an open breaker) fails
// over to the next route within the same attempt. When every route failed, a transient failure
// schedules a retry, while the tenant's budget lasts; a permanent one, or an exhausted budget,
// fails the message, and an exhausted budget also dead-letters it.
// release gives back the message's in-flight slot while it waits for a bulkhead.
func (w *Worker) attempt(ctx context.Context, log *slog.Logger, c *store.Claimed, env []byte, release func()) (outcome, bool) {
	out := outcome{Outcome: store.Outcome{Ref: store.Ref{TenantID: c.TenantID, ID: c.ID}, Attempt: c.Attempt}}
	switch c.Channel {
	case message.InApp:
		return toInbox(out), true
	case message.Push:
		return w.toDevices(ctx, log, c, env, release, out)
	}
	var plan Plan
	if err := retry.UntilDone(ctx, func() error {
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
	routes := plan.For(c.From)
	if len(routes) == 0 {
		// Intake refuses such a from; this one was accepted before its configs changed.
		out.Status, out.ErrorCode = message.Failed, string(provider.InvalidSender)
		out.ErrorMessage = fmt.Sprintf("no %s provider config of this tenant may send from %q any more; add its domain or number to a config's sender", c.Channel, c.From)
		return out, true
	}

	var last *provider.Error
	var tried []string
	for i, route := range routes {
		rlog := log.With("provider", route.Config.Type, "provider_id", route.Config.ID)
		out.ProviderConfigID, out.ProviderType = route.Config.ID, route.Config.Type
		reg, _ := provider.Lookup(route.Config.Type)
		out.awaitsCallbacks, out.pricedLater = reg.Callbacks != nil, reg.PricedLater
		t, refused, ok := w.admission.admit(ctx, route, release)
		switch {
		case !ok:
			return out, false
		case refused != nil:
			last = refused
		default:
			start := time.Now()
			res, err := w.send(ctx, route.Sender, c)
			if ctx.Err() != nil {
				t.abandon()
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
				t.done(ctx, nil)
				out.Status, out.ProviderMessageID = message.Sent, res.ProviderMessageID
				out.Cost, out.Currency, out.CostSource = price(c, route.Config, res.Cost, res.Currency)
				if len(tried) > 0 {
					rlog.InfoContext(ctx, "sent after failing over", "failed_over_from", tried)
				}
				return out, true
			}
			t.done(ctx, last)
			if last.Code == provider.AuthFailed {
				w.credentialsRefused(ctx, rlog, route, last)
			}
			rlog.InfoContext(ctx, "send failed", "code", last.Code, "permanent", last.Permanent, "err", last)
		}
		tried = append(tried, route.Config.ID)
		if !failsOver(last.Code) || i == len(routes)-1 {
			break
		}
		rlog.InfoContext(ctx, "failing over to the next provider", "code", last.Code)
		metrics.Failovers.WithLabelValues(route.Config.Type, string(last.Code)).Inc()
	}

	out.ErrorCode, out.ErrorMessage = string(last.Code), last.Describe()
	out.Status = message.Failed
	if last.Permanent {
		if last.Suppress != "" {
			out.suppress, out.recipientKey = last.Suppress, message.RecipientKey(c.Channel, c.To)
		}
		return out, true
	}
	return w.retryLater(ctx, log, c, plan, last, env, out)
}

// retryLater schedules the next attempt of a message whose attempt failed transiently with last,
// while the tenant's budget (plan) lasts; otherwise the message fails and its intent is
// dead-lettered.
func (w *Worker) retryLater(ctx context.Context, log *slog.Logger, c *store.Claimed, plan Plan, last *provider.Error, env []byte, out outcome) (outcome, bool) {
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
	out.envelope = env
	log.WarnContext(ctx, "retries exhausted: dead-lettered", "code", last.Code, "attempts", used)
	return out, true
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
