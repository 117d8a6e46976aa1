package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/pkg/message"
)

// FoldAnalytics moves the pending sent, failed and read counts (analytics_deltas) into the
// hourly rollup, and the pending usage (usage_deltas) into the daily one, and returns how many
// delta rows it folded. The delete and the upsert are one
// statement: a delta is counted once however many folders run, and one committed while this runs
// waits for the next fold.
func (s *Store) FoldAnalytics(ctx context.Context) (int, error) {
	tag, err := s.pool.Exec(ctx, `
		WITH d AS (
			DELETE FROM communication.analytics_deltas RETURNING tenant_id, channel, bucket, sent, failed, read
		)
		INSERT INTO communication.analytics_hourly AS a (tenant_id, channel, bucket, sent, failed, read)
		SELECT tenant_id, channel, bucket, sum(sent), sum(failed), sum(read) FROM d
		GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
		ON CONFLICT (tenant_id, channel, bucket) DO UPDATE SET sent = a.sent + excluded.sent, failed = a.failed + excluded.failed,
			read = a.read + excluded.read`)
	if err != nil {
		return 0, fmt.Errorf("fold analytics: %w", err)
	}
	usage, err := s.pool.Exec(ctx, `
		WITH d AS (
			DELETE FROM communication.usage_deltas RETURNING *
		)
		INSERT INTO communication.usage_daily AS a
		SELECT tenant_id, day, channel, provider_config_id, template_key, category, currency, `+usageSums+` FROM d
		GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7
		ON CONFLICT (tenant_id, day, channel, provider_config_id, template_key, category, currency) DO UPDATE SET
			accepted = a.accepted + excluded.accepted, accepted_units = a.accepted_units + excluded.accepted_units,
			attempts = a.attempts + excluded.attempts, sent = a.sent + excluded.sent, delivered = a.delivered + excluded.delivered,
			failed = a.failed + excluded.failed, bounced = a.bounced + excluded.bounced,
			segments = a.segments + excluded.segments, cost = a.cost + excluded.cost`)
	if err != nil {
		return 0, fmt.Errorf("fold usage: %w", err)
	}
	return int(tag.RowsAffected() + usage.RowsAffected()), nil
}

// GetTimeseries returns tenantID's counts per interval ("hour" or "day", UTC) from the hourly
// rollup, one bucket per interval from from (rounded down to the interval) to to (exclusive),
// empty intervals included. ch "" means every channel.
func (s *Store) GetTimeseries(ctx context.Context, tenantID string, ch message.Channel, from, to time.Time, interval string) ([]domain.Bucket, error) {
	if interval != "hour" && interval != "day" {
		return nil, fmt.Errorf("timeseries: interval %q is not hour or day", interval)
	}
	rows, err := s.pool.Query(ctx, `
		WITH r AS (
			SELECT date_trunc($5, bucket, 'UTC') AS b, sum(sent) AS sent, sum(delivered) AS delivered, sum(opened) AS opened,
			       sum(clicked) AS clicked, sum(bounced) AS bounced, sum(complained) AS complained, sum(failed) AS failed, sum(read) AS read
			FROM communication.analytics_hourly
			WHERE tenant_id = $1 AND ($2 = '' OR channel = $2) AND bucket >= date_trunc($5, $3::timestamptz, 'UTC') AND bucket < $4
			GROUP BY 1
		)
		SELECT g.b, coalesce(r.sent, 0)::bigint, coalesce(r.delivered, 0)::bigint, coalesce(r.opened, 0)::bigint,
		       coalesce(r.clicked, 0)::bigint, coalesce(r.bounced, 0)::bigint, coalesce(r.complained, 0)::bigint, coalesce(r.failed, 0)::bigint,
		       coalesce(r.read, 0)::bigint
		FROM generate_series(date_trunc($5, $3::timestamptz, 'UTC'), $4::timestamptz - interval '1 microsecond', ('1 ' || $5)::interval) AS g(b)
		LEFT JOIN r ON r.b = g.b
		ORDER BY g.b`, tenantID, string(ch), from, to, interval)
	if err != nil {
		return nil, fmt.Errorf("timeseries: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[domain.Bucket])
	if err != nil {
		return nil, fmt.Errorf("timeseries: %w", err)
	}
	return out, nil
}

// ListProviderErrors returns tenantID's provider errors between from (rounded down to the hour) and
// to, most frequent first. ch "" means both channels. Whole UTC days come from the daily rollup
// and the partial days at either end from the hourly one, so a 90-day range reads about 90 rows
// per (config, code).
func (s *Store) ListProviderErrors(ctx context.Context, tenantID string, ch message.Channel, from, to time.Time) ([]domain.ProviderErrorCount, error) {
	from = from.UTC().Truncate(time.Hour)
	to = to.UTC()
	// [dayFrom, dayTo) is the run of whole days inside [from, to); empty when there is none.
	dayFrom := from.Truncate(24 * time.Hour)
	if dayFrom.Before(from) {
		dayFrom = dayFrom.Add(24 * time.Hour)
	}
	dayTo := to.Truncate(24 * time.Hour)
	if !dayFrom.Before(dayTo) {
		dayFrom, dayTo = to, to // no whole day: everything from the hours
	}
	rows, err := s.pool.Query(ctx, `
		WITH parts AS (
			SELECT provider_type, provider_config_id, channel, error_code, count, last_message, last_provider_code, last_at
			FROM communication.provider_errors_daily
			WHERE tenant_id = $1 AND bucket >= $5 AND bucket < $6 AND ($2 = '' OR channel = $2)
			UNION ALL
			SELECT provider_type, provider_config_id, channel, error_code, count, last_message, last_provider_code, last_at
			FROM communication.provider_errors_hourly
			WHERE tenant_id = $1 AND ($2 = '' OR channel = $2)
			  AND ((bucket >= $3 AND bucket < $5) OR (bucket >= $6 AND bucket < $4))
		)
		SELECT e.provider_type, e.provider_config_id, coalesce(p.name, ''), e.channel, e.error_code, e.count,
		       e.last_message, e.last_provider_code, e.last_at
		FROM (
			SELECT provider_type, provider_config_id, channel, error_code, sum(count)::bigint AS count,
			       (array_agg(last_message ORDER BY last_at DESC))[1] AS last_message,
			       (array_agg(last_provider_code ORDER BY last_at DESC))[1] AS last_provider_code, max(last_at) AS last_at
			FROM parts GROUP BY 1, 2, 3, 4
		) e
		LEFT JOIN communication.provider_configs p ON p.id = e.provider_config_id
		ORDER BY e.count DESC, e.provider_type, e.error_code`, tenantID, string(ch), from, to, dayFrom, dayTo)
	if err != nil {
		return nil, fmt.Errorf("provider errors: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.ProviderErrorCount, error) {
		var c domain.ProviderErrorCount
		err := r.Scan(&c.ProviderType, &c.ProviderConfigID, &c.ProviderName, &c.Channel, &c.Code, &c.Count,
			&c.Example.Message, &c.Example.ProviderCode, &c.Example.At)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("provider errors: %w", err)
	}
	return out, nil
}
