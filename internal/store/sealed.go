package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// SecretTable names a table of secrets sealed under the key ring, other than provider credentials
// (ListSealedNotUnder): the tenants' webhook signing secrets and inbox secrets.
type SecretTable int

// The tables of sealed secrets.
const (
	WebhookSecrets SecretTable = iota
	InboxSecrets
)

// sealedColumns are a SecretTable's table and columns: its row id, current and previous secret.
var sealedColumns = map[SecretTable]struct{ table, id, version, sealed, prevVersion, prevSealed string }{
	WebhookSecrets: {"communication.webhook_endpoints", "id", "key_version", "secret_sealed", "previous_key_version", "previous_sealed"},
	InboxSecrets:   {"communication.inbox_secrets", "tenant_id", "key_version", "sealed", "previous_version", "previous_sealed"},
}

// SealedSecret is one row of a SecretTable: its secret and, while it is kept, the one it replaced.
type SealedSecret struct {
	TenantID, ID    string
	Version         string
	Sealed          []byte
	PreviousVersion string // "" when there is no previous secret
	PreviousSealed  []byte
}

// ListSecretsNotUnder returns up to limit rows of t with a secret sealed under a version other than
// current, after afterID in id order: the work list of a key rotation.
func (s *Store) ListSecretsNotUnder(ctx context.Context, t SecretTable, current, afterID string, limit int) ([]SealedSecret, error) {
	c := sealedColumns[t]
	rows, err := s.pool.Query(ctx, fmt.Sprintf(`SELECT tenant_id, %[2]s, %[3]s, %[4]s, coalesce(%[5]s, ''), %[6]s FROM %[1]s
		WHERE (%[3]s <> $1 OR %[6]s IS NOT NULL AND %[5]s <> $1) AND %[2]s > $2 ORDER BY %[2]s LIMIT $3`,
		c.table, c.id, c.version, c.sealed, c.prevVersion, c.prevSealed), current, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("list %s to rotate: %w", c.table, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[SealedSecret])
	if err != nil {
		return nil, fmt.Errorf("list %s to rotate: %w", c.table, err)
	}
	return out, nil
}

// ResealSecret replaces the secrets of old's row with resealed if they are still exactly old's (so
// a rotation of the secret meanwhile wins cleanly); it reports whether it did.
func (s *Store) ResealSecret(ctx context.Context, t SecretTable, old, resealed SealedSecret) (bool, error) {
	c := sealedColumns[t]
	tag, err := s.pool.Exec(ctx, fmt.Sprintf(`UPDATE %[1]s SET %[3]s = $4, %[4]s = $5, %[5]s = nullif($6, ''), %[6]s = $7
		WHERE %[2]s = $1 AND %[4]s = $2 AND %[6]s IS NOT DISTINCT FROM $3`, c.table, c.id, c.version, c.sealed, c.prevVersion, c.prevSealed),
		old.ID, old.Sealed, old.PreviousSealed, resealed.Version, resealed.Sealed, resealed.PreviousVersion, resealed.PreviousSealed)
	if err != nil {
		return false, fmt.Errorf("reseal %s of %s: %w", old.ID, c.table, err)
	}
	return tag.RowsAffected() == 1, nil
}
