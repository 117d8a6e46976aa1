package stacktest

import (
	"context"
	"strings"
)

// SeedAnalyticsHistory writes 90 days of analytics rollups for tenantID, straight into the
// rollup tables: about 2,300 messages per channel and hour (10 million in all), each with a
// realistic share of deliveries, opens, clicks, bounces and failures, and 30 provider-error rows
// per hour and per day (3 configs × 5 codes × 2 channels); then the same for others more
// tenants, so that the tenant's rows are a small part of the tables, as in production.
func (s *Stack) SeedAnalyticsHistory(tenantID string, others int) {
	s.tb.Helper()
	ctx := context.Background()
	seed := func(tenant string) {
		if _, err := s.Pool.Exec(ctx, `
			INSERT INTO communication.analytics_hourly (tenant_id, channel, bucket, sent, delivered, opened, clicked, bounced, complained, failed)
			SELECT $1, ch, b, n, n * 95 / 100, n * 30 / 100, n * 6 / 100, n * 2 / 100, n / 1000, n * 3 / 100
			FROM generate_series(date_trunc('hour', now()) - interval '90 days', date_trunc('hour', now()), interval '1 hour') AS b,
			     unnest(ARRAY['sms', 'email']) AS ch,
			     LATERAL (SELECT 2215 + (random() * 200)::int + (b IS NULL)::int AS n) AS x`, tenant); err != nil {
			s.tb.Fatal(err)
		}
		for _, table := range []string{"hourly", "daily"} {
			step := map[string]string{"hourly": "hour", "daily": "day"}[table]
			if _, err := s.Pool.Exec(ctx, `
			INSERT INTO communication.provider_errors_`+table+` (tenant_id, bucket, channel, provider_type, provider_config_id, error_code, count, last_message, last_provider_code, last_at)
			SELECT $1, b, ch, 'twilio', 'prv_bench' || c, code, 1 + (random() * 20)::int, 'Twilio: example message for ' || code, '30003', b + interval '30 minutes'
			FROM generate_series(date_trunc($2, now(), 'UTC') - interval '90 days', date_trunc($2, now(), 'UTC'), ('1 ' || $2)::interval) AS b,
			     unnest(ARRAY['sms', 'email']) AS ch, generate_series(1, 3) AS c,
			     unnest(ARRAY['invalid_recipient', 'insufficient_funds', 'rate_limited', 'content_rejected', 'timeout']) AS code`, tenant, step); err != nil {
				s.tb.Fatal(err)
			}
		}
	}
	seed(tenantID)
	for i := 0; i < others; i++ {
		seed("ten_bench_other_" + string(rune('a'+i%26)) + strings.Repeat("x", i/26))
	}
	if _, err := s.Pool.Exec(ctx, `ANALYZE communication.analytics_hourly; ANALYZE communication.provider_errors_hourly; ANALYZE communication.provider_errors_daily`); err != nil {
		s.tb.Fatal(err)
	}
}
