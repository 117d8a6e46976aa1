// Package providerconfig manages provider configs: validation, Save & Test (a real test send before
// anything is stored), sealing credentials, and key rotation. The API and commsctl both use it,
// so a tenant's config and a system default go through the same checks.
package providerconfig

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/registry"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// DefaultTestTimeout bounds a Save & Test send.
const DefaultTestTimeout = 20 * time.Second

// Notifier announces that an owner's configs changed, so running workers drop cached routes.
type Notifier interface {
	Changed(ctx context.Context, tenantID string)
}

// Service manages provider configs.
type Service struct {
	store       Store
	reg         *registry.Registry
	log         *slog.Logger
	testTimeout time.Duration
	notify      Notifier
}

// InboundURL is where p's provider should send the messages people write to its numbers ("" when
// its type takes none, or no public URL is configured).
func (s *Service) InboundURL(p domain.ProviderConfig) string { return s.reg.InboundURL(p) }

// WithNotifier makes the service announce every change through n.
func (s *Service) WithNotifier(n Notifier) *Service {
	s.notify = n
	return s
}

func (s *Service) changed(ctx context.Context, tenantID string) {
	if s.notify != nil {
		s.notify.Changed(ctx, tenantID)
	}
}

// New returns a service; testTimeout 0 means DefaultTestTimeout.
func New(s Store, reg *registry.Registry, log *slog.Logger, testTimeout time.Duration) *Service {
	if testTimeout <= 0 {
		testTimeout = DefaultTestTimeout
	}
	return &Service{store: s, reg: reg, log: log, testTimeout: testTimeout}
}

// Input is a new config.
type Input struct {
	Type          string          `json:"type"`
	Name          string          `json:"name"`
	Channel       message.Channel `json:"channel"`
	Credentials   json.RawMessage `json:"credentials"`
	Sender        json.RawMessage `json:"sender"`
	Priority      *int            `json:"priority"`
	Enabled       *bool           `json:"enabled"`
	TestRecipient string          `json:"test_recipient"`
	// TestSubscription is, for a Web Push config, a browser's PushSubscription to send the test
	// to; without it the keys are checked and nothing is sent.
	TestSubscription json.RawMessage `json:"test_subscription"`
	// RateLimitPerSecond caps sends through this config across all workers (0 or absent: none).
	RateLimitPerSecond *float64 `json:"rate_limit_per_second"`
	// UnitPrice prices what the provider does not report a price for (docs/usage.md).
	UnitPrice *UnitPrice `json:"unit_price"`
}

// UnitPrice is the cost of one email, or of one SMS segment. A zero Amount removes the price.
type UnitPrice struct {
	Amount   string `json:"amount"`   // a decimal such as "0.0079"
	Currency string `json:"currency"` // ISO 4217, such as "USD"
}

var (
	decimalAmount = regexp.MustCompile(`^[0-9]{1,9}(\.[0-9]{1,9})?$`)
	currencyCode  = regexp.MustCompile(`^[A-Z]{3}$`)
)

func validatePrice(f *provider.Fields, p *UnitPrice) {
	if p == nil {
		return
	}
	if !decimalAmount.MatchString(p.Amount) {
		f.Add("unit_price.amount", "must be a decimal string such as \"0.0079\"")
	}
	if !currencyCode.MatchString(p.Currency) {
		f.Add("unit_price.currency", "must be an ISO 4217 code such as \"USD\"")
	}
}

// setPrice applies a validated price to p; a zero amount removes it.
func setPrice(p *domain.ProviderConfig, up *UnitPrice) {
	if up == nil {
		return
	}
	p.UnitPrice, p.UnitCurrency = up.Amount, up.Currency
	if strings.Trim(up.Amount, "0.") == "" {
		p.UnitPrice, p.UnitCurrency = "", ""
	}
}

