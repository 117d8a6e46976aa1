package dashboard_test

import (
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/logicspike/comms/internal/testing/browser"
	"github.com/logicspike/comms/internal/testing/stacktest"
)

// BenchmarkDashboard serves the dashboard's pages, signed in, for a tenant whose rollups hold
// 10 million messages over 90 days beside 50 other tenants (stacktest.SeedAnalyticsHistory):
// the server's time per page over real HTTP (p50, p99), then, where Chromium is installed, the
// time until the 90-day overview has loaded in it (Navigation Timing's loadEventEnd).
//
//	go test ./internal/dashboard -run '^$' -bench Dashboard -benchtime 200x
func BenchmarkDashboard(b *testing.B) {
	s := stacktest.Start(b, stacktest.Options{})
	tenantID, key := s.Tenant()
	s.SeedAnalyticsHistory(tenantID, 50)
	cookie := sessionCookie(b, s, key)
	pages := []string{"/ui/?range=24h", "/ui/?range=7d", "/ui/?range=90d", "/ui/errors", "/ui/usage", "/ui/providers"}
	lat := map[string][]time.Duration{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, p := range pages {
			t0 := time.Now()
			resp := sessionGet(b, cookie, s.URL+p)
			if resp.StatusCode != 200 {
				b.Fatalf("%s: %d", p, resp.StatusCode)
			}
			_, _ = resp.Body.Read(make([]byte, 1<<16))
			resp.Body.Close()
			lat[p] = append(lat[p], time.Since(t0))
		}
	}
	b.StopTimer()
	for _, p := range pages {
		ds := lat[p]
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		p99 := ds[int(0.99*float64(len(ds)-1))]
		b.Logf("%-16s p50 %6.2f ms  p99 %6.2f ms  (%d requests)", p, ms(ds[len(ds)/2]), ms(p99), len(ds))
		b.ReportMetric(ms(p99), "p99_ms_"+strings.NewReplacer("/", "_", "?", "_", "=", "_").Replace(p))
	}
	tab := browser.NewTab(b)
	signIn(tab, s, key, `#total-sent`)
	var loads []float64
	for range 5 {
		tab.Do("the 90-day overview", chromedp.Navigate(s.URL+"/ui/?range=90d"), chromedp.WaitVisible(`svg.chart`))
		v, err := strconv.ParseFloat(tab.Get("its load time", chromedp.Evaluate[string](`String(performance.getEntriesByType('navigation')[0].loadEventEnd)`)), 64)
		if err != nil {
			b.Fatal(err)
		}
		loads = append(loads, v)
	}
	sort.Float64s(loads)
	b.Logf("90-day overview loaded in Chromium after %.0f ms (median of 5; %.0f–%.0f)", loads[2], loads[0], loads[4])
	b.ReportMetric(loads[2], "chromium_load_ms")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
