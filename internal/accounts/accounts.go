// Package accounts is who may call comms: tenants and their settings, API keys, and the
// dashboard's sessions. It validates what the API and commsctl are asked to change and tells
// running workers when a tenant's settings change.
package accounts

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/message"
)

// Store is what accounts keep in the database; *store.Store implements it.
type Store interface {
	CreateTenant(ctx context.Context, nt domain.NewTenant) (domain.Tenant, error)
	GetTenant(ctx context.Context, id string) (domain.Tenant, error)
	ListTenants(ctx context.Context, after string, limit int) ([]domain.Tenant, error)
	UpdateTenant(ctx context.Context, id string, p domain.TenantPatch) (domain.Tenant, error)
	PutPlan(ctx context.Context, p domain.Plan) (domain.Plan, error)
	ListPlans(ctx context.Context) ([]domain.Plan, error)
	CreateAPIKey(ctx context.Context, kind domain.KeyKind, tenantID, name string, expiresAt *time.Time) (domain.APIKey, string, error)
	LookupAPIKey(ctx context.Context, plain string) (domain.APIKey, error)
	ListAPIKeys(ctx context.Context, tenantID string) ([]domain.APIKey, error)
	RevokeAPIKey(ctx context.Context, tenantID, id string) (domain.APIKey, error)
	TouchAPIKeys(ctx context.Context, ids []string, at []time.Time) error
	CreateSession(ctx context.Context, token, keyID, csrf string, expires time.Time) error
	GetSessionByToken(ctx context.Context, token string) (domain.Session, error)
	DeleteSession(ctx context.Context, token string) error
}

// Notifier tells running services that a tenant's settings changed.
type Notifier interface {
	Changed(ctx context.Context, tenantID string)
}

// Service manages tenants, keys and sessions.
type Service struct {
	store  Store
	notify Notifier
}

// New returns the service; notify may be nil (workers then see a change when their caches
// expire).
func New(s Store, notify Notifier) *Service {
	return &Service{store: s, notify: notify}
}

func invalid(fields ...message.FieldError) error { return &message.ValidationError{Fields: fields} }

// CreateTenant creates a tenant. Errors: *message.ValidationError.
func (s *Service) CreateTenant(ctx context.Context, nt domain.NewTenant) (domain.Tenant, error) {
	if strings.TrimSpace(nt.Name) == "" || len(nt.Name) > 200 {
		return domain.Tenant{}, invalid(message.FieldError{Field: "name", Message: "is required, at most 200 characters"})
	}
	return s.store.CreateTenant(ctx, nt)
}

// Tenant returns one tenant as it is now. Errors: store.ErrNotFound.
func (s *Service) Tenant(ctx context.Context, id string) (domain.Tenant, error) {
	return s.store.GetTenant(ctx, id)
}

// Tenants returns up to limit tenants after the id cursor, in id order.
func (s *Service) Tenants(ctx context.Context, cursor string, limit int) ([]domain.Tenant, error) {
	return s.store.ListTenants(ctx, cursor, limit)
}

// UpdateTenant applies p and tells running workers. Errors: *message.ValidationError,
// store.ErrNotFound.
func (s *Service) UpdateTenant(ctx context.Context, id string, p domain.TenantPatch) (domain.Tenant, error) {
	if errs := p.Validate(); len(errs) > 0 {
		return domain.Tenant{}, invalid(errs...)
	}
	t, err := s.store.UpdateTenant(ctx, id, p)
	if err != nil {
		return domain.Tenant{}, err
	}
	if s.notify != nil {
		s.notify.Changed(ctx, t.ID)
	}
	return t, nil
}

// PutPlan creates or replaces a plan's retention defaults; tenants created on it or moved to it
// from now on take them. Errors: *message.ValidationError.
func (s *Service) PutPlan(ctx context.Context, p domain.Plan) (domain.Plan, error) {
	if errs := p.Validate(); len(errs) > 0 {
		return domain.Plan{}, invalid(errs...)
	}
	return s.store.PutPlan(ctx, p)
}

// Plans returns every plan by name.
func (s *Service) Plans(ctx context.Context) ([]domain.Plan, error) {
	return s.store.ListPlans(ctx)
}

// NewKey is a key to create.
type NewKey struct {
	Kind      domain.KeyKind
	TenantID  string // for a tenant key only
	Name      string
	ExpiresAt *time.Time
}

// CreateKey creates a key and returns it with its secret, which is never shown again. Errors:
// *message.ValidationError (a tenant key for no tenant, among others).
func (s *Service) CreateKey(ctx context.Context, k NewKey) (domain.APIKey, string, error) {
	var bad []message.FieldError
	if !k.Kind.Valid() {
		bad = append(bad, message.FieldError{Field: "kind", Message: `must be "tenant", "service" or "admin"`})
	}
	if k.Kind == domain.KindTenant && k.TenantID == "" {
		bad = append(bad, message.FieldError{Field: "tenant_id", Message: "is required for a tenant key"})
	}
	if k.Kind != domain.KindTenant && k.TenantID != "" {
		bad = append(bad, message.FieldError{Field: "tenant_id", Message: "is only allowed for a tenant key"})
	}
	if strings.TrimSpace(k.Name) == "" || len(k.Name) > 200 {
		bad = append(bad, message.FieldError{Field: "name", Message: "is required, at most 200 characters"})
	}
	if k.ExpiresAt != nil && !k.ExpiresAt.After(time.Now()) {
		bad = append(bad, message.FieldError{Field: "expires_at", Message: "must be in the future"})
	}
	if len(bad) == 0 && k.TenantID != "" {
		if _, err := s.store.GetTenant(ctx, k.TenantID); errors.Is(err, store.ErrNotFound) {
			bad = append(bad, message.FieldError{Field: "tenant_id", Message: "names no tenant"})
		} else if err != nil {
			return domain.APIKey{}, "", err
		}
	}
	if len(bad) > 0 {
		return domain.APIKey{}, "", invalid(bad...)
	}
	return s.store.CreateAPIKey(ctx, k.Kind, k.TenantID, k.Name, k.ExpiresAt)
}

// LookupKey returns the key whose secret is plain, live or not. Errors: store.ErrNotFound.
func (s *Service) LookupKey(ctx context.Context, plain string) (domain.APIKey, error) {
	return s.store.LookupAPIKey(ctx, plain)
}

// Keys returns tenantID's keys ("" for every key).
func (s *Service) Keys(ctx context.Context, tenantID string) ([]domain.APIKey, error) {
	return s.store.ListAPIKeys(ctx, tenantID)
}

// RevokeKey revokes key id, of tenantID only unless tenantID is "". Errors: store.ErrNotFound.
func (s *Service) RevokeKey(ctx context.Context, tenantID, id string) (domain.APIKey, error) {
	return s.store.RevokeAPIKey(ctx, tenantID, id)
}

// TouchKeys records when each key was last used.
func (s *Service) TouchKeys(ctx context.Context, ids []string, at []time.Time) error {
	return s.store.TouchAPIKeys(ctx, ids, at)
}

// StartSession keeps a dashboard session for keyID under token until expires.
func (s *Service) StartSession(ctx context.Context, token, keyID, csrf string, expires time.Time) error {
	return s.store.CreateSession(ctx, token, keyID, csrf, expires)
}

// Session returns the live session of token. Errors: store.ErrNotFound.
func (s *Service) Session(ctx context.Context, token string) (domain.Session, error) {
	return s.store.GetSessionByToken(ctx, token)
}

// EndSession ends the session of token.
func (s *Service) EndSession(ctx context.Context, token string) error {
	return s.store.DeleteSession(ctx, token)
}
