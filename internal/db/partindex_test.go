package db_test

import (
	"context"
	"slices"
	"testing"
	"testing/fstest"

	"github.com/logicspike/comms/internal/db"
)

// An index a migration declares ON ONLY a partitioned table is built on every partition by
// migrate, concurrently, and attached, which makes it valid; a partition's build that failed
// half-way before (an invalid index of the name it would get) is redone; a second run finds
// nothing to do.
func TestMigrateBuildsAPartitionedIndexPartitionByPartition(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := emptyPool(t)
	fsys := fstest.MapFS{
		"0001_h.sql": {Data: []byte(`
			CREATE SCHEMA IF NOT EXISTS communication;
			CREATE TABLE communication.h (tenant_id text, r text, at timestamptz NOT NULL) PARTITION BY RANGE (at);
			CREATE TABLE communication.h_p20260105 PARTITION OF communication.h FOR VALUES FROM ('2026-01-05') TO ('2026-01-12');
			CREATE TABLE communication.h_p20260112 PARTITION OF communication.h FOR VALUES FROM ('2026-01-12') TO ('2026-01-19');
			INSERT INTO communication.h SELECT 't', CASE WHEN g % 2 = 0 THEN 'u_' || g END, '2026-01-05'::timestamptz + g * interval '1 minute'
			FROM generate_series(1, 15000) g;`)},
	}
	if _, err := db.MigrateFS(ctx, pool, fsys); err != nil {
		t.Fatal(err)
	}
	// A unique build over duplicates fails and leaves its index behind, invalid.
	if _, err := pool.Exec(ctx, `CREATE UNIQUE INDEX CONCURRENTLY h_p20260112_r ON communication.h_p20260112 (tenant_id)`); err == nil {
		t.Fatal("a unique index over duplicates was built")
	}
	fsys["0002_h_r.sql"] = &fstest.MapFile{Data: []byte("---- tern: disable-tx ----\n" +
		"CREATE INDEX h_r ON ONLY communication.h (tenant_id, r) WHERE r IS NOT NULL;")}
	if applied, err := db.MigrateFS(ctx, pool, fsys); err != nil || !slices.Equal(applied, []int{2}) {
		t.Fatalf("migrate: %v, %v; want [2]", applied, err)
	}
	var valid bool
	if err := pool.QueryRow(ctx, `SELECT indisvalid FROM pg_index WHERE indexrelid = 'communication.h_r'::regclass`).Scan(&valid); err != nil || !valid {
		t.Fatalf("h_r valid = %v, %v; want valid once every partition has it", valid, err)
	}
	rows, _ := pool.Query(ctx, `SELECT c.relname || ' ' || pg_get_indexdef(c.oid) || ' ' || i.indisvalid
		FROM pg_inherits inh JOIN pg_class c ON c.oid = inh.inhrelid JOIN pg_index i ON i.indexrelid = c.oid
		WHERE inh.inhparent = 'communication.h_r'::regclass ORDER BY 1`)
	var children []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		children = append(children, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"h_p20260105_r CREATE INDEX h_p20260105_r ON communication.h_p20260105 USING btree (tenant_id, r) WHERE (r IS NOT NULL) true",
		"h_p20260112_r CREATE INDEX h_p20260112_r ON communication.h_p20260112 USING btree (tenant_id, r) WHERE (r IS NOT NULL) true",
	}
	if !slices.Equal(children, want) {
		t.Fatalf("partition indexes:\n%q\nwant\n%q", children, want)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if n, err := db.CompletePartitionIndexes(ctx, conn.Conn()); err != nil || n != 0 {
		t.Fatalf("second run built %d: %v; want nothing to do", n, err)
	}
}
