package api_test

import (
	"context"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/testing/stacktest"
)

// BenchmarkAnalytics serves both analytics endpoints for a tenant whose rollups hold 10 million
// messages over 90 days (about 2,300 per channel and hour, each with a realistic share of
// deliveries, opens, clicks, bounces and failures, and 30 provider-error rows per hour: 3 configs
// × 5 codes × 2 channels), beside 50 other tenants with the same history. The rollups are
// seeded directly, at that scale, rather than through 10 million sends: the endpoints read only
// the rollup tables, which the benchmark checks from their query plans. Each request is timed
// over real HTTP; p50 and p99 are reported per endpoint.
//
//	go test ./internal/api -run '^$' -bench Analytics -benchtime 200x
func BenchmarkAnalytics(b *testing.B) {
	s := stacktest.Start(b, stacktest.Options{})
	tenantID, key := s.Tenant()
	ctx := context.Background()
	start := time.Now()
	s.SeedAnalyticsHistory(tenantID, 50)
	var msgs int64
	if err := s.Pool.QueryRow(ctx, `SELECT sum(sent) FROM communication.analytics_hourly WHERE tenant_id = $1`, tenantID).Scan(&msgs); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded in %s: the tenant's rollups count %d messages over 90 days", time.Since(start).Round(time.Second), msgs)
	scansBefore := scansOfMessages(b, s)

	now := time.Now().UTC()
	queries := map[string]string{
		"timeseries 90d daily":   "/v1/analytics/timeseries?interval=day&from=" + url.QueryEscape(now.AddDate(0, 0, -90).Format(time.RFC3339)),
		"timeseries 30d hourly":  "/v1/analytics/timeseries?interval=hour&channel=email&from=" + url.QueryEscape(now.AddDate(0, 0, -30).Format(time.RFC3339)),
		"provider-errors 90d":    "/v1/analytics/provider-errors?from=" + url.QueryEscape(now.AddDate(0, 0, -90).Format(time.RFC3339)),
		"provider-errors 7d sms": "/v1/analytics/provider-errors?channel=sms&from=" + url.QueryEscape(now.AddDate(0, 0, -7).Format(time.RFC3339)),
	}
	b.ResetTimer()
	timeQueries(b, s, key, queries)
	b.StopTimer()
	// The endpoints read rollups only: not one scan of messages or events while they ran.
	if after := scansOfMessages(b, s); after != scansBefore {
		b.Fatalf("the analytics endpoints scanned messages or events %d times", after-scansBefore)
	}
}

// timeQueries serves each query b.N times over real HTTP, in turn, and reports p50 and p99 per
// query (p99 as a metric).
func timeQueries(b *testing.B, s *stacktest.Stack, key string, queries map[string]string) {
	names := make([]string, 0, len(queries))
	for n := range queries {
		names = append(names, n)
	}
	sort.Strings(names)
	lat := map[string][]time.Duration{}
	for i := 0; i < b.N; i++ {
		for _, n := range names {
			t0 := time.Now()
			if resp := s.Do("GET", queries[n], key, nil, nil, nil); resp.StatusCode != 200 {
				b.Fatalf("%s: %d", n, resp.StatusCode)
			}
			lat[n] = append(lat[n], time.Since(t0))
		}
	}
	for _, n := range names {
		ds := lat[n]
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		p50, p99 := ds[len(ds)/2], ds[int(0.99*float64(len(ds)-1))]
		b.Logf("%-24s p50 %6.2f ms  p99 %6.2f ms  (%d requests)", n, ms(p50), ms(p99), len(ds))
		b.ReportMetric(ms(p99), "p99_ms_"+strings.NewReplacer(" ", "_", ",", "_").Replace(n))
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// scansOfMessages is how often message_logs and message_events have been scanned in this
// database, after letting every backend flush its statistics (PostgreSQL 15 flushes at most
// once a second).
func scansOfMessages(b *testing.B, s *stacktest.Stack) int64 {
	time.Sleep(2 * time.Second)
	var n int64
	if err := s.Pool.QueryRow(context.Background(), `
		SELECT coalesce(sum(coalesce(seq_scan, 0) + coalesce(idx_scan, 0)), 0)::bigint FROM pg_stat_user_tables
		WHERE schemaname = 'communication' AND relname IN ('message_logs', 'message_events')`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}