// Patch changes a config; nil and empty fields are left alone. Changing credentials or sender
// re-runs the test send; name, priority and enabled do not.
type Patch struct {
	Name             *string         `json:"name"`
	Credentials      json.RawMessage `json:"credentials"`
	Sender           json.RawMessage `json:"sender"`
	Priority         *int            `json:"priority"`
	Enabled          *bool           `json:"enabled"`
	TestRecipient    string          `json:"test_recipient"`
	TestSubscription json.RawMessage `json:"test_subscription"` // as Input's
	// RateLimitPerSecond changes the send cap without a re-test.
	RateLimitPerSecond *float64 `json:"rate_limit_per_second"`
	// UnitPrice changes the price without a re-test.
	UnitPrice *UnitPrice `json:"unit_price"`
	// Type and Channel cannot change; they are here to be refused by name.
	Type    *string `json:"type"`
	Channel *string `json:"channel"`
}

// TestResult is a successful test send.
type TestResult struct {
	ProviderMessageID string    `json:"provider_message_id"`
	SentAt            time.Time `json:"sent_at"`
	// Inbound is what Save & Test did to send the replies people write to the config's numbers
	// to comms (its inbound_url), for a provider that takes them.
	Inbound *provider.InboundSetup `json:"inbound,omitempty"`
	// Note says what was done instead of a send, where nothing was sent (a push config tested
	// without a device).
	Note string `json:"note,omitempty"`
}

// TestFailedError is a test send the provider refused; nothing was stored or changed.
type TestFailedError struct{ Err *provider.Error }

func (e *TestFailedError) Error() string { return "test send failed: " + e.Err.Describe() }
func (e *TestFailedError) Unwrap() error { return e.Err }

const maxPriority = 1000

// Create validates in, sends a test message through the provider to in.TestRecipient and, only if
// the provider accepts it, seals the credentials and stores the config. tenantID empty creates a
// system default.
func (s *Service) Create(ctx context.Context, tenantID string, in Input) (domain.ProviderConfig, TestResult, error) {
	var f provider.Fields
	validateCommon(&f, in.Name, in.Priority)
	validateRate(&f, in.RateLimitPerSecond)
	validatePrice(&f, in.UnitPrice)
	if chans := registry.Channels(in.Type); chans != nil {
		ok := false
		for _, c := range chans {
			ok = ok || c == in.Channel
		}
		if !ok {
			f.Add("channel", "%s sends %v", in.Type, chans)
		}
	}
	if len(in.TestSubscription) > 0 {
		in.TestRecipient = string(in.TestSubscription)
	}
	validateRecipient(&f, in.Channel, in.TestRecipient)
	id := ids.New(ids.Provider)
	cfg := provider.Config{ID: id, TenantID: tenantID, Type: in.Type, Channel: in.Channel, Credentials: in.Credentials, Sender: in.Sender}
	adapter, err := s.reg.Build(cfg)
	if err := merge(&f, err); err != nil {
		return domain.ProviderConfig{}, TestResult{}, err
	}
	if err := s.nameFree(ctx, tenantID, in.Name, ""); err != nil {
		return domain.ProviderConfig{}, TestResult{}, err
	}
	res, err := s.testSend(ctx, cfg, in.Name, adapter, in.TestRecipient)
	if err != nil {
		return domain.ProviderConfig{}, TestResult{}, err
	}
	version, sealed, err := s.reg.Seal(tenantID, id, credentialsOf(adapter, in.Credentials))
	if err != nil {
		return domain.ProviderConfig{}, TestResult{}, fmt.Errorf("seal credentials: %w", err)
	}
	sender, _ := json.Marshal(adapter.Public())
	p := domain.ProviderConfig{ID: id, Type: in.Type, Name: in.Name, Channel: in.Channel, Sender: sender,
		Sealed: sealed, KeyVersion: version, Mask: adapter.Mask(), Enabled: true, LastTestedAt: &res.SentAt}
	if in.Enabled != nil {
		p.Enabled = *in.Enabled
	}
	if in.Priority != nil {
		p.Priority = *in.Priority
	}
	if in.RateLimitPerSecond != nil {
		p.SendRatePerSecond = *in.RateLimitPerSecond
	}
	setPrice(&p, in.UnitPrice)
	out, err := s.store.CreateProviderConfig(ctx, tenantID, p)
	if err != nil {
		return domain.ProviderConfig{}, TestResult{}, err
	}
	s.log.InfoContext(ctx, "provider config created", "tenant_id", tenantID, "provider_id", id, "type", in.Type, "channel", in.Channel)
	s.changed(ctx, tenantID)
	res.Inbound = s.configureInbound(ctx, out, adapter)
	return out, res, nil
}

