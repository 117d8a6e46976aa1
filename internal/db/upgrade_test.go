package db_test

import (
	"context"
	"io/fs"
	"slices"
	"testing"
	"testing/fstest"

	"github.com/logicspike/comms/internal/db"
	"github.com/logicspike/comms/internal/testing/testenv"
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

// Upgrading to partitioned webhook deliveries (migration 0040) keeps every delivery with its
// attempts, files each under its event's time (the deliverer's key for it from then on), and
// numbers new ones after the old. Migration 0044 then flags the one filed elsewhere (and not an
// erased one, whose body jsonb wrote), and a delivery written without the flag (by a release that
// does not know it) reads as unknown.
func TestUpgradeToPartitionedWebhookDeliveriesKeepsEveryRow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := emptyPool(t)
	if _, err := db.MigrateFS(ctx, pool, migrationsThrough(t, "0039")); err != nil {
		t.Fatal(err)
	}
	// 40 deliveries over 40 days, each first seen a minute after its event, with two attempts;
	// the last one's event time is a provider's clock, years off, and keeps its first sighting.
	if _, err := pool.Exec(ctx, `
		INSERT INTO communication.tenants (id, name) VALUES ('ten_a', 'A');
		INSERT INTO communication.webhook_endpoints (id, tenant_id, url, key_version, secret_sealed)
		VALUES ('whe_a', 'ten_a', 'https://hooks.example.com/a', 'v1', '\x00');
		INSERT INTO communication.webhook_deliveries (endpoint_id, tenant_id, event_id, event_type, payload, status, created_at)
		SELECT 'whe_a', 'ten_a', 'evt_' || g, 'comms.message.sent',
		       convert_to(format('{"specversion":"1.0","id":"evt_%s","time":"%s","data":{}}', g,
		                         to_char(CASE WHEN g = 39 THEN timestamptz '2001-01-01' ELSE now() - g * interval '1 day' END
		                                 AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')), 'UTF8'),
		       CASE WHEN g = 0 THEN 'pending' ELSE 'succeeded' END, now() - g * interval '1 day' + interval '1 minute'
		FROM generate_series(0, 39) g;
		INSERT INTO communication.webhook_attempts (delivery_id, attempted_at, latency_ms)
		SELECT id, created_at, 5 FROM communication.webhook_deliveries, generate_series(1, 2)`); err != nil {
		t.Fatal(err)
	}
	var maxID int64
	if err := pool.QueryRow(ctx, `SELECT max(id) FROM communication.webhook_deliveries`).Scan(&maxID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.MigrateFS(ctx, pool, migrationsThrough(t, "0043")); err != nil {
		t.Fatal(err)
	}
	// An erased delivery's body is jsonb's text: "time": "…", with spaces.
	if _, err := pool.Exec(ctx, `UPDATE communication.webhook_deliveries SET payload = convert_to(convert_from(payload, 'UTF8')::jsonb::text, 'UTF8')
		WHERE event_id = 'evt_38'`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.MigrateFS(ctx, pool, migrationsThrough(t, "9999")); err != nil {
		t.Fatal(err)
	}
	var deliveries, attempts, atEvent, partitions int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM communication.webhook_deliveries),
		(SELECT count(*) FROM communication.webhook_attempts a JOIN communication.webhook_deliveries d
		   ON d.tenant_id = a.tenant_id AND d.id = a.delivery_id AND d.created_at = a.delivery_at),
		(SELECT count(*) FROM communication.webhook_deliveries
		   WHERE created_at = (convert_from(payload, 'UTF8')::jsonb->>'time')::timestamptz
		      OR (event_id = 'evt_39' AND created_at > now() - interval '40 days')),
		(SELECT count(*) FROM pg_inherits WHERE inhparent = 'communication.webhook_deliveries'::regclass)`).Scan(&deliveries, &attempts, &atEvent, &partitions); err != nil {
		t.Fatal(err)
	}
	if deliveries != 40 || attempts != 80 || atEvent != 40 || partitions < 6 {
		t.Fatalf("after the upgrade: %d deliveries (%d at their event's time), %d attempts with their delivery, %d partitions; want 40 (40), 80 and the 6 weeks or more they span",
			deliveries, atEvent, attempts, partitions)
	}
	var id int64
	if err := pool.QueryRow(ctx, `
		INSERT INTO communication.webhook_deliveries (endpoint_id, tenant_id, event_id, event_type, payload, status, created_at)
		VALUES ('whe_a', 'ten_a', 'evt_new', 'comms.message.sent', '\x7b7d', 'pending', now()) RETURNING id`).Scan(&id); err != nil || id <= maxID {
		t.Fatalf("a new delivery took id %d (%v), want one after %d", id, err, maxID)
	}
	var late []string
	var unknown int
	if err := pool.QueryRow(ctx, `SELECT coalesce(array_agg(event_id) FILTER (WHERE filed_late), '{}'), count(*) FILTER (WHERE filed_late IS NULL)
		FROM communication.webhook_deliveries`).Scan(&late, &unknown); err != nil {
		t.Fatal(err)
	}
	if len(late) != 1 || late[0] != "evt_39" || unknown != 1 {
		t.Fatalf("flagged as filed away from their event's time: %v, and %d unknown; want [evt_39] and the new one", late, unknown)
	}
}

// The migrations turn JIT compilation off for the database's new sessions (migration 0042): over a
// history at size it compiled millisecond statements for a hundred milliseconds.
func TestTheDatabaseRunsWithoutJIT(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testenv.EmptyDatabaseURL(t)
	pool, err := db.Open(ctx, url, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := db.MigrateFS(ctx, pool, migrationsThrough(t, "9999")); err != nil {
		t.Fatal(err)
	}
	fresh, err := db.Open(ctx, url, 1) // a session opened after the migration
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	var jit string
	if err := fresh.QueryRow(ctx, `SHOW jit`).Scan(&jit); err != nil || jit != "off" {
		t.Fatalf("jit = %q (%v), want off", jit, err)
	}
}

// Migration 0047 stops ANALYZE sampling addresses, and removes what it sampled of them before
// (the migrator being a superuser, as here), keeping the statistics of the other columns.
func TestUpgradeRemovesTheAddressesStatisticsSampled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := emptyPool(t)
	if _, err := db.MigrateFS(ctx, pool, migrationsThrough(t, "0046")); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `
		INSERT INTO communication.recipients (tenant_id, external_id, email, phone)
		SELECT 'ten_a', 'u' || g, 'Ann@Example.com', '+14155550123' FROM generate_series(1, 50) g;
		ANALYZE communication.recipients`); err != nil {
		t.Fatal(err)
	}
	if found := testenv.StatisticsHolding(t, pool, "14155550123"); !slices.Contains(found, "recipients.phone") {
		t.Fatalf("before the upgrade the number was sampled in %v; want recipients.phone", found)
	}
	if _, err := db.MigrateFS(ctx, pool, migrationsThrough(t, "9999")); err != nil {
		t.Fatal(err)
	}
	for _, needle := range []string{"14155550123", "ann@example.com"} {
		if found := testenv.StatisticsHolding(t, pool, needle); len(found) > 0 {
			t.Errorf("after the upgrade %s is still sampled in %v", needle, found)
		}
	}
	if found := testenv.StatisticsHolding(t, pool, "ten_a"); !slices.Contains(found, "recipients.tenant_id") {
		t.Fatalf("the tenant's statistics went too: %v", found)
	}
}
