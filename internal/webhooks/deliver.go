// Package webhooks delivers events to tenants' webhook endpoints (docs/webhooks.md): signed
// Standard Webhooks POSTs, retried on a fixed schedule, with every attempt kept for the tenant
// to read and replay.
//
// The flow: the Deliverer reads comms.events in its own consumer group and tries each event at
// once on every endpoint of the tenant that wants it; what does not succeed is stored as a
// pending delivery, which the retry loop takes up again when it is due. Service is the API's
// side: endpoints, secrets, test sends, the delivery log and replays.
package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/logicspike/comms/internal/batch"
	"github.com/logicspike/comms/internal/db"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/platform/metrics"
	"github.com/logicspike/comms/internal/platform/poll"
	"github.com/logicspike/comms/internal/platform/retry"
	"github.com/logicspike/comms/internal/platform/secrets"
	"github.com/logicspike/comms/internal/platform/tracing"
	"github.com/logicspike/comms/internal/queue"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/event"
	"github.com/logicspike/comms/pkg/message"
)

// Schedule is the delay before each attempt of a delivery, the first at once: eight attempts
// over about 28 hours, then the delivery is failed.
var Schedule = []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// DisableAfter is how long an endpoint fails every attempt before it is disabled.
const DisableAfter = 5 * 24 * time.Hour

// Config shapes a Deliverer. Zero values take the defaults.
type Config struct {
	Brokers []string
	// Group is the consumer group on comms.events (default comms-webhooks).
	Group string
	// InFlight bounds the events being delivered at once (default 4,096).
	InFlight int
	// PerEndpoint bounds one endpoint's deliveries in flight (default 32): a slow endpoint uses
	// its own slots and nobody else's.
	PerEndpoint int
	// Retries bounds the retry loop's deliveries in flight (default 512).
	Retries int
	// Timeout is how long an endpoint has to answer (default 15 s).
	Timeout time.Duration
	// RetryInterval is how often the retry loop looks for due deliveries, and how long a
	// delivery put off for a busy endpoint waits (default 1 s).
	RetryInterval time.Duration
	// CacheTTL is how long a tenant's endpoints are cached without a change announced (default 5 s).
	CacheTTL time.Duration
	// Dial connects to endpoints: netguard's dialer in production.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Now is the clock the schedule and the disable window run on (default time.Now).
	Now func() time.Time
	// DrainTimeout is how long deliveries in flight may finish at shutdown (default 15 s).
	DrainTimeout time.Duration
}

func (c *Config) defaults() {
	if c.Group == "" {
		c.Group = "comms-webhooks"
	}
	if c.InFlight <= 0 {
		c.InFlight = 4096
	}
	if c.PerEndpoint <= 0 {
		c.PerEndpoint = 32
	}
	if c.Retries <= 0 {
		c.Retries = 512
	}
	if c.Timeout <= 0 {
		c.Timeout = 15 * time.Second
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = time.Second
	}
	if c.CacheTTL <= 0 {
		c.CacheTTL = 5 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 15 * time.Second
	}
}

// DeliveryStore is what the deliverer reads and changes; *store.Store implements it.
type DeliveryStore interface {
	ClaimDueWebhookDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]domain.WebhookDelivery, error)
	RecordWebhookOutcomes(ctx context.Context, outs []store.WebhookOutcome) error
	ListWebhookEndpoints(ctx context.Context, tenantID string, enabledOnly bool) ([]domain.WebhookEndpoint, error)
	MarkWebhookEndpointFailed(ctx context.Context, id string, at time.Time) (time.Time, error)
	MarkWebhookEndpointSucceeded(ctx context.Context, id string) error
	DisableFailingWebhookEndpoint(ctx context.Context, id string, streakStart time.Time, reason string, now time.Time) (domain.WebhookEndpoint, bool, error)
}

// Deliverer delivers events to endpoints. Any number may run in one consumer group.
type Deliverer struct {
	cfg    Config
	store  DeliveryStore
	ring   *secrets.Ring
	log    *slog.Logger
	sender *sender
	gates  *gates
	cache  *cache
	rec    *batch.Batcher[store.WebhookOutcome, batch.Done]
	// retrySlots bounds the retry loop's deliveries in flight.
	retrySlots chan struct{}
}

