package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/logicspike/comms/pkg/message"
)

// Ref names one message of one tenant.
type Ref struct {
	TenantID string
	ID       string
}

// Claimed is a message a worker now owns for one attempt, until its lease expires.
type Claimed struct {
	message.Message
	// Attempt is this claim's attempt number: the fencing token FinishAttempts checks, so a worker
	// whose lease expired cannot overwrite the outcome of the attempt that replaced it.
	Attempt int
	// AttemptBase and RetrySince start the retry budget: attempts above AttemptBase, time since
	// RetrySince (created_at until a replay restarts it).
	AttemptBase int
	RetrySince  time.Time
}

// ClaimMessages moves each message that is queued, or sending with an expired lease, to sending
// with a new lease, records a sending event, and returns the messages claimed. A message in any
// other state is not returned: that is what stops a redelivered intent from being sent twice.
func (s *Store) ClaimMessages(ctx context.Context, refs []Ref, lease time.Duration) ([]Claimed, error) {
	tenants, msgIDs := splitRefs(refs)
	times := madeTimes(msgIDs)
	lo, hi := timeBounds(times)
	out, err := inWeek("message_logs", times, func(tbl string) ([]Claimed, error) {
		return collectAfter(ctx, s, replannedByKey, scanClaimed, claimIn(tbl), tenants, msgIDs, lease, times, lo, hi)
	})
	if err != nil {
		return nil, fmt.Errorf("claim %d messages: %w", len(refs), err)
	}
	return out, nil
}

func scanClaimed(r pgx.CollectableRow) (Claimed, error) {
	var (
		row messageRow
		c   Claimed
	)
	err := r.Scan(append(row.dest(), &c.Attempt, &c.AttemptBase, &c.RetrySince)...)
	c.Message = row.message()
	return c, err
}

// claimIn is the claim's statement on tbl, message_logs or the week's partition (inWeek).
func claimIn(tbl string) string {
	return `
		WITH target AS MATERIALIZED (
			-- Each message is looked up by primary key (its time is its id's, madeTimes) in its
			-- week's partition, which $5 and $6 (timeBounds) bound for the planner: the lateral
			-- subquery behind OFFSET 0 is never merged into a join, so no plan, generic or not,
			-- can trade the lookups for a scan of message_logs. Rows are locked as the outer loop
			-- reaches them, in id order, so that concurrent claims of overlapping batches cannot
			-- deadlock.
			SELECT r.tenant_id, m.id, m.created_at FROM (SELECT * FROM unnest($1::text[], $2::text[], $4::timestamptz[]) AS r(tenant_id, id, at) ORDER BY id) r
			CROSS JOIN LATERAL (
				SELECT l.id, l.created_at FROM ` + tbl + ` l
				WHERE l.tenant_id = r.tenant_id AND l.id = r.id AND l.created_at = r.at AND l.created_at BETWEEN $5 AND $6
				  -- a message waiting for a retry is not claimable before its time (1 s of clock
				  -- skew between the retry scheduler and the database is tolerated)
				  AND ((l.status = 'queued' AND (l.next_attempt_at IS NULL OR l.next_attempt_at <= now() + interval '1 second'))
				    OR (l.status = 'sending' AND l.lease_expires_at < now()))
				FOR UPDATE OFFSET 0
			) m
		), c AS (
			UPDATE ` + tbl + ` m
			SET status = 'sending', attempts = attempts + 1, lease_expires_at = now() + $3::interval, next_attempt_at = NULL, updated_at = now()
			FROM target WHERE m.tenant_id = target.tenant_id AND m.id = target.id AND m.created_at = target.created_at AND m.created_at BETWEEN $5 AND $6
			RETURNING m.*
		), ev AS (
			INSERT INTO communication.message_events (message_id, tenant_id, message_at, status, attempt, source)
			SELECT id, tenant_id, created_at, 'sending', attempts, 'internal' FROM c
		)
		SELECT ` + messageCols + `, attempts, attempt_base, coalesce(retry_since, created_at) FROM c`
}

// RetryDue reports when the message's next attempt is due, if it is queued waiting for a retry
// after attempts attempts and that time is still ahead (more than the claim's 1 s of tolerated
// skew). Any other state (sent, being attempted, a newer retry) answers false: an intent for it
// is a duplicate.
func (s *Store) RetryDue(ctx context.Context, ref Ref, attempts int) (time.Time, bool, error) {
	var due time.Time
	err := s.pool.QueryRow(ctx, `
		SELECT next_attempt_at FROM communication.message_logs
		WHERE tenant_id = $2 AND id = $1 AND `+madeAt("created_at", "$1")+` AND status = 'queued' AND attempts = $3
		  AND next_attempt_at > now() + interval '1 second'`, ref.ID, ref.TenantID, attempts).Scan(&due)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return time.Time{}, false, nil
	case err != nil:
		return time.Time{}, false, fmt.Errorf("look up the retry time of %s: %w", ref.ID, err)
	}
	return due, true, nil
}

