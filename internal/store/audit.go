package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// AuditEntry is one audit log row (docs/audit.md).
type AuditEntry struct {
	ID         string          `json:"id"`
	At         time.Time       `json:"at"`
	TenantID   string          `json:"tenant_id,omitempty"`
	Actor      AuditActor      `json:"actor"`
	RequestID  string          `json:"request_id,omitempty"`
	Action     string          `json:"action"`
	TargetType string          `json:"target_type"`
	TargetID   string          `json:"target_id"`
	Before     json.RawMessage `json:"before"`
	After      json.RawMessage `json:"after"`
}

// AuditActor is who made a change: an API key (its kind and id) or an OS user through commsctl.
type AuditActor struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

// AuditFilter narrows an audit listing; empty fields match everything.
type AuditFilter struct {
	TenantID, Action, Actor string
	From, To                time.Time
}

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
func (s *Store) ListAudit(ctx context.Context, f AuditFilter, cursor string, limit int) ([]AuditEntry, string, error) {
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
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEntry, error) {
		var e AuditEntry
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
