package store

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/pkg/message"
)

// RecipientHash is a recipient's keyed hash within tenantID and ch, as
// communication.recipient_hash computes it (migration 0022): HMAC-SHA-256 under the database's
// key of tenant, channel and recipient key, NUL-separated, in hex.
func (s *Store) RecipientHash(ctx context.Context, tenantID string, ch message.Channel, recipient string) (string, error) {
	key, err := s.recipientHashKey(ctx)
	if err != nil {
		return "", err
	}
	return recipientHash(key, tenantID, string(ch), message.RecipientKey(ch, recipient)), nil
}

func recipientHash(key []byte, tenantID, ch, rkey string) string {
	return keyedHash(hmac.New(sha256.New, key), tenantID, ch, rkey)
}

// keyedHash is recipientHash with m, an HMAC-SHA-256 under the key, which it resets: one serves
// a batch of addresses.
func keyedHash(m hash.Hash, tenantID, ch, rkey string) string {
	m.Reset()
	m.Write([]byte(tenantID))
	m.Write([]byte{0})
	m.Write([]byte(ch))
	m.Write([]byte{0})
	m.Write([]byte(rkey))
	return hex.EncodeToString(m.Sum(nil))
}

// recipientHashKey reads the key once: it never changes.
func (s *Store) recipientHashKey(ctx context.Context) ([]byte, error) {
	if k := s.hashKey.Load(); k != nil {
		return *k, nil
	}
	var k []byte
	if err := s.pool.QueryRow(ctx, `SELECT key FROM communication.recipient_hash_key`).Scan(&k); err != nil {
		return nil, fmt.Errorf("read the recipient hash key: %w", err)
	}
	s.hashKey.Store(&k)
	return k, nil
}

const erasureCols = `id, tenant_id, channel, recipient_hash, status,
	messages, canceled, events, callbacks, dead_letters, webhook_deliveries, suppressions, created_at, finished_at`

func scanErasure(r pgx.Row) (domain.Erasure, error) {
	var e domain.Erasure
	c := &e.Counts
	err := r.Scan(&e.ID, &e.TenantID, &e.Channel, &e.RecipientHash, &e.Status,
		&c.Messages, &c.Canceled, &c.Events, &c.Callbacks, &c.DeadLetters, &c.WebhookDeliveries, &c.Suppressions, &e.CreatedAt, &e.FinishedAt)
	return e, err
}

// CreateErasure starts erasing recipient on ch from tenantID's history under id, or returns the
// erasure of that recipient already running (created false).
func (s *Store) CreateErasure(ctx context.Context, id, tenantID string, ch message.Channel, recipient string) (domain.Erasure, bool, error) {
	hash, err := s.RecipientHash(ctx, tenantID, ch, recipient)
	if err != nil {
		return domain.Erasure{}, false, err
	}
	var e domain.Erasure
	created := false
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		e, err = scanErasure(tx.QueryRow(ctx, `
			INSERT INTO communication.erasures (id, tenant_id, channel, recipient, recipient_hash) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (tenant_id, channel, recipient_hash) WHERE status = 'running' DO NOTHING
			RETURNING `+erasureCols, id, tenantID, string(ch), message.RecipientKey(ch, recipient), hash))
		if err == nil {
			created = true
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		e, err = scanErasure(tx.QueryRow(ctx, `SELECT `+erasureCols+` FROM communication.erasures
			WHERE tenant_id = $1 AND channel = $2 AND recipient_hash = $3 AND status = 'running'`, tenantID, string(ch), hash))
		return err
	})
	if err != nil {
		return domain.Erasure{}, false, fmt.Errorf("create erasure: %w", err)
	}
	return e, created, nil
}

