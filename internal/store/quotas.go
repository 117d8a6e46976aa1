package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/pkg/message"
)

// quotaRow is how tenants.quotas (jsonb) spells one channel's quota.
type quotaRow struct {
	SoftLimit int64 `json:"soft_limit"`
	HardLimit int64 `json:"hard_limit"`
}

// quotaPatch encodes a patch's quotas for a jsonb merge (nil: no change; a nil quota removes it).
func quotaPatch(q map[string]*domain.Quota) []byte {
	if q == nil {
		return nil
	}
	rows := make(map[string]*quotaRow, len(q))
	for ch, v := range q {
		if v != nil {
			rows[ch] = &quotaRow{SoftLimit: v.SoftLimit, HardLimit: v.HardLimit}
		} else {
			rows[ch] = nil
		}
	}
	b, _ := json.Marshal(rows)
	return b
}

// scanQuotas decodes tenants.quotas.
func scanQuotas(raw []byte) (domain.Quotas, error) {
	var rows map[message.Channel]quotaRow
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &rows); err != nil {
			return nil, fmt.Errorf("tenant quotas: %w", err)
		}
	}
	out := make(domain.Quotas, len(rows))
	for ch, r := range rows {
		out[ch] = domain.Quota{SoftLimit: r.SoftLimit, HardLimit: r.HardLimit}
	}
	return out, nil
}

// MonthStart is the first instant of t's UTC calendar month.
func MonthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// GetQuotaUsed is what tenantID's quota on ch has counted in the month starting at month: messages
// (email) or segments (SMS) accepted, from the usage rollup and the deltas not folded yet.
func (s *Store) GetQuotaUsed(ctx context.Context, tenantID string, ch message.Channel, month time.Time) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `
		SELECT coalesce(sum(accepted_units), 0)::bigint FROM (
			SELECT accepted_units FROM communication.usage_daily WHERE tenant_id = $1 AND channel = $2 AND day >= $3 AND day < $4
			UNION ALL
			SELECT accepted_units FROM communication.usage_deltas WHERE tenant_id = $1 AND channel = $2 AND day >= $3 AND day < $4
		) u`, tenantID, string(ch), month.Format(time.DateOnly), month.AddDate(0, 1, 0).Format(time.DateOnly)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("quota used by %s on %s: %w", tenantID, ch, err)
	}
	return n, nil
}

// RecordQuotaAlert records that tenantID's quota on ch reached level ("warning" or "exceeded") in the
// month starting at month, with its account event (comms.quota.<level>), once per month and
// level: it reports whether this call recorded it.
func (s *Store) RecordQuotaAlert(ctx context.Context, tenantID string, ch message.Channel, month time.Time, level string, q domain.Quota, used int64) (bool, error) {
	data, _ := json.Marshal(map[string]any{"quota": map[string]any{
		"channel": ch, "month": month.Format("2006-01"), "soft_limit": q.Warning(), "hard_limit": q.HardLimit, "used": used,
	}})
	tag, err := s.pool.Exec(ctx, `
		WITH a AS (
			INSERT INTO communication.quota_alerts (tenant_id, channel, month, level) VALUES ($1, $2, $3, $4)
			ON CONFLICT DO NOTHING RETURNING 1
		)
		INSERT INTO communication.account_events (tenant_id, type, subject, data)
		SELECT $1, 'comms.quota.' || $4, $2, $5 FROM a`, tenantID, string(ch), month, level, data)
	if err != nil {
		return false, fmt.Errorf("quota alert for %s: %w", tenantID, err)
	}
	return tag.RowsAffected() == 1, nil
}
