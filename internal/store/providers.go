package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/pkg/message"
)

// ErrNameTaken is returned when an owner already has a provider config of that name.
var ErrNameTaken = errors.New("a provider config of that name exists")

const providerCols = `id, coalesce(tenant_id, ''), type, name, channel, settings, sender, encrypted_config,
	coalesce(key_version, ''), mask, enabled, priority, send_rate_per_second::float8, coalesce(unit_price::text, ''), unit_currency, health, health_reason, last_tested_at, created_at, updated_at`

func scanProvider(r pgx.CollectableRow) (domain.ProviderConfig, error) {
	var p domain.ProviderConfig
	err := r.Scan(&p.ID, &p.TenantID, &p.Type, &p.Name, &p.Channel, &p.Settings, &p.Sender, &p.Sealed,
		&p.KeyVersion, &p.Mask, &p.Enabled, &p.Priority, &p.SendRatePerSecond, &p.UnitPrice, &p.UnitCurrency, &p.Health, &p.HealthReason, &p.LastTestedAt, &p.CreatedAt, &p.UpdatedAt)
	return p, err
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// owner matches a tenant's configs, or the system defaults when tenantID is empty.
const owner = `tenant_id IS NOT DISTINCT FROM $1`

func mapProviderErr(what string, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == "provider_configs_name" {
		return ErrNameTaken
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return fmt.Errorf("%s: %w", what, err)
}

// CreateProviderConfig stores p under p.ID (callers choose the id: the ciphertext is bound to
// it). tenantID empty makes a system default.
func (s *Store) CreateProviderConfig(ctx context.Context, tenantID string, p domain.ProviderConfig) (domain.ProviderConfig, error) {
	if p.Settings == nil {
		p.Settings = json.RawMessage(`{}`)
	}
	if p.Sender == nil {
		p.Sender = json.RawMessage(`{}`)
	}
	rows, err := s.pool.Query(ctx, `
		INSERT INTO communication.provider_configs
			(id, tenant_id, type, name, channel, settings, sender, encrypted_config, key_version, mask, enabled, priority, last_tested_at, send_rate_per_second,
			 unit_price, unit_currency)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::numeric, $16) RETURNING `+providerCols,
		p.ID, nullable(tenantID), p.Type, p.Name, p.Channel, p.Settings, p.Sender, p.Sealed, nullable(p.KeyVersion),
		p.Mask, p.Enabled, p.Priority, p.LastTestedAt, p.SendRatePerSecond, nullable(p.UnitPrice), p.UnitCurrency)
	if err != nil {
		return domain.ProviderConfig{}, mapProviderErr("insert provider config", err)
	}
	out, err := pgx.CollectExactlyOneRow(rows, scanProvider)
	if err != nil {
		return domain.ProviderConfig{}, mapProviderErr("insert provider config", err)
	}
	return out, nil
}

// GetProviderConfig returns tenantID's config id (a system default when tenantID is empty), or
// ErrNotFound, also when it belongs to someone else.
func (s *Store) GetProviderConfig(ctx context.Context, tenantID, id string) (domain.ProviderConfig, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+providerCols+` FROM communication.provider_configs WHERE `+owner+` AND id = $2`,
		nullable(tenantID), id)
	if err != nil {
		return domain.ProviderConfig{}, fmt.Errorf("get provider config %s: %w", id, err)
	}
	out, err := pgx.CollectExactlyOneRow(rows, scanProvider)
	if err != nil {
		return domain.ProviderConfig{}, mapProviderErr("get provider config "+id, err)
	}
	return out, nil
}

// GetProviderConfigByID returns any tenant's config id, or ErrNotFound: for the webhook receiver,
// which learns the config from the URL a provider calls and trusts nothing before verifying.
func (s *Store) GetProviderConfigByID(ctx context.Context, id string) (domain.ProviderConfig, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+providerCols+` FROM communication.provider_configs WHERE id = $1`, id)
	if err != nil {
		return domain.ProviderConfig{}, fmt.Errorf("get provider config %s: %w", id, err)
	}
	out, err := pgx.CollectExactlyOneRow(rows, scanProvider)
	if err != nil {
		return domain.ProviderConfig{}, mapProviderErr("get provider config "+id, err)
	}
	return out, nil
}

