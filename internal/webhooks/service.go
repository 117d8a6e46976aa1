package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/platform/netguard"
	"github.com/logicspike/comms/internal/platform/secrets"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/event"
	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/message"
)

// Limits on what a tenant may configure.
const (
	MaxEndpoints      = 20
	MaxURLLength      = 2000
	MaxDescriptionLen = 500
)

// ErrTooManyEndpoints is returned by Create when the tenant has MaxEndpoints already.
var ErrTooManyEndpoints = errors.New("a tenant may have at most 20 webhook endpoints")

// Notifier tells the Deliverers a tenant's endpoints changed.
type Notifier interface {
	EndpointsChanged(ctx context.Context, tenantID string)
}

// Store is what the endpoint service keeps in the database; *store.Store implements it.
type Store interface {
	CountWebhookEndpoints(ctx context.Context, tenantID string) (int, error)
	CreateWebhookEndpoint(ctx context.Context, e domain.WebhookEndpoint, now time.Time) (domain.WebhookEndpoint, error)
	GetWebhookEndpoint(ctx context.Context, tenantID, id string) (domain.WebhookEndpoint, error)
	ListWebhookEndpoints(ctx context.Context, tenantID string, enabledOnly bool) ([]domain.WebhookEndpoint, error)
	UpdateWebhookEndpoint(ctx context.Context, tenantID, id string, p domain.WebhookEndpointPatch, now time.Time) (domain.WebhookEndpoint, error)
	DeleteWebhookEndpoint(ctx context.Context, tenantID, id string) error
	RotateWebhookSecret(ctx context.Context, tenantID, id, keyVersion string, sealed []byte, expires, now time.Time) (domain.WebhookEndpoint, error)
	ListWebhookDeliveries(ctx context.Context, tenantID, endpointID, status, cursor string, limit int) ([]domain.WebhookDelivery, string, error)
	ReplayWebhookDeliveries(ctx context.Context, tenantID, endpointID string, r domain.WebhookReplay, now time.Time) (queued int, repeated bool, err error)
	RecordWebhookOutcomes(ctx context.Context, outs []store.WebhookOutcome) error
	RecordAudit(ctx context.Context, action, targetType, targetID, tenantID string, after any) error
}

// Service manages tenants' endpoints for the API.
type Service struct {
	store        Store
	ring         *secrets.Ring
	sender       *sender
	notify       Notifier
	allowPrivate bool
	log          *slog.Logger
	now          func() time.Time
}

// ServiceConfig shapes a Service.
type ServiceConfig struct {
	// Dial connects test sends: netguard's dialer in production.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// AllowPrivate accepts http:// and private addresses (COMMS_ALLOW_PRIVATE_NETWORKS).
	AllowPrivate bool
	// Timeout bounds a test send (default 15 s).
	Timeout time.Duration
	// Notifier may be nil: the Deliverers then see changes when their cache expires.
	Notifier Notifier
}

// NewService returns the API's endpoint service.
func NewService(cfg ServiceConfig, st Store, ring *secrets.Ring, log *slog.Logger) *Service {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	return &Service{store: st, ring: ring, sender: newSender(cfg.Dial, cfg.Timeout), notify: cfg.Notifier,
		allowPrivate: cfg.AllowPrivate, log: log, now: time.Now}
}

// Input creates an endpoint.
type Input struct {
	URL         string   `json:"url"`
	Description string   `json:"description,omitempty"`
	EventTypes  []string `json:"event_types,omitempty"` // empty: every type
	Enabled     *bool    `json:"enabled,omitempty"`     // default true
}

// WithSecret is an endpoint with its signing secret: the answer to a create or a rotation, the
// only times the secret is shown.
type WithSecret struct {
	domain.WebhookEndpoint
	Secret string
}