func (s *Service) nameFree(ctx context.Context, tenantID, name, except string) error {
	all, err := s.store.ListProviderConfigs(ctx, tenantID)
	if err != nil {
		return err
	}
	for _, p := range all {
		if p.Name == name && p.ID != except {
			return store.ErrNameTaken
		}
	}
	return nil
}

// Update applies p to tenantID's config id. When credentials or sender change, the merged config
// must pass a test send to p.TestRecipient first; otherwise nothing is sent.
func (s *Service) Update(ctx context.Context, tenantID, id string, p Patch) (domain.ProviderConfig, *TestResult, error) {
	cur, err := s.store.GetProviderConfig(ctx, tenantID, id)
	if err != nil {
		return domain.ProviderConfig{}, nil, err
	}
	var f provider.Fields
	if p.Type != nil {
		f.Add("type", "cannot be changed; create a new config instead")
	}
	if p.Channel != nil {
		f.Add("channel", "cannot be changed; create a new config instead")
	}
	next := cur
	if p.Name != nil {
		next.Name = *p.Name
	}
	validateCommon(&f, next.Name, p.Priority)
	validateRate(&f, p.RateLimitPerSecond)
	validatePrice(&f, p.UnitPrice)
	setPrice(&next, p.UnitPrice)
	if p.Priority != nil {
		next.Priority = *p.Priority
	}
	if p.RateLimitPerSecond != nil {
		next.SendRatePerSecond = *p.RateLimitPerSecond
	}
	if p.Enabled != nil {
		next.Enabled = *p.Enabled
	}
	retest := len(p.Credentials) > 0 || len(p.Sender) > 0
	var res *TestResult
	var tested provider.Adapter
	if retest {
		if cur.Type == "sandbox" {
			f.Add("credentials", "the sandbox has no credentials")
			return domain.ProviderConfig{}, nil, f.Err()
		}
		if len(p.TestSubscription) > 0 {
			p.TestRecipient = string(p.TestSubscription)
		}
		validateRecipient(&f, cur.Channel, p.TestRecipient)
		cfg, err := s.reg.Open(cur)
		if err != nil {
			return domain.ProviderConfig{}, nil, err
		}
		if len(p.Credentials) > 0 {
			cfg.Credentials = keepCredentials(cur.Type, cfg.Credentials, p.Credentials)
		}
		if len(p.Sender) > 0 {
			cfg.Sender = p.Sender
		}
		adapter, err := s.reg.Build(cfg)
		if err := merge(&f, err); err != nil {
			return domain.ProviderConfig{}, nil, err
		}
		if err := s.nameFree(ctx, tenantID, next.Name, id); err != nil {
			return domain.ProviderConfig{}, nil, err
		}
		r, err := s.testSend(ctx, cfg, next.Name, adapter, p.TestRecipient)
		if err != nil {
			return domain.ProviderConfig{}, nil, err
		}
		res, tested = &r, adapter
		version, sealed, err := s.reg.Seal(tenantID, id, credentialsOf(adapter, cfg.Credentials))
		if err != nil {
			return domain.ProviderConfig{}, nil, fmt.Errorf("seal credentials: %w", err)
		}
		next.Sender, _ = json.Marshal(adapter.Public())
		next.Sealed, next.KeyVersion, next.Mask, next.LastTestedAt = sealed, version, adapter.Mask(), &r.SentAt
	} else if err := f.Err(); err != nil {
		return domain.ProviderConfig{}, nil, err
	}
	out, err := s.store.UpdateProviderConfig(ctx, next)
	if err != nil {
		return domain.ProviderConfig{}, nil, err
	}
	s.log.InfoContext(ctx, "provider config updated", "tenant_id", tenantID, "provider_id", id, "retested", retest)
	s.changed(ctx, tenantID)
	if res != nil {
		res.Inbound = s.configureInbound(ctx, out, tested)
	}
	return out, res, nil
}

