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

// RecordPushDelivery records a push message's delivery to one device. A delivery with status
// removed also removes the device and emits comms.device.removed, in the same transaction.
func (s *Store) RecordPushDelivery(ctx context.Context, tenantID, messageID, recipientID string, d domain.PushDelivery) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO communication.push_deliveries AS p (tenant_id, message_id, device_id, platform, provider_config_id, provider_type,
				status, provider_message_id, error_code, error_message, attempt)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
			ON CONFLICT (tenant_id, message_id, device_id) DO UPDATE SET provider_config_id = excluded.provider_config_id,
				provider_type = excluded.provider_type, status = excluded.status, provider_message_id = excluded.provider_message_id,
				error_code = excluded.error_code, error_message = excluded.error_message, attempt = excluded.attempt, updated_at = now()
			WHERE p.status = 'retrying'`,
			tenantID, messageID, d.DeviceID, d.Platform, d.ProviderConfigID, d.ProviderType, d.Status, d.ProviderMessageID,
			d.ErrorCode, d.ErrorMessage, d.Attempt); err != nil {
			return err
		}
		if d.Status != domain.DeliveryRemoved {
			return nil
		}
		tag, err := tx.Exec(ctx, `DELETE FROM communication.devices WHERE tenant_id = $1 AND id = $2`, tenantID, d.DeviceID)
		if err != nil || tag.RowsAffected() == 0 {
			return err // removed already, by the tenant or another message's delivery: said once
		}
		data, _ := json.Marshal(map[string]any{"recipient_id": recipientID, "reason": d.ErrorMessage,
			"device": event.Device{ID: d.DeviceID, Platform: string(d.Platform), MessageID: messageID,
				Provider: &event.Provider{Type: d.ProviderType, ConfigID: d.ProviderConfigID}}})
		_, err = tx.Exec(ctx, `INSERT INTO communication.account_events (tenant_id, type, subject, data) VALUES ($1, $2, $3, $4)`,
			tenantID, event.DeviceRemoved, d.DeviceID, data)
		return err
	})
	if err != nil {
		return fmt.Errorf("record the push delivery of %s to %s: %w", messageID, d.DeviceID, err)
	}
	return nil
}

// PushDeliveries lists a push message's deliveries, by device.
func (s *Store) PushDeliveries(ctx context.Context, tenantID, messageID string) ([]domain.PushDelivery, error) {
	rows, _ := s.pool.Query(ctx, `SELECT device_id, platform, provider_config_id, provider_type, status, provider_message_id,
			error_code, error_message, attempt, updated_at
		FROM communication.push_deliveries WHERE tenant_id = $1 AND message_id = $2 ORDER BY device_id`, tenantID, messageID)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.PushDelivery, error) {
		var d domain.PushDelivery
		err := r.Scan(&d.DeviceID, &d.Platform, &d.ProviderConfigID, &d.ProviderType, &d.Status, &d.ProviderMessageID,
			&d.ErrorCode, &d.ErrorMessage, &d.Attempt, &d.UpdatedAt)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("push deliveries of %s: %w", messageID, err)
	}
	return out, nil
}