// New returns a Deliverer; start it with Run.
func New(cfg Config, st DeliveryStore, ring *secrets.Ring, log *slog.Logger) *Deliverer {
	cfg.defaults()
	d := &Deliverer{cfg: cfg, store: st, ring: ring, log: log.With("component", "webhooks"),
		sender: newSender(cfg.Dial, cfg.Timeout), gates: &gates{m: map[string]*gate{}, perHost: cfg.PerEndpoint},
		retrySlots: make(chan struct{}, cfg.Retries)}
	d.cache = &cache{load: d.load, ttl: cfg.CacheTTL, m: map[string]*cacheEntry{}}
	d.rec = batch.NewErr(st.RecordWebhookOutcomes, batch.Options{Size: 500, Concurrency: 4, Linger: 2 * time.Millisecond, IsolateFailures: db.RowError})
	return d
}

// Changed forgets tenantID's cached endpoints ("" every tenant's); wire it to
// invalidate.ListenEndpoints.
func (d *Deliverer) Changed(tenantID string) { d.cache.drop(tenantID) }

// load reads a tenant's enabled endpoints and opens their keys. An endpoint whose secret does not
// open (a key ring missing its version) is skipped and logged: its deliveries wait.
func (d *Deliverer) load(ctx context.Context, tenantID string) ([]*endpoint, error) {
	eps, err := d.store.ListWebhookEndpoints(ctx, tenantID, true)
	if err != nil {
		return nil, err
	}
	out := make([]*endpoint, 0, len(eps))
	now := d.cfg.Now()
	for _, e := range eps {
		keys, err := signingKeys(d.ring, e, now)
		if err != nil {
			d.log.ErrorContext(ctx, "webhook endpoint secret does not open; its deliveries wait", "tenant_id", tenantID, "endpoint_id", e.ID, "err", err)
			continue
		}
		g := d.gates.get(e.ID)
		g.failing.Store(e.FailingSince) // the database is the truth: the API or another Deliverer may have changed it
		out = append(out, &endpoint{WebhookEndpoint: e, keys: keys, gate: g})
	}
	return out, nil
}

// Run delivers until ctx ends: new events from comms.events, due retries from the database.
func (d *Deliverer) Run(ctx context.Context) error {
	recCtx, stopRec := context.WithCancel(context.WithoutCancel(ctx))
	recDone := make(chan struct{})
	go func() { defer close(recDone); d.rec.Run(recCtx) }()
	retryDone := make(chan struct{})
	go func() { defer close(retryDone); d.retryLoop(ctx) }()
	err := queue.Consume(ctx, queue.ConsumerConfig{
		Brokers: d.cfg.Brokers, Group: d.cfg.Group, Topic: queue.TopicEvents, InFlight: d.cfg.InFlight,
		DrainTimeout: d.cfg.DrainTimeout, Log: d.log,
	}, func(ctx context.Context, del *queue.Delivery) { go d.fanOut(ctx, del) })
	<-retryDone
	stopRec()
	<-recDone
	return err
}

// head is the part of an event the Deliverer routes on, and the address it names (its delivery
// is stored without it if its person is being erased: store.RecordWebhookOutcomes); the body is
// delivered as it is.
type head struct {
	ID   string    `json:"id"`
	Type string    `json:"type"`
	Time time.Time `json:"time"`
	Data struct {
		Channel   string `json:"channel"`
		Recipient string `json:"recipient"`
	} `json:"data"`
}

// deliveryTime is the created_at of an event's deliveries, their week (migrations/0040): the
// event's time, which every copy of the event carries (one fetched again after a crash, or
// published twice), so that each copy finds the same deliveries. A time more than a week before
// the event's publication or an hour after it (a provider's clock) gives way to the publication's,
// whose week exists; late reports that, and the delivery is flagged so that the eraser, which
// looks for the others in their event's week alone, finds it (migrations/0044).
func deliveryTime(event, published time.Time) (at time.Time, late bool) {
	if event.Before(published.Add(-7*24*time.Hour)) || event.After(published.Add(time.Hour)) {
		return published.Truncate(time.Microsecond), true
	}
	return event.Truncate(time.Microsecond), false
}

