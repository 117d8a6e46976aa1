package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/logicspike/comms/internal/domain"
)

// RotateInboxSecret makes sealed (under key version) tenantID's inbox secret; the one it replaces
// becomes the previous one.
func (s *Store) RotateInboxSecret(ctx context.Context, tenantID, version string, sealed []byte) (domain.InboxSecrets, error) {
	var x domain.InboxSecrets
	var prevVersion *string
	err := s.pool.QueryRow(ctx, `
		INSERT INTO communication.inbox_secrets AS i (tenant_id, key_version, sealed) VALUES ($1, $2, $3)
		ON CONFLICT (tenant_id) DO UPDATE SET previous_version = i.key_version, previous_sealed = i.sealed,
			key_version = excluded.key_version, sealed = excluded.sealed, rotated_at = now()
		RETURNING key_version, sealed, previous_version, previous_sealed, rotated_at`, tenantID, version, sealed).
		Scan(&x.Version, &x.Sealed, &prevVersion, &x.PreviousSealed, &x.RotatedAt)
	if err != nil {
		return domain.InboxSecrets{}, fmt.Errorf("rotate inbox secret: %w", err)
	}
	if prevVersion != nil {
		x.PreviousVersion = *prevVersion
	}
	return x, nil
}

// GetInboxSecrets returns tenantID's sealed inbox secrets, or ErrNotFound.
func (s *Store) GetInboxSecrets(ctx context.Context, tenantID string) (domain.InboxSecrets, error) {
	var x domain.InboxSecrets
	var prevVersion *string
	err := s.pool.QueryRow(ctx, `SELECT key_version, sealed, previous_version, previous_sealed, rotated_at
		FROM communication.inbox_secrets WHERE tenant_id = $1`, tenantID).
		Scan(&x.Version, &x.Sealed, &prevVersion, &x.PreviousSealed, &x.RotatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.InboxSecrets{}, ErrNotFound
	}
	if err != nil {
		return domain.InboxSecrets{}, fmt.Errorf("get inbox secrets: %w", err)
	}
	if prevVersion != nil {
		x.PreviousVersion = *prevVersion
	}
	return x, nil
}

// DeleteInboxSecret removes tenantID's inbox secrets, or returns ErrNotFound.
func (s *Store) DeleteInboxSecret(ctx context.Context, tenantID string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM communication.inbox_secrets WHERE tenant_id = $1`, tenantID)
	if err != nil {
		return fmt.Errorf("delete inbox secret: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}
