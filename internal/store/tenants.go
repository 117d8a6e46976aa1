package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/pkg/ids"
)

const tenantCols = `id, name, plan, allow_system_fallback, max_attempts, extract(epoch FROM max_retry_age)::bigint, rate_per_second::float8, rate_burst, fallback_categories, quotas, status, created_at,
	extract(epoch FROM content_retention)::bigint, extract(epoch FROM history_retention)::bigint, extract(epoch FROM audit_retention)::bigint, unsubscribe_mailto, inbox_origins`

func scanTenant(row pgx.Row) (domain.Tenant, error) {
	var t domain.Tenant
	var quotas []byte
	if err := row.Scan(&t.ID, &t.Name, &t.Plan, &t.AllowSystemFallback, &t.MaxAttempts, &t.MaxRetryAgeSeconds, &t.RatePerSecond, &t.RateBurst, &t.FallbackCategories, &quotas, &t.Status, &t.CreatedAt,
		&t.ContentRetentionSeconds, &t.HistoryRetentionSeconds, &t.AuditRetentionSeconds, &t.UnsubscribeMailto, &t.InboxOrigins); err != nil {
		return t, err
	}
	var err error
	t.Quotas, err = scanQuotas(quotas)
	return t, err
}

// CreateTenant inserts a tenant with a new id.
func (s *Store) CreateTenant(ctx context.Context, nt domain.NewTenant) (domain.Tenant, error) {
	if nt.Plan == "" {
		nt.Plan = "free"
	}
	t, err := scanTenant(s.pool.QueryRow(ctx, `
		INSERT INTO communication.tenants (id, name, plan, allow_system_fallback, content_retention, history_retention, audit_retention)
		SELECT $1, $2, $3, $4, coalesce(p.content_retention, interval '30 days'), coalesce(p.history_retention, interval '90 days'),
		       coalesce(p.audit_retention, interval '400 days')
		FROM (SELECT 1) x LEFT JOIN communication.plans p ON p.name = $3
		RETURNING `+tenantCols,
		ids.New(ids.Tenant), nt.Name, nt.Plan, nt.AllowSystemFallback))
	if err != nil {
		return domain.Tenant{}, fmt.Errorf("insert tenant: %w", err)
	}
	return t, nil
}

// GetTenant returns the tenant with id, or ErrNotFound.
func (s *Store) GetTenant(ctx context.Context, id string) (domain.Tenant, error) {
	t, err := scanTenant(s.pool.QueryRow(ctx, `SELECT `+tenantCols+` FROM communication.tenants WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Tenant{}, ErrNotFound
	}
	if err != nil {
		return domain.Tenant{}, fmt.Errorf("get tenant %s: %w", id, err)
	}
	return t, nil
}

// FindTenantByName returns the oldest tenant called name, or ErrNotFound.
func (s *Store) FindTenantByName(ctx context.Context, name string) (domain.Tenant, error) {
	t, err := scanTenant(s.pool.QueryRow(ctx,
		`SELECT `+tenantCols+` FROM communication.tenants WHERE name = $1 ORDER BY created_at LIMIT 1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Tenant{}, ErrNotFound
	}
	if err != nil {
		return domain.Tenant{}, fmt.Errorf("find tenant %q: %w", name, err)
	}
	return t, nil
}

// ListTenants returns tenants ordered by creation, after the id cursor (empty for the first page).
func (s *Store) ListTenants(ctx context.Context, after string, limit int) ([]domain.Tenant, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+tenantCols+` FROM communication.tenants
		WHERE $1 = '' OR id > $1 ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Tenant, error) { return scanTenant(r) })
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	return out, nil
}

// UpdateTenant applies p to tenant id, or returns ErrNotFound.
func (s *Store) UpdateTenant(ctx context.Context, id string, p domain.TenantPatch) (domain.Tenant, error) {
	t, err := scanTenant(s.pool.QueryRow(ctx, `
		WITH moved AS ( -- the retentions of the plan the tenant moves to
			SELECT p.* FROM communication.plans p, communication.tenants t WHERE t.id = $1 AND p.name = $3 AND t.plan <> $3
		)
		UPDATE communication.tenants SET
			name = coalesce($2, name), plan = coalesce($3, plan), allow_system_fallback = coalesce($4, allow_system_fallback),
			max_attempts = coalesce($5, max_attempts), max_retry_age = coalesce(make_interval(secs => $6::float8), max_retry_age),
			rate_per_second = coalesce($7::numeric, rate_per_second), rate_burst = coalesce($8, rate_burst), status = coalesce($9, status),
			fallback_categories = coalesce($10, fallback_categories),
			quotas = CASE WHEN $11::jsonb IS NULL THEN quotas ELSE jsonb_strip_nulls(quotas || $11::jsonb) END,
			content_retention = coalesce(make_interval(secs => $12::float8), (SELECT content_retention FROM moved), content_retention),
			history_retention = coalesce(make_interval(secs => $13::float8), (SELECT history_retention FROM moved), history_retention),
			audit_retention = coalesce(make_interval(secs => $14::float8), (SELECT audit_retention FROM moved), audit_retention),
			unsubscribe_mailto = coalesce($15, unsubscribe_mailto), inbox_origins = coalesce($16, inbox_origins)
		WHERE id = $1 RETURNING `+tenantCols,
		id, p.Name, p.Plan, p.AllowSystemFallback, p.MaxAttempts, p.MaxRetryAgeSeconds, p.RatePerSecond, p.RateBurst, p.Status, p.FallbackCategories,
		quotaPatch(p.Quotas), p.ContentRetentionSeconds, p.HistoryRetentionSeconds, p.AuditRetentionSeconds, p.UnsubscribeMailto, p.InboxOrigins))
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Tenant{}, ErrNotFound
	}
	if err != nil {
		return domain.Tenant{}, fmt.Errorf("update tenant %s: %w", id, err)
	}
	return t, nil
}