// fanOut tries one event on each of its tenant's endpoints that wants it, and records the
// outcomes before the event's offset may be committed: a crash before then delivers it again,
// with the same webhook-id.
func (d *Deliverer) fanOut(ctx context.Context, del *queue.Delivery) {
	var h head
	tenantID := string(del.Key)
	if err := json.Unmarshal(del.Value, &h); err != nil || h.ID == "" || h.Type == "" || tenantID == "" {
		d.log.ErrorContext(ctx, "skipping an event without id, type or tenant key", "offset", del.Offset, "partition", del.Partition)
		del.Finish(true)
		return
	}
	var eps []*endpoint
	err := d.retryUntilDone(ctx, func() (err error) { eps, err = d.cache.get(ctx, tenantID); return err })
	if err != nil {
		del.Finish(false)
		return
	}
	var targets []*endpoint
	for _, e := range eps {
		if e.wants(h.Type) {
			targets = append(targets, e)
		}
	}
	if len(targets) == 0 {
		del.Finish(true)
		return
	}
	published := del.Time
	if published.IsZero() {
		published = d.cfg.Now()
	}
	at, late := deliveryTime(h.Time, published)
	named := store.EventAddress{Channel: message.Channel(h.Data.Channel), Recipient: h.Data.Recipient, Published: published}
	if tracing.Enabled() {
		ctx = tracing.Remote(ctx, del.Header(queue.TraceParentHeader)) // the event's span
	}
	outs := make([]store.WebhookOutcome, len(targets))
	var wg sync.WaitGroup
	for i, e := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dl := domain.WebhookDelivery{EndpointID: e.ID, TenantID: tenantID, EventID: h.ID, EventType: h.Type, Payload: del.Value}
			outs[i], _ = d.try(ctx, e, dl, at, late)
			outs[i].Named = named
		}()
	}
	wg.Wait()
	for _, o := range outs {
		if err := d.retryUntilDone(ctx, func() error { _, err := d.rec.Do(ctx, o); return err }); err != nil {
			del.Finish(false)
			return
		}
	}
	del.Finish(true)
}

// try makes the delivery's next attempt if the endpoint has room within a second, and returns
// where the delivery then stands; without room it is put off to the retry loop, unattempted
// (busy reports that). at is the delivery's created_at, late whether that is not its event's
// time (deliveryTime).
func (d *Deliverer) try(ctx context.Context, e *endpoint, dl domain.WebhookDelivery, at time.Time, late bool) (o store.WebhookOutcome, busy bool) {
	if !e.gate.acquire(ctx, time.Second) {
		metrics.WebhookAttempts.WithLabelValues("busy").Inc()
		next := d.cfg.Now().Add(d.cfg.RetryInterval)
		dl.Status, dl.NextAttemptAt = event.DeliveryPending, &next
		return store.WebhookOutcome{Delivery: dl, At: at, FiledLate: late}, true
	}
	now := d.cfg.Now()
	if tracing.Enabled() {
		var span trace.Span
		ctx, span = tracing.Start(ctx, "comms.webhook.deliver", trace.WithAttributes(attribute.String("comms.tenant_id", dl.TenantID),
			attribute.String("comms.endpoint_id", e.ID), attribute.String("comms.event_id", dl.EventID)))
		defer span.End()
	}
	a, ok := d.sender.attempt(ctx, e.URL, dl.EventID, dl.Payload, e.keys, now)
	e.gate.release()
	dl.RoundAttempts++
	switch {
	case ok:
		dl.Status, dl.NextAttemptAt = "succeeded", nil
	case dl.RoundAttempts >= len(Schedule):
		dl.Status, dl.NextAttemptAt = event.DeliveryFailed, nil
	default:
		next := now.Add(Schedule[dl.RoundAttempts])
		dl.Status, dl.NextAttemptAt = event.DeliveryPending, &next
	}
	d.health(ctx, e, ok, now)
	return store.WebhookOutcome{Delivery: dl, Attempt: &a, At: at, FiledLate: late, AttemptsAdded: 1}, false
}