// Test sends a test message through a stored config.
func (s *Service) Test(ctx context.Context, tenantID, id, recipient string) (TestResult, error) {
	cur, err := s.store.GetProviderConfig(ctx, tenantID, id)
	if err != nil {
		return TestResult{}, err
	}
	var f provider.Fields
	validateRecipient(&f, cur.Channel, recipient)
	if err := f.Err(); err != nil {
		return TestResult{}, err
	}
	adapter, err := s.reg.Stored(cur)
	if err != nil {
		return TestResult{}, err
	}
	cfg := provider.Config{ID: cur.ID, TenantID: tenantID, Type: cur.Type, Channel: cur.Channel}
	res, err := s.testSend(ctx, cfg, cur.Name, adapter, recipient)
	outcome := map[string]any{"recipient": recipient, "ok": err == nil}
	if err != nil {
		outcome["error"] = err.Error()
	}
	if aerr := s.store.RecordAudit(ctx, "provider_config.tested", "provider_config", id, tenantID, outcome); aerr != nil && err == nil {
		return TestResult{}, aerr
	}
	return res, err
}

func (s *Service) testSend(ctx context.Context, cfg provider.Config, name string, a provider.Adapter, to string) (TestResult, error) {
	ctx, cancel := context.WithTimeout(ctx, s.testTimeout)
	defer cancel()
	m := provider.Message{TenantID: cfg.TenantID, Channel: cfg.Channel, To: to,
		Text: "comms test: your " + cfg.Type + " provider \"" + name + "\" is connected. No action is needed."}
	if cfg.Channel == message.Push {
		if to == "" {
			return validatePush(ctx, cfg, a, s.log)
		}
		m.Push = &message.PushContent{Title: "comms test", Body: m.Text}
		m.To, m.Device = pushTarget(to)
	}
	if cfg.Channel == message.Email {
		m.Subject = "comms test: " + name + " is connected"
		m.HTML = "<p>Your <b>" + cfg.Type + "</b> provider is connected to comms. No action is needed.</p>"
	}
	res, err := a.Send(ctx, m)
	if err != nil {
		pe := provider.Classify(cfg.Type, err)
		s.log.WarnContext(ctx, "provider test send failed", "tenant_id", cfg.TenantID, "provider_id", cfg.ID,
			"type", cfg.Type, "code", pe.Code, "provider_code", pe.RawCode)
		return TestResult{}, &TestFailedError{Err: pe}
	}
	return TestResult{ProviderMessageID: res.ProviderMessageID, SentAt: time.Now().UTC()}, nil
}

// RotateReport counts a rotation's work.
type RotateReport struct {
	Resealed int // now under the newest key
	Skipped  int // changed by someone else meanwhile (already under the newest key)
}

// Rotate re-seals every config not under the ring's newest key, in batches, in id order. It is
// resumable: stopped at any point, running it again finishes the job, and each config is resealed
// with a compare-and-swap on its old ciphertext so a concurrent edit is never overwritten.
func (s *Service) Rotate(ctx context.Context, batch int, progress func(done, total int)) (RotateReport, error) {
	var rep RotateReport
	current := s.reg.Ring().Current()
	total, err := s.store.CountSealedNotUnder(ctx, current)
	if err != nil {
		return rep, err
	}
	after := ""
	for {
		if progress != nil {
			progress(rep.Resealed+rep.Skipped, total)
		}
		ps, err := s.store.ListSealedNotUnder(ctx, current, after, batch)
		if err != nil {
			return rep, err
		}
		if len(ps) == 0 {
			return rep, nil
		}
		for _, p := range ps {
			after = p.ID
			cfg, err := s.reg.Open(p)
			if err != nil {
				return rep, err
			}
			version, sealed, err := s.reg.Seal(p.TenantID, p.ID, cfg.Credentials)
			if err != nil {
				return rep, err
			}
			ok, err := s.store.Reseal(ctx, p.ID, p.Sealed, version, sealed)
			if err != nil {
				return rep, err
			}
			if ok {
				rep.Resealed++
			} else {
				rep.Skipped++
			}
		}
	}
}
