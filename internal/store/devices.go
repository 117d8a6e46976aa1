package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/logicspike/comms/internal/domain"
)

const deviceCols = `id, recipient_id, platform, token, p256dh, auth, app, expires_at, created_at, last_seen_at`

func scanDevice(r pgx.Row) (domain.Device, error) {
	var d domain.Device
	err := r.Scan(&d.ID, &d.RecipientID, &d.Platform, &d.Token, &d.P256DH, &d.Auth, &d.App, &d.ExpiresAt, &d.CreatedAt, &d.LastSeenAt)
	return d, err
}

// PutDevice registers d for its profile of tenantID and reports whether it is new. A token the
// tenant registered before (for this profile or another) keeps its id and moves to d's profile,
// with d's keys and app. A profile keeps at most keep devices: registering one more forgets the
// one seen longest ago. Errors: ErrNotFound when the profile does not exist.
func (s *Store) PutDevice(ctx context.Context, tenantID string, d domain.Device, keep int) (domain.Device, bool, error) {
	var out domain.Device
	var created bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			INSERT INTO communication.devices AS d (tenant_id, id, recipient_id, platform, token, p256dh, auth, app, expires_at)
			SELECT r.tenant_id, $3, r.external_id, $4, $5, $6, $7, $8, $9
			FROM communication.recipients r WHERE r.tenant_id = $1 AND r.external_id = $2
			ON CONFLICT (tenant_id, platform, token) DO UPDATE SET recipient_id = excluded.recipient_id,
				p256dh = excluded.p256dh, auth = excluded.auth, app = excluded.app, expires_at = excluded.expires_at,
				last_seen_at = now()
			RETURNING `+deviceCols+`, xmax = 0`,
			tenantID, d.RecipientID, d.ID, d.Platform, d.Token, d.P256DH, d.Auth, d.App, d.ExpiresAt).
			Scan(&out.ID, &out.RecipientID, &out.Platform, &out.Token, &out.P256DH, &out.Auth, &out.App, &out.ExpiresAt,
				&out.CreatedAt, &out.LastSeenAt, &created)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `
			DELETE FROM communication.devices WHERE tenant_id = $1 AND id IN (
				SELECT id FROM communication.devices WHERE tenant_id = $1 AND recipient_id = $2
				ORDER BY last_seen_at DESC, id DESC OFFSET $3)`, tenantID, d.RecipientID, keep)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return domain.Device{}, false, err
	}
	if err != nil {
		return domain.Device{}, false, fmt.Errorf("put device: %w", err)
	}
	return out, created, nil
}

// ListDevices returns a profile's devices, last seen first. A profile that does not exist has
// none.
func (s *Store) ListDevices(ctx context.Context, tenantID, recipientID string) ([]domain.Device, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+deviceCols+` FROM communication.devices
		WHERE tenant_id = $1 AND recipient_id = $2 ORDER BY last_seen_at DESC, id DESC`, tenantID, recipientID)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Device, error) { return scanDevice(r) })
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	return out, nil
}

// DeleteDevice removes one of a profile's devices, or returns ErrNotFound.
func (s *Store) DeleteDevice(ctx context.Context, tenantID, recipientID, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM communication.devices WHERE tenant_id = $1 AND id = $2 AND recipient_id = $3`,
		tenantID, id, recipientID)
	if err != nil {
		return fmt.Errorf("delete device: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}
