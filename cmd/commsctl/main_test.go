package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/logicspike/comms/internal/queue"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/testing/fakeprovider"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/internal/testing/testenv"
	"github.com/logicspike/comms/pkg/ids"
)

func TestOpsWorkflow(t *testing.T) {
	t.Setenv("COMMS_DATABASE_URL", testenv.DatabaseURL(t))
	t.Setenv("COMMS_ENCRYPTION_KEYS", stacktest.TestKeys)
	ctx := context.Background()
	run1 := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := run(ctx, args, &out); err != nil {
			t.Fatalf("commsctl %v: %v\n%s", args, err, out.String())
		}
		return out.String()
	}
	run1("migrate") // already migrated: applies nothing, fails nothing
	if out := run1("outbox", "requeue"); !strings.Contains(out, "0 unfinished messages will be published again") {
		t.Fatalf("outbox requeue on an empty outbox: %s", out)
	}
	out := run1("tenant", "create", "-name", "acme", "-no-fallback")
	tenant := regexp.MustCompile(`ten_[0-9A-Za-z]+`).FindString(out)
	if tenant == "" || !strings.Contains(out, `"allow_system_fallback": false`) {
		t.Fatalf("tenant create: %s", out)
	}
	if out := run1("tenant", "set", tenant, "-max-attempts", "3", "-rate", "50", "-max-retry-age", "2h", "-content-retention", "168h",
		"-history-retention", "720h", "-audit-retention", "8760h"); !strings.Contains(out, `"max_attempts": 3`) ||
		!strings.Contains(out, `"rate_per_second": 50`) || !strings.Contains(out, `"max_retry_age_seconds": 7200`) || !strings.Contains(out, `"content_retention_seconds": 604800`) ||
		!strings.Contains(out, `"history_retention_seconds": 2592000`) || !strings.Contains(out, `"audit_retention_seconds": 31536000`) {
		t.Fatalf("tenant set: %s", out)
	}
	if out := run1("tenant", "set", tenant, "-quota-sms-hard", "5000", "-quota-email-soft", "800", "-quota-email-hard", "1000"); !strings.Contains(out, `"sms": {
      "soft_limit": 0,
      "hard_limit": 5000`) || !strings.Contains(out, `"soft_limit": 800`) {
		t.Fatalf("tenant set quotas: %s", out)
	}
	if err := run(ctx, []string{"tenant", "set", tenant, "-quota-sms-soft", "9", "-quota-sms-hard", "5"}, io.Discard); err == nil || !strings.Contains(err.Error(), "quotas.sms.soft_limit") {
		t.Fatalf("a soft limit above the hard one: %v", err)
	}
	if err := run(ctx, []string{"tenant", "set", tenant, "-max-attempts", "99"}, io.Discard); err == nil || !strings.Contains(err.Error(), "max_attempts") {
		t.Fatalf("invalid tenant set: %v", err)
	}
	if !strings.Contains(run1("tenant", "list"), tenant) {
		t.Fatal("tenant list misses the new tenant")
	}
	// A plan's retentions are what a tenant created on it starts with.
	if out := run1("plan", "set", "pro", "-history-retention", "4320h", "-audit-retention", "9600h"); !strings.Contains(out, `"history_retention_seconds": 15552000`) ||
		!strings.Contains(out, `"audit_retention_seconds": 34560000`) || strings.Contains(out, "content_retention_seconds") {
		t.Fatalf("plan set: %s", out)
	}
	if err := run(ctx, []string{"plan", "set", "pro", "-history-retention", "1h"}, io.Discard); err == nil || !strings.Contains(err.Error(), "history_retention_seconds") {
		t.Fatalf("a history retention under a day: %v", err)
	}
	if out := run1("plan", "list"); !regexp.MustCompile(`pro\s+default\s+4320h0m0s\s+9600h0m0s`).MatchString(out) {
		t.Fatalf("plan list: %s", out)
	}
	if out := run1("tenant", "create", "-name", "on pro", "-plan", "pro"); !strings.Contains(out, `"history_retention_seconds": 15552000`) {
		t.Fatalf("a tenant created on the plan: %s", out)
	}
	// stdout is one JSON document (for jq -r .key); the note for people goes to stderr.
	var notes bytes.Buffer
	stderr = &notes
	defer func() { stderr = os.Stderr }()
	out = run1("apikey", "create", "-tenant", tenant, "-name", "backend")
	var created struct{ ID, Key, Kind string }
	if err := json.Unmarshal([]byte(out), &created); err != nil || !strings.HasPrefix(created.Key, "ck_tenant_") || !strings.HasPrefix(created.ID, "key_") || created.Kind != "tenant" {
		t.Fatalf("apikey create stdout is not one JSON document with the key: %v\n%s", err, out)
	}
	if !strings.Contains(notes.String(), "shown once") {
		t.Errorf("apikey create told the operator nothing on stderr: %q", notes.String())
	}
	keyID := created.ID
	list := run1("apikey", "list", "-tenant", tenant)
	if !strings.Contains(list, keyID) || strings.Contains(list, created.Key) || !strings.Contains(list, "active") {
		t.Fatalf("apikey list must show the key, never its secret: %s", list)
	}
	// Every list prints one JSON document with -o json.
	for _, args := range [][]string{{"apikey", "list", "-tenant", tenant, "-o", "json"}, {"tenant", "list", "-o", "json"}, {"migrate", "status", "-o", "json"}} {
		var v []map[string]any
		if err := json.Unmarshal([]byte(run1(args...)), &v); err != nil || len(v) == 0 {
			t.Errorf("commsctl %v: %v (%d items)", args, err, len(v))
		}
	}
	if err := run(ctx, []string{"tenant", "list", "-o", "yaml"}, io.Discard); !errors.Is(err, errUsage) {
		t.Errorf("-o yaml: %v, want a usage error", err)
	}
	if st := run1("migrate", "status"); !strings.Contains(st, "0001_init.sql") || !strings.Contains(st, " ok") || strings.Contains(st, "not applied") {
		t.Errorf("migrate status on a migrated database:\n%s", st)
	}
	run1("apikey", "revoke", keyID)
	if !strings.Contains(run1("apikey", "list"), "revoked") {
		t.Fatal("revoked key not shown as revoked")
	}
	if !strings.Contains(run1("provider", "system-sandbox"), `"type": "sandbox"`) {
		t.Fatal("system sandbox not created")
	}
	var systems []struct{ ID, Type string }
	if err := json.Unmarshal([]byte(run1("provider", "list-system", "-o", "json")), &systems); err != nil || len(systems) != 2 || systems[0].Type != "sandbox" {
		t.Fatalf("provider list-system -o json: %v %+v", err, systems)
	}
	var out2 bytes.Buffer
	if err := run(ctx, []string{"tenant", "explode"}, &out2); !errors.Is(err, errUsage) {
		t.Fatalf("unknown command: %v", err)
	}
	if err := run(ctx, []string{"apikey", "create", "-kind", "tenant", "-name", "x"}, &out2); err == nil {
		t.Fatal("a tenant key without a tenant must fail")
	}
}