// Create validates and stores an endpoint with a new secret.
func (s *Service) Create(ctx context.Context, tenantID string, in Input) (WithSecret, error) {
	var bad []message.FieldError
	bad = append(bad, s.checkURL(in.URL)...)
	bad = append(bad, checkDescription(in.Description)...)
	bad = append(bad, checkTypes(in.EventTypes)...)
	if len(bad) > 0 {
		return WithSecret{}, &message.ValidationError{Fields: bad}
	}
	n, err := s.store.CountWebhookEndpoints(ctx, tenantID)
	if err != nil {
		return WithSecret{}, err
	}
	if n >= MaxEndpoints {
		return WithSecret{}, ErrTooManyEndpoints
	}
	e := domain.WebhookEndpoint{ID: ids.New(ids.Endpoint), TenantID: tenantID, URL: in.URL, Description: in.Description,
		EventTypes: types(in.EventTypes), Enabled: in.Enabled == nil || *in.Enabled}
	secret := newSecret()
	if e.KeyVersion, e.Sealed, err = seal(s.ring, tenantID, e.ID, secret); err != nil {
		return WithSecret{}, err
	}
	e, err = s.store.CreateWebhookEndpoint(ctx, e, s.now())
	if err != nil {
		return WithSecret{}, err
	}
	s.changed(ctx, tenantID)
	return WithSecret{WebhookEndpoint: e, Secret: secret}, nil
}

// Update validates and applies a patch.
func (s *Service) Update(ctx context.Context, tenantID, id string, p domain.WebhookEndpointPatch) (domain.WebhookEndpoint, error) {
	var bad []message.FieldError
	if p.URL != nil {
		bad = append(bad, s.checkURL(*p.URL)...)
	}
	if p.Description != nil {
		bad = append(bad, checkDescription(*p.Description)...)
	}
	if p.EventTypes != nil {
		bad = append(bad, checkTypes(*p.EventTypes)...)
		ts := types(*p.EventTypes)
		p.EventTypes = &ts
	}
	if len(bad) > 0 {
		return domain.WebhookEndpoint{}, &message.ValidationError{Fields: bad}
	}
	e, err := s.store.UpdateWebhookEndpoint(ctx, tenantID, id, p, s.now())
	if err == nil {
		s.changed(ctx, tenantID)
	}
	return e, err
}

// Delete removes an endpoint with its delivery log.
func (s *Service) Delete(ctx context.Context, tenantID, id string) error {
	err := s.store.DeleteWebhookEndpoint(ctx, tenantID, id)
	if err == nil {
		s.changed(ctx, tenantID)
	}
	return err
}

// Rotate gives an endpoint a new secret; the previous one keeps signing beside it for
// RotationOverlap, so both signatures are sent meanwhile.
func (s *Service) Rotate(ctx context.Context, tenantID, id string) (WithSecret, error) {
	if _, err := s.store.GetWebhookEndpoint(ctx, tenantID, id); err != nil {
		return WithSecret{}, err
	}
	secret := newSecret()
	version, sealed, err := seal(s.ring, tenantID, id, secret)
	if err != nil {
		return WithSecret{}, err
	}
	now := s.now()
	e, err := s.store.RotateWebhookSecret(ctx, tenantID, id, version, sealed, now.Add(RotationOverlap), now)
	if err != nil {
		return WithSecret{}, err
	}
	s.changed(ctx, tenantID)
	return WithSecret{WebhookEndpoint: e, Secret: secret}, nil
}

// Test sends a comms.webhook.test event to the endpoint now, whether it is enabled or not, and
// returns the delivery with its one attempt, which also joins the endpoint's delivery log.
func (s *Service) Test(ctx context.Context, tenantID, id string) (domain.WebhookDelivery, error) {
	e, err := s.store.GetWebhookEndpoint(ctx, tenantID, id)
	if err != nil {
		return domain.WebhookDelivery{}, err
	}
	now := s.now()
	keys, err := signingKeys(s.ring, e, now)
	if err != nil {
		return domain.WebhookDelivery{}, err
	}
	ev := event.Event{SpecVersion: "1.0", ID: "evt_test_" + ids.Random(16), Source: event.Source(tenantID), Type: event.Test,
		Subject: e.ID, Time: now.UTC(), DataContentType: "application/json", Data: event.Data{TenantID: tenantID, EndpointID: e.ID}}
	body, err := json.Marshal(ev)
	if err != nil {
		return domain.WebhookDelivery{}, err
	}
	a, ok := s.sender.attempt(ctx, e.URL, ev.ID, body, keys, now)
	d := domain.WebhookDelivery{EndpointID: e.ID, TenantID: tenantID, EventID: ev.ID, EventType: ev.Type, Payload: body,
		Status: event.DeliveryFailed, Attempts: 1, RoundAttempts: 1, CreatedAt: now, AttemptLog: []domain.WebhookAttempt{a}}
	if ok {
		d.Status = event.DeliverySucceeded
	}
	if err := s.store.RecordWebhookOutcomes(ctx, []store.WebhookOutcome{{Delivery: d, Attempt: &a, At: now, AttemptsAdded: 1}}); err != nil {
		return d, err
	}
	return d, s.store.RecordAudit(ctx, "webhook_endpoint.tested", "webhook_endpoint", e.ID, tenantID, map[string]any{"event_id": ev.ID, "status": d.Status})
}

