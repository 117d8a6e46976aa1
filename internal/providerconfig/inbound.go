package providerconfig

import (
	"context"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/pkg/provider"
)

// configureInbound points the provider's incoming-message webhook of stored config p at comms,
// where its adapter can (a Twilio number or Messaging Service) and comms has a public URL
// (COMMS_PUBLIC_WEBHOOK_URL). It runs after a Save & Test that stored the config; what it could
// not do is reported in the result, and the config stays saved.
func (s *Service) configureInbound(ctx context.Context, p domain.ProviderConfig, a provider.Adapter) *provider.InboundSetup {
	c, ok := a.(provider.InboundConfigurer)
	url := s.reg.InboundURL(p)
	if !ok || url == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.testTimeout)
	defer cancel()
	setup := c.ConfigureInbound(ctx, url)
	s.log.InfoContext(ctx, "pointed the provider's incoming messages at comms", "tenant_id", p.TenantID, "provider_id", p.ID,
		"configured", setup.Configured, "detail", setup.Detail)
	return &setup
}