// health keeps the endpoint's failure streak: a success ends it, the first failure starts it, and
// a failure DisableAfter into it disables the endpoint. Writes happen only when the streak
// changes, not on every attempt.
func (d *Deliverer) health(ctx context.Context, e *endpoint, ok bool, now time.Time) {
	since := e.gate.failing.Load()
	if ok {
		if since != nil && e.gate.failing.CompareAndSwap(since, nil) {
			if err := d.store.MarkWebhookEndpointSucceeded(ctx, e.ID); err != nil {
				d.log.WarnContext(ctx, "could not clear a webhook endpoint's failure streak", "tenant_id", e.TenantID, "endpoint_id", e.ID, "err", err)
			}
		}
		return
	}
	if since == nil {
		start, err := d.store.MarkWebhookEndpointFailed(ctx, e.ID, now)
		if err != nil {
			d.log.WarnContext(ctx, "could not record a webhook endpoint's failure", "tenant_id", e.TenantID, "endpoint_id", e.ID, "err", err)
			return
		}
		e.gate.failing.Store(&start)
		since = &start
	}
	if now.Sub(*since) < DisableAfter {
		return
	}
	reason := fmt.Sprintf("disabled at %s: every delivery failed since %s", now.UTC().Format(time.RFC3339), since.UTC().Format(time.RFC3339))
	_, disabled, err := d.store.DisableFailingWebhookEndpoint(ctx, e.ID, *since, reason, now)
	if err != nil {
		d.log.WarnContext(ctx, "could not disable a failing webhook endpoint", "tenant_id", e.TenantID, "endpoint_id", e.ID, "err", err)
		return
	}
	if disabled {
		metrics.WebhookDisabled.Inc()
		d.log.WarnContext(ctx, "webhook endpoint disabled", "tenant_id", e.TenantID, "endpoint_id", e.ID, "failing_since", *since)
		d.cache.drop(e.TenantID)
	}
}

// retryLoop takes due deliveries every RetryInterval, as many as it has slots for.
func (d *Deliverer) retryLoop(ctx context.Context) {
	lease := d.cfg.Timeout + 30*time.Second
	poll.Batches(ctx, d.cfg.RetryInterval, func(ctx context.Context) (bool, error) {
		free := cap(d.retrySlots) - len(d.retrySlots)
		if free == 0 {
			return false, nil
		}
		due, err := d.store.ClaimDueWebhookDeliveries(ctx, d.cfg.Now(), lease, free)
		if err != nil {
			if ctx.Err() == nil {
				d.log.ErrorContext(ctx, "claiming due webhook deliveries failed", "err", err)
			}
			return false, err
		}
		for _, dl := range due {
			d.retrySlots <- struct{}{}
			go func() {
				defer func() { <-d.retrySlots }()
				d.retry(ctx, dl)
			}()
		}
		return len(due) == free, nil
	})
}

// retry makes a claimed delivery's next attempt. A delivery whose endpoint is gone or disabled
// is failed without one; replaying it after re-enabling the endpoint sends it again.
func (d *Deliverer) retry(ctx context.Context, dl domain.WebhookDelivery) {
	eps, err := d.cache.get(ctx, dl.TenantID)
	if err != nil {
		return // the lease runs out and the delivery is due again
	}
	var ep *endpoint
	for _, e := range eps {
		if e.ID == dl.EndpointID {
			ep = e
		}
	}
	// A retry's delivery keeps its row and its flag. Should the row be gone (its week dropped
	// while it was due), the one written again is flagged: its event's time is not known here.
	var o store.WebhookOutcome
	if ep == nil {
		dl.Status, dl.NextAttemptAt = event.DeliveryFailed, nil
		o = store.WebhookOutcome{Delivery: dl, At: dl.CreatedAt, FiledLate: true}
	} else {
		var busy bool
		if o, busy = d.try(ctx, ep, dl, dl.CreatedAt, true); busy && !ep.gate.moving() {
			// The endpoint is stuck behind hanging requests: the delivery stays leased and is
			// due again when the lease ends, so a hanging endpoint's backlog costs a claim per
			// lease rather than a write per second. (A full endpoint that is moving takes it
			// back soon: it is working through a burst.)
			return
		}
	}
	if _, err := d.rec.Do(ctx, o); err != nil && ctx.Err() == nil {
		d.log.ErrorContext(ctx, "recording a webhook delivery failed; it is retried when its lease ends",
			"tenant_id", dl.TenantID, "endpoint_id", dl.EndpointID, "event_id", dl.EventID, "err", err)
	}
}

// retryUntilDone runs op until it succeeds or ctx ends, backing off between failures: a
// database outage holds events back rather than dropping them.
func (d *Deliverer) retryUntilDone(ctx context.Context, op func() error) error {
	logged := false
	return retry.UntilDone(ctx, func() error {
		err := op()
		if err != nil && ctx.Err() == nil && !logged {
			logged = true
			d.log.WarnContext(ctx, "webhook delivery waits for the database", "err", err)
		}
		if errors.Is(err, batch.ErrStopped) {
			return retry.Permanent(err)
		}
		return err
	})
}
