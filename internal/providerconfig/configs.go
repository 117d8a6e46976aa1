package providerconfig

import (
	"context"

	"github.com/logicspike/comms/internal/domain"
)

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
