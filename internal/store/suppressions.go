package store

import (
	"context"

	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/pkg/message"
)

// ListSuppressions returns tenantID's suppressions newest first and the next page's cursor.
func (s *Store) ListSuppressions(ctx context.Context, tenantID string, f domain.SuppressionFilter) ([]domain.Suppression, string, error) {
	var curAt time.Time
	var curRcpt string
	if f.Cursor != "" {
		var err error
		if curAt, curRcpt, err = decodeCursor(f.Cursor); err != nil {
			return nil, "", err
		}
	}
	w := &where{}
	w.add("tenant_id = ?", tenantID)
	w.addIf(f.Channel != "", "channel = ?", string(f.Channel))
	if f.Recipient != "" {
		// by the hash, which finds an erased recipient's opt-out too
		var hashes []string
		for _, ch := range []message.Channel{message.Email, message.SMS} {
			if f.Channel == "" || f.Channel == ch {
				h, err := s.RecipientHash(ctx, tenantID, ch, f.Recipient)
				if err != nil {
					return nil, "", err
				}
				hashes = append(hashes, h)
			}
		}
		w.add("recipient_hash = ANY(?)", hashes)
	}
	w.addIf(f.Reason != "", "reason = ?", f.Reason)
	if f.Cursor != "" {
		w.add("(created_at, recipient) < (?, ?)", curAt, curRcpt)
	}
	rows, err := s.pool.Query(ctx, `
		SELECT channel, recipient, reason, detail, message_id, created_at FROM communication.suppressions
		WHERE `+w.sql()+` ORDER BY created_at DESC, recipient DESC LIMIT `+w.arg(f.Limit+1), w.args...)
	if err != nil {
		return nil, "", fmt.Errorf("list suppressions: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[domain.Suppression])
	if err != nil {
		return nil, "", fmt.Errorf("list suppressions: %w", err)
	}
	out, next := page(out, f.Limit, func(s domain.Suppression) string { return encodeCursor(s.CreatedAt, s.Recipient) })
	return out, next, nil
}

// AddSuppression suppresses a recipient by hand; adding one that exists changes nothing and
// returns the existing entry.
func (s *Store) AddSuppression(ctx context.Context, tenantID string, ch message.Channel, recipient, detail string) (domain.Suppression, error) {
	row := s.pool.QueryRow(ctx, `
		WITH ins AS (
			INSERT INTO communication.suppressions (tenant_id, channel, recipient, reason, detail)
			VALUES ($1, $2, $3, 'manual', $4) ON CONFLICT DO NOTHING
			RETURNING channel, recipient, reason, detail, message_id, created_at
		)
		SELECT * FROM ins UNION ALL
		SELECT channel, recipient, reason, detail, message_id, created_at FROM communication.suppressions
		WHERE tenant_id = $1 AND channel = $2 AND recipient_hash = communication.recipient_hash($1, $2, $3) AND NOT EXISTS (SELECT 1 FROM ins)`,
		tenantID, string(ch), message.RecipientKey(ch, recipient), detail)
	var out domain.Suppression
	if err := row.Scan(&out.Channel, &out.Recipient, &out.Reason, &out.Detail, &out.MessageID, &out.CreatedAt); err != nil {
		return domain.Suppression{}, fmt.Errorf("add suppression: %w", err)
	}
	return out, nil
}

// DeleteSuppression lifts a suppression, or returns ErrNotFound.
func (s *Store) DeleteSuppression(ctx context.Context, tenantID string, ch message.Channel, recipient string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM communication.suppressions
		WHERE tenant_id = $1 AND channel = $2 AND recipient_hash = communication.recipient_hash($1, $2, $3)`,
		tenantID, string(ch), message.RecipientKey(ch, recipient))
	if err != nil {
		return fmt.Errorf("delete suppression: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}
