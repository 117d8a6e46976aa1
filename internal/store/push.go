package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/pkg/event"
	"github.com/logicspike/comms/pkg/message"
)

// encodePush is what a push message keeps beside its title and body (the subject and text).
func encodePush(c *message.PushContent) string {
	x := *c
	x.Title, x.Body = "", ""
	b, _ := json.Marshal(x) // validated content always encodes
	return string(b)
}

// pushContent is a stored push message's content.
func pushContent(subject, text string, extra []byte) *message.PushContent {
	var x message.PushContent
	_ = json.Unmarshal(extra, &x) // written by encodePush, or NULL once purged
	x.Title, x.Body = subject, text
	return &x
}

// PushAttempt names a push message's attempt: the message and the recipient profile whose
// devices it goes to.
type PushAttempt struct {
	TenantID, MessageID, RecipientID string
}

// PushTargets returns, for each attempt, the devices it goes to: its profile's devices that have
// no final delivery of the message yet (sent, failed or removed), and are not expired. One
// statement serves every attempt of a batch (the worker coalesces them): a fan-out runs thousands
// of attempts a second, and one statement each, parsed and planned each time, was most of
// PostgreSQL's work in it. Each attempt's devices are looked up by its profile behind OFFSET 0,
// so the planner keeps them lookups by key rather than joining the batch with all of devices.
func (s *Store) PushTargets(ctx context.Context, attempts []PushAttempt) ([][]domain.Device, error) {
	n := len(attempts)
	tenants, messages, recipients := make([]string, n), make([]string, n), make([]string, n)
	for i, a := range attempts {
		tenants[i], messages[i], recipients[i] = a.TenantID, a.MessageID, a.RecipientID
	}
	rows, _ := s.pool.Query(ctx, `SELECT r.i::int, d.*
		FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS r(tenant_id, message_id, recipient_id, i)
		CROSS JOIN LATERAL (
			SELECT `+deviceCols+` FROM communication.devices d
			WHERE d.tenant_id = r.tenant_id AND d.recipient_id = r.recipient_id AND (d.expires_at IS NULL OR d.expires_at > now())
			  AND NOT EXISTS (SELECT 1 FROM communication.push_deliveries p
			                  WHERE p.tenant_id = r.tenant_id AND p.message_id = r.message_id AND p.device_id = d.id AND p.status <> 'retrying')
			OFFSET 0
		) d
		ORDER BY r.i, d.last_seen_at DESC, d.id`, tenants, messages, recipients)
	out := make([][]domain.Device, n)
	var i int
	var d domain.Device
	_, err := pgx.ForEachRow(rows, []any{&i, &d.ID, &d.RecipientID, &d.Platform, &d.Token, &d.P256DH, &d.Auth, &d.App, &d.ExpiresAt, &d.CreatedAt, &d.LastSeenAt}, func() error {
		out[i-1] = append(out[i-1], d)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("push targets of %d messages: %w", n, err)
	}
	return out, nil
}

// PushRecord is an attempt's deliveries of a push message, one per device it went to.
type PushRecord struct {
	PushAttempt
	Deliveries []domain.PushDelivery
}

// RecordPushDeliveries records the deliveries of each attempt (a final one is never
// overwritten) and returns, for each, all its message's deliveries after it: one statement for a
// batch of attempts (see PushTargets). A delivery with status removed also removes its device and
// emits comms.device.removed, once a device. Two attempts of one message in a batch (a stale one
// beside its successor) make the statement fail with a cardinality violation, which the worker's
// batcher isolates by running them apart.
func (s *Store) RecordPushDeliveries(ctx context.Context, recs []PushRecord) ([][]domain.PushDelivery, error) {
	var (
		tenant, msg, device, platform, cfg, typ, status, ref, code, errMsg []string
		attempt                                                            []int32
		removed                                                            [][]byte
	)
	for _, r := range recs {
		for _, d := range r.Deliveries {
			tenant, msg, device, platform = append(tenant, r.TenantID), append(msg, r.MessageID), append(device, d.DeviceID), append(platform, string(d.Platform))
			cfg, typ, status, ref = append(cfg, d.ProviderConfigID), append(typ, d.ProviderType), append(status, d.Status), append(ref, d.ProviderMessageID)
			code, errMsg, attempt = append(code, d.ErrorCode), append(errMsg, d.ErrorMessage), append(attempt, int32(d.Attempt))
			var data []byte // the event's data, for a device reported gone
			if d.Status == domain.DeliveryRemoved {
				data, _ = json.Marshal(map[string]any{"recipient_id": r.RecipientID, "reason": d.ErrorMessage,
					"device": event.Device{ID: d.DeviceID, Platform: string(d.Platform), MessageID: r.MessageID,
						Provider: &event.Provider{Type: d.ProviderType, ConfigID: d.ProviderConfigID}}})
			}
			removed = append(removed, data)
		}
	}
	n := len(recs)
	tenants, messages := make([]string, n), make([]string, n)
	for i, r := range recs {
		tenants[i], messages[i] = r.TenantID, r.MessageID
	}
	// The statement's snapshot predates its own writes: the rows it inserted or updated come from
	// RETURNING, the others (final deliveries of earlier attempts) from the table.
	rows, _ := s.pool.Query(ctx, `
		WITH d AS (
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::int[], $12::jsonb[])
			AS d(tenant_id, message_id, device_id, platform, cfg, typ, status, ref, code, msg, attempt, removed)
		), put AS (
			INSERT INTO communication.push_deliveries AS p (tenant_id, message_id, device_id, platform, provider_config_id, provider_type,
				status, provider_message_id, error_code, error_message, attempt)
			SELECT tenant_id, message_id, device_id, platform, cfg, typ, status, ref, code, msg, attempt FROM d
			ON CONFLICT (tenant_id, message_id, device_id) DO UPDATE SET provider_config_id = excluded.provider_config_id,
				provider_type = excluded.provider_type, status = excluded.status, provider_message_id = excluded.provider_message_id,
				error_code = excluded.error_code, error_message = excluded.error_message, attempt = excluded.attempt, updated_at = now()
			WHERE p.status = 'retrying'
			RETURNING p.*
		), gone AS (
			DELETE FROM communication.devices v USING d
			WHERE d.removed IS NOT NULL AND v.tenant_id = d.tenant_id AND v.id = d.device_id
			RETURNING v.tenant_id, v.id
		), announced AS (
			-- one event a device actually removed: removed already (by the tenant, or by another
			-- message's delivery), it was announced then
			INSERT INTO communication.account_events (tenant_id, type, subject, data)
			SELECT DISTINCT ON (g.tenant_id, g.id) g.tenant_id, $15, g.id, d.removed
			FROM gone g JOIN d ON d.tenant_id = g.tenant_id AND d.device_id = g.id AND d.removed IS NOT NULL
			ORDER BY g.tenant_id, g.id
		)
		SELECT r.i::int, `+pushDeliveryCols+` FROM unnest($13::text[], $14::text[]) WITH ORDINALITY AS r(tenant_id, message_id, i)
		JOIN put p ON p.tenant_id = r.tenant_id AND p.message_id = r.message_id
		UNION ALL
		SELECT r.i::int, `+pushDeliveryCols+` FROM unnest($13::text[], $14::text[]) WITH ORDINALITY AS r(tenant_id, message_id, i)
		CROSS JOIN LATERAL (
			SELECT * FROM communication.push_deliveries p WHERE p.tenant_id = r.tenant_id AND p.message_id = r.message_id OFFSET 0
		) p
		WHERE NOT EXISTS (SELECT 1 FROM put WHERE put.tenant_id = p.tenant_id AND put.message_id = p.message_id AND put.device_id = p.device_id)
		ORDER BY 1, 2`,
		tenant, msg, device, platform, cfg, typ, status, ref, code, errMsg, attempt, removed, tenants, messages, event.DeviceRemoved)
	out := make([][]domain.PushDelivery, n)
	var i int
	var d domain.PushDelivery
	_, err := pgx.ForEachRow(rows, []any{&i, &d.DeviceID, &d.Platform, &d.ProviderConfigID, &d.ProviderType, &d.Status, &d.ProviderMessageID,
		&d.ErrorCode, &d.ErrorMessage, &d.Attempt, &d.UpdatedAt}, func() error {
		out[i-1] = append(out[i-1], d)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record the push deliveries of %d messages: %w", n, err)
	}
	return out, nil
}

// pushDeliveryCols are a delivery's columns, in the order the scans read them.
const pushDeliveryCols = `p.device_id, p.platform, p.provider_config_id, p.provider_type, p.status, p.provider_message_id,
	p.error_code, p.error_message, p.attempt, p.updated_at`

// PushDeliveries lists a push message's deliveries, by device.
func (s *Store) PushDeliveries(ctx context.Context, tenantID, messageID string) ([]domain.PushDelivery, error) {
	out, err := s.pushDeliveries(ctx, s.pool, tenantID, messageID)
	if err != nil {
		return nil, fmt.Errorf("push deliveries of %s: %w", messageID, err)
	}
	return out, nil
}

func (s *Store) pushDeliveries(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, tenantID, messageID string) ([]domain.PushDelivery, error) {
	rows, _ := q.Query(ctx, `SELECT `+pushDeliveryCols+`
		FROM communication.push_deliveries p WHERE tenant_id = $1 AND message_id = $2 ORDER BY device_id`, tenantID, messageID)
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.PushDelivery, error) {
		var d domain.PushDelivery
		err := r.Scan(&d.DeviceID, &d.Platform, &d.ProviderConfigID, &d.ProviderType, &d.Status, &d.ProviderMessageID,
			&d.ErrorCode, &d.ErrorMessage, &d.Attempt, &d.UpdatedAt)
		return d, err
	})
}
