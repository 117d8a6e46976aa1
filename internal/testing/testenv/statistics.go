package testenv

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// StatisticsHolding lists the statistics of the communication schema (table or index, and
// column) whose values sampled by ANALYZE, as pg_statistic keeps them, hold needle in any case.
func StatisticsHolding(t testing.TB, pool *pgxpool.Pool, needle string) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
		SELECT tablename || '.' || attname FROM pg_stats
		WHERE schemaname = 'communication' AND strpos(lower(concat(most_common_vals::text, histogram_bounds::text,
			most_common_elems::text)), lower($1)) > 0
		ORDER BY 1`, needle)
	if err != nil {
		t.Fatal(err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return found
}
