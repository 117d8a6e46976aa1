// Package intake accepts send requests: it validates them, enforces idempotency, records them
// durably, and hands their intents to the queue.
//
// Accepted means durable: Submit returns only after the message row is committed in PostgreSQL.
// Publishing to Kafka happens after, in batches, off the request path; an intent that could not
// be published (broker down, publisher queue full, crash) stays unpublished in the database and
// the sweeper re-publishes it.
package intake

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/logicspike/comms/internal/batch"
	"github.com/logicspike/comms/internal/categories"
	"github.com/logicspike/comms/internal/db"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/platform/tracing"
	"github.com/logicspike/comms/internal/queue"
	"github.com/logicspike/comms/internal/quota"
	"github.com/logicspike/comms/internal/senders"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/message"
)

// ErrIdempotencyMismatch means the key was used before, within 24 hours, with a different body.
var ErrIdempotencyMismatch = errors.New("idempotency key already used with a different request body")

// ErrSuppressed means the recipient is on the tenant's suppression list for the channel (a hard
// bounce, a complaint, or added by hand); DELETE /v1/suppressions/{channel}/{recipient} lifts it.
var ErrSuppressed = errors.New("recipient is suppressed")

// ErrOptedOut means the recipient opted out of the message's category on its channel (or has not
// opted in to a category that is out by default).
var ErrOptedOut = errors.New("recipient opted out of this category")

// MaxIdempotencyKeyLen bounds the Idempotency-Key header.
const MaxIdempotencyKeyLen = 255

// Accepted is the answer to an accepted request. A replayed request gets the original answer.
type Accepted struct {
	ID          string         `json:"id"`
	Status      message.Status `json:"status"` // queued, or scheduled
	CreatedAt   time.Time      `json:"created_at"`
	ScheduledAt *time.Time     `json:"scheduled_at,omitempty"`
	Replayed    bool           `json:"-"`
}

// Publisher is where accepted intents go.
type Publisher interface {
	Publish(ctx context.Context, envs ...queue.Envelope) error
}

// Renderer renders a request naming a template into the plain request that is stored and sent.
type Renderer interface {
	Render(ctx context.Context, tenantID string, req message.Request, to *domain.Recipient) (message.Request, *message.TemplateUse, error)
}

// Store is what the intake records and reads; *store.Store implements it.
type Store interface {
	RecordMessages(ctx context.Context, fn func(tx *store.IntakeTx) error) ([]store.Inserted, error)
	ClaimRequestKey(ctx context.Context, tenantID, key string, hash []byte) (bool, error)
	ListRepeats(ctx context.Context, tenantID string, keys []string, hash []byte) (map[string]store.Inserted, error)
	MarkPublished(ctx context.Context, refs []store.Ref) error
	GetMessage(ctx context.Context, tenantID, id string) (message.Message, error)
	GetTenant(ctx context.Context, id string) (domain.Tenant, error)
	ListMessages(ctx context.Context, tenantID string, f domain.MessageFilter) ([]message.Message, string, error)
	CancelScheduled(ctx context.Context, tenantID, id string) (message.Status, error)
	GetRecipients(ctx context.Context, tenantID string, externalIDs []string) (map[string]domain.Recipient, error)
}

// Service is the intake.
type Service struct {
	store     Store
	templates Renderer          // nil: template sends are refused
	cats      *categories.Cache // nil: only the built-in categories
	senders   *senders.Checker  // nil: a message's own from is not checked
	quotas    *quota.Counter    // nil: quotas are not enforced
	idem      *IdempotencyCache // nil: no fast path
	pub       Publisher
	log       *slog.Logger
	inserts   *batch.Batcher[store.NewMessage, store.Inserted]
	publish   *batch.Batcher[queue.Envelope, batch.Done]
	marks     *batch.Batcher[store.Ref, batch.Done]
	// Intents left to the sweeper because a queue was full, reported once a second rather than
	// once per message: a full queue means thousands of them.
	unpublished, unmarked overflow
}

// markLinger is how long a published intent waits to be marked published with others. Marks only
// keep the sweeper (10 s grace by default) from publishing an intent again, so they can wait: at
// a few hundred requests a second, marking every publish batch was a commit per batch, and by
// the time a mark runs most intents are already sent, their outbox rows gone.
const markLinger = 250 * time.Millisecond

