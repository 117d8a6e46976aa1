package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Idempotency keys: the claim of a whole request's key, and the owners of per-message keys.

// ClaimRequestKey records that key belongs to the request whose body hashes to hash, for a
// request that records several messages (a batch): the first request under a key claims it for
// its body. It reports whether the key is this body's (claimed now, or earlier by the same body);
// false means another body holds it, and nothing may be recorded under it.
func (s *Store) ClaimRequestKey(ctx context.Context, tenantID, key string, hash []byte) (bool, error) {
	for range 3 {
		var held []byte
		err := s.pool.QueryRow(ctx, `
			WITH ins AS (
				INSERT INTO communication.idempotency_keys (tenant_id, key, message_id, request_hash)
				VALUES ($1, $2, '', $3) ON CONFLICT (tenant_id, key) DO NOTHING
				RETURNING request_hash
			)
			SELECT request_hash FROM ins
			UNION ALL
			SELECT request_hash FROM communication.idempotency_keys
			WHERE tenant_id = $1 AND key = $2 AND NOT EXISTS (SELECT 1 FROM ins)`, tenantID, key, hash).Scan(&held)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			// The conflicting claim committed after this statement's snapshot was taken: the
			// next statement sees it.
			continue
		case err != nil:
			return false, fmt.Errorf("claim idempotency key: %w", err)
		}
		return bytes.Equal(held, hash), nil
	}
	return false, fmt.Errorf("claim idempotency key: its holder could not be read")
}

// idempotencyOwners returns the messages that own these (tenant, key) pairs, by pair.
func (s *Store) idempotencyOwners(ctx context.Context, tenants, keys []string) (map[[2]string]idemOwner, error) {
	owners := map[[2]string]idemOwner{}
	err := s.keyedTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
		SELECT k.tenant_id, k.key, k.message_id, k.request_hash, m.created_at
		FROM communication.idempotency_keys k
		JOIN unnest($1::text[], $2::text[]) AS l(tenant_id, key) USING (tenant_id, key)
		JOIN communication.message_logs m ON m.tenant_id = k.tenant_id AND m.id = k.message_id AND `+madeAt("m.created_at", "k.message_id"), tenants, keys)
		if err != nil {
			return err
		}
		var (
			t, k, mid string
			h         []byte
			at        time.Time
		)
		_, err = pgx.ForEachRow(rows, []any{&t, &k, &mid, &h, &at}, func() error {
			owners[[2]string{t, k}] = idemOwner{mid, bytes.Clone(h), at}
			return nil
		})
		return err
	})
	return owners, err
}
