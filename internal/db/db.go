// Package db opens the PostgreSQL pool and applies the embedded migrations (migrate.go).
package db

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/logicspike/comms/internal/platform/tracing"
)

// Open connects a pool to url and checks it answers. maxConns <= 0 keeps pgx's default.
func Open(ctx context.Context, url string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	// Statements are planned for their own arguments unless they opt in to a cached plan. A
	// prepared statement switches to a generic plan after five runs, and a generic plan settled on
	// while a table was nearly empty and never analysed (a fresh database, autovacuum behind or off)
	// can scan the whole table on every run for the connection's life. So by default every
	// statement runs as an unnamed statement, which PostgreSQL plans for each execution, and pgx
	// caches only its description (one round trip). The hot path's batch statements (insert, mark,
	// claim, outcome) are written so that no plan of theirs can scan a table, and ask for a
	// prepared statement (store's cachedPlan), since planning them for every batch would be much
	// of their time in PostgreSQL (TestDispatchStatementsDoNotScanMessageLogsAsItGrows holds their
	// generic plans to that). A URL that sets default_query_exec_mode or plan_cache_mode keeps its
	// own choice.
	if !strings.Contains(url, "default_query_exec_mode") {
		cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
	}
	if tracing.Enabled() {
		cfg.ConnConfig.Tracer = otelpgx.NewTracer()
	}
	Configure(cfg)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database pool: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping database: %w", err)
	}
	return pool, nil
}