// ListProviderConfigs lists tenantID's configs (the system defaults when tenantID is empty) by
// channel and priority.
func (s *Store) ListProviderConfigs(ctx context.Context, tenantID string) ([]domain.ProviderConfig, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+providerCols+` FROM communication.provider_configs WHERE `+owner+`
		ORDER BY channel, priority, id`, nullable(tenantID))
	if err != nil {
		return nil, fmt.Errorf("list provider configs: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanProvider)
	if err != nil {
		return nil, fmt.Errorf("list provider configs: %w", err)
	}
	return out, nil
}

// ListSystemDefaults lists the system-default configs.
func (s *Store) ListSystemDefaults(ctx context.Context) ([]domain.ProviderConfig, error) {
	return s.ListProviderConfigs(ctx, "")
}

// UpdateProviderConfig writes p's mutable fields (name, sender, sealed credentials, mask,
// enabled, priority, last test) if the row is still at p.UpdatedAt, so two concurrent edits
// cannot silently overwrite each other's credentials. A lost race is ErrConflict.
func (s *Store) UpdateProviderConfig(ctx context.Context, p domain.ProviderConfig) (domain.ProviderConfig, error) {
	rows, err := s.pool.Query(ctx, `
		UPDATE communication.provider_configs
		SET name = $3, sender = $4, encrypted_config = $5, key_version = $6, mask = $7, enabled = $8,
		    priority = $9, last_tested_at = $10, settings = $11, send_rate_per_second = $13,
		    unit_price = $14::numeric, unit_currency = $15,
		    health = CASE WHEN encrypted_config IS DISTINCT FROM $5 THEN 'healthy' ELSE health END,
		    health_reason = CASE WHEN encrypted_config IS DISTINCT FROM $5 THEN '' ELSE health_reason END,
		    updated_at = clock_timestamp()
		WHERE `+owner+` AND id = $2 AND updated_at = $12
		RETURNING `+providerCols,
		nullable(p.TenantID), p.ID, p.Name, p.Sender, p.Sealed, nullable(p.KeyVersion), p.Mask, p.Enabled,
		p.Priority, p.LastTestedAt, p.Settings, p.UpdatedAt, p.SendRatePerSecond, nullable(p.UnitPrice), p.UnitCurrency)
	if err != nil {
		return domain.ProviderConfig{}, mapProviderErr("update provider config "+p.ID, err)
	}
	out, err := pgx.CollectExactlyOneRow(rows, scanProvider)
	if errors.Is(err, pgx.ErrNoRows) {
		if _, gerr := s.GetProviderConfig(ctx, p.TenantID, p.ID); gerr != nil {
			return domain.ProviderConfig{}, gerr
		}
		return domain.ProviderConfig{}, ErrConflict
	}
	if err != nil {
		return domain.ProviderConfig{}, mapProviderErr("update provider config "+p.ID, err)
	}
	return out, nil
}

// ErrConflict is returned when a row changed between read and write.
var ErrConflict = errors.New("changed concurrently")

// DeleteProviderConfig removes tenantID's config id, or returns ErrNotFound.
func (s *Store) DeleteProviderConfig(ctx context.Context, tenantID, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM communication.provider_configs WHERE `+owner+` AND id = $2`, nullable(tenantID), id)
	if err != nil {
		return fmt.Errorf("delete provider config %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// HealthAuthFailed is the health of a config whose credentials the provider refused: it is
// skipped until they change. (The circuit breaker's states are worker.BreakerOpen and friends.)
const HealthAuthFailed = "auth_failed"

// SetProviderHealth records a config's health as a worker sees it. reason is shown to the tenant.
func (s *Store) SetProviderHealth(ctx context.Context, id, health, reason string) error {
	_, err := s.pool.Exec(ctx, `UPDATE communication.provider_configs SET health = $2, health_reason = $3
		WHERE id = $1 AND (health, health_reason) IS DISTINCT FROM ($2, $3)`, id, health, reason)
	if err != nil {
		return fmt.Errorf("set health of %s: %w", id, err)
	}
	return nil
}

// ListProviderRoutes returns the enabled configs that may send tenantID's messages on channel, in the
// order to try them: the tenant's own by priority, then the system defaults by priority. Configs
// whose credentials were refused are left out until they are updated.
// Whether the tenant may use the system defaults is the caller's decision (Tenant.AllowSystemFallback).
func (s *Store) ListProviderRoutes(ctx context.Context, tenantID string, channel message.Channel) ([]domain.ProviderConfig, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+providerCols+` FROM communication.provider_configs
		WHERE (tenant_id = $1 OR tenant_id IS NULL) AND channel = $2 AND enabled AND health <> 'auth_failed'
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

// ListSealedNotUnder returns up to limit configs whose credentials are sealed under a version other
// than current, after afterID in id order: the work list of a key rotation.
func (s *Store) ListSealedNotUnder(ctx context.Context, current, afterID string, limit int) ([]domain.ProviderConfig, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+providerCols+` FROM communication.provider_configs
		WHERE key_version IS NOT NULL AND key_version <> $1 AND id > $2 ORDER BY id LIMIT $3`, current, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("list configs to rotate: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanProvider)
	if err != nil {
		return nil, fmt.Errorf("list configs to rotate: %w", err)
	}
	return out, nil
}

// CountSealedNotUnder is how many configs SealedNotUnder would walk: a rotation's total.
func (s *Store) CountSealedNotUnder(ctx context.Context, current string) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM communication.provider_configs
		WHERE key_version IS NOT NULL AND key_version <> $1`, current).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count configs to rotate: %w", err)
	}
	return n, nil
}

// Reseal replaces id's ciphertext if it is still exactly old (so a concurrent edit or another
// rotator wins cleanly); it reports whether it did. updated_at is left alone: the
// credentials did not change, so cached adapters stay valid.
func (s *Store) Reseal(ctx context.Context, id string, old []byte, newVersion string, sealed []byte) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE communication.provider_configs SET encrypted_config = $4, key_version = $3
		WHERE id = $1 AND encrypted_config = $2`, id, old, newVersion, sealed)
	if err != nil {
		return false, fmt.Errorf("reseal %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}
