// Package db opens the PostgreSQL pool and applies the embedded migrations.
package db

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/logicspike/comms/internal/platform/tracing"
	"github.com/logicspike/comms/migrations"
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

// migrationLockID serialises concurrent migrators (several replicas starting at once).
const migrationLockID = 0x636f6d6d73 // "comms"

// Migrate applies every migration in migrations.FS that is not yet recorded, in version order,
// each in its own transaction with lock and statement timeouts. It returns the versions applied.
func Migrate(ctx context.Context, pool *pgxpool.Pool) ([]int, error) {
	return migrate(ctx, pool, migrations.FS)
}

// ErrNotMigrated means the database lacks migrations this binary needs.
var ErrNotMigrated = errors.New("database not migrated")

// CheckMigrated returns ErrNotMigrated, naming what is missing and the command to run, when the
// database lacks any migration embedded in this binary. A database ahead of the binary (a
// rolling upgrade, with the newer release's migrations applied first) is fine.
func CheckMigrated(ctx context.Context, pool *pgxpool.Pool) error {
	all, err := load(migrations.FS)
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	var versions []int
	rows, err := pool.Query(ctx, `SELECT version FROM communication.schema_migrations`)
	if err == nil {
		versions, err = pgx.CollectRows(rows, pgx.RowTo[int])
	}
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "3F000"): // no table, no schema
	case err != nil:
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	applied := map[int]bool{}
	for _, v := range versions {
		applied[v] = true
	}
	var missing []string
	for _, m := range all {
		if !applied[m.version] {
			missing = append(missing, m.name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %d of this release's migrations are not applied (%s): run commsctl migrate", ErrNotMigrated, len(missing), strings.Join(missing, ", "))
}

type migration struct {
	version int
	name    string
	sql     string
}

func load(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, name := range names {
		prefix, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %q: name must start with NNNN_", name)
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("migrations %q and %q share version %d", out[i-1].name, out[i].name, out[i].version)
		}
	}
	return out, nil
}

func migrate(ctx context.Context, pool *pgxpool.Pool, fsys fs.FS) ([]int, error) {
	all, err := load(fsys)
	if err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquire connection: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLockID); err != nil {
		return nil, fmt.Errorf("take migration lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLockID) //nolint:errcheck // the session ends with the connection anyway

	if _, err := conn.Exec(ctx, `
		CREATE SCHEMA IF NOT EXISTS communication;
		CREATE TABLE IF NOT EXISTS communication.schema_migrations (
			version    int PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", err)
	}
	applied := map[int]bool{}
	rows, err := conn.Query(ctx, `SELECT version FROM communication.schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	for _, v := range versions {
		applied[v] = true
	}

	var done []int
	for _, m := range all {
		if applied[m.version] {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			// Fail fast rather than queue behind a long lock on a busy production table.
			if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '10s'; SET LOCAL statement_timeout = '5min'`); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO communication.schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name)
			return err
		})
		if err != nil {
			return done, fmt.Errorf("apply migration %s: %w", m.name, err)
		}
		done = append(done, m.version)
	}
	return done, nil
}