// GetErasure returns one of tenantID's erasures, or ErrNotFound.
func (s *Store) GetErasure(ctx context.Context, tenantID, id string) (domain.Erasure, error) {
	e, err := scanErasure(s.pool.QueryRow(ctx, `SELECT `+erasureCols+` FROM communication.erasures WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Erasure{}, ErrNotFound
	}
	if err != nil {
		return domain.Erasure{}, fmt.Errorf("get erasure %s: %w", id, err)
	}
	return e, nil
}

// ListErasures returns tenantID's erasures, newest first, a page at a time, and the cursor of the
// next page ("" at the end).
func (s *Store) ListErasures(ctx context.Context, tenantID string, f domain.ErasureFilter) ([]domain.Erasure, string, error) {
	w := &where{}
	w.add("tenant_id = ?", tenantID)
	w.addIf(f.Status != "", "status = ?", f.Status)
	if f.Recipient != "" {
		h, err := s.RecipientHash(ctx, tenantID, f.Channel, f.Recipient)
		if err != nil {
			return nil, "", err
		}
		w.add("recipient_hash = ?", h)
	}
	if f.Cursor != "" {
		at, id, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		w.add("(created_at, id) < (?, ?)", at, id)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+erasureCols+` FROM communication.erasures
		WHERE `+w.sql()+` ORDER BY created_at DESC, id DESC LIMIT `+w.arg(f.Limit+1), w.args...)
	if err != nil {
		return nil, "", fmt.Errorf("list erasures: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Erasure, error) { return scanErasure(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list erasures: %w", err)
	}
	out, next := page(out, f.Limit, func(e domain.Erasure) string { return encodeCursor(e.CreatedAt, e.ID) })
	return out, next, nil
}

// EraseNext takes the running erasure that waited longest, which no other eraser holds, and
// erases up to limit of its recipient's messages in one transaction: their recipient, content
// and metadata are blanked (those still to be sent are canceled), their events' provider
// payloads dropped, and the address removed from their callbacks, dead letters and webhook
// deliveries. Messages being sent are left for a later call. Once none is left, the callbacks
// not matched to a message, the provider error rollups and the suppressions are cleaned, the
// address itself is dropped from the erasure, and comms.recipient.erased is recorded. It returns
// false when no erasure is waiting. A crash between calls loses nothing: each call's work and
// counts commit together, and the next call finds what is left by the address.
func (s *Store) EraseNext(ctx context.Context, limit int) (domain.Erasure, bool, error) {
	var e domain.Erasure
	found := false
	err := s.keyedTx(ctx, func(tx pgx.Tx) error {
		var rkey string
		err := tx.QueryRow(ctx, `SELECT id, tenant_id, channel, recipient, recipient_hash FROM communication.erasures
			WHERE status = 'running' ORDER BY updated_at LIMIT 1 FOR UPDATE SKIP LOCKED`).Scan(&e.ID, &e.TenantID, &e.Channel, &rkey, &e.RecipientHash)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		// The address as provider errors and event payloads write it, in any case.
		pattern := `(?i)` + regexp.QuoteMeta(rkey)
		c, done, err := eraseBatch(ctx, tx, e.TenantID, string(e.Channel), rkey, pattern, limit)
		if err != nil {
			return err
		}
		if done {
			if c.Callbacks, c.Suppressions, err = eraseRest(ctx, tx, e, rkey, pattern, c.Callbacks); err != nil {
				return err
			}
		}
		e, err = scanErasure(tx.QueryRow(ctx, `
			UPDATE communication.erasures SET messages = messages + $2, canceled = canceled + $3, events = events + $4,
				callbacks = callbacks + $5, dead_letters = dead_letters + $6, webhook_deliveries = webhook_deliveries + $7,
				suppressions = suppressions + $8, updated_at = now(),
				status = CASE WHEN $9 THEN 'done' ELSE status END,
				recipient = CASE WHEN $9 THEN '' ELSE recipient END,
				finished_at = CASE WHEN $9 THEN now() END
			WHERE id = $1 RETURNING `+erasureCols,
			e.ID, c.Messages, c.Canceled, c.Events, c.Callbacks, c.DeadLetters, c.WebhookDeliveries, c.Suppressions, done))
		if err != nil || !done {
			return err
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO communication.account_events (tenant_id, type, subject, data)
			VALUES ($1, 'comms.recipient.erased', $2, jsonb_build_object('channel', $3::text, 'recipient_hash', $4::text, 'erasure',
				(SELECT jsonb_build_object('messages', messages, 'canceled', canceled, 'events', events, 'callbacks', callbacks,
					'dead_letters', dead_letters, 'webhook_deliveries', webhook_deliveries, 'suppressions', suppressions)
				 FROM communication.erasures WHERE id = $2)))`,
			e.TenantID, e.ID, string(e.Channel), e.RecipientHash)
		return err
	})
	if err != nil {
		return domain.Erasure{}, false, fmt.Errorf("erase: %w", err)
	}
	return e, found, nil
}

