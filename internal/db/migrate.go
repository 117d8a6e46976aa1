package db

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"

	"github.com/logicspike/comms/migrations"
)

// Migrations are applied by tern (github.com/jackc/tern), the migrator from pgx's author: it
// runs on a pgx connection, applies each plain SQL file whole in its own transaction (the files
// need no annotations and their functions no statement markers), and runs a file that starts
// with `---- tern: disable-tx ----` outside a transaction, statement by statement, for
// CREATE INDEX CONCURRENTLY. It records only the current version, in versionTable; this package
// keeps the ledger beside it: each applied file's name, time and SHA-256, so that a file edited
// after it was applied is refused rather than silently differing from the schema.
const (
	versionTable = "communication.schema_version"
	ledgerTable  = "communication.schema_migrations"
)

// migrationLockID serialises concurrent migrators (several replicas starting at once, every
// pod's init step); tern takes a lock of its own inside it.
const migrationLockID = 0x636f6d6d73 // "comms"

// Every migration runs under these: fail fast rather than queue behind a long lock on a busy
// production table, and never run for ever. They are connection parameters, so they hold for
// every statement of every migration (tern resets the session between migrations to them).
var migrationParams = map[string]string{"lock_timeout": "10s", "statement_timeout": "5min"}

// ErrChecksum means an applied migration's file differs from the one applied.
var ErrChecksum = errors.New("applied migration changed")

// Migrate applies every migration in migrations.FS that is not yet applied, in version order. It
// returns the versions applied.
func Migrate(ctx context.Context, pool *pgxpool.Pool) ([]int, error) {
	return migrateFS(ctx, pool, migrations.FS)
}

type file struct {
	version  int
	name     string
	checksum string
}

func load(fsys fs.FS) ([]file, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	var out []file
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
		sum := sha256.Sum256(body)
		out = append(out, file{version: v, name: name, checksum: hex.EncodeToString(sum[:])})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, f := range out {
		if f.version != i+1 {
			return nil, fmt.Errorf("migrations must be numbered 1, 2, 3… without gaps or repeats: %q is number %d", f.name, i+1)
		}
	}
	return out, nil
}