// An operator adds a Twilio system default (Save & Test through the fake), then rotates the
// encryption key: every config ends up under the new key and still works.
func TestSystemProviderAndKeyRotation(t *testing.T) {
	tw := fakeprovider.NewTwilio()
	defer tw.Close()
	t.Setenv("COMMS_DATABASE_URL", testenv.DatabaseURL(t))
	t.Setenv("COMMS_ENCRYPTION_KEYS", stacktest.TestKeys)
	t.Setenv("COMMS_TWILIO_BASE_URL", tw.URL)
	ctx := context.Background()
	run1 := func(in string, args ...string) (string, error) {
		t.Helper()
		stdin = strings.NewReader(in)
		var out bytes.Buffer
		err := run(ctx, args, &out)
		return out.String(), err
	}
	creds := `{"account_sid":"` + tw.AccountSID + `","auth_token":"` + tw.AuthToken + `"}`
	create := []string{"provider", "create", "-type", "twilio", "-name", "platform twilio", "-channel", "sms",
		"-credentials", "-", "-sender", `{"from":"+14155550100"}`, "-test-recipient", "+14155550123"}

	// Wrong token: refused with Twilio's own words, nothing stored.
	_, err := run1(strings.Replace(creds, tw.AuthToken, strings.Repeat("0", 32), 1), create...)
	if err == nil || !strings.Contains(err.Error(), "Twilio: authentication failed (20003)") {
		t.Fatalf("bad credentials: %v", err)
	}
	out, err := run1(creds, create...)
	if err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	id := regexp.MustCompile(`prv_[0-9A-Za-z]+`).FindString(out)
	if id == "" || strings.Contains(out, tw.AuthToken) || len(tw.Received()) != 2-1 {
		t.Fatalf("create printed %s; fake received %d", out, len(tw.Received()))
	}
	list, _ := run1("", "provider", "list-system")
	if !strings.Contains(list, "AC01…cdef") || strings.Contains(list, tw.AuthToken) {
		t.Fatalf("list-system must show the mask only:\n%s", list)
	}

	newKey, err := run1("", "keys", "generate", "-version", "v2")
	if err != nil || !strings.HasPrefix(newKey, "v2:") {
		t.Fatalf("generate: %q %v", newKey, err)
	}
	t.Setenv("COMMS_ENCRYPTION_KEYS", strings.TrimSpace(newKey)+","+stacktest.TestKeys)
	if out, err := run1("", "keys", "rotate"); err != nil || !strings.Contains(out, "resealed 1 ") {
		t.Fatalf("rotate: %v %s", err, out)
	}
	if out, _ := run1("", "keys", "rotate"); !strings.Contains(out, "resealed 0 ") {
		t.Fatalf("second rotate must find nothing to do: %s", out)
	}
	// The rotation is audited as the OS user, the sealed credentials masked.
	pool, err := pgxpool.New(ctx, os.Getenv("COMMS_DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var version, sealed string
	if err := pool.QueryRow(ctx, `SELECT after->>'key_version', after->>'encrypted_config' FROM communication.audit_log
		WHERE action = 'provider_config.updated' AND target_id = $1 AND actor_kind = 'cli' AND actor_id = $2`, id, osUser()).Scan(&version, &sealed); err != nil ||
		version != "v2" || sealed != "***" {
		t.Fatalf("the rotation's audit entry: %q %q %v", version, sealed, err)
	}
	// The old key can now be dropped: the config opens and sends under v2 alone.
	t.Setenv("COMMS_ENCRYPTION_KEYS", strings.TrimSpace(newKey))
	if out, err := run1("", "provider", "test", id, "-test-recipient", "+14155550124"); err != nil {
		t.Fatalf("test after rotation: %v %s", err, out)
	}
	if n := len(tw.Received()); n != 2 {
		t.Fatalf("fake received %d, want 2", n)
	}
}

func TestDLQCommands(t *testing.T) {
	dbURL := testenv.DatabaseURL(t)
	t.Setenv("COMMS_DATABASE_URL", dbURL)
	t.Setenv("COMMS_ENCRYPTION_KEYS", stacktest.TestKeys)
	t.Setenv("COMMS_KAFKA_BROKERS", strings.Join(testenv.Kafka(t, 1, queue.AllTopics()...), ","))
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	dead := ids.NewSortable(ids.Message)
	// A message id carries the time it was made (migration 0027).
	if _, err := pool.Exec(ctx, strings.ReplaceAll(`
		INSERT INTO communication.tenants (id, name) VALUES ('ten_ops', 'ops');
		INSERT INTO communication.message_logs (id, tenant_id, created_at, channel, recipient, body_text, status, attempts, error_code)
		VALUES ('msg_dead', 'ten_ops', communication.id_time('msg_dead'), 'sms', '+14155550123', 'x', 'failed', 6, 'provider_unavailable');
		INSERT INTO communication.dead_letters (message_id, tenant_id, channel, provider_type, error_code, attempts, envelope)
		VALUES ('msg_dead', 'ten_ops', 'sms', 'twilio', 'provider_unavailable', 6, '{"message_id":"msg_dead","tenant_id":"ten_ops"}')`, "msg_dead", dead)); err != nil {
		t.Fatal(err)
	}
	run1 := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, args, &out)
		return out.String(), err
	}
	if out, err := run1("dlq", "list", "-tenant", "ten_ops"); err != nil || !strings.Contains(out, dead) || !strings.Contains(out, "provider_unavailable") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if _, err := run1("dlq", "replay"); !errors.Is(err, errUsage) {
		t.Fatalf("replay without a filter: %v", err)
	}
	if out, err := run1("dlq", "show", dlqID(t, pool), "-o", "json"); err != nil || !strings.Contains(out, `"message_id": "`+dead+`"`) {
		t.Fatalf("show -o json: %v\n%s", err, out)
	}
	if out, err := run1("dlq", "show", dlqID(t, pool)); err != nil || !strings.Contains(out, "provider_unavailable") || !strings.Contains(out, "attempts") {
		t.Fatalf("show: %v\n%s", err, out)
	}
	if out, err := run1("dlq", "replay", "-tenant", "ten_ops", "-dry-run", "-o", "json"); err != nil || !strings.Contains(out, `"matched": 1`) || !strings.Contains(out, `"replayed": 0`) {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	var progress bytes.Buffer
	stderr = &progress
	defer func() { stderr = os.Stderr }()
	if out, err := run1("dlq", "replay", "-error-code", "provider_unavailable", "-o", "json"); err != nil || !strings.Contains(out, `"replayed": 1`) {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	if !strings.Contains(progress.String(), "published 1 of 1 replayed messages") {
		t.Errorf("replay progress on stderr: %q", progress.String())
	}
	if out, _ := run1("dlq", "replay", "-error-code", "provider_unavailable"); !regexp.MustCompile(`(?m)^rpl_\S+\s+\S+\s+commsctl.*\s0\s+0\s*$`).MatchString(out) {
		t.Fatalf("second replay (table: matched 0, replayed 0): %s", out)
	}
	var status string
	_ = pool.QueryRow(ctx, `SELECT status FROM communication.message_logs WHERE id = $1`, dead).Scan(&status)
	if out, _ := run1("dlq", "replays"); status != "queued" || !strings.Contains(out, "commsctl") {
		t.Fatalf("status %s, audit %s", status, out)
	}
	var replays []map[string]any
	if out, _ := run1("dlq", "replays", "-o", "json"); json.Unmarshal([]byte(out), &replays) != nil || len(replays) != 3 || replays[0]["filter"] == nil {
		t.Fatalf("replays -o json: %s", out)
	}
	// Each replay is in the audit log as the OS user who ran commsctl.
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM communication.audit_log WHERE action = 'dlq_replay.created' AND actor_kind = 'cli' AND actor_id = $1`,
		osUser()).Scan(&n); err != nil || n != 3 {
		t.Fatalf("%d audited replays (%v), want 3", n, err)
	}
}

func dlqID(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var id string
	if err := pool.QueryRow(context.Background(), `SELECT id::text FROM communication.dead_letters WHERE tenant_id = 'ten_ops'`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// The billing export writes the month's rows to a file and its progress to stderr.
func TestUsageExport(t *testing.T) {
	t.Setenv("COMMS_DATABASE_URL", testenv.DatabaseURL(t))
	t.Setenv("COMMS_ENCRYPTION_KEYS", stacktest.TestKeys)
	ctx := context.Background()
	if err := run(ctx, []string{"migrate"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, testenv.DatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `
		SELECT communication.create_partitions('message_logs', '2026-11-02', '2026-11-02');
		INSERT INTO communication.message_logs (id, tenant_id, channel, recipient, status, created_at)
		SELECT 'msg_' || i, CASE WHEN i % 2 = 0 THEN 'ten_a' ELSE 'ten_b' END, 'email', 'x@example.com', 'sent', timestamptz '2026-11-02' + i * interval '1 minute'
		FROM generate_series(1, 10) AS i`); err != nil {
		t.Fatal(err)
	}
	st := store.New(pool)
	file := t.TempDir() + "/nov.csv"
	var progress bytes.Buffer
	if err := usageExport(ctx, st, []string{"-month", "2026-11", "-tenant", "ten_a", "-o", file}, io.Discard, &progress); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "tenant_id,message_id,") || !strings.HasPrefix(lines[1], "ten_a,msg_2,") {
		t.Fatalf("export: %q", lines)
	}
	if !strings.Contains(progress.String(), "exported 5 rows") {
		t.Fatalf("progress: %q", progress.String())
	}
	if err := run(ctx, []string{"usage", "export", "-month", "November"}, io.Discard); err == nil || !strings.Contains(err.Error(), "-month") {
		t.Fatalf("a bad month: %v", err)
	}
}

// The usage is made from the command table: every command is listed, each answers -h with its
// own lines without any configuration, and a group's -h lists the group.
func TestUsageComesFromTheCommandTable(t *testing.T) {
	t.Setenv("COMMS_ENCRYPTION_KEYS", "") // no configuration: help must not need it
	var all bytes.Buffer
	if err := run(context.Background(), []string{"help"}, &all); err != nil {
		t.Fatal(err)
	}
	for _, c := range commands {
		if c.run == nil || !strings.Contains(all.String(), "\n  "+c.name) {
			t.Errorf("command %q: missing from the usage or without a run function", c.name)
		}
		var one bytes.Buffer
		if err := run(context.Background(), append(strings.Fields(c.name), "-h"), &one); err != nil || !strings.Contains(one.String(), "  "+c.name) {
			t.Errorf("%s -h: %v\n%s", c.name, err, one.String())
		}
	}
	var group bytes.Buffer
	if err := run(context.Background(), []string{"dlq", "-h"}, &group); err != nil || !strings.Contains(group.String(), "dlq replays") ||
		!strings.Contains(group.String(), "dlq show") || strings.Contains(group.String(), "tenant create") {
		t.Errorf("dlq -h: %v\n%s", err, group.String())
	}
	if err := run(context.Background(), []string{"frobnicate"}, io.Discard); !errors.Is(err, errUsage) {
		t.Errorf("unknown command: %v", err)
	}
}

// partitions create makes the weeks ahead, list shows them as JSON, and drop-expired drops
// nothing on a young database.
func TestPartitionCommands(t *testing.T) {
	t.Setenv("COMMS_DATABASE_URL", testenv.DatabaseURL(t))
	t.Setenv("COMMS_ENCRYPTION_KEYS", stacktest.TestKeys)
	ctx := context.Background()
	var out bytes.Buffer
	if err := run(ctx, []string{"partitions", "create", "-ahead", "40"}, &out); err != nil || !strings.Contains(out.String(), "created") {
		t.Fatalf("create: %v %s", err, out.String())
	}
	out.Reset()
	if err := run(ctx, []string{"partitions", "list", "-o", "json"}, &out); err != nil {
		t.Fatal(err)
	}
	var parts []struct {
		Table    string
		Name     string
		From, To time.Time
	}
	if err := json.Unmarshal(out.Bytes(), &parts); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	ahead := time.Now().AddDate(0, 0, 40)
	var covered bool
	for _, p := range parts {
		if p.Table == "message_logs" && !p.From.After(ahead) && p.To.After(ahead) {
			covered = true
		}
	}
	if !covered {
		t.Fatalf("no message_logs partition holds %s: %s", ahead.Format(time.DateOnly), out.String())
	}
	out.Reset()
	if err := run(ctx, []string{"partitions", "drop-expired", "-o", "json"}, &out); err != nil || strings.TrimSpace(out.String()) != "[]" {
		t.Fatalf("drop-expired on a young database: %v %s", err, out.String())
	}
}