// MarkPublished records that these messages' intents reached comms.send, so the sweeper leaves them.
func (s *Store) MarkPublished(ctx context.Context, refs []Ref) error {
	tenants, msgIDs := splitRefs(refs)
	// Lock first, skipping rows locked by their final outcome (about to be deleted), then update
	// only the rows locked: this statement never waits on a lock, so it cannot deadlock with the
	// outcome batches that delete rows in another order. One statement, so one round trip.
	// Its commit does not wait for the WAL to reach the disk (synchronous_commit off for this
	// statement's transaction only): a mark lost to a database crash only makes the sweeper
	// publish the intent again, and each of these flushes queued behind the commits that matter.
	_, err := s.pool.Exec(ctx, `
		WITH async AS (
			SELECT set_config('synchronous_commit', 'off', true)
		), locked AS MATERIALIZED (
			-- one primary-key lookup per message, behind OFFSET 0 (see ClaimMessages): no plan may
			-- read the unpublished outbox instead, which holds every retry waiting for its time
			SELECT q.message_id FROM unnest($1::text[], $2::text[]) AS r(tenant_id, id)
			CROSS JOIN LATERAL (
				SELECT q.message_id, q.tenant_id FROM communication.dispatch_queue q
				WHERE q.message_id = r.id AND q.published_at IS NULL
				FOR UPDATE SKIP LOCKED OFFSET 0
			) q
			WHERE q.tenant_id = r.tenant_id
		)
		UPDATE communication.dispatch_queue d SET published_at = now()
		FROM locked, async WHERE d.message_id = locked.message_id`, cachedPlan, tenants, msgIDs)
	if err != nil {
		return fmt.Errorf("mark %d messages published: %w", len(refs), err)
	}
	return nil
}

// Stranded is a message the sweeper re-publishes.
type Stranded struct {
	Ref
	Channel       message.Channel
	Attempts      int
	NextAttemptAt *time.Time // a retry's time: the intent must not be attempted before it
}

// SweepUnpublished finds up to limit queued messages never published for longer than grace (the
// broker was down, the publisher's queue was full, the process died after the commit). It uses a
// partial index, so its cost does not grow with a backlog of published messages.
func (s *Store) SweepUnpublished(ctx context.Context, grace time.Duration, limit int, publish func(context.Context, []Stranded) error) (int, error) {
	due, err := s.anyDue(ctx, `SELECT 1 FROM communication.dispatch_queue WHERE published_at IS NULL AND created_at < now() - $1::interval`, grace)
	if err != nil {
		return 0, fmt.Errorf("look for unpublished messages: %w", err)
	}
	if !due {
		return 0, nil
	}
	return s.sweep(ctx, `
		SELECT d.tenant_id, d.message_id, m.channel, m.attempts, m.next_attempt_at
		FROM communication.dispatch_queue d
		JOIN communication.message_logs m ON m.tenant_id = d.tenant_id AND m.id = d.message_id AND `+madeAt("m.created_at", "d.message_id")+`
		WHERE d.published_at IS NULL AND d.created_at < now() - $1::interval AND m.status = 'queued'
		ORDER BY d.created_at LIMIT $2 FOR UPDATE OF d SKIP LOCKED`, publish, grace, limit)
}