func migrateFS(ctx context.Context, pool *pgxpool.Pool, fsys fs.FS) (applied []int, err error) {
	files, err := load(fsys)
	if err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	cfg := pool.Config().ConnConfig.Copy()
	for k, v := range migrationParams {
		cfg.RuntimeParams[k] = v
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to migrate: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// Waiting for another migrator is not a migration: that wait is bounded by ctx alone. It
	// polls rather than blocks in pg_advisory_lock, because a blocked statement holds a snapshot,
	// and CREATE INDEX CONCURRENTLY in the migrator holding the lock waits for every older
	// snapshot to go: the two would deadlock.
	if err := lockMigrations(ctx, conn); err != nil {
		return nil, err
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLockID) //nolint:errcheck // the session ends with the connection anyway

	ledger, err := readLedger(ctx, conn, true)
	if err != nil {
		return nil, err
	}
	if err := verify(files, ledger); err != nil {
		return nil, err
	}
	if err := adopt(ctx, conn, ledger); err != nil {
		return nil, err
	}
	m, err := migrate.NewMigrator(ctx, conn, versionTable)
	if err != nil {
		return nil, fmt.Errorf("start migrator: %w", err)
	}
	if err := m.LoadMigrations(fsys); err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	before, err := m.GetCurrentVersion(ctx)
	if err != nil {
		return nil, fmt.Errorf("read schema version: %w", err)
	}
	migrateErr := m.Migrate(ctx)
	// Record what was applied, failure or not: the migrations before a failed one committed.
	after, err := m.GetCurrentVersion(context.WithoutCancel(ctx))
	if err != nil {
		return nil, fmt.Errorf("read schema version: %w", err)
	}
	for _, f := range files {
		if f.version > int(after) {
			break
		}
		if _, err := conn.Exec(context.WithoutCancel(ctx), `
			INSERT INTO `+ledgerTable+` (version, name, checksum) VALUES ($1, $2, $3)
			ON CONFLICT (version) DO UPDATE SET checksum = EXCLUDED.checksum WHERE `+ledgerTable+`.checksum IS NULL`,
			f.version, f.name, f.checksum); err != nil {
			return applied, fmt.Errorf("record migration %s: %w", f.name, err)
		}
		if f.version > int(before) {
			applied = append(applied, f.version)
		}
	}
	if migrateErr != nil {
		var pgErr migrate.MigrationPgError
		if errors.As(migrateErr, &pgErr) {
			return applied, fmt.Errorf("apply migration %s: %w", pgErr.MigrationName, pgErr.PgError)
		}
		return applied, fmt.Errorf("apply migrations: %w", migrateErr)
	}
	// A concurrent build blocks no writer, so it may take as long as a partition needs.
	if _, err := conn.Exec(ctx, `SET statement_timeout = 0`); err != nil {
		return applied, err
	}
	defer conn.Exec(context.WithoutCancel(ctx), `RESET statement_timeout`) //nolint:errcheck // the connection closes after
	if _, err := CompletePartitionIndexes(ctx, conn); err != nil {
		return applied, fmt.Errorf("build partition indexes: %w", err)
	}
	return applied, nil
}

type ledgerRow struct {
	name      string
	checksum  string // "" for migrations applied before checksums were kept
	appliedAt time.Time
}

// readLedger reads the applied migrations. With create, it makes the ledger (and its schema)
// where it is missing; without, a missing ledger reads as empty.
func readLedger(ctx context.Context, q interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, create bool) (map[int]ledgerRow, error) {
	if create {
		if _, err := q.Exec(ctx, `
			CREATE SCHEMA IF NOT EXISTS communication;
			CREATE TABLE IF NOT EXISTS `+ledgerTable+` (
				version    int PRIMARY KEY,
				name       text NOT NULL,
				applied_at timestamptz NOT NULL DEFAULT now()
			);
			ALTER TABLE `+ledgerTable+` ADD COLUMN IF NOT EXISTS checksum text`); err != nil {
			return nil, fmt.Errorf("create %s: %w", ledgerTable, err)
		}
	}
	rows, err := q.Query(ctx, `SELECT version, name, coalesce(checksum, ''), applied_at FROM `+ledgerTable)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "3F000" || pgErr.Code == "42703") && !create {
		// No table, no schema, or a ledger from before checksums: nothing (or nothing checkable) applied.
		return readLedgerWithoutChecksums(ctx, q)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", ledgerTable, err)
	}
	out := map[int]ledgerRow{}
	var v int
	var r ledgerRow
	_, err = pgx.ForEachRow(rows, []any{&v, &r.name, &r.checksum, &r.appliedAt}, func() error {
		out[v] = r
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", ledgerTable, err)
	}
	return out, nil
}

func readLedgerWithoutChecksums(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) (map[int]ledgerRow, error) {
	out := map[int]ledgerRow{}
	rows, err := q.Query(ctx, `SELECT version, name, applied_at FROM `+ledgerTable)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "3F000") {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", ledgerTable, err)
	}
	var v int
	var r ledgerRow
	_, err = pgx.ForEachRow(rows, []any{&v, &r.name, &r.appliedAt}, func() error {
		out[v] = r
		return nil
	})
	return out, err
}

// verify refuses to go on when a file applied under a checksum has changed since.
func verify(files []file, ledger map[int]ledgerRow) error {
	for _, f := range files {
		row, ok := ledger[f.version]
		if ok && row.checksum != "" && row.checksum != f.checksum {
			return fmt.Errorf("%w: %s differs from the file applied on %s (sha256 %s…, now %s…): restore it, and put the change in a new migration",
				ErrChecksum, f.name, row.appliedAt.UTC().Format(time.RFC3339), row.checksum[:12], f.checksum[:12])
		}
	}
	return nil
}

// adopt starts tern's version table for a database the earlier runner migrated: its version is
// the last of the unbroken run of applied migrations from 1.
func adopt(ctx context.Context, conn *pgx.Conn, ledger map[int]ledgerRow) error {
	v := 0
	for {
		if _, ok := ledger[v+1]; !ok {
			break
		}
		v++
	}
	_, err := conn.Exec(ctx, `
		CREATE TABLE IF NOT EXISTS `+versionTable+` (version int4 NOT NULL);
		INSERT INTO `+versionTable+` (version) SELECT `+strconv.Itoa(v)+` WHERE NOT EXISTS (SELECT FROM `+versionTable+`)`)
	if err != nil {
		return fmt.Errorf("start %s: %w", versionTable, err)
	}
	return nil
}

// lockMigrations takes the migration lock, trying every 100 ms until ctx ends.
func lockMigrations(ctx context.Context, conn *pgx.Conn) error {
	for {
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, migrationLockID).Scan(&ok); err != nil {
			return fmt.Errorf("take migration lock: %w", err)
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("take migration lock: %w", context.Cause(ctx))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
