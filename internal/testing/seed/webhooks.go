package seed

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/events"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/ids"
)

// deliverHotTenantsEvents gives tenant an endpoint for every event type and writes what the
// deliverer leaves for each of its events that the publisher publishes: a succeeded delivery
// holding the CloudEvent as sent (events.Build), filed under the event's time, and its one
// attempt. The endpoint is disabled, so a stack run on the seed delivers nothing to it: its secret
// is not a sealed one. It returns how many deliveries it wrote.
func deliverHotTenantsEvents(ctx context.Context, pool *pgxpool.Pool, tenant string) (int64, error) {
	ep, err := store.New(pool).CreateWebhookEndpoint(ctx, domain.WebhookEndpoint{ID: ids.New(ids.Endpoint), TenantID: tenant,
		URL: "https://hooks.seed.example/comms", Description: "seed", EventTypes: []string{}, KeyVersion: "v1", Sealed: []byte{0}}, time.Now())
	if err != nil {
		return 0, fmt.Errorf("seed: webhook endpoint: %w", err)
	}
	read, err := pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("seed: %w", err)
	}
	defer read.Release()
	rows, err := read.Query(ctx, `
		SELECT e.id, e.message_id, e.status, e.source, e.attempt, coalesce(e.provider_config_id, ''), e.provider_type, e.error_code,
		       e.reason, e.occurred_at, m.channel, m.recipient, m.category, coalesce(m.template_key, '')
		FROM communication.message_events e JOIN communication.message_logs m
		  ON m.tenant_id = e.tenant_id AND m.id = e.message_id AND m.created_at = e.message_at
		WHERE e.tenant_id = $1`, tenant)
	if err != nil {
		return 0, fmt.Errorf("seed: read the events to deliver: %w", err)
	}
	defer rows.Close()
	write, err := pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("seed: %w", err)
	}
	defer write.Release()
	n, err := write.Conn().CopyFrom(ctx, pgx.Identifier{"communication", "webhook_deliveries"},
		[]string{"endpoint_id", "tenant_id", "event_id", "event_type", "payload", "status", "attempts", "round_attempts",
			"next_attempt_at", "last_attempt_at", "last_status_code", "created_at", "filed_late"},
		pgx.CopyFromFunc(func() ([]any, error) {
			for rows.Next() {
				r := store.OutboxEvent{TenantID: tenant}
				if err := rows.Scan(&r.ID, &r.MessageID, &r.Status, &r.Source, &r.Attempt, &r.ConfigID, &r.ProviderType, &r.ErrorCode,
					&r.Reason, &r.At, &r.Channel, &r.Recipient, &r.Category, &r.TemplateKey); err != nil {
					return nil, err
				}
				ev, ok := events.Build(r)
				if !ok {
					continue // not published: no delivery
				}
				payload, err := json.Marshal(ev)
				if err != nil {
					return nil, err
				}
				at := r.At.Truncate(time.Microsecond)
				return []any{ep.ID, tenant, ev.ID, ev.Type, payload, "succeeded", 1, 1, at, at, 204, at, false}, nil
			}
			return nil, rows.Err()
		}))
	if err != nil {
		return 0, fmt.Errorf("seed: copy webhook deliveries: %w", err)
	}
	if _, err := write.Exec(ctx, `
		INSERT INTO communication.webhook_attempts (tenant_id, delivery_id, delivery_at, attempted_at, status_code, latency_ms)
		SELECT tenant_id, id, created_at, created_at, 204, 40 FROM communication.webhook_deliveries WHERE endpoint_id = $1`, ep.ID); err != nil {
		return 0, fmt.Errorf("seed: webhook attempts: %w", err)
	}
	return n, nil
}
