package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/logicspike/comms/pkg/message"
)

// Due is a scheduled message whose time came: queued now, to be published.
type Due struct {
	Ref
	Channel  message.Channel
	Category message.Category
}

// ReleaseDue queues up to limit scheduled messages whose time has come, oldest first: each moves
// to queued with its event and enters the outbox (so the sweeper publishes it if the caller
// cannot). Several replicas may call it at once: due rows are locked with SKIP LOCKED. A row whose
// message was canceled meanwhile is dropped without queuing anything.
func (s *Store) ReleaseDue(ctx context.Context, limit int) ([]Due, error) {
	out, err := collectByKey(ctx, s, func(r pgx.CollectableRow) (Due, error) {
		var d Due
		err := r.Scan(&d.ID, &d.TenantID, &d.Channel, &d.Category)
		return d, err
	}, `
		WITH due AS (
			SELECT message_id, tenant_id FROM communication.schedule
			WHERE due_at <= now() ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED
		), gone AS (
			DELETE FROM communication.schedule s USING due WHERE s.message_id = due.message_id
		), m AS (
			UPDATE communication.message_logs l SET status = 'queued', updated_at = now()
			FROM due WHERE l.tenant_id = due.tenant_id AND l.id = due.message_id AND `+madeAt("l.created_at", "due.message_id")+`
			  AND l.status = 'scheduled'
			RETURNING l.id, l.tenant_id, l.created_at, l.channel, l.category
		), ev AS (
			INSERT INTO communication.message_events (message_id, tenant_id, message_at, status, source)
			SELECT id, tenant_id, created_at, 'queued', 'internal' FROM m
		), outbox AS (
			INSERT INTO communication.dispatch_queue (message_id, tenant_id, created_at)
			SELECT id, tenant_id, now() FROM m
		)
		SELECT id, tenant_id, channel, category FROM m`, limit)
	if err != nil {
		return nil, fmt.Errorf("release due messages: %w", err)
	}
	return out, nil
}

// ErrNotScheduled is returned when canceling a message that is no longer scheduled.
var ErrNotScheduled = errors.New("the message is not scheduled")

// CancelScheduled cancels tenantID's scheduled message id, with its event. Racing ReleaseDue, the
// row lock on the message decides: exactly one of them changes it. Errors: ErrNotFound,
// ErrNotScheduled (with the message's current status).
func (s *Store) CancelScheduled(ctx context.Context, tenantID, id string) (message.Status, error) {
	var (
		status   message.Status
		canceled bool
	)
	err := s.pool.QueryRow(ctx, `
		WITH m AS (
			UPDATE communication.message_logs SET status = 'canceled', updated_at = now()
			WHERE tenant_id = $1 AND id = $2 AND `+madeAt("created_at", "$2")+` AND status = 'scheduled'
			RETURNING id, tenant_id, created_at
		), ev AS (
			INSERT INTO communication.message_events (message_id, tenant_id, message_at, status, source, reason)
			SELECT id, tenant_id, created_at, 'canceled', 'internal', 'canceled through the API' FROM m
		)
		SELECT 'canceled', true FROM m
		UNION ALL
		SELECT status, false FROM communication.message_logs
		WHERE tenant_id = $1 AND id = $2 AND `+madeAt("created_at", "$2")+` AND NOT EXISTS (SELECT 1 FROM m)`,
		tenantID, id).Scan(&status, &canceled)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", ErrNotFound
	case err != nil:
		return "", fmt.Errorf("cancel message %s: %w", id, err)
	case !canceled:
		return status, ErrNotScheduled
	}
	return status, nil
}
