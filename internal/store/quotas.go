package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/logicspike/comms/pkg/message"
)

// maxQuota bounds a limit: far above any month, far below overflow.
const maxQuota = 1_000_000_000_000

// Quota is one channel's monthly limits, in messages for email and segments for SMS (0: none).
type Quota struct {
	// SoftLimit warns (comms.quota.warning); 0 means 80% of HardLimit.
	SoftLimit int64 `json:"soft_limit"`
	// HardLimit refuses intake beyond it (429 quota-exceeded); 0 means no limit.
	HardLimit int64 `json:"hard_limit"`
}

// Warning is where the warning fires: the soft limit, else 80% of the hard one.
func (q Quota) Warning() int64 {
	if q.SoftLimit > 0 {
		return q.SoftLimit
	}
	return q.HardLimit * 8 / 10
}

// Quotas are a tenant's quotas by channel.
type Quotas map[message.Channel]Quota

// quotaPatch encodes a patch's quotas for a jsonb merge (nil: no change).
func quotaPatch(q map[string]*Quota) []byte {
	if q == nil {
		return nil
	}
	b, _ := json.Marshal(q)
	return b
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
func (s *Store) RecordQuotaAlert(ctx context.Context, tenantID string, ch message.Channel, month time.Time, level string, q Quota, used int64) (bool, error) {
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
