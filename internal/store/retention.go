package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// contentLock is the class of the advisory locks (one per tenant: the second key is the hash of
// its id) under which one purger at a time purges a tenant's content: any number of workers run
// the purger. No other lock of comms has it as its upper 32 bits.
const contentLock int32 = 0x636e7470 // "cntp"

// pendingStatuses still need their content: they are to be sent.
const pendingStatuses = `('scheduled', 'queued', 'sending')`

// Purged is what one PurgeContent call did.
type Purged struct {
	Looked, Purged, Deferred int
	// More is set when the call stopped at its limit: call again.
	More bool
}

// PurgeContent blanks the subject and bodies of up to limit of tenantID's messages created before
// cutoff, in (created_at, id) order from where the last call stopped; a message still to be sent
// is deferred instead and purged by a later call once it is final. It returns at once, having
// done nothing, while another purger holds the tenant.
func (s *Store) PurgeContent(ctx context.Context, tenantID string, cutoff time.Time, limit int) (Purged, error) {
	var out Purged
	err := s.keyedTx(ctx, func(tx pgx.Tx) error {
		var mine bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1, hashtext($2))`, contentLock, tenantID).Scan(&mine); err != nil || !mine {
			return err
		}
		// Messages deferred before and now final.
		tag, err := tx.Exec(ctx, `
			WITH d AS (
				DELETE FROM communication.content_purge_deferred d USING communication.message_logs m
				WHERE d.tenant_id = $1 AND m.tenant_id = $1 AND m.id = d.message_id AND `+madeAt("m.created_at", "d.message_id")+`
				  AND m.status NOT IN `+pendingStatuses+`
				RETURNING d.message_id
			)
			UPDATE communication.message_logs m SET subject = '', body_text = '', body_html = '', in_app = NULL, push = NULL, content_purged_at = now()
			FROM d WHERE m.tenant_id = $1 AND m.id = d.message_id AND `+madeAt("m.created_at", "d.message_id")+` AND m.content_purged_at IS NULL`, tenantID)
		if err != nil {
			return err
		}
		out.Purged = int(tag.RowsAffected())
		// The next messages in (created_at, id) order, from the tenant's mark.
		var purged int
		err = tx.QueryRow(ctx, `
			WITH mark AS (
				SELECT coalesce((SELECT through_at FROM communication.content_purge WHERE tenant_id = $1), '-infinity') AS at,
				       coalesce((SELECT through_id FROM communication.content_purge WHERE tenant_id = $1), '') AS id
			), c AS (
				SELECT l.id, l.created_at, l.status FROM communication.message_logs l, mark
				WHERE l.tenant_id = $1 AND (l.created_at, l.id) > (mark.at, mark.id) AND l.created_at < $2
				  -- the days before the mark are not searched
				  AND l.created_at >= coalesce((SELECT through_at FROM communication.content_purge WHERE tenant_id = $1), '-infinity')
				ORDER BY l.created_at, l.id LIMIT $3
			), p AS (
				UPDATE communication.message_logs m SET subject = '', body_text = '', body_html = '', in_app = NULL, push = NULL, content_purged_at = now()
				FROM c WHERE m.tenant_id = $1 AND m.id = c.id AND m.created_at = c.created_at AND m.status NOT IN `+pendingStatuses+` AND m.content_purged_at IS NULL
				RETURNING m.id
			), d AS (
				INSERT INTO communication.content_purge_deferred (tenant_id, message_id)
				SELECT $1, id FROM c WHERE status IN `+pendingStatuses+` ON CONFLICT DO NOTHING
				RETURNING message_id
			), last AS (
				SELECT created_at, id FROM c ORDER BY created_at DESC, id DESC LIMIT 1
			), moved AS (
				INSERT INTO communication.content_purge (tenant_id, through_at, through_id) SELECT $1, created_at, id FROM last
				ON CONFLICT (tenant_id) DO UPDATE SET through_at = excluded.through_at, through_id = excluded.through_id
			)
			SELECT (SELECT count(*) FROM c), (SELECT count(*) FROM p), (SELECT count(*) FROM d)`, tenantID, cutoff, limit).
			Scan(&out.Looked, &purged, &out.Deferred)
		if err != nil {
			return err
		}
		out.Purged += purged
		out.More = out.Looked == limit
		return nil
	})
	if err != nil {
		return Purged{}, fmt.Errorf("purge content of %s: %w", tenantID, err)
	}
	return out, nil
}