// SweepLost re-publishes, looking through one page of the outbox (the pageSize entries after the
// message id after, in id order), the messages whose intent may be lost:
//   - left in sending after their worker's lease expired (the worker crashed or was cut off
//     mid-attempt) and not re-published since;
//   - queued, due (their next attempt's time, or their creation for one never attempted) for
//     longer than lostAfter, and not published for as long: an intent that should have been
//     claimed by then was dropped somewhere, by a bug or an operator.
//
// It returns how many it re-published and where the next page starts: "" once the page reached
// the end of the outbox, so that the next call starts again from the beginning. A duplicate intent
// costs a refused claim; a lost one would strand the message for ever.
//
// Paged because the outbox holds every unfinished message, a failing provider's whole backlog
// included: walking it whole at once is a burst of PostgreSQL's CPU that every other tenant's
// statements queue behind.
//
// No index serves it on purpose: one on lease_expires_at or status would make every claim and
// outcome update non-HOT (migration 0008). So the outbox drives, and each of its messages is
// looked up by primary key in its day's partition: the lateral subquery with OFFSET 0 is not
// merged into a join, so the planner cannot trade the lookups for a scan of message_logs,
// whatever its statistics say.
func (s *Store) SweepLost(ctx context.Context, after string, pageSize int, lostAfter time.Duration, publish func(context.Context, []Stranded) error) (n int, next string, err error) {
	var (
		last *string
		size int
	)
	if err := s.pool.QueryRow(ctx, `
		SELECT max(message_id), count(*) FROM (
			SELECT message_id FROM communication.dispatch_queue WHERE message_id > $1 ORDER BY message_id LIMIT $2
		) page`, after, pageSize).Scan(&last, &size); err != nil {
		return 0, "", fmt.Errorf("page the outbox after %q: %w", after, err)
	}
	if last == nil {
		return 0, "", nil
	}
	n, err = s.sweep(ctx, `
		SELECT d.tenant_id, d.message_id, m.channel, m.attempts,
		       CASE WHEN m.status = 'queued' THEN m.next_attempt_at END
		FROM communication.dispatch_queue d
		CROSS JOIN LATERAL (
			SELECT l.tenant_id, l.channel, l.attempts, l.status, l.lease_expires_at, l.next_attempt_at, l.created_at
			FROM communication.message_logs l
			WHERE l.tenant_id = d.tenant_id AND l.id = d.message_id AND `+madeAt("l.created_at", "d.message_id")+` OFFSET 0
		) m
		WHERE d.message_id > $1 AND d.message_id <= $2
		  AND ((m.status = 'sending' AND m.lease_expires_at < now()
		        AND (d.published_at IS NULL OR d.published_at < m.lease_expires_at))
		    OR (m.status = 'queued' AND d.published_at < now() - $3::interval
		        AND coalesce(m.next_attempt_at, m.created_at) < now() - $3::interval))
		FOR UPDATE OF d SKIP LOCKED`, publish, after, *last, lostAfter)
	if size < pageSize {
		return n, "", err
	}
	return n, *last, err
}

// sweep locks the rows query finds (SKIP LOCKED, so concurrent sweepers share the work), calls
// publish with them while holding the locks, and marks them published only if publish succeeds.
func (s *Store) sweep(ctx context.Context, query string, publish func(context.Context, []Stranded) error, args ...any) (int, error) {
	var n int
	err := s.keyedTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Stranded, error) {
			var st Stranded
			err := r.Scan(&st.TenantID, &st.ID, &st.Channel, &st.Attempts, &st.NextAttemptAt)
			return st, err
		})
		if err != nil || len(found) == 0 {
			return err
		}
		if err := publish(ctx, found); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		refs := make([]Ref, len(found))
		for i, f := range found {
			refs[i] = f.Ref
		}
		tenants, msgIDs := splitRefs(refs)
		_, err = tx.Exec(ctx, `
			UPDATE communication.dispatch_queue d SET published_at = now()
			FROM unnest($1::text[], $2::text[]) AS r(tenant_id, id)
			WHERE d.message_id = r.id AND d.tenant_id = r.tenant_id`, tenants, msgIDs)
		n = len(found)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sweep stranded messages: %w", err)
	}
	return n, nil
}

// DeleteExpiredIdempotencyKeys removes up to limit keys older than ttl, after which a key may be
// used again, and returns how many it removed.
func (s *Store) DeleteExpiredIdempotencyKeys(ctx context.Context, ttl time.Duration, limit int) (int, error) {
	tag, err := s.pool.Exec(ctx, `
		DELETE FROM communication.idempotency_keys WHERE ctid IN (
			SELECT ctid FROM communication.idempotency_keys WHERE created_at < now() - $1::interval LIMIT $2)`,
		ttl, limit)
	if err != nil {
		return 0, fmt.Errorf("delete expired idempotency keys: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

func splitRefs(refs []Ref) (tenants, ids []string) {
	tenants, ids = make([]string, len(refs)), make([]string, len(refs))
	for i, r := range refs {
		tenants[i], ids[i] = r.TenantID, r.ID
	}
	return tenants, ids
}

// ForgetPublished marks every unfinished message unpublished, so the sweeper publishes it again. The
// dev runner calls it at start-up because its embedded broker forgets everything on exit.
func (s *Store) ForgetPublished(ctx context.Context) (int, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE communication.dispatch_queue SET published_at = NULL WHERE published_at IS NOT NULL`)
	if err != nil {
		return 0, fmt.Errorf("forget published: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
