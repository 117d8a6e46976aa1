package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/logicspike/comms/pkg/ids"
)

// Tenant is one seller on the platform.
type Tenant struct {
	ID                  string    `json:"id"`
	Name                string    `json:"name"`
	Plan                string    `json:"plan"`
	AllowSystemFallback bool      `json:"allow_system_fallback"`
	MaxAttempts         int       `json:"max_attempts"`          // provider attempts per message before it is dead-lettered
	MaxRetryAgeSeconds  int64     `json:"max_retry_age_seconds"` // no retry is scheduled past this age
	RatePerSecond       float64   `json:"rate_per_second"`       // intake token bucket: refill rate (0: unlimited)
	RateBurst           int       `json:"rate_burst"`            // and size
	Status              string    `json:"status"`
	CreatedAt           time.Time `json:"created_at"`
}

// NewTenant is what creating a tenant takes.
type NewTenant struct {
	Name                string
	Plan                string
	AllowSystemFallback bool
}

const tenantCols = `id, name, plan, allow_system_fallback, max_attempts, extract(epoch FROM max_retry_age)::bigint, rate_per_second::float8, rate_burst, status, created_at`

func scanTenant(row pgx.Row) (Tenant, error) {
	var t Tenant
	err := row.Scan(&t.ID, &t.Name, &t.Plan, &t.AllowSystemFallback, &t.MaxAttempts, &t.MaxRetryAgeSeconds, &t.RatePerSecond, &t.RateBurst, &t.Status, &t.CreatedAt)
	return t, err
}

// CreateTenant inserts a tenant with a new id.
func (s *Store) CreateTenant(ctx context.Context, nt NewTenant) (Tenant, error) {
	if nt.Plan == "" {
		nt.Plan = "free"
	}
	t, err := scanTenant(s.pool.QueryRow(ctx, `
		INSERT INTO communication.tenants (id, name, plan, allow_system_fallback)
		VALUES ($1, $2, $3, $4) RETURNING `+tenantCols,
		ids.New(ids.Tenant), nt.Name, nt.Plan, nt.AllowSystemFallback))
	if err != nil {
		return Tenant{}, fmt.Errorf("insert tenant: %w", err)
	}
	return t, nil
}

// GetTenant returns the tenant with id, or ErrNotFound.
func (s *Store) GetTenant(ctx context.Context, id string) (Tenant, error) {
	t, err := scanTenant(s.pool.QueryRow(ctx, `SELECT `+tenantCols+` FROM communication.tenants WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Tenant{}, ErrNotFound
	}
	if err != nil {
		return Tenant{}, fmt.Errorf("get tenant %s: %w", id, err)
	}
	return t, nil
}

// FindTenantByName returns the oldest tenant called name, or ErrNotFound.
func (s *Store) FindTenantByName(ctx context.Context, name string) (Tenant, error) {
	t, err := scanTenant(s.pool.QueryRow(ctx,
		`SELECT `+tenantCols+` FROM communication.tenants WHERE name = $1 ORDER BY created_at LIMIT 1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return Tenant{}, ErrNotFound
	}
	if err != nil {
		return Tenant{}, fmt.Errorf("find tenant %q: %w", name, err)
	}
	return t, nil
}

// ListTenants returns tenants ordered by creation, after the id cursor (empty for the first page).
func (s *Store) ListTenants(ctx context.Context, after string, limit int) ([]Tenant, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+tenantCols+` FROM communication.tenants
		WHERE $1 = '' OR id > $1 ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Tenant, error) { return scanTenant(r) })
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	return out, nil
}
