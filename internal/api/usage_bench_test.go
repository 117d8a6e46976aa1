package api_test

import (
	"context"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/testing/stacktest"
)

// BenchmarkUsage serves GET /v1/usage over 90 days for a tenant whose usage rollup counts 10
// million messages (90 days × 2 channels × 3 provider configs × 8 templates × 2 categories, about
// 1,160 messages a row), beside 50 other tenants with the same history, plus a day's worth of
// unfolded deltas. The rollup is seeded directly rather than through 10 million sends: the
// endpoint reads only usage_daily and usage_deltas.
//
//	go test ./internal/api -run '^$' -bench Usage -benchtime 200x
func BenchmarkUsage(b *testing.B) {
	s := stacktest.Start(b, stacktest.Options{})
	tenantID, key := s.Tenant()
	ctx := context.Background()
	seed := func(table, tenant string, days int) {
		if _, err := s.Pool.Exec(ctx, `
			INSERT INTO communication.`+table+` (tenant_id, day, channel, provider_config_id, template_key, category, currency,
				accepted, accepted_units, attempts, sent, delivered, failed, bounced, segments, cost)
			SELECT $1, d::date, ch, 'prv_bench' || c, 'template_' || t, cat, CASE WHEN ch = 'sms' THEN 'USD' ELSE 'EUR' END,
			       n, n, n + n / 20, n * 98 / 100, n * 95 / 100, n * 2 / 100, CASE WHEN ch = 'email' THEN n / 100 ELSE 0 END,
			       CASE WHEN ch = 'sms' THEN n * 13 / 10 ELSE 0 END, n * 0.0079
			FROM generate_series(current_date - ($2::int - 1), current_date, interval '1 day') AS d,
			     unnest(ARRAY['sms', 'email']) AS ch, generate_series(1, 3) AS c, generate_series(1, 8) AS t,
			     unnest(ARRAY['transactional', 'marketing']) AS cat,
			     LATERAL (SELECT 1100 + (random() * 120)::int + (d IS NULL)::int AS n) AS x`, tenant, days); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	seed("usage_daily", tenantID, 90)
	seed("usage_deltas", tenantID, 1)
	for i := 0; i < 50; i++ {
		seed("usage_daily", "ten_bench_other_"+string(rune('a'+i%26))+string(rune('a'+i/26)), 90)
	}
	if _, err := s.Pool.Exec(ctx, `ANALYZE communication.usage_daily; ANALYZE communication.usage_deltas`); err != nil {
		b.Fatal(err)
	}
	var msgs int64
	if err := s.Pool.QueryRow(ctx, `SELECT sum(accepted) FROM communication.usage_daily WHERE tenant_id = $1`, tenantID).Scan(&msgs); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded in %s: the tenant's rollup counts %d messages over 90 days", time.Since(start).Round(time.Second), msgs)
	from := time.Now().UTC().AddDate(0, 0, -89).Format(time.DateOnly)
	b.ResetTimer()
	timeQueries(b, s, key, map[string]string{
		"usage 90d totals":               "/v1/usage?from=" + from,
		"usage 90d by day":               "/v1/usage?group_by=day&from=" + from,
		"usage 90d by day,channel":       "/v1/usage?group_by=day,channel&from=" + from,
		"usage 90d by provider,template": "/v1/usage?group_by=provider,template&from=" + from,
	})
}
