package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// Inbound is a message a person sent to one of a tenant's numbers, to record.
type Inbound struct {
	TenantID, ConfigID, ProviderType string
	Message                          provider.InboundMessage
	// Keyword is what the text asks of the sender's subscription (message.SMSKeyword): "stop"
	// suppresses them on SMS, "start" lifts a stop, "help" changes nothing.
	Keyword string
}

// RecordInbound stores in as a received inbound SMS (direction inbound, its sender as the
// message's recipient, its text as the body) with its received event, which publishes
// comms.message.received, and applies its keyword, in one transaction. A message recorded
// before (the provider retrying) changes nothing: its id comes back with dup true.
func (s *Store) RecordInbound(ctx context.Context, in Inbound) (id string, dup bool, err error) {
	id = ids.NewSortable(ids.Message)
	at := madeTimes([]string{id})[0]
	m := in.Message
	meta := []byte("{}")
	if in.Keyword != "" {
		meta, _ = json.Marshal(map[string]string{"keyword": in.Keyword})
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// the provider's message id, once per config: a key no client can send (it has spaces)
		key := "inbound " + in.ConfigID + " " + m.ProviderMessageID
		tag, err := tx.Exec(ctx, `INSERT INTO communication.idempotency_keys (tenant_id, key, message_id, request_hash)
			VALUES ($1, $2, $3, ''::bytea) ON CONFLICT (tenant_id, key) DO NOTHING`, in.TenantID, key, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			dup = true
			return tx.QueryRow(ctx, `SELECT message_id FROM communication.idempotency_keys WHERE tenant_id = $1 AND key = $2`,
				in.TenantID, key).Scan(&id)
		}
		if _, err := tx.Exec(ctx, `
			WITH msg AS (
				INSERT INTO communication.message_logs (id, tenant_id, created_at, channel, direction, recipient, sender, body_text,
					metadata, status, provider_config_id, provider_type, provider_message_id)
				VALUES ($1, $2, $3, 'sms', 'inbound', $4, $5, $6, $7, 'received', $8, $9, $10)
			)
			INSERT INTO communication.message_events (message_id, tenant_id, message_at, status, source, provider_config_id, provider_type, payload)
			VALUES ($1, $2, $3, 'received', 'provider', $8, $9, $11)`,
			id, in.TenantID, at, m.From, m.To, m.Text, meta, in.ConfigID, in.ProviderType, m.ProviderMessageID, m.Payload); err != nil {
			return err
		}
		switch in.Keyword {
		case "stop":
			_, err = tx.Exec(ctx, `INSERT INTO communication.suppressions (tenant_id, channel, recipient, reason, detail, message_id)
				VALUES ($1, 'sms', $2, 'stop', $3, $4) ON CONFLICT DO NOTHING`,
				in.TenantID, message.RecipientKey(message.SMS, m.From), "replied "+keywordText(m.Text)+" to "+m.To, id)
		case "start":
			_, err = tx.Exec(ctx, `DELETE FROM communication.suppressions
				WHERE tenant_id = $1 AND channel = 'sms' AND recipient_hash = communication.recipient_hash($1, 'sms', $2) AND reason = 'stop'`,
				in.TenantID, message.RecipientKey(message.SMS, m.From))
		}
		return err
	})
	if err != nil {
		return "", false, fmt.Errorf("record inbound message: %w", err)
	}
	return id, dup, nil
}

// keywordText is the keyword as the person wrote it, for the suppression's detail.
func keywordText(text string) string {
	if len(text) > 20 {
		return text[:20]
	}
	return text
}