// ReplayResult says what a replay queued.
type ReplayResult struct {
	Queued int `json:"queued"`
	// Repeated: the same replay was asked for before; nothing new was queued, and Queued is
	// what the first one queued.
	Repeated bool `json:"repeated"`
}

// Replay queues an endpoint's finished deliveries again, with their original ids.
func (s *Service) Replay(ctx context.Context, tenantID, id string, r domain.WebhookReplay) (ReplayResult, error) {
	var bad []message.FieldError
	if r.Since.IsZero() {
		bad = append(bad, message.FieldError{Field: "since", Message: "is required (RFC 3339)"})
	}
	if r.Until != nil && !r.Until.After(r.Since) {
		bad = append(bad, message.FieldError{Field: "until", Message: "must be after since"})
	}
	if r.Status != "" && !r.Status.Final() {
		bad = append(bad, message.FieldError{Field: "status", Message: "must be succeeded or failed"})
	}
	if len(bad) > 0 {
		return ReplayResult{}, &message.ValidationError{Fields: bad}
	}
	n, repeated, err := s.store.ReplayWebhookDeliveries(ctx, tenantID, id, r, s.now())
	return ReplayResult{Queued: n, Repeated: repeated}, err
}

func (s *Service) changed(ctx context.Context, tenantID string) {
	if s.notify != nil {
		s.notify.EndpointsChanged(ctx, tenantID)
	}
}

// checkURL refuses what the dial guard would refuse anyway (netguard.CheckURL), so the tenant
// hears it now rather than from a failed delivery.
func (s *Service) checkURL(raw string) []message.FieldError {
	if len(raw) > MaxURLLength {
		return []message.FieldError{{Field: "url", Message: "must be at most 2000 characters"}}
	}
	if msg := netguard.CheckURL(raw, s.allowPrivate); msg != "" {
		if strings.HasPrefix(msg, "must not carry credentials") {
			msg += "; verify deliveries by their signature instead"
		}
		return []message.FieldError{{Field: "url", Message: msg}}
	}
	return nil
}

func checkDescription(d string) []message.FieldError {
	if len(d) > MaxDescriptionLen {
		return []message.FieldError{{Field: "description", Message: "must be at most 500 bytes"}}
	}
	return nil
}

func checkTypes(ts []string) []message.FieldError {
	for i, t := range ts {
		if !slices.Contains(event.Types, t) {
			return []message.FieldError{{Field: "event_types[" + strconv.Itoa(i) + "]", Message: "is not an event type; see docs/events.md (" + strings.Join(event.Types, ", ") + ")"}}
		}
	}
	return nil
}

// types sorts and deduplicates a subscription; nil becomes empty (every type).
func types(ts []string) []string {
	out := slices.Clone(ts)
	slices.Sort(out)
	return append([]string{}, slices.Compact(out)...)
}

// Endpoint returns tenantID's endpoint id. Errors: store.ErrNotFound.
func (s *Service) Endpoint(ctx context.Context, tenantID, id string) (domain.WebhookEndpoint, error) {
	return s.store.GetWebhookEndpoint(ctx, tenantID, id)
}

// Endpoints returns tenantID's endpoints.
func (s *Service) Endpoints(ctx context.Context, tenantID string) ([]domain.WebhookEndpoint, error) {
	return s.store.ListWebhookEndpoints(ctx, tenantID, false)
}

// Deliveries returns a page of the deliveries to tenantID's endpoint id (with status, if not
// ""), newest first, and the next page's cursor. Errors: store.ErrNotFound for no such
// endpoint, store.ErrBadCursor.
func (s *Service) Deliveries(ctx context.Context, tenantID, id, status, cursor string, limit int) ([]domain.WebhookDelivery, string, error) {
	if _, err := s.store.GetWebhookEndpoint(ctx, tenantID, id); err != nil {
		return nil, "", err
	}
	return s.store.ListWebhookDeliveries(ctx, tenantID, id, status, cursor, limit)
}
