package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/logicspike/comms/internal/domain"
)

// usageSums sums every usage counter of a usage_daily or usage_deltas row set.
const usageSums = `sum(accepted)::bigint, sum(accepted_units)::bigint, sum(attempts)::bigint, sum(sent)::bigint,
	sum(delivered)::bigint, sum(failed)::bigint, sum(bounced)::bigint, sum(segments)::bigint, sum(cost)`

// UsageDimensions are the ways usage can be grouped, each with the column expression it groups by.
var UsageDimensions = map[string]string{
	"day":      `to_char(day, 'YYYY-MM-DD')`,
	"month":    `to_char(day, 'YYYY-MM')`,
	"channel":  `channel`,
	"provider": `provider_config_id`,
	"template": `template_key`,
	"category": `category`,
}

// GetUsage returns tenantID's usage on the UTC days [from, to], grouped by groupBy (names from
// UsageDimensions, in the order given), and the totals. Rows come in the order of their
// dimensions. It reads the daily rollup and the deltas not folded into it yet, so it counts
// every committed transition.
func (s *Store) GetUsage(ctx context.Context, tenantID string, from, to time.Time, groupBy []string) ([]domain.UsageRow, domain.Counters, error) {
	var dims []string
	for _, g := range groupBy {
		expr, ok := UsageDimensions[g]
		if !ok {
			return nil, domain.Counters{}, fmt.Errorf("usage: unknown dimension %q", g)
		}
		dims = append(dims, expr)
	}
	// The grouped dimensions, padded with '' for the ones not grouped; then the currency. The
	// totals are a second grouping set, by currency alone, whose dimensions come back NULL.
	sel := make([]string, 0, len(UsageDimensions))
	for _, n := range []string{"day", "month", "channel", "provider", "template", "category"} {
		if slices.Contains(groupBy, n) {
			sel = append(sel, "coalesce("+UsageDimensions[n]+", '-')")
		} else {
			sel = append(sel, `''`)
		}
	}
	sets := "(currency)"
	if len(dims) > 0 {
		sets = "(" + strings.Join(dims, ", ") + ", currency), (currency)"
	}
	total := "true"
	if len(dims) > 0 {
		total = "grouping(" + dims[0] + ") = 1"
	}
	rows, err := s.pool.Query(ctx, `
		WITH u AS (
			SELECT * FROM communication.usage_daily WHERE tenant_id = $1 AND day BETWEEN $2 AND $3
			UNION ALL
			SELECT * FROM communication.usage_deltas WHERE tenant_id = $1 AND day BETWEEN $2 AND $3
		)
		SELECT `+total+`, `+strings.Join(sel, ", ")+`, currency, `+usageSums+`::text
		FROM u GROUP BY GROUPING SETS (`+sets+`) ORDER BY 1, `+strings.Join(append(slices.Clone(dims), "currency"), ", "),
		tenantID, from.UTC().Format(time.DateOnly), to.UTC().Format(time.DateOnly))
	if err != nil {
		return nil, domain.Counters{}, fmt.Errorf("usage: %w", err)
	}
	var (
		out      []domain.UsageRow
		totals   = domain.Counters{Cost: []domain.Money{}}
		isTotal  bool
		r        domain.UsageRow
		currency string
		c        domain.Counters
		cost     string
		// what quotas count: summed with the rest, read by GetQuotaUsed instead
		quotaUnits int64
	)
	_, err = pgx.ForEachRow(rows, []any{&isTotal, &r.Day, &r.Month, &r.Channel, &r.Provider, &r.Template, &r.Category, &currency,
		&c.Accepted, &quotaUnits, &c.Attempts, &c.Sent, &c.Delivered, &c.Failed, &c.Bounced, &c.Segments, &cost}, func() error {
		c.Cost = nil
		if currency != "" {
			c.Cost = []domain.Money{{Currency: currency, Amount: cost}}
		}
		switch {
		case isTotal:
			totals.Add(c)
		case len(out) > 0 && sameDims(out[len(out)-1], r):
			out[len(out)-1].Add(c) // the same dimensions in another currency
		default:
			row := r
			row.Counters = domain.Counters{Cost: []domain.Money{}}
			row.Add(c)
			out = append(out, row)
		}
		return nil
	})
	if err != nil {
		return nil, domain.Counters{}, fmt.Errorf("usage: %w", err)
	}
	if out == nil {
		out = []domain.UsageRow{}
	}
	return out, totals, nil
}

func sameDims(a, b domain.UsageRow) bool {
	return a.Day == b.Day && a.Month == b.Month && a.Channel == b.Channel && a.Provider == b.Provider &&
		a.Template == b.Template && a.Category == b.Category
}
