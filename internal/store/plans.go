package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/logicspike/comms/internal/domain"
)

const planCols = `name, extract(epoch FROM content_retention)::bigint, extract(epoch FROM history_retention)::bigint,
	extract(epoch FROM audit_retention)::bigint, updated_at`

func scanPlan(r pgx.CollectableRow) (domain.Plan, error) {
	var p domain.Plan
	err := r.Scan(&p.Name, &p.ContentRetentionSeconds, &p.HistoryRetentionSeconds, &p.AuditRetentionSeconds, &p.UpdatedAt)
	return p, err
}

// PutPlan creates or replaces plan p. Tenants already on it keep their retentions.
func (s *Store) PutPlan(ctx context.Context, p domain.Plan) (domain.Plan, error) {
	secs := func(v *int64) *float64 {
		if v == nil {
			return nil
		}
		f := float64(*v)
		return &f
	}
	rows, _ := s.pool.Query(ctx, `
		INSERT INTO communication.plans (name, content_retention, history_retention, audit_retention)
		VALUES ($1, make_interval(secs => $2), make_interval(secs => $3), make_interval(secs => $4))
		ON CONFLICT (name) DO UPDATE SET content_retention = excluded.content_retention, history_retention = excluded.history_retention,
			audit_retention = excluded.audit_retention, updated_at = now()
		RETURNING `+planCols, p.Name, secs(p.ContentRetentionSeconds), secs(p.HistoryRetentionSeconds), secs(p.AuditRetentionSeconds))
	out, err := pgx.CollectExactlyOneRow(rows, scanPlan)
	if err != nil {
		return domain.Plan{}, fmt.Errorf("put plan %s: %w", p.Name, err)
	}
	return out, nil
}

// ListPlans returns every plan by name.
func (s *Store) ListPlans(ctx context.Context) ([]domain.Plan, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+planCols+` FROM communication.plans ORDER BY name`)
	out, err := pgx.CollectRows(rows, scanPlan)
	if err != nil {
		return nil, fmt.Errorf("list plans: %w", err)
	}
	return out, nil
}