// profilesHolding selects the external ids of tenant $1's profiles whose address on channel $3
// is the key $2 (email profiles hold bare addresses: recipients.check).
const profilesHolding = `SELECT external_id FROM communication.recipients WHERE tenant_id = $1
	AND CASE $3 WHEN 'email' THEN email <> '' AND lower(email) = $2 ELSE phone <> '' AND phone = $2 END`

// eraseBatch erases up to limit messages and what hangs off them: those sent to the address, and
// the in_app and push messages of the profiles holding it. done is set when none is left, not
// even one being sent.
func eraseBatch(ctx context.Context, tx pgx.Tx, tenantID, ch, rkey, pattern string, limit int) (c domain.ErasureCounts, done bool, err error) {
	var (
		ids []string
		ats []time.Time // their created_at, which finds their events' partitions
	)
	err = tx.QueryRow(ctx, `
		WITH to_address AS (
			SELECT id, created_at, status FROM communication.message_logs
			WHERE tenant_id = $1 AND communication.recipient_key(channel, recipient) = $2 AND channel = $3 AND status <> 'sending'
			LIMIT $4 FOR UPDATE
		), to_profile AS (
			-- The in_app and push messages of the tenant's profiles holding the address: addressed
			-- to the profile's id, they hold the person's content all the same.
			SELECT id, created_at, status FROM communication.message_logs
			WHERE tenant_id = $1 AND recipient_id IN (`+profilesHolding+`) AND channel IN ('in_app', 'push')
			  AND erased_at IS NULL AND status <> 'sending'
			LIMIT $4 FOR UPDATE
		), m AS (
			SELECT * FROM to_address UNION ALL (SELECT * FROM to_profile LIMIT $4 - (SELECT count(*) FROM to_address))
		), pend AS (
			SELECT id, created_at FROM m WHERE status IN ('queued', 'scheduled')
		), dq AS (
			DELETE FROM communication.dispatch_queue d USING pend WHERE d.message_id = pend.id
		), sc AS (
			DELETE FROM communication.schedule s USING pend WHERE s.message_id = pend.id
		), ev AS (
			INSERT INTO communication.message_events (message_id, tenant_id, message_at, status, source, reason)
			SELECT id, $1, created_at, 'canceled', 'internal', 'canceled: its recipient was erased' FROM pend
		), u AS (
			UPDATE communication.message_logs l
			SET recipient = '', subject = '', body_text = '', body_html = '', in_app = NULL, push = NULL, metadata = '{}',
				error_message = regexp_replace(l.error_message, $5, '[erased]', 'g'),
				status = CASE WHEN l.status IN ('queued', 'scheduled') THEN 'canceled' ELSE l.status END,
				erased_at = now(), content_purged_at = coalesce(l.content_purged_at, now()), updated_at = now()
			FROM m WHERE l.tenant_id = $1 AND l.id = m.id AND l.created_at = m.created_at
			RETURNING l.id, l.created_at
		)
		SELECT coalesce(array_agg(id), '{}'), coalesce(array_agg(created_at), '{}'), (SELECT count(*) FROM pend) FROM u`,
		tenantID, rkey, ch, limit, pattern).Scan(&ids, &ats, &c.Canceled)
	if err != nil {
		return c, false, fmt.Errorf("erase messages: %w", err)
	}
	c.Messages = int64(len(ids))
	if len(ids) > 0 {
		b := &pgx.Batch{}
		b.Queue(`
			UPDATE communication.message_events e SET payload = NULL, reason = regexp_replace(reason, $3, '[erased]', 'g')
			FROM unnest($1::text[], $4::timestamptz[]) AS m(id, at)
			WHERE e.tenant_id = $2 AND e.message_id = m.id AND e.message_at = m.at AND (e.payload IS NOT NULL OR e.reason ~ $3)`,
			ids, tenantID, pattern, ats).
			Exec(func(ct pgconn.CommandTag) error { c.Events = ct.RowsAffected(); return nil })
		// Received after the message was made (an hour's grace for clocks that disagree, as the
		// history purge allows): the weeks before it are not searched.
		b.Queue(`
			UPDATE communication.callbacks c SET payload = '{}', recipient = '', reason = regexp_replace(c.reason, $2, '[erased]', 'g')
			FROM unnest($1::text[], $3::timestamptz[]) AS m(id, at)
			WHERE c.message_id = m.id AND c.received_week >= date_trunc('week', m.at - interval '1 hour', 'UTC')`, ids, pattern, ats).
			Exec(func(ct pgconn.CommandTag) error { c.Callbacks = ct.RowsAffected(); return nil })
		b.Queue(`
			UPDATE communication.dead_letters SET error_message = regexp_replace(error_message, $2, '[erased]', 'g')
			WHERE message_id = ANY($1)`, ids, pattern).
			Exec(func(ct pgconn.CommandTag) error { c.DeadLetters = ct.RowsAffected(); return nil })
		// A delivery's body is the CloudEvent as sent; it keeps its shape, without the address. It is
		// filed under its event's time (occurred_at), found with one probe of that week, unless it
		// is flagged as filed elsewhere (webhooks.deliveryTime; NULL from a release that did not
		// flag, migrations/0044): those few are found by the flag's partial index, from a week
		// before the message on, since a publication comes after its message was made (an hour's
		// grace for clocks that disagree). The events are worked out first (ev): compared with a
		// column of a materialized CTE, the time prunes weeks as each event is looked up; as an
		// expression over the join, it did not.
		b.Queue(`
			WITH ev AS MATERIALIZED (
				SELECT 'evt_' || e.id AS event_id, e.occurred_at AS at, date_trunc('week', m.at - interval '7 days 1 hour', 'UTC') AS since
				FROM communication.message_events e JOIN unnest($1::text[], $4::timestamptz[]) AS m(id, at)
				ON e.tenant_id = $2 AND e.message_id = m.id AND e.message_at = m.at
			), filed AS (
				UPDATE communication.webhook_deliveries d SET payload = `+erasedPayload("d.payload", "$3")+`
				FROM ev WHERE d.tenant_id = $2 AND d.event_id = ev.event_id AND d.created_at = ev.at AND NOT d.filed_late
				RETURNING d.id, d.created_at
			), late AS (
				UPDATE communication.webhook_deliveries d SET payload = `+erasedPayload("d.payload", "$3")+`
				WHERE d.tenant_id = $2 AND d.filed_late IS NOT FALSE AND d.event_id IN (SELECT event_id FROM ev)
				  AND d.created_at >= (SELECT min(since) FROM ev)
				RETURNING d.id, d.created_at
			), d AS (
				SELECT * FROM filed UNION ALL SELECT * FROM late
			), a AS (
				UPDATE communication.webhook_attempts a SET response = regexp_replace(response, $3, '[erased]', 'g'),
					error = regexp_replace(error, $3, '[erased]', 'g')
				FROM d WHERE a.tenant_id = $2 AND a.delivery_id = d.id AND a.delivery_at = d.created_at AND (a.response ~ $3 OR a.error ~ $3)
			)
			SELECT count(*) FROM d`, ids, tenantID, pattern, ats).
			QueryRow(func(r pgx.Row) error { return r.Scan(&c.WebhookDeliveries) })
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return c, false, fmt.Errorf("erase what hangs off %d messages: %w", len(ids), err)
		}
	}
	if len(ids) == limit {
		return c, false, nil
	}
	var left bool
	err = tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM communication.message_logs
		WHERE tenant_id = $1 AND communication.recipient_key(channel, recipient) = $2 AND channel = $3)
		OR EXISTS (SELECT 1 FROM communication.message_logs WHERE tenant_id = $1 AND recipient_id IN (`+profilesHolding+`)
			AND channel IN ('in_app', 'push') AND erased_at IS NULL)`, tenantID, rkey, ch).Scan(&left)
	if err != nil {
		return c, false, fmt.Errorf("look for messages being sent: %w", err)
	}
	return c, !left, nil
}

// erasedPayload is the SQL of a webhook delivery's body (the bytea expression payload) without
// the address (pattern, the address's pattern): data.recipient emptied, the address cut out of
// the rest.
func erasedPayload(payload, pattern string) string {
	return `convert_to(regexp_replace(jsonb_set(convert_from(` + payload + `, 'UTF8')::jsonb, '{data,recipient}', '""', false)::text, ` +
		pattern + `, '[erased]', 'g'), 'UTF8')`
}

// eraseRest cleans what is not found through a message, once the messages are done.
func eraseRest(ctx context.Context, tx pgx.Tx, e domain.Erasure, rkey, pattern string, callbacks int64) (int64, int64, error) {
	// Callbacks not (yet) matched to a message: the tenant's configs' and the system defaults'
	// (whose callbacks name no tenant until matched).
	tag, err := tx.Exec(ctx, `
		UPDATE communication.callbacks SET payload = '{}', recipient = '', reason = regexp_replace(reason, $3, '[erased]', 'g')
		WHERE outcome IN ('pending', 'unmatched')
		  AND provider_config_id IN (SELECT id FROM communication.provider_configs WHERE tenant_id = $1 OR tenant_id IS NULL)
		  AND (communication.recipient_key($2, recipient) = $4 OR payload::text ~ $3)`, e.TenantID, string(e.Channel), pattern, rkey)
	if err != nil {
		return 0, 0, fmt.Errorf("erase unmatched callbacks: %w", err)
	}
	callbacks += tag.RowsAffected()
	for _, table := range []string{"provider_errors_hourly", "provider_errors_daily"} {
		if _, err := tx.Exec(ctx, `UPDATE communication.`+table+` SET last_message = regexp_replace(last_message, $2, '[erased]', 'g')
			WHERE tenant_id = $1 AND last_message ~ $2`, e.TenantID, pattern); err != nil {
			return 0, 0, fmt.Errorf("erase from %s: %w", table, err)
		}
	}
	// Their push devices go: a token or subscription reaches the person's phone or browser.
	if _, err := tx.Exec(ctx, `DELETE FROM communication.devices WHERE tenant_id = $1 AND recipient_id IN (`+profilesHolding+`)`,
		e.TenantID, rkey, string(e.Channel)); err != nil {
		return 0, 0, fmt.Errorf("erase the profiles' devices: %w", err)
	}
	// The tenant's profiles of the person keep no address (the profile itself is the tenant's to
	// delete: it holds the tenant's id for them).
	// Their data loses the address too.
	q := `UPDATE communication.recipients SET phone = '', data = regexp_replace(data::text, $3, '[erased]', 'g')::jsonb, updated_at = now()
		WHERE tenant_id = $1 AND phone <> '' AND phone = $2`
	if e.Channel == message.Email { // profiles hold bare addresses (recipients.check)
		q = `UPDATE communication.recipients SET email = '', data = regexp_replace(data::text, $3, '[erased]', 'g')::jsonb, updated_at = now()
			WHERE tenant_id = $1 AND email <> '' AND lower(email) = $2`
	}
	if _, err := tx.Exec(ctx, q, e.TenantID, rkey, pattern); err != nil {
		return 0, 0, fmt.Errorf("erase profiles: %w", err)
	}
	// An opt-out keeps holding: the intake looks suppressions up by the hash.
	tag, err = tx.Exec(ctx, `UPDATE communication.suppressions SET recipient = 'erased:' || recipient_hash
		WHERE tenant_id = $1 AND channel = $2 AND recipient_hash = $3 AND recipient NOT LIKE 'erased:%'`,
		e.TenantID, string(e.Channel), e.RecipientHash)
	if err != nil {
		return 0, 0, fmt.Errorf("erase suppressions: %w", err)
	}
	return callbacks, tag.RowsAffected(), nil
}
