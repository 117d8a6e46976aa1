package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/message"
)

// ProviderConfig is a configured provider account: a tenant's own, or a system default
// (TenantID empty).
type ProviderConfig struct {
	ID        string          `json:"id"`
	TenantID  string          `json:"tenant_id,omitempty"`
	Type      string          `json:"type"`
	Name      string          `json:"name"`
	Channel   message.Channel `json:"channel"`
	Settings  json.RawMessage `json:"settings,omitempty"`
	Mask      string          `json:"mask,omitempty"`
	Enabled   bool            `json:"enabled"`
	Priority  int             `json:"priority"`
	Health    string          `json:"health"`
	UpdatedAt time.Time       `json:"updated_at"`
}

const providerCols = `id, coalesce(tenant_id, ''), type, name, channel, settings, mask, enabled, priority, health, updated_at`

func scanProvider(r pgx.CollectableRow) (ProviderConfig, error) {
	var p ProviderConfig
	err := r.Scan(&p.ID, &p.TenantID, &p.Type, &p.Name, &p.Channel, &p.Settings, &p.Mask, &p.Enabled, &p.Priority, &p.Health, &p.UpdatedAt)
	return p, err
}

// CreateProviderConfig stores a provider config without credentials (the sandbox needs none).
// tenantID empty makes a system default.
func (s *Store) CreateProviderConfig(ctx context.Context, tenantID string, p ProviderConfig) (ProviderConfig, error) {
	var tenant *string
	if tenantID != "" {
		tenant = &tenantID
	}
	if p.Settings == nil {
		p.Settings = json.RawMessage(`{}`)
	}
	rows, err := s.pool.Query(ctx, `
		INSERT INTO communication.provider_configs (id, tenant_id, type, name, channel, settings, enabled, priority)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING `+providerCols,
		ids.New(ids.Provider), tenant, p.Type, p.Name, p.Channel, p.Settings, p.Enabled, p.Priority)
	if err != nil {
		return ProviderConfig{}, fmt.Errorf("insert provider config: %w", err)
	}
	out, err := pgx.CollectExactlyOneRow(rows, scanProvider)
	if err != nil {
		return ProviderConfig{}, fmt.Errorf("insert provider config: %w", err)
	}
	return out, nil
}

// ProviderRoutes returns the enabled configs that may send tenantID's messages on channel, in the
// order to try them: the tenant's own by priority, then the system defaults by priority.
// Whether the tenant may use the system defaults is the caller's decision (Tenant.AllowSystemFallback).
func (s *Store) ProviderRoutes(ctx context.Context, tenantID string, channel message.Channel) ([]ProviderConfig, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+providerCols+` FROM communication.provider_configs
		WHERE (tenant_id = $1 OR tenant_id IS NULL) AND channel = $2 AND enabled
		ORDER BY tenant_id IS NULL, priority, id`, tenantID, channel)
	if err != nil {
		return nil, fmt.Errorf("provider routes for %s/%s: %w", tenantID, channel, err)
	}
	out, err := pgx.CollectRows(rows, scanProvider)
	if err != nil {
		return nil, fmt.Errorf("provider routes for %s/%s: %w", tenantID, channel, err)
	}
	return out, nil
}

// SystemDefaults lists the system-default configs.
func (s *Store) SystemDefaults(ctx context.Context) ([]ProviderConfig, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+providerCols+` FROM communication.provider_configs WHERE tenant_id IS NULL ORDER BY channel, priority, id`)
	if err != nil {
		return nil, fmt.Errorf("list system defaults: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanProvider)
	if err != nil {
		return nil, fmt.Errorf("list system defaults: %w", err)
	}
	return out, nil
}

// SetProviderSettings replaces a system-default config's non-secret settings.
func (s *Store) SetProviderSettings(ctx context.Context, id string, settings json.RawMessage) error {
	tag, err := s.pool.Exec(ctx, `UPDATE communication.provider_configs SET settings = $2, updated_at = now()
		WHERE id = $1 AND tenant_id IS NULL`, id, settings)
	if err != nil {
		return fmt.Errorf("set settings of %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}
