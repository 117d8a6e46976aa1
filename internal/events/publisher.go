// Package events publishes what happens to messages and to tenants' setups: it takes the event
// outbox and the account events (rows written in the same transaction as the changes they
// describe, migrations/0012 and 0014) in order, turns each row into a CloudEvent (pkg/event) and
// produces it to comms.events keyed by tenant.
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/logicspike/comms/internal/platform/metrics"
	"github.com/logicspike/comms/internal/platform/poll"
	"github.com/logicspike/comms/internal/platform/tracing"
	"github.com/logicspike/comms/internal/queue"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/event"
)

// Producer writes records to comms.events.
type Producer interface {
	PublishRaw(ctx context.Context, msgs ...queue.Message) error
}

// Config shapes a publisher.
type Config struct {
	// Interval is how long an idle publisher waits before looking again (default 50 ms).
	Interval time.Duration
	// Batch is the most events taken per transaction (default 1,000).
	Batch int
}

// Store is what the publisher reads and changes; *store.Store implements it.
type Store interface {
	PublishEvents(ctx context.Context, limit int, publish func(context.Context, []store.OutboxEvent) error) (int, error)
	PublishAccountEvents(ctx context.Context, limit int, publish func(context.Context, []store.AccountEvent) error) (int, error)
	CountEventOutbox(ctx context.Context) (int64, error)
	GetEventOutboxAge(ctx context.Context) (time.Duration, error)
}

// Publisher moves events from the outbox to comms.events. Any number may run: one at a time
// holds the outbox, the others wait their turn.
type Publisher struct {
	cfg   Config
	store Store
	prod  Producer
	log   *slog.Logger
}

// New returns a publisher; start it with Run.
func New(cfg Config, st Store, prod Producer, log *slog.Logger) *Publisher {
	if cfg.Interval <= 0 {
		cfg.Interval = 50 * time.Millisecond
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 1000
	}
	return &Publisher{cfg: cfg, store: st, prod: prod, log: log}
}

// Run publishes until ctx ends: every interval it takes batches until one comes back short. A
// failure is retried at the next interval; the events stay in the outbox until published.
func (p *Publisher) Run(ctx context.Context) {
	// The outbox gauge: the publishers' lag behind the changes. Run returns once it has stopped.
	gauge := make(chan struct{})
	defer func() { <-gauge }()
	go func() { defer close(gauge); poll.Batches(ctx, 5*time.Second, p.measure) }()
	poll.Batches(ctx, p.cfg.Interval, func(ctx context.Context) (bool, error) {
		n, err := p.store.PublishEvents(ctx, p.cfg.Batch, p.publish)
		if err == nil {
			var m int
			m, err = p.store.PublishAccountEvents(ctx, p.cfg.Batch, p.publishAccount)
			n = max(n, m)
		}
		if err != nil && ctx.Err() == nil {
			p.log.ErrorContext(ctx, "publishing events failed; they stay in the outbox", "err", err)
		}
		return n == p.cfg.Batch, err
	})
}

func (p *Publisher) publishAccount(ctx context.Context, rows []store.AccountEvent) error {
	msgs := make([]queue.Message, len(rows))
	for i, r := range rows {
		b, err := json.Marshal(BuildAccount(r))
		if err != nil {
			return fmt.Errorf("encode account event %d: %w", r.ID, err)
		}
		msgs[i] = queue.Message{Key: []byte(r.TenantID), Value: b, Headers: contentType}
	}
	if err := p.prod.PublishRaw(ctx, msgs...); err != nil {
		return err
	}
	for _, r := range rows {
		metrics.EventsPublished.WithLabelValues(r.Type).Inc()
	}
	return nil
}

