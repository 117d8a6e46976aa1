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

// PushTargets returns the devices a push message's attempt goes to: its profile's devices that
// have no final delivery of it yet (sent, failed or removed), and are not expired.
func (s *Store) PushTargets(ctx context.Context, tenantID, messageID, recipientID string) ([]domain.Device, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+deviceCols+` FROM communication.devices d
		WHERE d.tenant_id = $1 AND d.recipient_id = $2 AND (d.expires_at IS NULL OR d.expires_at > now())
		  AND NOT EXISTS (SELECT 1 FROM communication.push_deliveries p
		                  WHERE p.tenant_id = $1 AND p.message_id = $3 AND p.device_id = d.id AND p.status <> 'retrying')
		ORDER BY d.last_seen_at DESC, d.id`, tenantID, recipientID, messageID)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Device, error) { return scanDevice(r) })
	if err != nil {
		return nil, fmt.Errorf("push targets of %s: %w", messageID, err)
	}
	return out, nil
}

// RecordPushDeliveries records an attempt's deliveries of a push message (a final one is never
// overwritten) and returns all the message's deliveries after it, in one transaction. A delivery
// with status removed also removes its device and emits comms.device.removed, once a device.
func (s *Store) RecordPushDeliveries(ctx context.Context, tenantID, messageID, recipientID string, ds []domain.PushDelivery) ([]domain.PushDelivery, error) {
	n := len(ds)
	var (
		device, platform, cfg, typ, status, ref, code, msg = make([]string, n), make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		attempt = make([]int32, n)
		removed []string
		events  [][]byte
	)
	for i, d := range ds {
		device[i], platform[i], cfg[i], typ[i], status[i], ref[i], code[i], msg[i], attempt[i] = d.DeviceID, string(d.Platform),
			d.ProviderConfigID, d.ProviderType, d.Status, d.ProviderMessageID, d.ErrorCode, d.ErrorMessage, int32(d.Attempt)
		if d.Status == domain.DeliveryRemoved {
			data, _ := json.Marshal(map[string]any{"recipient_id": recipientID, "reason": d.ErrorMessage,
				"device": event.Device{ID: d.DeviceID, Platform: string(d.Platform), MessageID: messageID,
					Provider: &event.Provider{Type: d.ProviderType, ConfigID: d.ProviderConfigID}}})
			removed, events = append(removed, d.DeviceID), append(events, data)
		}
	}
	var out []domain.PushDelivery
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO communication.push_deliveries AS p (tenant_id, message_id, device_id, platform, provider_config_id, provider_type,
				status, provider_message_id, error_code, error_message, attempt)
			SELECT $1, $2, d.* FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::int[]) AS d
			ON CONFLICT (tenant_id, message_id, device_id) DO UPDATE SET provider_config_id = excluded.provider_config_id,
				provider_type = excluded.provider_type, status = excluded.status, provider_message_id = excluded.provider_message_id,
				error_code = excluded.error_code, error_message = excluded.error_message, attempt = excluded.attempt, updated_at = now()
			WHERE p.status = 'retrying'`,
			tenantID, messageID, device, platform, cfg, typ, status, ref, code, msg, attempt); err != nil {
			return err
		}
		if len(removed) > 0 {
			// One event a device actually removed: removed already (by the tenant, or by another
			// message's delivery), it was announced then.
			if _, err := tx.Exec(ctx, `
				WITH gone AS (
					DELETE FROM communication.devices WHERE tenant_id = $1 AND id = ANY($2) RETURNING id
				)
				INSERT INTO communication.account_events (tenant_id, type, subject, data)
				SELECT $1, $3, r.id, r.data FROM unnest($2::text[], $4::jsonb[]) AS r(id, data) JOIN gone USING (id)`,
				tenantID, removed, event.DeviceRemoved, events); err != nil {
				return err
			}
		}
		var err error
		out, err = s.pushDeliveries(ctx, tx, tenantID, messageID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("record the push deliveries of %s: %w", messageID, err)
	}
	return out, nil
}

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
	rows, _ := q.Query(ctx, `SELECT device_id, platform, provider_config_id, provider_type, status, provider_message_id,
			error_code, error_message, attempt, updated_at
		FROM communication.push_deliveries WHERE tenant_id = $1 AND message_id = $2 ORDER BY device_id`, tenantID, messageID)
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.PushDelivery, error) {
		var d domain.PushDelivery
		err := r.Scan(&d.DeviceID, &d.Platform, &d.ProviderConfigID, &d.ProviderType, &d.Status, &d.ProviderMessageID,
			&d.ErrorCode, &d.ErrorMessage, &d.Attempt, &d.UpdatedAt)
		return d, err
	})
}