// New returns an intake service. Run it before calling Submit.
func New(s Store, idem *IdempotencyCache, pub Publisher, log *slog.Logger) *Service {
	svc := &Service{store: s, idem: idem, pub: pub, log: log}
	// Inserts wait up to 2 ms for company: a request pays at most that, and the database commits
	// a tenth as often at a thousand requests a second. Publishing is off the request path, so
	// it can wait longer for bigger Kafka batches.
	svc.inserts = batch.New(func(ctx context.Context, in []store.NewMessage) ([]store.Inserted, error) {
		return s.RecordMessages(ctx, func(tx *store.IntakeTx) error {
			for _, m := range in {
				record(tx, m)
			}
			return nil
		})
	}, batch.Options{Size: 500, Concurrency: 4, Linger: 2 * time.Millisecond, IsolateFailures: db.RowError})
	// The queues hold a burst of batch sends (8 calls of 1,000 recipients at once) with room
	// to spare; an envelope is about 200 bytes.
	svc.publish = batch.NewErr(svc.publishBatch, batch.Options{Size: 1000, Concurrency: 4, Linger: 5 * time.Millisecond, Queue: 16_000})
	svc.marks = batch.NewErr(svc.markBatch, batch.Options{Size: 10_000, Concurrency: 1, Linger: markLinger, Queue: 64_000})
	return svc
}

// WithTemplates has s render template sends with r.
func (s *Service) WithTemplates(r Renderer) *Service {
	s.templates = r
	return s
}

// WithCategories lets s take messages in the tenants' own categories, read through c, and check
// their recipients' preferences.
func (s *Service) WithCategories(c *categories.Cache) *Service {
	s.cats = c
	return s
}

// WithSenders has s refuse a message whose own from none of its tenant's provider configs may
// send from, checked through c.
func (s *Service) WithSenders(c *senders.Checker) *Service {
	s.senders = c
	return s
}

// WithQuotas makes s enforce tenants' monthly quotas with c.
func (s *Service) WithQuotas(c *quota.Counter) *Service {
	s.quotas = c
	return s
}

// Run runs the batchers until ctx ends, then finishes what was submitted.
func (s *Service) Run(ctx context.Context) {
	var wg sync.WaitGroup
	// Marks outlive the publisher, so that a batch published during shutdown is still marked.
	marksCtx, stopMarks := context.WithCancel(context.WithoutCancel(ctx))
	marksDone := make(chan struct{})
	go func() { defer close(marksDone); s.marks.Run(marksCtx) }()
	wg.Add(1)
	go func() { defer wg.Done(); s.publish.Run(ctx); stopMarks(); <-marksDone }()
	if s.idem != nil {
		wg.Add(1)
		go func() { defer wg.Done(); s.idem.Run(ctx) }()
	}
	s.inserts.Run(ctx)
	wg.Wait()
}

