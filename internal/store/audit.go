package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/logicspike/comms/internal/domain"
)

// RecordAudit records an action that changes no audited row (a test send), by ctx's actor
// (db.WithActor); without one it records nothing.
func (s *Store) RecordAudit(ctx context.Context, action, targetType, targetID, tenantID string, after any) error {
	b, err := json.Marshal(after)
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	if _, err := s.pool.Exec(ctx, `SELECT communication.audit_action($1, $2, $3, NULLIF($4, ''), $5)`, action, targetType, targetID, tenantID, b); err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// ListAudit returns audit entries matching f, newest first, after the cursor of a previous page,
// and the cursor of the next page ("" at the end).
func (s *Store) ListAudit(ctx context.Context, f domain.AuditFilter, cursor string, limit int) ([]domain.AuditEntry, string, error) {
	before := int64(1<<63 - 1)
	if cursor != "" {
		n, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil || n <= 0 {
			return nil, "", ErrBadCursor
		}
		before = n
	}
	var from, to *time.Time
	if !f.From.IsZero() {
		from = &f.From
	}
	if !f.To.IsZero() {
		to = &f.To
	}
	rows, err := s.pool.Query(ctx, `
		SELECT id, at, coalesce(tenant_id, ''), actor_kind, actor_id, request_id, action, target_type, target_id,
		       coalesce(before, 'null'), coalesce(after, 'null')
		FROM communication.audit_log
		WHERE id < $1 AND ($2 = '' OR tenant_id = $2) AND ($3 = '' OR action = $3) AND ($4 = '' OR actor_id = $4)
		  AND ($5::timestamptz IS NULL OR at >= $5) AND ($6::timestamptz IS NULL OR at < $6)
		ORDER BY id DESC LIMIT $7`, before, f.TenantID, f.Action, f.Actor, from, to, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list audit: %w", err)
	}
	var ids []int64
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.AuditEntry, error) {
		var e domain.AuditEntry
		var id int64
		err := r.Scan(&id, &e.At, &e.TenantID, &e.Actor.Kind, &e.Actor.ID, &e.RequestID, &e.Action, &e.TargetType, &e.TargetID, &e.Before, &e.After)
		e.ID = "aud_" + strconv.FormatInt(id, 10)
		ids = append(ids, id)
		return e, err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list audit: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = strconv.FormatInt(ids[limit-1], 10)
	}
	return out, next, nil
}
