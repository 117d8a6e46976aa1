package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/pkg/ids"
)

// HashKey is how keys are stored and looked up.
func HashKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

const apiKeyCols = `id, coalesce(tenant_id, ''), kind, name, prefix, created_at, expires_at, revoked_at, last_used_at` //nolint:gosec // column names, not a credential

func scanAPIKey(row pgx.Row) (domain.APIKey, error) {
	var k domain.APIKey
	err := row.Scan(&k.ID, &k.TenantID, &k.Kind, &k.Name, &k.Prefix, &k.CreatedAt, &k.ExpiresAt, &k.RevokedAt, &k.LastUsedAt)
	return k, err
}

// CreateAPIKey makes a new key and returns it with its plaintext, which is shown once and never
// stored. tenantID is required for tenant keys and must be empty for the others.
func (s *Store) CreateAPIKey(ctx context.Context, kind domain.KeyKind, tenantID, name string, expiresAt *time.Time) (domain.APIKey, string, error) {
	if !kind.Valid() {
		return domain.APIKey{}, "", fmt.Errorf("unknown key kind %q", kind)
	}
	if (kind == domain.KindTenant) != (tenantID != "") {
		return domain.APIKey{}, "", fmt.Errorf("a %s key %s a tenant", kind, map[bool]string{true: "needs", false: "must not name"}[kind == domain.KindTenant])
	}
	plain := "ck_" + string(kind) + "_" + ids.Random(40)
	prefix := plain[:len("ck_")+len(kind)+1+6]
	var tenant *string
	if tenantID != "" {
		tenant = &tenantID
	}
	k, err := scanAPIKey(s.pool.QueryRow(ctx, `
		INSERT INTO communication.api_keys (id, tenant_id, kind, name, prefix, key_hash, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING `+apiKeyCols,
		ids.New(ids.APIKey), tenant, kind, name, prefix, HashKey(plain), expiresAt))
	if err != nil {
		return domain.APIKey{}, "", fmt.Errorf("insert api key: %w", err)
	}
	return k, plain, nil
}

// LookupAPIKey finds a key by its plaintext, or ErrNotFound. Callers check Active.
func (s *Store) LookupAPIKey(ctx context.Context, plain string) (domain.APIKey, error) {
	k, err := scanAPIKey(s.pool.QueryRow(ctx,
		`SELECT `+apiKeyCols+` FROM communication.api_keys WHERE key_hash = $1`, HashKey(plain)))
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.APIKey{}, ErrNotFound
	}
	if err != nil {
		return domain.APIKey{}, fmt.Errorf("look up api key: %w", err)
	}
	return k, nil
}

// RevokeAPIKey revokes the key with id. tenantID scopes the revoke to one tenant's keys; empty
// means any key (admin). Revoking twice is not an error.
func (s *Store) RevokeAPIKey(ctx context.Context, tenantID, id string) (domain.APIKey, error) {
	var k domain.APIKey
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			UPDATE communication.api_keys SET revoked_at = now()
			WHERE id = $1 AND ($2 = '' OR tenant_id = $2) AND revoked_at IS NULL`, id, tenantID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 1 {
			// The keys this one created outlive it: each says so in the audit log, so a
			// review of a revoked key finds what it left behind.
			if _, err := tx.Exec(ctx, `
				SELECT communication.audit_action('api_key.creator_revoked', 'api_key', a.target_id, a.tenant_id,
				                                  jsonb_build_object('created_by', $1::text))
				FROM communication.audit_log a
				JOIN communication.api_keys c ON c.id = a.target_id AND c.revoked_at IS NULL
				WHERE a.action = 'api_key.created' AND a.actor_id = $1`, id); err != nil {
				return err
			}
		}
		k, err = scanAPIKey(tx.QueryRow(ctx, `SELECT `+apiKeyCols+` FROM communication.api_keys
			WHERE id = $1 AND ($2 = '' OR tenant_id = $2)`, id, tenantID))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.APIKey{}, ErrNotFound
	}
	if err != nil {
		return domain.APIKey{}, fmt.Errorf("revoke api key %s: %w", id, err)
	}
	return k, nil
}

// ListAPIKeys lists keys, of one tenant when tenantID is set, else all.
func (s *Store) ListAPIKeys(ctx context.Context, tenantID string) ([]domain.APIKey, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+apiKeyCols+` FROM communication.api_keys
		WHERE $1 = '' OR tenant_id = $1 ORDER BY created_at, id`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.APIKey, error) { return scanAPIKey(r) })
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	return out, nil
}

// TouchAPIKeys records when keys were last used (ids[i] at at[i]), never moving a time back.
func (s *Store) TouchAPIKeys(ctx context.Context, ids []string, at []time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE communication.api_keys k SET last_used_at = u.at
		FROM unnest($1::text[], $2::timestamptz[]) AS u(id, at)
		WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)`, ids, at)
	if err != nil {
		return fmt.Errorf("record api key use: %w", err)
	}
	return nil
}
