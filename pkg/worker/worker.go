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
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/segmentio/kafka-go"

	"github.com/logicspike/comms/pkg/batch"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
	"github.com/logicspike/comms/pkg/queue"
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

// Consumer is the part of *kafka.Reader the worker uses.
type Consumer interface {
	FetchMessage(ctx context.Context) (kafka.Message, error)
	CommitMessages(ctx context.Context, msgs ...kafka.Message) error
	Close() error
}

// Worker is one dispatcher.
type Worker struct {
	cfg      Config
	store    *store.Store
	consumer Consumer
	router   *Router
	dlq      *queue.Producer
	log      *slog.Logger

	tracker *queue.Tracker
	claims  *batch.Batcher[store.Ref, *store.Claimed]
	outs    *batch.Batcher[store.Outcome, struct{}]

	crashOnce sync.Once
	crash     chan struct{}
	crashed   atomic.Bool
}

// New returns a worker. dlq receives intents that cannot be decoded.
func New(cfg Config, s *store.Store, c Consumer, r *Router, dlq *queue.Producer, log *slog.Logger) (*Worker, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("worker config: %w", err)
	}
	w := &Worker{cfg: cfg, store: s, consumer: c, router: r, dlq: dlq, log: log, tracker: queue.NewTracker(), crash: make(chan struct{})}
	w.claims = batch.New(w.claimBatch, cfg.Batch, 4, cfg.Linger)
	w.outs = batch.New(w.finishBatch, cfg.Batch, 4, cfg.Linger)
	return w, nil
}

// Run dispatches until ctx ends, then shuts down in two phases: it stops fetching and lets
// in-flight messages finish for up to DrainTimeout, then cancels what is left; it commits the
// offsets of everything finished and closes the consumer.
func (w *Worker) Run(ctx context.Context) error {
	fetchCtx, stopFetch := context.WithCancel(ctx)
	defer stopFetch()
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	go func() {
		select {
		case <-w.crash:
			stopFetch()
			stopWork()
		case <-workCtx.Done():
		}
	}()

	var batchers sync.WaitGroup
	batchers.Add(2)
	go func() { defer batchers.Done(); w.claims.Run(workCtx) }()
	go func() { defer batchers.Done(); w.outs.Run(workCtx) }()

	committerDone := make(chan struct{})
	go func() { defer close(committerDone); w.commitLoop(workCtx) }()

	sem := make(chan struct{}, w.cfg.InFlight)
	var inflight sync.WaitGroup
	fetchBackoff := newBackoff()
	for {
		select {
		case sem <- struct{}{}:
		case <-fetchCtx.Done():
		}
		if fetchCtx.Err() != nil {
			break
		}
		m, err := w.consumer.FetchMessage(fetchCtx)
		if err != nil {
			<-sem
			if fetchCtx.Err() != nil {
				break
			}
			d := fetchBackoff.NextBackOff()
			w.log.ErrorContext(ctx, "fetch failed", "err", err, "retry_in", d)
			sleep(fetchCtx, d)
			continue
		}
		fetchBackoff.Reset()
		tp := queue.TopicPartition{Topic: m.Topic, Partition: m.Partition}
		w.tracker.Add(tp, m.Offset)
		inflight.Add(1)
		go func() {
			defer func() { <-sem; inflight.Done() }()
			if w.handle(workCtx, m) {
				w.tracker.Done(tp, m.Offset)
			}
		}()
	}

	// Phase one: let in-flight messages finish.
	drained := make(chan struct{})
	go func() { inflight.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(w.cfg.DrainTimeout):
		w.log.Warn("drain timeout: cancelling in-flight messages", "in_flight", w.tracker.InFlight())
		stopWork() // phase two
		<-drained
	case <-w.crash:
		<-drained
	}
	stopWork()
	batchers.Wait()
	<-committerDone
	if !w.crashed.Load() {
		w.commit(context.Background())
	}
	return w.consumer.Close()
}

// Crash abandons the worker as a killed process would: in-flight work is cancelled, nothing more
// is recorded or committed, and the consumer's connections are closed. Run then returns.
// It exists for crash-safety tests.
func (w *Worker) Crash() {
	w.crashOnce.Do(func() {
		w.crashed.Store(true)
		close(w.crash)
	})
}