// BuildAccount makes the CloudEvent of an account event.
func BuildAccount(r store.AccountEvent) event.Event {
	d := event.Data{TenantID: r.TenantID}
	switch {
	case r.ProviderType != "":
		d.Provider, d.Status = &event.Provider{Type: r.ProviderType, ConfigID: r.Subject}, r.Health
	case r.Quota != nil:
		var q event.Quota
		if json.Unmarshal(r.Quota, &q) == nil {
			d.Quota, d.Channel = &q, q.Channel
		}
	case r.Type == event.RecipientErased:
		var c event.Erasure
		if json.Unmarshal(r.Erasure, &c) == nil {
			c.ID = r.Subject
			d.Erasure = &c
		}
		d.Channel, d.RecipientHash = r.Channel, r.RecipientHash
	case r.Type == event.PreferenceUpdated:
		d.RecipientID, d.RecipientHash, d.Channel = r.RecipientID, r.RecipientHash, r.Channel
		d.Preferences = map[string]map[string]bool{}
		_ = json.Unmarshal(r.Preferences, &d.Preferences) // written by the store from a map of the same shape
	case r.Type == event.DeviceRemoved:
		d.RecipientID, d.Device = r.RecipientID, &event.Device{}
		_ = json.Unmarshal(r.Device, d.Device) // written by the store from an event.Device
	default:
		d.EndpointID = r.Subject
	}
	if r.Reason != "" {
		d.Error = &event.Error{Message: r.Reason}
	}
	return event.Event{SpecVersion: "1.0", ID: event.AccountID(r.ID), Source: event.Source(r.TenantID), Type: r.Type,
		Subject: r.Subject, Time: r.At.UTC(), DataContentType: "application/json", Data: d}
}

var contentType = []queue.Header{{Key: "content-type", Value: []byte(event.ContentType)}}

func (p *Publisher) publish(ctx context.Context, rows []store.OutboxEvent) error {
	msgs := make([]queue.Message, 0, len(rows))
	types := make([]string, 0, len(rows))
	for _, r := range rows {
		ev, ok := Build(r)
		if !ok {
			continue
		}
		b, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("encode event %s: %w", ev.ID, err)
		}
		m := queue.Message{Key: []byte(r.TenantID), Value: b, Headers: contentType}
		if r.TraceParent != "" && tracing.Enabled() {
			// The event joins its message's trace; its deliveries hang below this span.
			_, span := tracing.Start(tracing.Remote(ctx, r.TraceParent), "comms.event "+ev.Type, trace.WithSpanKind(trace.SpanKindProducer),
				trace.WithAttributes(attribute.String("comms.event_id", ev.ID), attribute.String("comms.message_id", r.MessageID)))
			m.Headers = []queue.Header{contentType[0], {Key: queue.TraceParentHeader, Value: []byte(tracing.TraceParent(trace.ContextWithSpan(ctx, span)))}}
			span.End()
		}
		msgs = append(msgs, m)
		types = append(types, ev.Type)
	}
	if err := p.prod.PublishRaw(ctx, msgs...); err != nil {
		return err
	}
	for _, t := range types {
		metrics.EventsPublished.WithLabelValues(t).Inc()
	}
	return nil
}

// Build makes the CloudEvent of an outbox row, and false for a row with nothing to publish (its
// kind is not published, or its message is gone).
func Build(r store.OutboxEvent) (event.Event, bool) {
	typ, ok := event.MessageType(r.Status, r.Source)
	if !ok || r.Channel == "" {
		return event.Event{}, false
	}
	d := event.Data{TenantID: r.TenantID, MessageID: r.MessageID, Channel: r.Channel, Recipient: r.Recipient,
		Status: r.Status, Category: r.Category, Template: r.TemplateKey, Attempt: r.Attempt, DeadLettered: r.DeadLettered}
	if r.ProviderType != "" {
		d.Provider = &event.Provider{Type: r.ProviderType, ConfigID: r.ConfigID}
	}
	switch r.Status {
	case "failed", "undelivered", "bounced", "complained":
		d.Error = &event.Error{Code: r.ErrorCode, Message: r.Reason}
	}
	return event.Event{SpecVersion: "1.0", ID: event.ID(r.ID), Source: event.Source(r.TenantID), Type: typ,
		Subject: r.MessageID, Time: r.At.UTC(), DataContentType: "application/json", Data: d}, true
}

// measure sets the outbox gauges.
func (p *Publisher) measure(ctx context.Context) (bool, error) {
	n, err := p.store.CountEventOutbox(ctx)
	if err != nil {
		return false, err
	}
	metrics.EventOutbox.Set(float64(n))
	age, err := p.store.GetEventOutboxAge(ctx)
	if err == nil {
		metrics.EventOutboxAge.Set(age.Seconds())
	}
	return false, err
}
