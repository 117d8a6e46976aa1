package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/logicspike/comms/internal/domain"
)

const recipientCols = `external_id, email, phone, locale, timezone, data, created_at, updated_at`

func scanRecipient(r pgx.Row) (domain.Recipient, error) {
	var x domain.Recipient
	err := r.Scan(&x.ExternalID, &x.Email, &x.Phone, &x.Locale, &x.Timezone, &x.Data, &x.CreatedAt, &x.UpdatedAt)
	return x, err
}

// PutRecipient creates or replaces tenantID's profile x.ExternalID and reports whether it was
// created.
func (s *Store) PutRecipient(ctx context.Context, tenantID string, x domain.Recipient) (domain.Recipient, bool, error) {
	var created bool
	var out domain.Recipient
	err := s.pool.QueryRow(ctx, `
		INSERT INTO communication.recipients AS r (tenant_id, external_id, email, phone, locale, timezone, data)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (tenant_id, external_id) DO UPDATE SET email = excluded.email, phone = excluded.phone,
			locale = excluded.locale, timezone = excluded.timezone, data = excluded.data, updated_at = now()
		RETURNING `+recipientCols+`, xmax = 0`,
		tenantID, x.ExternalID, x.Email, x.Phone, x.Locale, x.Timezone, x.Data).
		Scan(&out.ExternalID, &out.Email, &out.Phone, &out.Locale, &out.Timezone, &out.Data, &out.CreatedAt, &out.UpdatedAt, &created)
	if err != nil {
		return domain.Recipient{}, false, fmt.Errorf("put recipient: %w", err)
	}
	return out, created, nil
}

// GetRecipient returns one of tenantID's profiles, or ErrNotFound.
func (s *Store) GetRecipient(ctx context.Context, tenantID, externalID string) (domain.Recipient, error) {
	x, err := scanRecipient(s.pool.QueryRow(ctx, `SELECT `+recipientCols+` FROM communication.recipients
		WHERE tenant_id = $1 AND external_id = $2`, tenantID, externalID))
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Recipient{}, ErrNotFound
	}
	if err != nil {
		return domain.Recipient{}, fmt.Errorf("get recipient: %w", err)
	}
	return x, nil
}

// UpdateRecipient applies p to one of tenantID's profiles, or returns ErrNotFound.
func (s *Store) UpdateRecipient(ctx context.Context, tenantID, externalID string, p domain.RecipientPatch) (domain.Recipient, error) {
	x, err := scanRecipient(s.pool.QueryRow(ctx, `
		UPDATE communication.recipients SET email = coalesce($3, email), phone = coalesce($4, phone),
			locale = coalesce($5, locale), timezone = coalesce($6, timezone), data = coalesce($7, data), updated_at = now()
		WHERE tenant_id = $1 AND external_id = $2 RETURNING `+recipientCols,
		tenantID, externalID, p.Email, p.Phone, p.Locale, p.Timezone, p.Data))
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Recipient{}, ErrNotFound
	}
	if err != nil {
		return domain.Recipient{}, fmt.Errorf("update recipient: %w", err)
	}
	return x, nil
}

// DeleteRecipient removes one of tenantID's profiles, or returns ErrNotFound. Its messages stay.
func (s *Store) DeleteRecipient(ctx context.Context, tenantID, externalID string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM communication.recipients WHERE tenant_id = $1 AND external_id = $2`, tenantID, externalID)
	if err != nil {
		return fmt.Errorf("delete recipient: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// ListRecipients returns a page of tenantID's profiles in id order and the next page's cursor.
func (s *Store) ListRecipients(ctx context.Context, tenantID string, f domain.RecipientFilter) ([]domain.Recipient, string, error) {
	find := ""
	if f.Find != "" {
		// Each arm is one of the table's indexes: the key, recipients_email, recipients_phone.
		find = ` AND (external_id = $4 OR lower(email) = lower($4) AND email <> '' OR phone = $4 AND phone <> '')`
	}
	args := []any{tenantID, f.Cursor, f.Limit + 1}
	if f.Find != "" {
		args = append(args, f.Find)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+recipientCols+` FROM communication.recipients
		WHERE tenant_id = $1 AND external_id > $2`+find+` ORDER BY external_id LIMIT $3`, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list recipients: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Recipient, error) { return scanRecipient(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list recipients: %w", err)
	}
	out, next := page(out, f.Limit, func(r domain.Recipient) string { return r.ExternalID })
	return out, next, nil
}

// GetRecipients returns those of tenantID's profiles named in externalIDs, by id, in one round
// trip (a batch send's thousand recipients at once); ids that name no profile are absent.
func (s *Store) GetRecipients(ctx context.Context, tenantID string, externalIDs []string) (map[string]domain.Recipient, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+recipientCols+` FROM communication.recipients
		WHERE tenant_id = $1 AND external_id = ANY($2)`, tenantID, externalIDs)
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Recipient, error) { return scanRecipient(r) })
	if err != nil {
		return nil, fmt.Errorf("get recipients: %w", err)
	}
	out := make(map[string]domain.Recipient, len(list))
	for _, x := range list {
		out[x.ExternalID] = x
	}
	return out, nil
}