func (w *Worker) commitLoop(ctx context.Context) {
	t := time.NewTicker(w.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if !w.crashed.Load() {
				w.commit(ctx)
			}
		}
	}
}

func (w *Worker) commit(ctx context.Context) {
	offsets := w.tracker.Committable()
	if len(offsets) == 0 {
		return
	}
	msgs := make([]kafka.Message, 0, len(offsets))
	for tp, off := range offsets {
		msgs = append(msgs, kafka.Message{Topic: tp.Topic, Partition: tp.Partition, Offset: off})
	}
	if err := w.consumer.CommitMessages(ctx, msgs...); err != nil && ctx.Err() == nil {
		// A later commit carries a higher offset; an unrepeated one means redelivery, which the
		// state machine absorbs.
		w.log.Warn("commit offsets failed", "err", err)
	}
}

// handle processes one intent and reports whether its offset may be committed.
func (w *Worker) handle(ctx context.Context, m kafka.Message) bool {
	env, err := queue.Decode(m.Value)
	if err != nil {
		return w.deadLetter(ctx, m, err)
	}
	log := w.log.With("tenant_id", env.TenantID, "message_id", env.MessageID)
	ref := store.Ref{TenantID: env.TenantID, ID: env.MessageID}

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

	out, ok := w.attempt(ctx, log, claimed)
	if !ok {
		return false
	}
	if err := retry(ctx, func() error {
		_, err := w.outs.Do(ctx, out)
		return err
	}); err != nil {
		return false
	}
	return true
}

// attempt routes and sends one claimed message. ok is false when the worker is shutting down
// hard and the outcome must not be recorded.
func (w *Worker) attempt(ctx context.Context, log *slog.Logger, c *store.Claimed) (store.Outcome, bool) {
	out := store.Outcome{Ref: store.Ref{TenantID: c.TenantID, ID: c.ID}, Attempt: c.Attempt}
	var routes []Route
	if err := retry(ctx, func() error {
		var err error
		routes, err = w.router.Routes(ctx, c.TenantID, c.Channel)
		return err
	}); err != nil {
		return out, false
	}
	if len(routes) == 0 {
		out.Status, out.ErrorCode = message.Failed, string(provider.NoProvider)
		out.ErrorMessage = fmt.Sprintf("no enabled %s provider is configured for this tenant and the system default is not available to it; add one with POST /v1/providers", c.Channel)
		log.WarnContext(ctx, "no provider", "channel", c.Channel)
		return out, true
	}
	route := routes[0]
	out.ProviderConfigID, out.ProviderType = route.Config.ID, route.Config.Type
	log = log.With("provider", route.Config.Type, "provider_id", route.Config.ID)

	start := time.Now()
	res, err := w.send(ctx, route.Sender, c)
	if ctx.Err() != nil {
		return out, false // crashed or out of drain time: the outcome is unknown, leave it leased
	}
	if d := time.Since(start); d > w.cfg.AttemptTimeout/2 {
		log.WarnContext(ctx, "slow provider attempt", "duration", d)
	}
	if err != nil {
		pe := provider.Classify(route.Config.Type, err)
		out.Status, out.ErrorCode, out.ErrorMessage = message.Failed, string(pe.Code), pe.Describe()
		log.InfoContext(ctx, "send failed", "code", pe.Code, "permanent", pe.Permanent, "err", pe)
		return out, true
	}
	out.Status, out.ProviderMessageID, out.Cost, out.Currency = message.Sent, res.ProviderMessageID, res.Cost, res.Currency
	return out, true
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

func (w *Worker) deadLetter(ctx context.Context, m kafka.Message, cause error) bool {
	w.log.ErrorContext(ctx, "unprocessable intent sent to the dead-letter topic", "err", cause,
		"partition", m.Partition, "offset", m.Offset)
	dl := kafka.Message{Key: m.Key, Value: m.Value, Headers: append(m.Headers,
		kafka.Header{Key: "error", Value: []byte(cause.Error())},
		kafka.Header{Key: "failed_at", Value: []byte(time.Now().UTC().Format(time.RFC3339Nano))},
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

func (w *Worker) finishBatch(ctx context.Context, outs []store.Outcome) ([]struct{}, error) {
	if _, err := w.store.FinishMessages(ctx, outs); err != nil {
		return nil, err
	}
	return make([]struct{}, len(outs)), nil
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
