package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider/sandbox"
)

// EnsureSandboxDefaults makes sure a sandbox system default exists for both channels, answering
// after latencyMS, and returns them.
func EnsureSandboxDefaults(ctx context.Context, st *store.Store, latencyMS int) ([]domain.ProviderConfig, error) {
	existing, err := st.ListSystemDefaults(ctx)
	if err != nil {
		return nil, err
	}
	settings, _ := json.Marshal(sandbox.Settings{LatencyMS: latencyMS})
	var out []domain.ProviderConfig
	for _, ch := range []message.Channel{message.SMS, message.Email} {
		var found *domain.ProviderConfig
		for i := range existing {
			if existing[i].Type == sandbox.Type && existing[i].Channel == ch {
				found = &existing[i]
				break
			}
		}
		if found != nil {
			if err := st.SetProviderSettings(ctx, found.ID, settings); err != nil {
				return nil, err
			}
			out = append(out, *found)
			continue
		}
		p, err := st.CreateProviderConfig(ctx, "", domain.ProviderConfig{
			ID: ids.New(ids.Provider), Type: sandbox.Type, Name: "sandbox " + string(ch), Channel: ch, Settings: settings, Enabled: true, Priority: 100,
		})
		if err != nil {
			return nil, fmt.Errorf("create sandbox default for %s: %w", ch, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// EnsureTenant returns the tenant called name, creating it if needed.
func EnsureTenant(ctx context.Context, st *store.Store, name string) (domain.Tenant, error) {
	t, err := st.FindTenantByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return st.CreateTenant(ctx, domain.NewTenant{Name: name, AllowSystemFallback: true})
	}
	return t, err
}
