package db_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/logicspike/comms/internal/db"
	"github.com/logicspike/comms/internal/testing/testenv"
)

func emptyPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := db.Open(context.Background(), testenv.EmptyDatabaseURL(t), 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// The release's migrations apply to an empty database once, however many replicas start at
// once (every pod's init step), and then the binaries' start-up check passes.
func TestConcurrentMigratorsApplyEachMigrationOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := emptyPool(t)
	if err := db.CheckMigrated(ctx, pool); !errors.Is(err, db.ErrNotMigrated) || !strings.Contains(err.Error(), "run commsctl migrate") {
		t.Fatalf("empty database: CheckMigrated = %v, want ErrNotMigrated naming commsctl migrate", err)
	}
	var mu sync.Mutex
	var all []int
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			applied, err := db.Migrate(ctx, pool)
			if err != nil {
				t.Errorf("migrate: %v", err)
			}
			mu.Lock()
			all = append(all, applied...)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(all)
	states, err := db.Status(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(states) || len(slices.Compact(slices.Clone(all))) != len(all) {
		t.Fatalf("applied %v across 4 migrators, want each of %d once", all, len(states))
	}
	for _, s := range states {
		if s.AppliedAt == nil || s.Checksum != "ok" {
			t.Errorf("status of %s: applied %v, checksum %q", s.Name, s.AppliedAt, s.Checksum)
		}
	}
	if err := db.CheckMigrated(ctx, pool); err != nil {
		t.Fatalf("after migrate: %v", err)
	}
	if again, err := db.Migrate(ctx, pool); err != nil || len(again) != 0 {
		t.Fatalf("migrating again applied %v, %v; want nothing", again, err)
	}
}

// A file edited after it was applied is refused, naming it, and status says which.
func TestChangedMigrationIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := emptyPool(t)
	fsys := fstest.MapFS{
		"0001_a.sql": {Data: []byte("CREATE TABLE public.a (id int);")},
		"0002_b.sql": {Data: []byte("CREATE TABLE public.b (id int);")},
	}
	if applied, err := db.MigrateFS(ctx, pool, fsys); err != nil || !slices.Equal(applied, []int{1, 2}) {
		t.Fatalf("first run: %v, %v", applied, err)
	}
	fsys["0001_a.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE public.a (id bigint);")}
	fsys["0003_c.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE public.c (id int);")}
	_, err := db.MigrateFS(ctx, pool, fsys)
	if !errors.Is(err, db.ErrChecksum) || !strings.Contains(err.Error(), "0001_a.sql") {
		t.Fatalf("changed file: %v, want ErrChecksum naming 0001_a.sql", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename = 'c'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("a later migration ran after the refusal (%d, %v)", n, err)
	}
}

// A file marked `---- tern: disable-tx ----` runs outside a transaction, so it can build an
// index concurrently (which PostgreSQL refuses inside one), without blocking writers.
func TestNonTransactionalMigrationBuildsAnIndexConcurrently(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := emptyPool(t)
	index := "CREATE INDEX CONCURRENTLY t_v ON public.t (v);"
	fsys := fstest.MapFS{
		"0001_t.sql":   {Data: []byte("CREATE TABLE public.t (id int PRIMARY KEY, v int); INSERT INTO public.t SELECT g, g FROM generate_series(1, 1000) g;")},
		"0002_t_v.sql": {Data: []byte(index)},
	}
	if _, err := db.MigrateFS(ctx, pool, fsys); err == nil || !strings.Contains(err.Error(), "0002_t_v.sql") {
		t.Fatalf("CONCURRENTLY inside a transaction: %v, want PostgreSQL's refusal naming the file", err)
	}
	fsys["0002_t_v.sql"] = &fstest.MapFile{Data: []byte("---- tern: disable-tx ----\n" + index)}
	applied, err := db.MigrateFS(ctx, pool, fsys)
	if err != nil || !slices.Equal(applied, []int{2}) {
		t.Fatalf("non-transactional step: %v, %v; want [2]", applied, err)
	}
	var valid bool
	if err := pool.QueryRow(ctx, `SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.t_v'::regclass`).Scan(&valid); err != nil || !valid {
		t.Fatalf("index t_v valid = %v, %v", valid, err)
	}
}

// A migration that waits for a lock held by live traffic gives up after lock_timeout rather
// than queue every later query on the table behind it; the earlier ones stay applied, and a run
// once the lock is gone finishes.
func TestMigrationWaitingForALockFailsFastAndResumes(t *testing.T) {
	ctx := context.Background()
	pool := emptyPool(t)
	defer db.SetLockTimeout("200ms")()
	fsys := fstest.MapFS{
		"0001_t.sql": {Data: []byte("CREATE TABLE public.t (id int);")},
	}
	if _, err := db.MigrateFS(ctx, pool, fsys); err != nil {
		t.Fatal(err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE public.t IN ACCESS SHARE MODE`); err != nil {
		t.Fatal(err)
	}
	fsys["0002_u.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE public.u (id int);")}
	fsys["0003_t_v.sql"] = &fstest.MapFile{Data: []byte("ALTER TABLE public.t ADD COLUMN v int;")}
	applied, err := db.MigrateFS(ctx, pool, fsys)
	if err == nil || !strings.Contains(err.Error(), "0003_t_v.sql") || !strings.Contains(err.Error(), "lock timeout") || !slices.Equal(applied, []int{2}) {
		t.Fatalf("blocked migration: applied %v, %v; want [2] and a lock timeout naming 0003_t_v.sql", applied, err)
	}
	_ = tx.Rollback(ctx)
	if applied, err := db.MigrateFS(ctx, pool, fsys); err != nil || !slices.Equal(applied, []int{3}) {
		t.Fatalf("after the lock is gone: %v, %v; want [3]", applied, err)
	}
}

// A database the earlier runner migrated (a ledger without checksums, no version table) is
// taken over: nothing applied twice, the checksums recorded, the rest applied.
func TestDatabaseOfTheEarlierRunnerIsAdopted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := emptyPool(t)
	if _, err := pool.Exec(ctx, `
		CREATE SCHEMA communication;
		CREATE TABLE communication.schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());
		CREATE TABLE public.a (id int);
		INSERT INTO communication.schema_migrations (version, name) VALUES (1, '0001_a.sql')`); err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{
		"0001_a.sql": {Data: []byte("CREATE TABLE public.a (id int);")},
		"0002_b.sql": {Data: []byte("CREATE TABLE public.b (id int);")},
	}
	applied, err := db.MigrateFS(ctx, pool, fsys)
	if err != nil || !slices.Equal(applied, []int{2}) {
		t.Fatalf("adopting: %v, %v; want only [2] applied", applied, err)
	}
	var sums int
	if err := pool.QueryRow(ctx, `SELECT count(checksum) FROM communication.schema_migrations`).Scan(&sums); err != nil || sums != 2 {
		t.Fatalf("%d checksums recorded (%v), want 2", sums, err)
	}
}
