package store

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/pkg/message"
)

const endpointCols = `id, tenant_id, url, description, event_types, enabled, disabled_reason, failing_since,
	previous_expires_at, created_at, updated_at, key_version, secret_sealed, coalesce(previous_key_version, ''), previous_sealed`

func scanEndpoint(r pgx.CollectableRow) (domain.WebhookEndpoint, error) {
	var e domain.WebhookEndpoint
	err := r.Scan(&e.ID, &e.TenantID, &e.URL, &e.Description, &e.EventTypes, &e.Enabled, &e.DisabledReason, &e.FailingSince,
		&e.PreviousSecretExpiresAt, &e.CreatedAt, &e.UpdatedAt, &e.KeyVersion, &e.Sealed, &e.PreviousKeyVersion, &e.PreviousSealed)
	return e, err
}

// CountWebhookEndpoints counts a tenant's endpoints.
func (s *Store) CountWebhookEndpoints(ctx context.Context, tenantID string) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM communication.webhook_endpoints WHERE tenant_id = $1`, tenantID).Scan(&n)
	return n, err
}

// CreateWebhookEndpoint stores e (ID, TenantID, URL, Description, EventTypes, Enabled and the
// sealed secret) and returns it as stored.
func (s *Store) CreateWebhookEndpoint(ctx context.Context, e domain.WebhookEndpoint, now time.Time) (domain.WebhookEndpoint, error) {
	rows, _ := s.pool.Query(ctx, `INSERT INTO communication.webhook_endpoints
		(id, tenant_id, url, description, event_types, enabled, key_version, secret_sealed, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING `+endpointCols,
		e.ID, e.TenantID, e.URL, e.Description, e.EventTypes, e.Enabled, e.KeyVersion, e.Sealed, now)
	out, err := pgx.CollectExactlyOneRow(rows, scanEndpoint)
	if err != nil {
		return domain.WebhookEndpoint{}, fmt.Errorf("create webhook endpoint: %w", err)
	}
	return out, nil
}

// ListWebhookEndpoints lists a tenant's endpoints, oldest first; with enabledOnly, only those that
// receive deliveries.
func (s *Store) ListWebhookEndpoints(ctx context.Context, tenantID string, enabledOnly bool) ([]domain.WebhookEndpoint, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+endpointCols+` FROM communication.webhook_endpoints
		WHERE tenant_id = $1 AND (enabled OR NOT $2) ORDER BY created_at, id`, tenantID, enabledOnly)
	out, err := pgx.CollectRows(rows, scanEndpoint)
	if err != nil {
		return nil, fmt.Errorf("list webhook endpoints: %w", err)
	}
	return out, nil
}

// GetWebhookEndpoint returns one of a tenant's endpoints, or ErrNotFound.
func (s *Store) GetWebhookEndpoint(ctx context.Context, tenantID, id string) (domain.WebhookEndpoint, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+endpointCols+` FROM communication.webhook_endpoints WHERE tenant_id = $1 AND id = $2`, tenantID, id)
	e, err := pgx.CollectExactlyOneRow(rows, scanEndpoint)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.WebhookEndpoint{}, ErrNotFound
	}
	if err != nil {
		return domain.WebhookEndpoint{}, fmt.Errorf("get webhook endpoint: %w", err)
	}
	return e, nil
}

// UpdateWebhookEndpoint applies p, or returns ErrNotFound.
func (s *Store) UpdateWebhookEndpoint(ctx context.Context, tenantID, id string, p domain.WebhookEndpointPatch, now time.Time) (domain.WebhookEndpoint, error) {
	rows, _ := s.pool.Query(ctx, `UPDATE communication.webhook_endpoints SET
			url = coalesce($3, url), description = coalesce($4, description), event_types = coalesce($5, event_types),
			enabled = coalesce($6, enabled),
			disabled_reason = CASE WHEN $6 THEN '' ELSE disabled_reason END,
			failing_since = CASE WHEN $6 AND NOT enabled THEN NULL ELSE failing_since END,
			updated_at = $7
		WHERE tenant_id = $1 AND id = $2 RETURNING `+endpointCols, tenantID, id, p.URL, p.Description, p.EventTypes, p.Enabled, now)
	e, err := pgx.CollectExactlyOneRow(rows, scanEndpoint)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.WebhookEndpoint{}, ErrNotFound
	}
	if err != nil {
		return domain.WebhookEndpoint{}, fmt.Errorf("update webhook endpoint: %w", err)
	}
	return e, nil
}

// RotateWebhookSecret makes the sealed secret current and keeps the one it replaces signing
// until expires.
func (s *Store) RotateWebhookSecret(ctx context.Context, tenantID, id, keyVersion string, sealed []byte, expires, now time.Time) (domain.WebhookEndpoint, error) {
	rows, _ := s.pool.Query(ctx, `UPDATE communication.webhook_endpoints SET
			previous_key_version = key_version, previous_sealed = secret_sealed, previous_expires_at = $5,
			key_version = $3, secret_sealed = $4, updated_at = $6
		WHERE tenant_id = $1 AND id = $2 RETURNING `+endpointCols, tenantID, id, keyVersion, sealed, expires, now)
	e, err := pgx.CollectExactlyOneRow(rows, scanEndpoint)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.WebhookEndpoint{}, ErrNotFound
	}
	if err != nil {
		return domain.WebhookEndpoint{}, fmt.Errorf("rotate webhook secret: %w", err)
	}
	return e, nil
}

// DeleteWebhookEndpoint removes an endpoint and its deliveries with their attempts, or returns
// ErrNotFound. (Attempts hold no foreign key to their delivery: migrations/0040.)
func (s *Store) DeleteWebhookEndpoint(ctx context.Context, tenantID, id string) error {
	tag, err := s.pool.Exec(ctx, `
		WITH d AS (
			DELETE FROM communication.webhook_deliveries WHERE tenant_id = $1 AND endpoint_id = $2 RETURNING id, created_at
		), a AS (
			DELETE FROM communication.webhook_attempts a USING d WHERE a.tenant_id = $1 AND a.delivery_id = d.id AND a.delivery_at = d.created_at
		)
		DELETE FROM communication.webhook_endpoints WHERE tenant_id = $1 AND id = $2`, tenantID, id)
	if err != nil {
		return fmt.Errorf("delete webhook endpoint: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// MarkWebhookEndpointFailed starts an endpoint's failure streak at `at` unless one is running, and
// returns when the streak started.
func (s *Store) MarkWebhookEndpointFailed(ctx context.Context, id string, at time.Time) (time.Time, error) {
	var since time.Time
	err := s.pool.QueryRow(ctx, `UPDATE communication.webhook_endpoints SET failing_since = coalesce(failing_since, $2)
		WHERE id = $1 RETURNING failing_since`, id, at).Scan(&since)
	if errors.Is(err, pgx.ErrNoRows) {
		return at, nil // deleted meanwhile
	}
	return since, err
}

// MarkWebhookEndpointSucceeded ends an endpoint's failure streak.
func (s *Store) MarkWebhookEndpointSucceeded(ctx context.Context, id string) error {
	_, err := s.pool.Exec(ctx, `UPDATE communication.webhook_endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL`, id)
	return err
}

// DisableFailingWebhookEndpoint disables an endpoint still enabled whose failure streak started
// at or before streakStart, and reports whether this call disabled it (exactly one caller does).
func (s *Store) DisableFailingWebhookEndpoint(ctx context.Context, id string, streakStart time.Time, reason string, now time.Time) (domain.WebhookEndpoint, bool, error) {
	rows, _ := s.pool.Query(ctx, `UPDATE communication.webhook_endpoints SET enabled = false, disabled_reason = $3, updated_at = $4
		WHERE id = $1 AND enabled AND failing_since <= $2 RETURNING `+endpointCols, id, streakStart, reason, now)
	e, err := pgx.CollectExactlyOneRow(rows, scanEndpoint)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.WebhookEndpoint{}, false, nil
	}
	if err != nil {
		return domain.WebhookEndpoint{}, false, fmt.Errorf("disable webhook endpoint: %w", err)
	}
	return e, true, nil
}

// WebhookOutcome is where a delivery stands after an attempt (Attempt set) or after being put
// off without one (Attempt nil: its endpoint was busy).
type WebhookOutcome struct {
	Delivery      domain.WebhookDelivery // EndpointID, TenantID, EventID, EventType, Payload, Status, RoundAttempts, NextAttemptAt
	Attempt       *domain.WebhookAttempt
	At            time.Time // the delivery's created_at and week: its event's time (webhooks.deliveryTime)
	FiledLate     bool      // At is not its event's time: the eraser looks for it in every week
	AttemptsAdded int
	// Named is the address the delivery's event names, for a new delivery (the retry path leaves
	// it empty).
	Named EventAddress
}

// EventAddress is the address a message event names (data.channel, data.recipient) and when the
// event was published to comms.events.
type EventAddress struct {
	Channel   message.Channel
	Recipient string
	Published time.Time
}

// RecordWebhookOutcomes writes outcomes in one statement: a new delivery is inserted, a known one
// (a retry, or an event fetched again after a crash) updated, and each attempt appended. A
// delivery is known by its tenant, event, endpoint and week (At). Its plan is cached: planning
// the inserts into the partitioned tables cost a tenth of the deliverer's throughput.
//
// A new delivery of an event that names a person being erased, or erased since the event was
// published, is stored without the address (Named), as the eraser leaves the deliveries it
// finds: such an event can reach the deliverer after the eraser has passed its message (a
// backlog on comms.events), and its delivery would otherwise keep the address for good. An event
// published after the erasure finished names no erased address (the message's is gone) unless
// its message came after the erasure, when the person is a recipient again. The erasures that
// can matter (running, or finished since the batch's oldest publication) are read once for the
// batch (usually none) and the deliveries' keyed hashes are looked up among them.
func (s *Store) RecordWebhookOutcomes(ctx context.Context, outs []WebhookOutcome) error {
	key, err := s.recipientHashKey(ctx)
	if err != nil {
		return err
	}
	keyed := hmac.New(sha256.New, key)
	n := len(outs)
	var (
		endpoint, tenant, event, typ, status, resp, errText = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		payload                                             = make([][]byte, n)
		added, round, code, latency                         = make([]int32, n), make([]int32, n), make([]*int32, n), make([]*int32, n)
		next, created, attempted, published                 = make([]*time.Time, n), make([]time.Time, n), make([]*time.Time, n), make([]*time.Time, n)
		late                                                = make([]bool, n)
		rhash                                               = make([]string, n)
	)
	for i, o := range outs {
		d := o.Delivery
		endpoint[i], tenant[i], event[i], typ[i], payload[i], status[i] = d.EndpointID, d.TenantID, d.EventID, d.EventType, d.Payload, string(d.Status)
		added[i], round[i], next[i], created[i], late[i] = int32(o.AttemptsAdded), int32(d.RoundAttempts), d.NextAttemptAt, o.At, o.FiledLate
		if a := o.Named; a.Recipient != "" && (a.Channel == message.SMS || a.Channel == message.Email) {
			rhash[i], published[i] = keyedHash(keyed, d.TenantID, string(a.Channel), message.RecipientKey(a.Channel, a.Recipient)), &a.Published
		}
		if a := o.Attempt; a != nil {
			attempted[i], latency[i], resp[i], errText[i] = &a.At, ptr(int32(a.LatencyMS)), a.Response, a.Error
			if a.StatusCode != 0 {
				code[i] = ptr(int32(a.StatusCode))
			}
		}
	}
	_, err = s.pool.Exec(ctx, `
		WITH o AS (
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::text[], $7::int[], $8::int[],
				$9::timestamptz[], $10::timestamptz[], $11::timestamptz[], $12::int[], $13::int[], $14::text[], $15::text[], $16::bool[],
				$17::text[], $18::timestamptz[])
				WITH ORDINALITY AS o(endpoint_id, tenant_id, event_id, event_type, payload, status, added, round, next_at, created_at,
				                     attempted_at, status_code, latency_ms, response, error, filed_late, rhash, published, ord)
		), erasing AS MATERIALIZED (
			SELECT tenant_id, recipient_hash, status, finished_at FROM communication.erasures
			WHERE status = 'running' OR finished_at >= (SELECT min(published) FROM o)
		), d AS (
			INSERT INTO communication.webhook_deliveries AS d (endpoint_id, tenant_id, event_id, event_type, payload, status, attempts,
				round_attempts, next_attempt_at, last_attempt_at, last_status_code, created_at, filed_late)
			SELECT DISTINCT ON (endpoint_id, event_id) endpoint_id, tenant_id, event_id, event_type,
				CASE WHEN rhash <> '' AND tenant_id IN (SELECT tenant_id FROM erasing) AND EXISTS (SELECT 1 FROM erasing x
					WHERE x.tenant_id = o.tenant_id AND x.recipient_hash = o.rhash AND (x.status = 'running' OR x.finished_at >= o.published))
				THEN `+erasedPayload("payload", namedPattern)+` ELSE payload END, status,
				sum(added) OVER (PARTITION BY endpoint_id, event_id), round, next_at, attempted_at, status_code, created_at, filed_late
			FROM o WHERE EXISTS (SELECT 1 FROM communication.webhook_endpoints e WHERE e.id = o.endpoint_id)
			ORDER BY endpoint_id, event_id, ord DESC -- one row per delivery (the latest), locked in one order
			ON CONFLICT (tenant_id, event_id, endpoint_id, created_at) DO UPDATE SET status = excluded.status, attempts = d.attempts + excluded.attempts,
				round_attempts = excluded.round_attempts, next_attempt_at = excluded.next_attempt_at,
				last_attempt_at = coalesce(excluded.last_attempt_at, d.last_attempt_at),
				last_status_code = CASE WHEN excluded.last_attempt_at IS NULL THEN d.last_status_code ELSE excluded.last_status_code END
			RETURNING d.id, d.tenant_id, d.endpoint_id, d.event_id, d.created_at
		)
		INSERT INTO communication.webhook_attempts (tenant_id, delivery_id, delivery_at, attempted_at, status_code, latency_ms, response, error)
		SELECT d.tenant_id, d.id, d.created_at, o.attempted_at, o.status_code, o.latency_ms, o.response, o.error
		FROM o JOIN d ON d.endpoint_id = o.endpoint_id AND d.event_id = o.event_id AND d.created_at = o.created_at
		WHERE o.attempted_at IS NOT NULL`, cachedPlan,
		endpoint, tenant, event, typ, payload, status, added, round, next, created, attempted, code, latency, resp, errText, late,
		rhash, published)
	if err != nil {
		return fmt.Errorf("record webhook outcomes: %w", err)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// namedPattern is the SQL of the pattern of the address a delivery's event names (its key, every
// character but letters and digits escaped), worked out from its body for the few deliveries
// stored without it: an erased person's.
const namedPattern = `'(?i)' || regexp_replace(communication.recipient_key(
	convert_from(payload, 'UTF8')::jsonb #>> '{data,channel}', convert_from(payload, 'UTF8')::jsonb #>> '{data,recipient}'),
	'([^[:alnum:]])', '\\\1', 'g')`

// ClaimDueWebhookDeliveries takes up to limit pending deliveries due at now, oldest due first,
// and leases them until now+lease: a worker that dies holding them leaves them due again then.
func (s *Store) ClaimDueWebhookDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]domain.WebhookDelivery, error) {
	due, err := s.anyDue(ctx, `SELECT 1 FROM communication.webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $1`, now)
	if err != nil {
		return nil, fmt.Errorf("look for due webhook deliveries: %w", err)
	}
	if !due {
		return nil, nil
	}
	rows, _ := s.pool.Query(ctx, `
		UPDATE communication.webhook_deliveries d SET next_attempt_at = $2
		FROM (SELECT tenant_id, id, created_at FROM communication.webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $1
		      ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) due
		WHERE d.tenant_id = due.tenant_id AND d.id = due.id AND d.created_at = due.created_at
		RETURNING d.id, d.endpoint_id, d.tenant_id, d.event_id, d.event_type, d.payload, d.status, d.attempts, d.round_attempts, d.created_at`,
		now, now.Add(lease), limit)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.WebhookDelivery, error) {
		var d domain.WebhookDelivery
		err := r.Scan(&d.ID, &d.EndpointID, &d.TenantID, &d.EventID, &d.EventType, &d.Payload, &d.Status, &d.Attempts, &d.RoundAttempts, &d.CreatedAt)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("claim webhook deliveries: %w", err)
	}
	return out, nil
}

// ListWebhookDeliveries lists an endpoint's deliveries, newest first, each with its attempts;
// status filters when not empty. The cursor is the last id of the previous page.
func (s *Store) ListWebhookDeliveries(ctx context.Context, tenantID, endpointID, status, cursor string, limit int) ([]domain.WebhookDelivery, string, error) {
	before := int64(1<<63 - 1)
	if cursor != "" {
		n, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil || n < 1 {
			return nil, "", ErrBadCursor
		}
		before = n
	}
	rows, _ := s.pool.Query(ctx, `
		SELECT d.id, d.endpoint_id, d.event_id, d.event_type, d.status, d.attempts, CASE WHEN d.status = 'pending' THEN d.next_attempt_at END, d.created_at,
			coalesce((SELECT jsonb_agg(jsonb_build_object('attempted_at', a.attempted_at, 'status_code', a.status_code,
				'latency_ms', a.latency_ms, 'response', a.response, 'error', a.error) ORDER BY a.id)
				FROM communication.webhook_attempts a WHERE a.tenant_id = d.tenant_id AND a.delivery_id = d.id AND a.delivery_at = d.created_at), '[]')
		FROM communication.webhook_deliveries d
		WHERE d.tenant_id = $1 AND d.endpoint_id = $2 AND d.id < $3 AND ($4 = '' OR d.status = $4)
		ORDER BY d.id DESC LIMIT $5`, tenantID, endpointID, before, status, limit+1)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.WebhookDelivery, error) {
		var d domain.WebhookDelivery
		var log []struct {
			At         time.Time `json:"attempted_at"`
			StatusCode *int      `json:"status_code"`
			LatencyMS  int       `json:"latency_ms"`
			Response   string    `json:"response"`
			Error      string    `json:"error"`
		}
		err := r.Scan(&d.ID, &d.EndpointID, &d.EventID, &d.EventType, &d.Status, &d.Attempts, &d.NextAttemptAt, &d.CreatedAt, &log)
		d.AttemptLog = make([]domain.WebhookAttempt, len(log))
		for i, a := range log {
			d.AttemptLog[i] = domain.WebhookAttempt{At: a.At, LatencyMS: a.LatencyMS, Response: a.Response, Error: a.Error}
			if a.StatusCode != nil {
				d.AttemptLog[i].StatusCode = *a.StatusCode
			}
		}
		return d, err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list webhook deliveries: %w", err)
	}
	out, next := page(out, limit, func(d domain.WebhookDelivery) string { return strconv.FormatInt(d.ID, 10) })
	return out, next, nil
}

// ReplayWebhookDeliveries queues again, due at now, the endpoint's finished deliveries created in
// [since, until) with the status asked for, keeping their event ids, and returns how many it
// queued. A replay asked for before (the same endpoint and filter) queues nothing and reports
// what the first one queued, with repeated set.
func (s *Store) ReplayWebhookDeliveries(ctx context.Context, tenantID, endpointID string, r domain.WebhookReplay, now time.Time) (queued int, repeated bool, err error) {
	until := pgInfinity(r.Until)
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var owned bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM communication.webhook_endpoints WHERE tenant_id = $1 AND id = $2)`,
			tenantID, endpointID).Scan(&owned); err != nil {
			return err
		}
		if !owned {
			return ErrNotFound
		}
		tag, err := tx.Exec(ctx, `INSERT INTO communication.webhook_replays (endpoint_id, since, until, status, queued, created_at)
			VALUES ($1, $2, $3, $4, 0, $5) ON CONFLICT DO NOTHING`, endpointID, r.Since, until, r.Status, now)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			repeated = true
			return tx.QueryRow(ctx, `SELECT queued FROM communication.webhook_replays WHERE endpoint_id = $1 AND since = $2 AND until = $3 AND status = $4`,
				endpointID, r.Since, until, r.Status).Scan(&queued)
		}
		tag, err = tx.Exec(ctx, `UPDATE communication.webhook_deliveries SET status = 'pending', round_attempts = 0, next_attempt_at = $6
			WHERE tenant_id = $1 AND endpoint_id = $2 AND created_at >= $3 AND created_at < $4 AND status <> 'pending'
			  AND ($5 = '' OR status = $5)`, tenantID, endpointID, r.Since, until, r.Status, now)
		if err != nil {
			return err
		}
		queued = int(tag.RowsAffected())
		_, err = tx.Exec(ctx, `UPDATE communication.webhook_replays SET queued = $5 WHERE endpoint_id = $1 AND since = $2 AND until = $3 AND status = $4`,
			endpointID, r.Since, until, r.Status, queued)
		return err
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		err = fmt.Errorf("replay webhook deliveries: %w", err)
	}
	return queued, repeated, err
}

// pgInfinity is t, or PostgreSQL's infinity for an open end.
func pgInfinity(t *time.Time) pgtype.Timestamptz {
	if t == nil {
		return pgtype.Timestamptz{InfinityModifier: pgtype.Infinity, Valid: true}
	}
	return pgtype.Timestamptz{Time: *t, Valid: true}
}

// CountPendingWebhookDeliveries counts the deliveries waiting for an attempt.
func (s *Store) CountPendingWebhookDeliveries(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM communication.webhook_deliveries WHERE status = 'pending'`).Scan(&n)
	return n, err
}