// Submit validates req and records it for tenant t. idemKey may be empty.
// Errors: *message.ValidationError, ErrIdempotencyMismatch, ErrSuppressed, *quota.ExceededError,
// quota.ErrUnavailable, or an infrastructure error.
func (s *Service) Submit(ctx context.Context, t domain.Tenant, idemKey string, req message.Request) (Accepted, error) {
	tenantID := t.ID
	// An ad-hoc request is checked before the idempotency check, a template send or a send to a
	// profile after it, so that a retry replays the original even once the template or the
	// profile has changed.
	var use *message.TemplateUse
	late := req.Template != nil || req.Recipient != ""
	if !late {
		var err error
		if req, _, err = s.prepare(ctx, tenantID, req, nil); err != nil {
			return Accepted{}, err
		}
	}
	var hash []byte
	if idemKey != "" {
		hash = requestHash(req)
		if s.idem != nil {
			hit, err := s.idem.Get(ctx, tenantID, idemKey)
			switch {
			case err != nil:
				// The database constraint still holds; Redis is only the fast path.
				s.log.WarnContext(ctx, "idempotency cache unavailable", "tenant_id", tenantID, "err", err)
			case hit != nil && !hit.sameHash(hash):
				return Accepted{}, ErrIdempotencyMismatch
			case hit != nil:
				return replayed(hit.MessageID, hit.CreatedAt, req.SendAt), nil
			}
		}
	}

	if late {
		to, err := s.profiles(ctx, tenantID, []message.Request{req})
		if err != nil {
			return Accepted{}, err
		}
		if req, use, err = s.prepareFor(ctx, tenantID, req, to); err != nil {
			return Accepted{}, err
		}
	}

	pref, err := s.admit(ctx, tenantID, req)
	if err != nil {
		return Accepted{}, err
	}
	id := ids.NewSortable(ids.Message)
	nm := store.NewMessage{ID: id, TenantID: tenantID, Request: req, IdempotencyKey: idemKey, RequestHash: hash, Template: use, SendAt: dueAt(req.SendAt),
		TraceParent: tracing.TraceParent(ctx), Preference: pref}
	if req.Channel == message.SMS {
		sz := message.MeasureSMS(req.Text)
		nm.SMS = &sz
	}
	units := quotaUnits(nm)
	held, err := s.reserve(ctx, t, req.Channel, units)
	if err != nil {
		// A repeat of a request accepted earlier gets its first answer, quota or not.
		if idemKey == "" {
			return Accepted{}, err
		}
		rep, lerr := s.store.ListRepeats(ctx, tenantID, []string{idemKey}, hash)
		prev, ok := rep[idemKey]
		switch {
		case lerr != nil || !ok:
			return Accepted{}, err
		case prev.Mismatch:
			return Accepted{}, ErrIdempotencyMismatch
		}
		return replayed(prev.ID, prev.CreatedAt, req.SendAt), nil
	}
	res, err := s.insert(ctx, nm)
	if err != nil || res.Suppressed || res.OptedOut || res.Mismatch || res.Duplicate {
		held.Release(ctx, units) // nothing new was recorded
	}
	if err != nil {
		return Accepted{}, fmt.Errorf("record message: %w", err)
	}
	if res.Suppressed {
		return Accepted{}, ErrSuppressed
	}
	if res.OptedOut {
		return Accepted{}, ErrOptedOut
	}
	if res.Mismatch {
		return Accepted{}, ErrIdempotencyMismatch
	}
	if idemKey != "" && s.idem != nil {
		s.idem.Set(tenantID, idemKey, Entry{MessageID: res.ID, Hash: hash, CreatedAt: res.CreatedAt})
	}
	if res.Duplicate {
		return replayed(res.ID, res.CreatedAt, req.SendAt), nil
	}
	if nm.SendAt != nil {
		return Accepted{ID: id, Status: message.Scheduled, CreatedAt: res.CreatedAt, ScheduledAt: nm.SendAt}, nil
	}
	s.enqueue(ctx, tenantID, id, req)
	return Accepted{ID: id, Status: message.Queued, CreatedAt: res.CreatedAt}, nil
}

// quotaUnits is what a message counts against its channel's quota: one email, or its SMS
// segments.
// intakeWriter is what the intake's rules write through: store.IntakeTx.
type intakeWriter interface {
	Record(m store.NewMessage)
	CountUsage(id string, units int)
	Enqueue(id string)
	Schedule(id string)
}

// record states what an accepted message writes: its row and first event (with its idempotency
// key); its accepted usage, in the units its quota counts; and the outbox row that queues it now,
// or the schedule entry that queues it at its time.
func record(tx intakeWriter, m store.NewMessage) {
	tx.Record(m)
	tx.CountUsage(m.ID, int(quotaUnits(m)))
	if m.SendAt != nil {
		tx.Schedule(m.ID)
	} else {
		tx.Enqueue(m.ID)
	}
}

func quotaUnits(nm store.NewMessage) int64 {
	if nm.SMS != nil {
		return int64(max(nm.SMS.Segments, 1))
	}
	return 1
}

// reserve counts units against t's quota on ch, if it has one.
func (s *Service) reserve(ctx context.Context, t domain.Tenant, ch message.Channel, units int64) (*quota.Reservation, error) {
	if s.quotas == nil {
		return nil, nil
	}
	return s.quotas.Reserve(ctx, t.ID, ch, t.Quotas[ch], units)
}

// insert records nm through the batched insert. The batch's statement serves many requests and
// belongs to none of their traces, so each request's trace shows its own wait for it.
func (s *Service) insert(ctx context.Context, nm store.NewMessage) (store.Inserted, error) {
	if tracing.Enabled() {
		var span trace.Span
		ctx, span = tracing.Start(ctx, "comms.insert message", trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("db.system.name", "postgresql"), attribute.String("comms.message_id", nm.ID)))
		defer span.End()
	}
	return s.inserts.Do(ctx, nm)
}

