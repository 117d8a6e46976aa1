package db_test

import (
	"context"
	"io/fs"
	"testing"
	"testing/fstest"

	"github.com/logicspike/comms/internal/db"
	"github.com/logicspike/comms/migrations"
)

// migrationsThrough is the release's migrations up to and including version last.
func migrationsThrough(t *testing.T, last string) fstest.MapFS {
	t.Helper()
	out := fstest.MapFS{}
	names, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if n[:4] <= last {
			data, err := fs.ReadFile(migrations.FS, n)
			if err != nil {
				t.Fatal(err)
			}
			out[n] = &fstest.MapFile{Data: data}
		}
	}
	return out
}

// Migration 0039 moves callbacks and provider references into week partitions with every row,
// months old included: a pending callback stays pending, and new callbacks take ids after the old
// ones.
func TestUpgradeToPartitionedCallbacksKeepsEveryRow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := emptyPool(t)
	if _, err := db.MigrateFS(ctx, pool, migrationsThrough(t, "0038")); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `
		INSERT INTO communication.provider_message_refs (provider_config_id, provider_message_id, tenant_id, message_id, created_at)
		SELECT 'prv_a', 'SM' || g, 'ten_a', 'msg_' || g, now() - g * interval '1 day' FROM generate_series(0, 60) g;
		INSERT INTO communication.callbacks (provider_config_id, provider_type, event_key, provider_message_id, status, occurred_at,
		                                     payload, received_at, outcome)
		SELECT 'prv_a', 'twilio', 'SM' || g || ':delivered', 'SM' || g, 'delivered', now() - g * interval '1 day', '{}',
		       now() - g * interval '1 day', CASE WHEN g = 0 THEN 'pending' ELSE 'applied' END
		FROM generate_series(0, 60) g`); err != nil {
		t.Fatal(err)
	}
	var maxID int64
	if err := pool.QueryRow(ctx, `SELECT max(id) FROM communication.callbacks`).Scan(&maxID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.MigrateFS(ctx, pool, migrationsThrough(t, "9999")); err != nil {
		t.Fatal(err)
	}
	var refs, callbacks, partitions int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM communication.provider_message_refs),
		(SELECT count(*) FROM communication.callbacks),
		(SELECT count(*) FROM pg_inherits WHERE inhparent = 'communication.callbacks'::regclass)`).Scan(&refs, &callbacks, &partitions); err != nil {
		t.Fatal(err)
	}
	if refs != 61 || callbacks != 61 || partitions < 9 {
		t.Fatalf("after the upgrade: %d references, %d callbacks in %d partitions; want 61, 61 and the 9 weeks or more they span", refs, callbacks, partitions)
	}
	var id int64
	if err := pool.QueryRow(ctx, `
		INSERT INTO communication.callbacks (provider_config_id, provider_type, event_key, provider_message_id, status, occurred_at, payload)
		VALUES ('prv_a', 'twilio', 'new', 'SMnew', 'delivered', now(), '{}') RETURNING id`).Scan(&id); err != nil || id <= maxID {
		t.Fatalf("a new callback took id %d (%v), want one after %d", id, err, maxID)
	}
	var pending string
	if err := pool.QueryRow(ctx, `SELECT provider_message_id FROM communication.callbacks WHERE outcome = 'pending' AND event_key <> 'new'`).Scan(&pending); err != nil || pending != "SM0" {
		t.Fatalf("the pending callback: %q, %v", pending, err)
	}
}
