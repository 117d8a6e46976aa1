// Package apply applies stored provider callbacks to messages (the second half of the webhook
// receiver) and folds the worker's sent and failed counts into the analytics rollup. It polls the
// callbacks inbox and applies each batch in one transaction (the rules are in rules.go): statuses
// move forward, the timeline grows, the analytics and provider-error rollups count, and bounces
// and complaints suppress their recipients. Several appliers (one per webhook replica) share the
// inbox: each batch skips the callbacks another holds.
package apply

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/logicspike/comms/internal/platform/metrics"
	"github.com/logicspike/comms/internal/platform/poll"
	"github.com/logicspike/comms/internal/store"
)

// Config tunes the applier; zero values take the defaults.
type Config struct {
	Interval time.Duration // between polls when the inbox is drained (default 100ms)
	Batch    int           // callbacks per transaction (default 500)
	// MaxTries and Backoff bound the wait for a message a callback names but we cannot find yet
	// (the callback beat the worker's commit, or it names a message sent outside this service):
	// default 20 tries, 1s doubling to 30 min with jitter, which is about 5 hours in all.
	MaxTries int
	Backoff  func(tries int) time.Duration
	Now      func() time.Time // default time.Now
}

func (c Config) withDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = 100 * time.Millisecond
	}
	if c.Batch <= 0 {
		c.Batch = 500
	}
	if c.MaxTries <= 0 {
		c.MaxTries = 20
	}
	if c.Backoff == nil {
		c.Backoff = Backoff
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Backoff is the default wait before a callback's next match attempt.
func Backoff(tries int) time.Duration {
	d := time.Second << min(tries-1, 11)
	d = min(d, 30*time.Minute)
	return d/2 + rand.N(d/2+1) //nolint:gosec // jitter, not security
}

// Store is what the applier changes; *store.Store implements it.
type Store interface {
	ApplyCallbackBatch(ctx context.Context, limit int, fn func(tx *store.CallbackTx, due []store.DueCallback) error) error
	FoldAnalytics(ctx context.Context) (int, error)
}

// Applier applies callbacks.
type Applier struct {
	cfg   Config
	store Store
	log   *slog.Logger
}

// New returns an applier.
func New(cfg Config, s Store, log *slog.Logger) *Applier {
	return &Applier{cfg: cfg.withDefaults(), store: s, log: log.With("service", "applier")}
}

// Run applies callbacks, and folds the worker's analytics counts, until ctx ends.
func (t *Applier) Run(ctx context.Context) {
	go Fold(ctx, t.store, FoldInterval, t.log)
	for {
		res, err := t.ApplyOnce(ctx)
		if err != nil && ctx.Err() == nil {
			t.log.WarnContext(ctx, "apply callbacks failed; retrying", "err", err)
		}
		wait := t.cfg.Interval
		if err == nil && res.Applied+res.Waiting+res.Unmatched == t.cfg.Batch {
			wait = 0 // more are waiting
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// ApplyOnce applies one batch and says what it did.
func (t *Applier) ApplyOnce(ctx context.Context) (Result, error) {
	res, err := t.applyBatch(ctx)
	if err != nil {
		return Result{}, err
	}
	metrics.CallbacksApplied.WithLabelValues("applied").Add(float64(res.Applied))
	metrics.CallbacksApplied.WithLabelValues("waiting").Add(float64(res.Waiting))
	metrics.CallbacksApplied.WithLabelValues("unmatched").Add(float64(res.Unmatched))
	if res.Applied > 0 {
		t.log.DebugContext(ctx, "callbacks applied", "applied", res.Applied, "waiting", res.Waiting, "messages_changed", len(res.Changed))
	}
	return res, nil
}

// FoldInterval is how often Fold runs: the analytics' sent and failed counts lag by about this.
const FoldInterval = 500 * time.Millisecond

// Fold moves the worker's pending sent and failed counts into the analytics rollup every interval
// until ctx ends (store.FoldAnalytics). The worker and the webhook binaries both run it: any number
// of folders may run, each delta is counted once.
func Fold(ctx context.Context, s Store, interval time.Duration, log *slog.Logger) {
	poll.Every(ctx, interval, func(ctx context.Context) {
		if _, err := s.FoldAnalytics(ctx); err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "fold analytics failed; retrying", "err", err)
		}
	})
}
