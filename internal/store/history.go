package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// historyLock is the class of the advisory locks under which one purger at a time deletes a
// tenant's expired history (the second key is the hash of its id).
const historyLock int32 = 0x68737470 // "hstp"

// HistoryPurged is what one PurgeHistory call deleted.
type HistoryPurged struct {
	Messages, Events, Callbacks, DeadLetters, WebhookDeliveries, AuditEntries int
	// More is set when a statement stopped at its limit: call again.
	More bool
}

// PurgeHistory deletes up to limit of tenantID's final messages created before cutoff, oldest
// first, with their events, callbacks, provider references, dead letters and price checks; up
// to limit of its webhook deliveries (with their attempts), unmatched callbacks and published
// account events from before cutoff; and up to limit of its audit entries older than its audit
// retention (by the database's clock, which the audit log's trigger checks too). A message still to be sent is kept until it is final. Usage and analytics rollups
// are never deleted: they are the bill. It returns at once, having done nothing, while another
// purger holds the tenant.
//
// With messages false the tenant's messages are left to DropExpiredPartitions: its retention is
// (within a week) the longest, so they go with whole weeks.
func (s *Store) PurgeHistory(ctx context.Context, tenantID string, cutoff time.Time, limit int, messages bool) (HistoryPurged, error) {
	var out HistoryPurged
	err := s.keyedTx(ctx, func(tx pgx.Tx) error {
		var mine bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1, hashtext($2))`, historyLock, tenantID).Scan(&mine); err != nil || !mine {
			return err
		}
		if messages {
			if err := purgeMessages(ctx, tx, tenantID, cutoff, limit, &out); err != nil {
				return err
			}
		}
		return purgeRest(ctx, tx, tenantID, cutoff, limit, &out)
	})
	if err != nil {
		return HistoryPurged{}, fmt.Errorf("purge history of %s: %w", tenantID, err)
	}
	return out, nil
}

// purgeMessages deletes up to limit of the tenant's final messages created before cutoff, with
// what hangs off them.
func purgeMessages(ctx context.Context, tx pgx.Tx, tenantID string, cutoff time.Time, limit int, out *HistoryPurged) error {
	err := tx.QueryRow(ctx, `
			WITH m AS (
				SELECT id, created_at, provider_config_id, provider_message_id FROM communication.message_logs
				WHERE tenant_id = $1 AND created_at < $2 AND status NOT IN `+pendingStatuses+`
				ORDER BY created_at LIMIT $3 FOR UPDATE SKIP LOCKED
			), ev AS (
				DELETE FROM communication.message_events e USING m
				WHERE e.tenant_id = $1 AND e.message_id = m.id AND e.message_at = m.created_at RETURNING 1
			), cb AS (
				-- Received, and referenced, after the message was made (an hour's grace for clocks
				-- that disagree): the weeks before it are not searched.
				DELETE FROM communication.callbacks c USING m
				WHERE c.message_id = m.id AND c.received_week >= date_trunc('week', m.created_at - interval '1 hour', 'UTC') RETURNING 1
			), refs AS (
				DELETE FROM communication.provider_message_refs r USING m
				WHERE r.provider_config_id = m.provider_config_id AND r.provider_message_id = m.provider_message_id AND m.provider_message_id <> ''
				  AND r.created_at >= m.created_at - interval '1 hour'
			), dl AS (
				DELETE FROM communication.dead_letters d USING m WHERE d.message_id = m.id RETURNING 1
			), pc AS (
				DELETE FROM communication.price_checks p USING m WHERE p.message_id = m.id
			), cpd AS (
				DELETE FROM communication.content_purge_deferred d USING m WHERE d.tenant_id = $1 AND d.message_id = m.id
			), del AS (
				DELETE FROM communication.message_logs l USING m WHERE l.tenant_id = $1 AND l.id = m.id AND l.created_at = m.created_at RETURNING 1
			)
			SELECT (SELECT count(*) FROM del), (SELECT count(*) FROM ev), (SELECT count(*) FROM cb), (SELECT count(*) FROM dl)`,
		tenantID, cutoff, limit).Scan(&out.Messages, &out.Events, &out.Callbacks, &out.DeadLetters)
	if err != nil {
		return fmt.Errorf("messages: %w", err)
	}
	out.More = out.Messages == limit
	return nil
}

// purgeRest deletes up to limit each of the tenant's webhook deliveries, unmatched callbacks and
// published account events from before cutoff, and of its audit entries past their retention.
func purgeRest(ctx context.Context, tx pgx.Tx, tenantID string, cutoff time.Time, limit int, out *HistoryPurged) error {
	var unmatched, account int
	err := tx.QueryRow(ctx, `
			WITH wd AS (
				DELETE FROM communication.webhook_deliveries d USING (
					SELECT id, created_at FROM communication.webhook_deliveries
					WHERE tenant_id = $1 AND created_at < $2 AND status <> 'pending' LIMIT $3) old
				WHERE d.tenant_id = $1 AND d.id = old.id AND d.created_at = old.created_at
				RETURNING d.id, d.created_at
			), wa AS (
				DELETE FROM communication.webhook_attempts a USING wd
				WHERE a.tenant_id = $1 AND a.delivery_id = wd.id AND a.delivery_at = wd.created_at
			), um AS (
				DELETE FROM communication.callbacks WHERE id IN (
					SELECT c.id FROM communication.callbacks c
					WHERE c.outcome = 'unmatched' AND c.received_at < $2
					  AND c.provider_config_id IN (SELECT id FROM communication.provider_configs WHERE tenant_id = $1)
					LIMIT $3)
				RETURNING 1
			), ae AS (
				DELETE FROM communication.account_events WHERE id IN (
					SELECT id FROM communication.account_events WHERE tenant_id = $1 AND occurred_at < $2 AND published LIMIT $3)
				RETURNING 1
			), au AS (
				DELETE FROM communication.audit_log WHERE id IN (
					SELECT id FROM communication.audit_log
					WHERE tenant_id = $1 AND at < now() - (SELECT audit_retention FROM communication.tenants WHERE id = $1) ORDER BY id LIMIT $3)
				RETURNING 1
			)
			SELECT (SELECT count(*) FROM wd), (SELECT count(*) FROM um), (SELECT count(*) FROM ae), (SELECT count(*) FROM au)`,
		tenantID, cutoff, limit).Scan(&out.WebhookDeliveries, &unmatched, &account, &out.AuditEntries)
	if err != nil {
		return fmt.Errorf("deliveries, callbacks and audit entries: %w", err)
	}
	out.Callbacks += unmatched
	out.More = out.More || out.WebhookDeliveries == limit || unmatched == limit || account == limit || out.AuditEntries == limit
	return nil
}

// PurgePlatformAudit deletes up to limit of the audit entries of no tenant (platform-wide
// changes) older than 400 days, oldest first, and reports whether it stopped at the limit.
func (s *Store) PurgePlatformAudit(ctx context.Context, limit int) (int, bool, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM communication.audit_log WHERE id IN (
		SELECT id FROM communication.audit_log WHERE tenant_id IS NULL AND at < now() - interval '400 days' ORDER BY at LIMIT $1)`, limit)
	if err != nil {
		return 0, false, fmt.Errorf("purge platform audit entries: %w", err)
	}
	return int(tag.RowsAffected()), int(tag.RowsAffected()) == limit, nil
}
