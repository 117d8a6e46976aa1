package providerconfig

import (
	"context"

	"github.com/logicspike/comms/internal/domain"
)

// Store is what provider configs keep in the database; *store.Store implements it.
type Store interface {
	CreateProviderConfig(ctx context.Context, tenantID string, p domain.ProviderConfig) (domain.ProviderConfig, error)
	GetProviderConfig(ctx context.Context, tenantID, id string) (domain.ProviderConfig, error)
	ListProviderConfigs(ctx context.Context, tenantID string) ([]domain.ProviderConfig, error)
	UpdateProviderConfig(ctx context.Context, p domain.ProviderConfig) (domain.ProviderConfig, error)
	DeleteProviderConfig(ctx context.Context, tenantID, id string) error
	CountSealedNotUnder(ctx context.Context, current string) (int, error)
	ListSealedNotUnder(ctx context.Context, current, afterID string, limit int) ([]domain.ProviderConfig, error)
	Reseal(ctx context.Context, id string, old []byte, newVersion string, sealed []byte) (bool, error)
	RecordAudit(ctx context.Context, action, targetType, targetID, tenantID string, after any) error
}

// Config returns tenantID's config id ("" for a system default). Errors: store.ErrNotFound.
func (s *Service) Config(ctx context.Context, tenantID, id string) (domain.ProviderConfig, error) {
	return s.store.GetProviderConfig(ctx, tenantID, id)
}

// Configs returns tenantID's configs ("" for the system defaults).
func (s *Service) Configs(ctx context.Context, tenantID string) ([]domain.ProviderConfig, error) {
	return s.store.ListProviderConfigs(ctx, tenantID)
}

// Delete removes tenantID's config id.
func (s *Service) Delete(ctx context.Context, tenantID, id string) error {
	if err := s.store.DeleteProviderConfig(ctx, tenantID, id); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "provider config deleted", "tenant_id", tenantID, "provider_id", id)
	s.changed(ctx, tenantID)
	return nil
}