// enqueue hands an accepted message's intent to the publisher, off the request path.
func (s *Service) enqueue(ctx context.Context, tenantID, id string, req message.Request) {
	env := queue.Envelope{MessageID: id, TenantID: tenantID, Channel: req.Channel, Attempt: 1, EnqueuedAt: time.Now().UTC(), Category: req.Category,
		TraceParent: tracing.TraceParent(ctx)}
	if !s.publish.TrySubmit(env) {
		s.unpublished.add(ctx, s.log, "publish queue full: the sweeper will publish these intents", "tenant_id", tenantID, "message_id", id)
	}
}

// replayed is the answer to a repeated request: the original message, scheduled while the
// request's send_at (the same as the original's) is ahead.
func replayed(id string, createdAt time.Time, sendAt *time.Time) Accepted {
	a := Accepted{ID: id, Status: message.Queued, CreatedAt: createdAt, Replayed: true}
	if due := dueAt(sendAt); due != nil {
		a.Status, a.ScheduledAt = message.Scheduled, due
	}
	return a
}

// dueAt is when a send_at is due: nil (now) when it is not in the future.
func dueAt(sendAt *time.Time) *time.Time {
	if sendAt == nil || !sendAt.After(time.Now()) {
		return nil
	}
	t := sendAt.UTC()
	return &t
}

func (s *Service) publishBatch(ctx context.Context, envs []queue.Envelope) error {
	if err := s.pub.Publish(ctx, envs...); err != nil {
		s.log.ErrorContext(ctx, "publish failed: the sweeper will re-publish", "count", len(envs), "err", err)
		return err
	}
	for _, e := range envs {
		if !s.marks.TrySubmit(store.Ref{TenantID: e.TenantID, ID: e.MessageID}) {
			// Harmless: the sweeper publishes it again and the worker skips the duplicate.
			s.unmarked.add(ctx, s.log, "mark queue full: the sweeper will publish these intents again", "tenant_id", e.TenantID, "message_id", e.MessageID)
		}
	}
	return nil
}

func (s *Service) markBatch(ctx context.Context, refs []store.Ref) error {
	if err := s.store.MarkPublished(ctx, refs); err != nil {
		// Harmless: the sweeper publishes them again and the worker skips the duplicates.
		s.log.WarnContext(ctx, "mark published failed", "count", len(refs), "err", err)
	}
	return nil
}

// requestHash identifies a request body for idempotency: the same fields give the same hash
// whatever their order or spacing in the JSON.
func requestHash(r message.Request) []byte {
	b, _ := json.Marshal(r) // struct fields in order, map keys sorted: canonical
	h := sha256.Sum256(b)
	return h[:]
}

// ErrExpired is a message that is gone because it was older than its tenant's history retention.
var ErrExpired = errors.New("past the history retention")

// Message returns tenantID's message id with its events. Errors: store.ErrNotFound (also for
// another tenant's message); ErrExpired when no such message exists and its id was made before
// the tenant's history retention: it was deleted, or it would have been.
func (s *Service) Message(ctx context.Context, tenantID, id string) (message.Message, error) {
	m, err := s.store.GetMessage(ctx, tenantID, id)
	if !errors.Is(err, store.ErrNotFound) {
		return m, err
	}
	made, ok := ids.SortableTime(id, ids.Message)
	if !ok {
		return m, err
	}
	t, terr := s.store.GetTenant(ctx, tenantID)
	if terr == nil && t.HistoryExpired(made, time.Now()) {
		return m, ErrExpired
	}
	return m, err
}

// Messages returns a page of tenantID's messages, newest first, and the next page's cursor.
// Errors: store.ErrBadCursor.
func (s *Service) Messages(ctx context.Context, tenantID string, f domain.MessageFilter) ([]message.Message, string, error) {
	return s.store.ListMessages(ctx, tenantID, f)
}

// Cancel cancels tenantID's scheduled message id. Racing its due time, exactly one of the two
// wins: the message ends canceled, or it is sent and Cancel returns store.ErrNotScheduled.
// Errors: store.ErrNotFound, store.ErrNotScheduled.
func (s *Service) Cancel(ctx context.Context, tenantID, id string) error {
	if _, err := s.store.CancelScheduled(ctx, tenantID, id); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "scheduled message canceled", "tenant_id", tenantID, "message_id", id)
	return nil
}
