// Package pricer fetches the prices providers set only after sending (Twilio prices a message
// once it is on its way, so the send's answer carries none). Each sent message without a price
// from such a provider waits in price_checks; the pricer fetches its price through the
// provider's adapter and records it, with its usage, in one statement (docs/usage.md#cost).
package pricer

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/provider"
)

// Config tunes the pricer; zero values take the defaults.
type Config struct {
	Interval time.Duration // between rounds when nothing is due (default 10 s)
	Delay    time.Duration // from a send, or a fetch without a price, to the next fetch (default 30 s)
	Batch    int           // checks per round (default 200)
	Retry    time.Duration // added to Delay after a fetch finds no price yet (default 5 min)
	MaxTries int           // fetches before the estimate is kept (default 24)
	Parallel int           // fetches in flight (default 8)
}

// Adapters builds the adapter of a stored provider config.
type Adapters interface {
	Stored(p domain.ProviderConfig) (provider.Adapter, error)
}

// Store is what the pricer reads and changes; *store.Store implements it.
type Store interface {
	ClaimPriceChecks(ctx context.Context, limit int, delay, lease time.Duration) ([]store.PriceCheck, error)
	ApplyPrices(ctx context.Context, results []store.PriceResult, retryAt time.Time, maxTries int) error
	GetProviderConfigByID(ctx context.Context, id string) (domain.ProviderConfig, error)
}

// Pricer runs the price checks.
type Pricer struct {
	cfg      Config
	store    Store
	adapters Adapters
	log      *slog.Logger
}

// New returns a pricer.
func New(cfg Config, st Store, adapters Adapters, log *slog.Logger) *Pricer {
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Second
	}
	if cfg.Delay <= 0 {
		cfg.Delay = 30 * time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 200
	}
	if cfg.Retry <= 0 {
		cfg.Retry = 5 * time.Minute
	}
	if cfg.MaxTries <= 0 {
		cfg.MaxTries = 24
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 8
	}
	return &Pricer{cfg: cfg, store: st, adapters: adapters, log: log}
}

// Run prices until ctx ends. Any number of pricers may run: each check is leased to one.
func (p *Pricer) Run(ctx context.Context) {
	for {
		n, err := p.Round(ctx)
		if err != nil && ctx.Err() == nil {
			p.log.WarnContext(ctx, "pricing round failed", "err", err)
		}
		if n == p.cfg.Batch {
			continue // more are due
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(p.cfg.Interval):
		}
	}
}

// Round fetches the prices of the due checks and records them; it returns how many it took.
func (p *Pricer) Round(ctx context.Context) (int, error) {
	due, err := p.store.ClaimPriceChecks(ctx, p.cfg.Batch, p.cfg.Delay, 10*time.Minute)
	if err != nil || len(due) == 0 {
		return 0, err
	}
	results := make([]store.PriceResult, len(due))
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		pricers = map[string]provider.Pricer{} // by config id, for this round
		sem     = make(chan struct{}, p.cfg.Parallel)
	)
	for i, c := range due {
		results[i].MessageID = c.MessageID
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			mu.Lock()
			pr, ok := pricers[c.ProviderConfigID]
			mu.Unlock()
			if !ok {
				pr = p.pricer(ctx, c)
				mu.Lock()
				pricers[c.ProviderConfigID] = pr
				mu.Unlock()
			}
			if pr == nil {
				return // the config is gone or prices nothing: retried, then dropped
			}
			cost, currency, err := pr.Price(ctx, c.ProviderMessageID)
			if err != nil {
				p.log.InfoContext(ctx, "price not fetched", "tenant_id", c.TenantID, "message_id", c.MessageID, "err", err)
				return
			}
			results[i].Cost, results[i].Currency = cost, currency
		}()
	}
	wg.Wait()
	return len(due), p.store.ApplyPrices(ctx, results, time.Now().Add(p.cfg.Retry), p.cfg.MaxTries)
}

func (p *Pricer) pricer(ctx context.Context, c store.PriceCheck) provider.Pricer {
	cfg, err := p.store.GetProviderConfigByID(ctx, c.ProviderConfigID)
	if err != nil {
		return nil
	}
	a, err := p.adapters.Stored(cfg)
	if err != nil {
		p.log.WarnContext(ctx, "pricing: provider config unusable", "tenant_id", c.TenantID, "provider_id", c.ProviderConfigID, "err", err)
		return nil
	}
	pr, _ := a.(provider.Pricer)
	return pr
}
