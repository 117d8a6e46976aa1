package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/message"
)

// Tenant is one seller on the platform.
type Tenant struct {
	ID                  string  `json:"id"`
	Name                string  `json:"name"`
	Plan                string  `json:"plan"`
	AllowSystemFallback bool    `json:"allow_system_fallback"`
	MaxAttempts         int     `json:"max_attempts"`          // provider attempts per message before it is dead-lettered
	MaxRetryAgeSeconds  int64   `json:"max_retry_age_seconds"` // no retry is scheduled past this age
	RatePerSecond       float64 `json:"rate_per_second"`       // intake token bucket: refill rate (0: unlimited)
	RateBurst           int     `json:"rate_burst"`            // and size
	// FallbackCategories are the message categories that may use the system default (with
	// AllowSystemFallback); default transactional only.
	FallbackCategories []string `json:"fallback_categories"`
	// Quotas are the monthly limits per channel (docs/usage.md#quotas); a channel absent has none.
	Quotas    Quotas    `json:"quotas"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
}

// NewTenant is what creating a tenant takes.
type NewTenant struct {
	Name                string
	Plan                string
	AllowSystemFallback bool
}

const tenantCols = `id, name, plan, allow_system_fallback, max_attempts, extract(epoch FROM max_retry_age)::bigint, rate_per_second::float8, rate_burst, fallback_categories, quotas, status, created_at`

func scanTenant(row pgx.Row) (Tenant, error) {
	var t Tenant
	err := row.Scan(&t.ID, &t.Name, &t.Plan, &t.AllowSystemFallback, &t.MaxAttempts, &t.MaxRetryAgeSeconds, &t.RatePerSecond, &t.RateBurst, &t.FallbackCategories, &t.Quotas, &t.Status, &t.CreatedAt)
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

// TenantPatch changes a tenant's settings; nil fields are left alone.
type TenantPatch struct {
	Name                *string  `json:"name"`
	Plan                *string  `json:"plan"`
	AllowSystemFallback *bool    `json:"allow_system_fallback"`
	MaxAttempts         *int     `json:"max_attempts"`
	MaxRetryAgeSeconds  *int64   `json:"max_retry_age_seconds"`
	RatePerSecond       *float64 `json:"rate_per_second"`
	RateBurst           *int     `json:"rate_burst"`
	FallbackCategories  []string `json:"fallback_categories"`
	Status              *string  `json:"status"`
	// Quotas sets each channel named; null removes a channel's quota.
	Quotas map[string]*Quota `json:"quotas"`
}

// Validate names each bad field.
func (p TenantPatch) Validate() []message.FieldError {
	var errs []message.FieldError
	add := func(f, m string) { errs = append(errs, message.FieldError{Field: f, Message: m}) }
	if p.Name != nil && (*p.Name == "" || len(*p.Name) > 200) {
		add("name", "must be 1 to 200 characters")
	}
	if p.MaxAttempts != nil && (*p.MaxAttempts < 1 || *p.MaxAttempts > 50) {
		add("max_attempts", "must be from 1 to 50")
	}
	if p.MaxRetryAgeSeconds != nil && (*p.MaxRetryAgeSeconds < 60 || *p.MaxRetryAgeSeconds > 7*86400) {
		add("max_retry_age_seconds", "must be from 60 to 604800 (7 days)")
	}
	if p.RatePerSecond != nil && (*p.RatePerSecond < 0 || *p.RatePerSecond > 1e6) {
		add("rate_per_second", "must be from 0 (unlimited) to 1000000")
	}
	if p.RateBurst != nil && (*p.RateBurst < 0 || *p.RateBurst > 10_000_000) {
		add("rate_burst", "must be from 0 to 10000000")
	}
	for _, c := range p.FallbackCategories {
		if c != string(message.Transactional) && c != string(message.Marketing) {
			add("fallback_categories", `may list only "transactional" and "marketing"`)
			break
		}
	}
	if p.Status != nil && *p.Status != "active" && *p.Status != "suspended" {
		add("status", `must be "active" or "suspended"`)
	}
	for ch, q := range p.Quotas {
		f := "quotas." + ch
		switch {
		case !message.Channel(ch).Valid():
			add(f, `must be "sms" or "email"`)
		case q == nil:
		case q.HardLimit < 0 || q.SoftLimit < 0 || q.HardLimit > maxQuota || q.SoftLimit > maxQuota:
			add(f, "limits must be from 0 (none) to 1000000000000")
		case q.HardLimit > 0 && q.SoftLimit > q.HardLimit:
			add(f+".soft_limit", "must not exceed hard_limit")
		}
	}
	return errs
}

// UpdateTenant applies p to tenant id, or returns ErrNotFound.
func (s *Store) UpdateTenant(ctx context.Context, id string, p TenantPatch) (Tenant, error) {
	t, err := scanTenant(s.pool.QueryRow(ctx, `
		UPDATE communication.tenants SET
			name = coalesce($2, name), plan = coalesce($3, plan), allow_system_fallback = coalesce($4, allow_system_fallback),
			max_attempts = coalesce($5, max_attempts), max_retry_age = coalesce(make_interval(secs => $6::float8), max_retry_age),
			rate_per_second = coalesce($7::numeric, rate_per_second), rate_burst = coalesce($8, rate_burst), status = coalesce($9, status),
			fallback_categories = coalesce($10, fallback_categories),
			quotas = CASE WHEN $11::jsonb IS NULL THEN quotas ELSE jsonb_strip_nulls(quotas || $11::jsonb) END
		WHERE id = $1 RETURNING `+tenantCols,
		id, p.Name, p.Plan, p.AllowSystemFallback, p.MaxAttempts, p.MaxRetryAgeSeconds, p.RatePerSecond, p.RateBurst, p.Status, p.FallbackCategories, quotaPatch(p.Quotas)))
	if errors.Is(err, pgx.ErrNoRows) {
		return Tenant{}, ErrNotFound
	}
	if err != nil {
		return Tenant{}, fmt.Errorf("update tenant %s: %w", id, err)
	}
	return t, nil
}
