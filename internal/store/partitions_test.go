package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/testing/testenv"
	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// The database reads the time out of a message id as pkg/ids does: it is how a row finds its day.
func TestIDTimeInSQLIsTheIDsTime(t *testing.T) {
	pool := testenv.DB(t)
	ctx := context.Background()
	for _, at := range []time.Time{time.Now(), time.Date(2026, 2, 28, 23, 59, 59, 999e6, time.UTC), time.UnixMilli(1), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)} {
		id := ids.NewSortableAt(ids.Message, at)
		var got *time.Time
		if err := pool.QueryRow(ctx, `SELECT communication.id_time($1)`, id).Scan(&got); err != nil {
			t.Fatal(err)
		}
		want, _ := ids.SortableTime(id, ids.Message)
		if got == nil || !got.Equal(want) {
			t.Errorf("id_time(%s) = %v, want %v", id, got, want)
		}
	}
	for _, id := range []string{"msg_dead", "msg", "", "nounderscore0123456789012"} {
		var got *time.Time
		if err := pool.QueryRow(ctx, `SELECT communication.id_time($1)`, id).Scan(&got); err != nil || got != nil {
			t.Errorf("id_time(%q) = %v, %v: want NULL", id, got, err)
		}
	}
}

// statements records the statements that read or write the partitioned history tables, with
// their arguments, and whether they ran after store's byKey settings (in the same transaction).
type statements struct {
	mu    sync.Mutex
	list  []statement
	keyed map[*pgx.Conn]bool // the connection's transaction set byKey
}

type statement struct {
	sql   string
	args  []any
	byKey bool
}

var historyTable = regexp.MustCompile(`communication\.(message_logs|message_events|callbacks|provider_message_refs|webhook_deliveries|webhook_attempts)\b`)

func (s *statements) add(conn *pgx.Conn, sql string, args []any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if strings.Contains(sql, "set_config('enable_seqscan', 'off', true)") {
		if s.keyed == nil {
			s.keyed = map[*pgx.Conn]bool{}
		}
		s.keyed[conn] = true
		return
	}
	byKey := s.keyed[conn]
	if !historyTable.MatchString(sql) || strings.HasPrefix(strings.TrimSpace(sql), "EXPLAIN") {
		return
	}
	delete(s.keyed, conn)
	var kept []any
	for _, a := range args {
		if _, mode := a.(pgx.QueryExecMode); !mode {
			kept = append(kept, a)
		}
	}
	s.list = append(s.list, statement{sql, kept, byKey})
}

func (s *statements) take() []statement {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.list
	s.list = nil
	return out
}

func (s *statements) TraceQueryStart(ctx context.Context, conn *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	s.add(conn, d.SQL, d.Args)
	return ctx
}
func (s *statements) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (s *statements) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}
func (s *statements) TraceBatchQuery(_ context.Context, conn *pgx.Conn, d pgx.TraceBatchQueryData) {
	s.add(conn, d.SQL, d.Args)
}
func (s *statements) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

var historyPartition = regexp.MustCompile(`^(message_logs|message_events|callbacks|provider_message_refs|webhook_deliveries|webhook_attempts)_(p\d{8}|default)$`)

// partitionsRun runs st under EXPLAIN ANALYZE (rolled back) and returns the history partitions
// it executed a scan of. (How a day is read is TestDispatchStatementsDoNotScanMessageLogsAsItGrows'
// business: here the days hold a few rows, which a sequential scan reads best.)
func partitionsRun(t *testing.T, pool *pgxpool.Pool, st statement) (scanned []string) {
	t.Helper()
	return partitionsIn(t, pool, st, false)
}

// partitionsPlanned is the history partitions st's plan holds, run or not: each one the planner
// planned and the executor opened.
func partitionsPlanned(t *testing.T, pool *pgxpool.Pool, st statement) []string {
	t.Helper()
	return partitionsIn(t, pool, st, true)
}

func partitionsIn(t *testing.T, pool *pgxpool.Pool, st statement, planned bool) (scanned []string) {
	t.Helper()
	for _, n := range explained(t, pool, st) {
		if rel, _ := n["Relation Name"].(string); historyPartition.MatchString(rel) {
			if loops, _ := n["Actual Loops"].(float64); loops > 0 || planned {
				scanned = append(scanned, rel)
			}
		}
	}
	slices.Sort(scanned)
	return slices.Compact(scanned)
}

// explained runs st under EXPLAIN ANALYZE (rolled back) and returns every node of its plans.
func explained(t *testing.T, pool *pgxpool.Pool, st statement) (nodes []map[string]any) {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a rollback is the point
	if st.byKey {
		if _, err := tx.Exec(ctx, `SELECT set_config('enable_seqscan', 'off', true), set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)`); err != nil {
			t.Fatal(err)
		}
	}
	var out []byte
	if err := tx.QueryRow(ctx, `EXPLAIN (ANALYZE, FORMAT JSON) `+st.sql, st.args...).Scan(&out); err != nil {
		t.Fatalf("explain %s: %v", st.sql, err)
	}
	var plans []struct{ Plan map[string]any }
	if err := json.Unmarshal(out, &plans); err != nil {
		t.Fatal(err)
	}
	var walk func(n map[string]any)
	walk = func(n map[string]any) {
		nodes = append(nodes, n)
		children, _ := n["Plans"].([]any)
		for _, c := range children {
			if m, ok := c.(map[string]any); ok {
				walk(m)
			}
		}
	}
	for _, p := range plans {
		walk(p.Plan)
	}
	return nodes
}

// tracedStore is a store on a database with 12 weeks of partitions behind now and two ahead, whose
// statements on the history tables rec records, and a plain pool to explain them on.
func tracedStore(t *testing.T) (*store.Store, *statements, *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	url := testenv.DatabaseURL(t)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	rec := &statements{}
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe // as db.Open
	cfg.ConnConfig.Tracer = rec
	traced, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(traced.Close)
	plain, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(plain.Close)
	s := store.New(traced)
	now := time.Now()
	if _, err := s.CreatePartitions(ctx, now.AddDate(0, 0, -70), now.AddDate(0, 0, 14)); err != nil {
		t.Fatal(err)
	}
	return s, rec, plain
}

// Every statement of the hot paths (claim, outcome, status by id and its timeline, the message
// list and its last page, the event outbox and its age) reads only the weeks it needs: with 12 weeks of
// partitions and messages on three days of the last two, none scans more than three weeks, a
// message looked up by id is found in its own week, and a list reads from its cursor's week back
// only as far as its page needs.
func TestHotPathsReadOnlyTheirWeeks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, rec, plain := tracedStore(t)
	now := time.Now()
	ten := tenant(t, s)
	var refs []store.Ref
	for _, daysAgo := range []int{7, 3, 0} {
		for i := range 4 {
			// the first of each day's four is its oldest, so that old below is the oldest message
			at := now.AddDate(0, 0, -daysAgo).Add(-time.Duration(3-i) * time.Minute)
			in, err := testenv.Record(ctx, s, store.NewMessage{ID: ids.NewSortableAt(ids.Message, at), TenantID: ten, Request: sms("+14155550100")})
			if err != nil {
				t.Fatal(err)
			}
			refs = append(refs, store.Ref{TenantID: ten, ID: in[0].ID})
		}
	}
	old := refs[0] // 7 days and 3 minutes old: the oldest
	rec.take()

	day := weekOf // a partition's suffix: its Monday
	// old's week, the oldest week with messages (the week before the one 7 days ago in a Monday's
	// first 3 minutes)
	oldDay := day(now.AddDate(0, 0, -7).Add(-3 * time.Minute))
	// check runs each statement traced since the last check and fails on one that scans a week
	// not allowed, or more than three weeks.
	check := func(path string, allowed func(day string) bool) {
		t.Helper()
		sts := rec.take()
		if len(sts) == 0 {
			t.Fatalf("%s: no statement on message_logs or message_events was traced", path)
		}
		for _, st := range sts {
			scanned := partitionsRun(t, plain, st)
			days := map[string]bool{}
			for _, p := range scanned {
				d := p[strings.LastIndex(p, "_"):]
				days[d] = true
				if allowed != nil && !allowed(d) {
					t.Errorf("%s: scanned %s: %s", path, p, st.sql)
				}
			}
			if allowed == nil && len(days) > 3 {
				t.Errorf("%s: scanned %d weeks (%v), want at most the 3 with messages: %s", path, len(days), scanned, st.sql)
			}
		}
	}
	only := func(d string) func(string) bool { return func(got string) bool { return got == d } }
	// between allows the weeks from the oldest to the newest message of a page: a list reads the
	// weeks newest first and stops when the page is full (the last page looks back to the oldest
	// week for one more).
	between := func(page []message.Message, last bool) func(string) bool {
		return func(got string) bool {
			return (last || got >= day(page[len(page)-1].CreatedAt)) && got <= day(page[0].CreatedAt)
		}
	}

	if _, err := s.GetMessage(ctx, ten, old.ID); err != nil {
		t.Fatal(err)
	}
	check("status by id and timeline", only(oldDay))
	if err := s.MarkPublished(ctx, refs); err != nil {
		t.Fatal(err)
	}
	rec.take()
	claimed, err := s.ClaimMessages(ctx, []store.Ref{old}, time.Minute)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claimed %d: %v", len(claimed), err)
	}
	check("claim", only(oldDay))
	if _, err := s.FinishAttempts(ctx, func(tx *store.OutcomeTx) error {
		o := store.Outcome{Ref: old, Attempt: claimed[0].Attempt, Status: message.Sent, ProviderType: "sandbox", ProviderMessageID: "sb_" + old.ID}
		tx.Record(o)
		tx.Emit(o.Ref, "sent")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	check("outcome", only(oldDay))
	if _, err := s.ClaimMessages(ctx, refs, time.Minute); err != nil {
		t.Fatal(err)
	}
	check("claim of three days", nil)
	page, next, err := s.ListMessages(ctx, ten, domain.MessageFilter{Limit: 6})
	if err != nil || len(page) != 6 || next == "" {
		t.Fatalf("%d messages, next %q: %v", len(page), next, err)
	}
	// a first page starts from the week of now and an hour (the list allows that much clock skew)
	first := between(page, false)
	check("message list", func(d string) bool { return first(d) || d == day(time.Now().Add(time.Hour)) })
	page, next, err = s.ListMessages(ctx, ten, domain.MessageFilter{Limit: 6, Cursor: next})
	if err != nil || len(page) != 6 || next != "" {
		t.Fatalf("%d messages, next %q: %v", len(page), next, err)
	}
	check("message list, last page", between(page, true))
	// the outbox's oldest event is the first message's, a week old
	if _, err := s.GetEventOutboxAge(ctx); err != nil {
		t.Fatal(err)
	}
	check("event outbox age", only(oldDay))
	if _, err := s.PublishEvents(ctx, 100, func(context.Context, []store.OutboxEvent) error { return nil }); err != nil {
		t.Fatal(err)
	}
	// The publisher's batch holds the events of the messages above, from a week ago to now: its
	// events and messages are planned in those weeks only, not in every week kept (a plan over
	// all 14 weeks cost 1.3 ms of planning a batch on a 10,000,000-message history).
	sts := rec.take()
	if len(sts) == 0 {
		t.Fatal("event outbox: no statement on message_logs or message_events was traced")
	}
	for _, st := range sts {
		for _, p := range partitionsPlanned(t, plain, st) {
			if d := p[strings.LastIndex(p, "_"):]; d < oldDay || d > day(now) {
				t.Errorf("event outbox: planned %s, outside the batch's weeks: %s", p, st.sql)
			}
		}
	}
}

// A callback is stored after a look for the provider's earlier try in this week and the last, and
// finds the message it names through the newest week of provider references first: one week
// read when the message was sent this week, however many weeks are kept.
func TestACallbackReadsTheWeeksItNeeds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, rec, plain := tracedStore(t)
	now := time.Now()
	ten := tenant(t, s)
	in, err := testenv.Record(ctx, s, store.NewMessage{ID: ids.NewSortableAt(ids.Message, now.AddDate(0, 0, -2)), TenantID: ten, Request: sms("+14155550100")})
	if err != nil {
		t.Fatal(err)
	}
	ref := store.Ref{TenantID: ten, ID: in[0].ID}
	claimed, err := s.ClaimMessages(ctx, []store.Ref{ref}, time.Minute)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claimed %d: %v", len(claimed), err)
	}
	if _, err := s.FinishAttempts(ctx, func(tx *store.OutcomeTx) error {
		tx.Record(store.Outcome{Ref: ref, Attempt: claimed[0].Attempt, Status: message.Sent, ProviderType: "twilio",
			ProviderConfigID: "prv_cb", ProviderMessageID: "SM" + ref.ID})
		tx.Emit(ref, "sent")
		tx.IndexForCallbacks(ref)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rec.take()
	cb := provider.Event{ProviderConfigID: "prv_cb", ProviderType: "twilio", EventKey: "SM" + ref.ID + ":delivered",
		ProviderMessageID: "SM" + ref.ID, Status: message.Delivered, OccurredAt: now, Payload: []byte(`{}`)}
	fresh, err := s.InsertCallbacks(ctx, []provider.Event{cb, cb})
	if err != nil || !slices.Equal(fresh, []bool{true, false}) {
		t.Fatalf("stored %v, want the first new and the second a duplicate: %v", fresh, err)
	}
	this, last := weekOf(now), weekOf(now.AddDate(0, 0, -7))
	scanned := func(path string, table string, allowed ...string) {
		t.Helper()
		for _, st := range rec.take() {
			for _, p := range partitionsRun(t, plain, st) {
				if strings.HasPrefix(p, table+"_p") && !slices.Contains(allowed, p[len(table):]) {
					t.Errorf("%s: scanned %s: %s", path, p, st.sql)
				}
			}
		}
	}
	scanned("callback insert", "callbacks", this, last)
	// Looked at and left pending, so that the statement reads the same rows again under EXPLAIN.
	var matched string
	if err := s.ApplyCallbackBatch(ctx, 10, func(_ *store.CallbackTx, due []store.DueCallback) error {
		for _, c := range due {
			if c.Message != nil {
				matched = c.Message.ID
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if matched != ref.ID {
		t.Fatalf("the callback matched %q, want %s", matched, ref.ID)
	}
	scanned("callback match", "provider_message_refs", this)
	if err := s.ApplyCallbackBatch(ctx, 10, func(tx *store.CallbackTx, due []store.DueCallback) error {
		for _, c := range due {
			if c.Message != nil {
				matched = c.Message.ID
				tx.Record(c, "")
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(rec.take()) == 0 || matched != ref.ID {
		t.Fatalf("the callback was not applied")
	}
	// A provider's retry after the callback was applied is still a duplicate.
	if fresh, err := s.InsertCallbacks(ctx, []provider.Event{cb}); err != nil || fresh[0] {
		t.Fatalf("a retry stored as new (%v): %v", fresh, err)
	}
}

// A week goes whole once every tenant's history retention passed it, with what refers to its
// messages from other tables; a week holding a message still to be sent stays, and so do younger
// weeks.
func TestExpiredWeeksAreDroppedWhole(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	now := time.Now().UTC()
	expired, waiting, young := now.AddDate(0, 0, -100), now.AddDate(0, 0, -120), now.AddDate(0, 0, -10)
	if _, err := s.CreatePartitions(ctx, waiting, now.AddDate(0, 0, 14)); err != nil {
		t.Fatal(err)
	}
	ten := tenant(t, s) // the default history retention, 90 days
	record := func(at time.Time, sendAt *time.Time) string {
		in, err := testenv.Record(ctx, s, store.NewMessage{ID: ids.NewSortableAt(ids.Message, at), TenantID: ten, Request: sms("+14155550100"), SendAt: sendAt})
		if err != nil {
			t.Fatal(err)
		}
		return in[0].ID
	}
	gone := record(expired, nil)
	later := now.Add(time.Hour)
	record(waiting, &later) // scheduled 120 days ago for an hour from now
	kept := record(young, nil)
	// both sent and delivered long ago
	for _, q := range []string{`UPDATE communication.message_logs SET status = 'delivered' WHERE id = ANY($1)`,
		`DELETE FROM communication.dispatch_queue WHERE message_id = ANY($1)`} {
		if _, err := s.Pool().Exec(ctx, q, []string{gone, kept}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Pool().Exec(ctx, `
		INSERT INTO communication.dead_letters (message_id, tenant_id, channel, provider_type, error_code, attempts, envelope)
		SELECT id, tenant_id, 'sms', 'twilio', 'x', 1, '{}' FROM communication.message_logs WHERE id = ANY($1)`, []string{gone, kept}); err != nil {
		t.Fatal(err)
	}
	// A callback and a provider reference in each message's week: the expired week's and the
	// waiting one's (sent, then scheduled again, long ago) go with their weeks, the young one's stay.
	for _, at := range []time.Time{expired, waiting, young} {
		if _, err := s.Pool().Exec(ctx, `
			WITH r AS (INSERT INTO communication.provider_message_refs (provider_config_id, provider_message_id, tenant_id, message_id, created_at)
			           VALUES ('prv_x', $1, $2, $1, $3))
			INSERT INTO communication.callbacks (provider_config_id, provider_type, event_key, provider_message_id, status, occurred_at, payload,
			                                     received_at, received_week)
			VALUES ('prv_x', 'twilio', $1, $1, 'delivered', $3, '{}', $3, date_trunc('week', $3::timestamptz, 'UTC'))`, "pm"+weekOf(at), ten, at); err != nil {
			t.Fatal(err)
		}
	}
	// A webhook delivery with an attempt in each week too.
	ep := endpoint(t, s, ten)
	for _, at := range []time.Time{expired, waiting, young} {
		deliver(t, s, ep, "evt"+weekOf(at), at)
	}
	// The counts of a dropped week are the planner's: exact for tables this small.
	if _, err := s.Pool().Exec(ctx, `ANALYZE communication.message_logs, communication.message_events, communication.callbacks, communication.provider_message_refs,
		communication.webhook_deliveries, communication.webhook_attempts`); err != nil {
		t.Fatal(err)
	}
	horizon, err := s.HistoryHorizon(ctx)
	if err != nil || now.Sub(horizon).Round(time.Hour) != 90*24*time.Hour {
		t.Fatalf("horizon %v (%v), want 90 days ago", horizon, err)
	}
	dropped, err := s.DropExpiredPartitions(ctx, horizon)
	if err != nil {
		t.Fatal(err)
	}
	var weeks []string // whose messages were dropped
	for _, d := range dropped {
		if d.Messages > 0 {
			weeks = append(weeks, weekOf(d.From))
		}
		if weekOf(d.From) == weekOf(expired) && (d.Messages != 1 || d.Events != 1) {
			t.Errorf("the expired week dropped %d messages and %d events, want 1 and 1", d.Messages, d.Events)
		}
		if d.From.AddDate(0, 0, 7).After(horizon) {
			t.Errorf("dropped the week of %s, not expired for every tenant", d.From)
		}
	}
	if !slices.Contains(weeks, weekOf(expired)) || slices.Contains(weeks, weekOf(waiting)) {
		t.Fatalf("dropped %v: want %s and not %s (a message is still to be sent)", weeks, weekOf(expired), weekOf(waiting))
	}
	parts, err := s.ListPartitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		if weekOf(p.From) == weekOf(expired) {
			t.Errorf("%s is still there", p.Name)
		}
	}
	for _, table := range []string{"callbacks", "provider_message_refs"} {
		var left []string
		if err := s.Pool().QueryRow(ctx, `SELECT coalesce(array_agg(provider_message_id), '{}') FROM communication.`+table).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(left, []string{"pm" + weekOf(young)}) {
			t.Errorf("%s left: %v, want only the young week's", table, left)
		}
	}
	for _, table := range []string{"webhook_deliveries", "webhook_attempts"} {
		var left []string
		if err := s.Pool().QueryRow(ctx, `SELECT coalesce(array_agg(c.relname), '{}') FROM communication.`+table+` t
			JOIN pg_class c ON c.oid = t.tableoid`).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(left, []string{table + weekOf(young)}) {
			t.Errorf("%s left: %v, want only the young week's", table, left)
		}
	}
	for _, d := range dropped {
		if weekOf(d.From) == weekOf(waiting) && (d.Messages != 0 || d.Callbacks != 1 || d.ProviderReferences != 1 ||
			d.WebhookDeliveries != 1 || d.WebhookAttempts != 1) {
			t.Errorf("the waiting week: %+v, want its callbacks, references and webhook deliveries dropped and its messages kept", d)
		}
	}
	var letters []string
	if err := s.Pool().QueryRow(ctx, `SELECT coalesce(array_agg(message_id), '{}') FROM communication.dead_letters WHERE tenant_id = $1`, ten).Scan(&letters); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(letters, []string{kept}) {
		t.Errorf("dead letters %v, want only the young message's", letters)
	}
	if _, err := s.GetMessage(ctx, ten, kept); err != nil {
		t.Errorf("the young message: %v", err)
	}
	if _, err := s.GetMessage(ctx, ten, gone); err != store.ErrNotFound {
		t.Errorf("the dropped message: %v, want not found", err)
	}
}

// weekOf is the suffix of the partitions that hold at: _p and the date of its UTC week's Monday.
func weekOf(at time.Time) string {
	at = at.UTC()
	return "_p" + at.AddDate(0, 0, -(int(at.Weekday())+6)%7).Format("20060102")
}

// A message's row is created at the instant its id carries, and its events carry that instant:
// the invariant every lookup by id stands on (no CHECK holds it, migration 0027).
func TestAMessageIsCreatedWhenItsIDWasMade(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	ten := tenant(t, s)
	id := ids.NewSortable(ids.Message)
	if _, err := testenv.Record(ctx, s, store.NewMessage{ID: id, TenantID: ten, Request: sms("+14155550100")}); err != nil {
		t.Fatal(err)
	}
	want, _ := ids.SortableTime(id, ids.Message)
	var created, eventAt time.Time
	if err := s.Pool().QueryRow(ctx, `SELECT m.created_at, e.message_at FROM communication.message_logs m
		JOIN communication.message_events e ON e.tenant_id = m.tenant_id AND e.message_id = m.id WHERE m.id = $1`, id).Scan(&created, &eventAt); err != nil {
		t.Fatal(err)
	}
	if !created.Equal(want) || !eventAt.Equal(want) {
		t.Fatalf("created_at %v, event's message_at %v: want the id's %v", created, eventAt, want)
	}
}

// endpoint creates a webhook endpoint of ten and returns its id.
func endpoint(t testing.TB, s *store.Store, ten string) string {
	t.Helper()
	e, err := s.CreateWebhookEndpoint(context.Background(), domain.WebhookEndpoint{ID: ids.New("whe"), TenantID: ten,
		URL: "https://hooks.example.com/" + ten, EventTypes: []string{}, Enabled: true, KeyVersion: "v1", Sealed: []byte{0}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return e.ID
}

// deliver records a failed attempt at delivering eventID, an event of the instant at, to the
// endpoint ep, as the Deliverer does, and returns the outcome it recorded.
func deliver(t *testing.T, s *store.Store, ep, eventID string, at time.Time) store.WebhookOutcome {
	t.Helper()
	var ten string
	if err := s.Pool().QueryRow(context.Background(), `SELECT tenant_id FROM communication.webhook_endpoints WHERE id = $1`, ep).Scan(&ten); err != nil {
		t.Fatal(err)
	}
	next := time.Now().Add(time.Minute)
	o := store.WebhookOutcome{
		Delivery: domain.WebhookDelivery{EndpointID: ep, TenantID: ten, EventID: eventID, EventType: "comms.message.sent",
			Payload: []byte(`{"id":"` + eventID + `"}`), Status: "pending", RoundAttempts: 1, NextAttemptAt: &next},
		Attempt: &domain.WebhookAttempt{At: time.Now(), StatusCode: 503, LatencyMS: 3, Response: "busy"},
		At:      at, AttemptsAdded: 1,
	}
	if err := s.RecordWebhookOutcomes(context.Background(), []store.WebhookOutcome{o}); err != nil {
		t.Fatal(err)
	}
	return o
}

// A webhook delivery lives in its event's week with its attempts: recording an attempt, the
// retry loop's claim of a due delivery and its next outcome, and a page of the endpoint's delivery
// log read only the weeks they need, and an event delivered again (a copy fetched after a
// crash) finds its delivery rather than making a second.
func TestWebhookDeliveriesReadTheirWeeks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, rec, plain := tracedStore(t)
	now := time.Now()
	ten := tenant(t, s)
	ep := endpoint(t, s, ten)
	old := now.AddDate(0, 0, -14)
	rec.take()
	first := deliver(t, s, ep, "evt_old", old)
	check := func(path string, allowed ...string) {
		t.Helper()
		sts := rec.take()
		if len(sts) == 0 {
			t.Fatalf("%s: no statement on the webhook tables was traced", path)
		}
		for _, st := range sts {
			for _, p := range partitionsRun(t, plain, st) {
				if !slices.Contains(allowed, p[strings.LastIndex(p, "_"):]) {
					t.Errorf("%s: scanned %s: %s", path, p, st.sql)
				}
			}
		}
	}
	check("a new delivery", weekOf(old))
	deliver(t, s, ep, "evt_old", old) // the same event again
	check("the same event again", weekOf(old))
	for _, at := range []time.Time{now.AddDate(0, 0, -7), now} {
		deliver(t, s, ep, "evt_"+weekOf(at), at)
	}
	rec.take()
	var rows, attempts int
	if err := plain.QueryRow(ctx, `SELECT (SELECT count(*) FROM communication.webhook_deliveries WHERE event_id = 'evt_old'),
		(SELECT attempts FROM communication.webhook_deliveries WHERE event_id = 'evt_old')`).Scan(&rows, &attempts); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || attempts != 2 {
		t.Fatalf("the event delivered twice has %d delivery rows and %d attempts, want 1 and 2", rows, attempts)
	}

	due, err := s.ClaimDueWebhookDeliveries(ctx, now.Add(2*time.Minute), time.Minute, 10)
	if err != nil || len(due) != 3 {
		t.Fatalf("claimed %d due deliveries: %v", len(due), err)
	}
	rec.take() // the claim reads every week's pending deliveries: an index of pending rows only
	o := first
	o.Delivery.ID, o.Delivery.RoundAttempts, o.Delivery.Status, o.Delivery.NextAttemptAt = due[0].ID, 2, "succeeded", nil
	o.At = due[0].CreatedAt
	if !due[0].CreatedAt.Equal(old.Truncate(time.Microsecond)) {
		t.Fatalf("the oldest due delivery was made at %v, want its event's time %v", due[0].CreatedAt, old)
	}
	if err := s.RecordWebhookOutcomes(ctx, []store.WebhookOutcome{o}); err != nil {
		t.Fatal(err)
	}
	check("a retry's outcome", weekOf(old))
	page, _, err := s.ListWebhookDeliveries(ctx, ten, ep, "", "", 1)
	if err != nil || len(page) != 1 || page[0].EventID != "evt_"+weekOf(now) || len(page[0].AttemptLog) != 1 {
		t.Fatalf("first page %+v: %v", page, err)
	}
	for _, st := range rec.take() {
		// The log reads each week's newest delivery of the endpoint (an index probe a week) and
		// the attempts of the page's deliveries only (and of the one after it, which says whether
		// there is a next page).
		for _, p := range partitionsRun(t, plain, st) {
			if strings.HasPrefix(p, "webhook_attempts") && p != "webhook_attempts"+weekOf(now) && p != "webhook_attempts"+weekOf(now.AddDate(0, 0, -7)) {
				t.Errorf("the first page read %s", p)
			}
		}
	}
}

// The eraser reads an event's deliveries in the event's own week; in the other weeks it reads
// only the index of the deliveries filed away from their event's time (migration 0044), which
// holds few, rather than probing each week's full index for each of the person's events.
func TestTheEraserReadsAnEventsDeliveriesInItsWeek(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, rec, plain := tracedStore(t)
	ten := tenant(t, s)
	ep := endpoint(t, s, ten)
	made := time.Now().AddDate(0, 0, -50)
	in, err := testenv.Record(ctx, s, store.NewMessage{ID: ids.NewSortableAt(ids.Message, made), TenantID: ten, Request: sms("+14155550123")})
	if err != nil {
		t.Fatal(err)
	}
	// Its one event, at its making; the message is past sending, so the erasure adds no event.
	var event int64
	if err := plain.QueryRow(ctx, `UPDATE communication.message_events SET occurred_at = $2 WHERE message_id = $1 RETURNING id`,
		in[0].ID, made).Scan(&event); err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Exec(ctx, `UPDATE communication.message_logs SET status = 'delivered' WHERE id = $1`, in[0].ID); err != nil {
		t.Fatal(err)
	}
	deliver(t, s, ep, fmt.Sprintf("evt_%d", event), made)
	// Every week holds 300 other deliveries, so that its full index costs what it does at size.
	for at := made.AddDate(0, 0, -7); at.Before(time.Now()); at = at.AddDate(0, 0, 7) {
		outs := make([]store.WebhookOutcome, 300)
		for i := range outs {
			outs[i] = store.WebhookOutcome{At: at, Delivery: domain.WebhookDelivery{EndpointID: ep, TenantID: ten,
				EventID: fmt.Sprintf("evt_other%s_%d", weekOf(at), i), EventType: "comms.message.sent", Payload: []byte(`{}`), Status: "succeeded"}}
		}
		if err := s.RecordWebhookOutcomes(ctx, outs); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := plain.Exec(ctx, `ANALYZE communication.webhook_deliveries`); err != nil { // as autovacuum does
		t.Fatal(err)
	}
	var partial []string // each week's index of the deliveries flagged
	if err := plain.QueryRow(ctx, `SELECT array_agg(c.relname) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE c.relname LIKE 'webhook_deliveries_p%' AND pg_get_expr(i.indpred, i.indrelid) LIKE '%filed_late%'`).Scan(&partial); err != nil {
		t.Fatal(err)
	}
	rec.take()
	if e := eraseAll(t, s, ten); e.Counts.WebhookDeliveries != 1 {
		t.Fatalf("erased %d deliveries, want the event's 1", e.Counts.WebhookDeliveries)
	}
	var explainedOne bool
	for _, st := range rec.take() {
		if !strings.Contains(st.sql, "UPDATE communication.webhook_deliveries d SET payload") {
			continue
		}
		explainedOne, st.byKey = true, true
		for _, n := range explained(t, plain, st) {
			rel, _ := n["Relation Name"].(string)
			loops, _ := n["Actual Loops"].(float64)
			if !strings.HasPrefix(rel, "webhook_deliveries_p") || loops == 0 {
				continue
			}
			index, _ := n["Index Name"].(string)
			if index == "" { // a bitmap scan names its index below it
				children, _ := n["Plans"].([]any)
				for _, c := range children {
					if m, ok := c.(map[string]any); ok {
						index, _ = m["Index Name"].(string)
					}
				}
			}
			if rel != "webhook_deliveries"+weekOf(made) && !slices.Contains(partial, index) {
				t.Errorf("the eraser read %s by %q (%s), not only the week of its event %s", rel, index, n["Node Type"], weekOf(made))
			}
		}
	}
	if !explainedOne {
		t.Fatal("no statement of the eraser's on webhook deliveries was traced")
	}
}

// Dropping a week holds up no writer: the drop waits, without a lock that writers queue behind,
// for a transaction still reading the messages, while intake goes on writing; a week left being
// detached by a drop that was cut off is finished by the next, one detached but not dropped is
// dropped, and so is a week of messages whose events are gone already.
func TestDroppingAWeekHoldsUpNoWriter(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	now := time.Now().UTC()
	expired, stray := now.AddDate(0, 0, -100), now.AddDate(0, 0, -110)
	if _, err := s.CreatePartitions(ctx, stray, now.AddDate(0, 0, 14)); err != nil {
		t.Fatal(err)
	}
	ten := tenant(t, s)
	in, err := testenv.Record(ctx, s, store.NewMessage{ID: ids.NewSortableAt(ids.Message, expired), TenantID: ten, Request: sms("+14155550100")})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`UPDATE communication.message_logs SET status = 'delivered' WHERE id = $1`,
		`DELETE FROM communication.dispatch_queue WHERE message_id = $1`} {
		if _, err := s.Pool().Exec(ctx, q, in[0].ID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Pool().Exec(ctx, `ANALYZE communication.message_logs`); err != nil { // the drop's count of its messages
		t.Fatal(err)
	}
	// The stray week's events are gone already, its messages' week not (a pass cut off between).
	if _, err := s.Pool().Exec(ctx, `DROP TABLE communication.message_events`+weekOf(stray)); err != nil {
		t.Fatal(err)
	}
	// The week of stray callbacks was detached by a drop cut off before its DROP.
	if _, err := s.Pool().Exec(ctx, `ALTER TABLE communication.callbacks DETACH PARTITION communication.callbacks`+weekOf(stray)); err != nil {
		t.Fatal(err)
	}

	// The week of stray provider references was left being detached: the drop's session was cut
	// off while its detach waited for a reader.
	refs := "provider_message_refs" + weekOf(stray)
	func() {
		reader := openReader(t, s, "provider_message_refs")
		defer reader.Rollback(ctx) //nolint:errcheck // a rollback is the point
		cut := make(chan error, 1)
		go func() {
			_, err := s.Pool().Exec(ctx, `ALTER TABLE communication.provider_message_refs DETACH PARTITION communication.`+refs+` CONCURRENTLY`)
			cut <- err
		}()
		waitForDetach(t, s, nil)
		if _, err := s.Pool().Exec(ctx, `SELECT pg_cancel_backend(pid) FROM pg_stat_activity
			WHERE datname = current_database() AND query LIKE 'ALTER TABLE%DETACH PARTITION%'`); err != nil {
			t.Fatal(err)
		}
		if err := <-cut; err == nil {
			t.Fatal("the detach was not cut off")
		}
	}()
	var pending bool
	if err := s.Pool().QueryRow(ctx, `SELECT inhdetachpending FROM pg_inherits WHERE inhrelid = ('communication.' || $1)::regclass`, refs).Scan(&pending); err != nil || !pending {
		t.Fatalf("%s being detached: %v, %v", refs, pending, err)
	}

	// A reader of the messages holds its transaction open.
	reader := openReader(t, s, "message_logs")
	defer reader.Rollback(ctx) //nolint:errcheck // ended below
	horizon, err := s.HistoryHorizon(ctx)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		weeks []store.DroppedWeek
		err   error
	}
	done := make(chan result, 1)
	go func() {
		w, err := s.DropExpiredPartitions(ctx, horizon)
		done <- result{w, err}
	}()
	// The drop is waiting for the reader...
	waitForDetach(t, s, func() {
		select {
		case r := <-done:
			t.Fatalf("the drop ended (%v, %+v) before the reader did: it does not wait for readers", r.err, r.weeks)
		default:
		}
	})
	// ...and intake writes meanwhile.
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := testenv.Record(wctx, s, store.NewMessage{ID: ids.NewSortable(ids.Message), TenantID: ten, Request: sms("+14155550101")}); err != nil {
		t.Fatalf("intake during the drop: %v", err)
	}
	select {
	case r := <-done:
		t.Fatalf("the drop ended (%v) while the reader was open", r.err)
	default:
	}
	if err := reader.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if i := slices.IndexFunc(r.weeks, func(d store.DroppedWeek) bool { return weekOf(d.From) == weekOf(expired) }); i < 0 || r.weeks[i].Messages != 1 {
		t.Fatalf("dropped %+v, want the week of the expired message with it", r.weeks)
	}
	var left []string
	if err := s.Pool().QueryRow(ctx, `SELECT coalesce(array_agg(relname), '{}') FROM pg_class
		WHERE relname IN ($1, $2, $3, $4)`, "message_logs"+weekOf(expired), "callbacks"+weekOf(stray), refs, "message_logs"+weekOf(stray)).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Fatalf("left behind: %v", left)
	}
}

// waitForDetach waits until a DETACH PARTITION waits for another transaction, calling check
// between looks.
func waitForDetach(t *testing.T, s *store.Store, check func()) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var waiting bool
		if err := s.Pool().QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND state = 'active' AND query LIKE 'ALTER TABLE%DETACH PARTITION%' AND wait_event IS NOT NULL)`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			return
		}
		if check != nil {
			check()
		}
		if time.Now().After(deadline) {
			t.Fatal("no detach waited for another transaction")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Making the weeks ahead holds up no writer either: it goes on while a transaction reads the
// messages (where a CREATE TABLE ... PARTITION OF would wait for the reader, and intake behind it).
func TestMakingAWeekHoldsUpNoWriter(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	ten := tenant(t, s)
	reader := openReader(t, s, "message_logs")
	defer reader.Rollback(ctx) //nolint:errcheck // a rollback is the point
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	ahead := time.Now().AddDate(0, 0, 60)
	n, err := s.CreatePartitions(wctx, ahead, ahead.AddDate(0, 0, 6))
	if err != nil || n < len(historyTables) {
		t.Fatalf("made %d partitions while a reader was open: %v", n, err)
	}
	if _, err := testenv.Record(wctx, s, store.NewMessage{ID: ids.NewSortableAt(ids.Message, ahead), TenantID: ten, Request: sms("+14155550100")}); err != nil {
		t.Fatalf("a message in the new week: %v", err)
	}
}

// historyTables are the partitioned history tables.
var historyTables = []string{"message_logs", "message_events", "callbacks", "provider_message_refs", "webhook_deliveries", "webhook_attempts"}

// openReader begins a transaction that has read table, and so holds it until it ends.
func openReader(t *testing.T, s *store.Store, table string) pgx.Tx {
	t.Helper()
	ctx := context.Background()
	tx, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT count(*) FROM communication.`+table); err != nil {
		tx.Rollback(ctx) //nolint:errcheck // failing anyway
		t.Fatal(err)
	}
	return tx
}

// A batch in one week names the partition PostgreSQL files its rows in, at either edge of the UTC
// week, so the claim and outcome run on it rather than failing over to the partitioned table on
// every batch; a batch across weeks, or of ids that carry no time, names the partitioned table.
func TestABatchInOneWeekNamesThatWeeksPartition(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	s := store.New(pool)
	now := time.Now()
	if _, err := s.CreatePartitions(ctx, now.AddDate(0, 0, -21), now); err != nil {
		t.Fatal(err)
	}
	monday := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	for _, at := range []time.Time{now, now.AddDate(0, 0, -14), monday, monday.Add(-time.Nanosecond), monday.AddDate(0, 0, 7).Add(-time.Microsecond),
		time.Date(2024, 2, 29, 23, 30, 0, 0, time.FixedZone("", -5*3600)), time.Date(1999, 12, 31, 12, 0, 0, 0, time.UTC)} {
		var want string
		if err := pool.QueryRow(ctx, `SELECT 'communication.message_logs_p' || to_char(date_trunc('week', $1::timestamptz AT TIME ZONE 'UTC'), 'YYYYMMDD')`, at).Scan(&want); err != nil {
			t.Fatal(err)
		}
		if got := store.WeekTable("message_logs", at, at); got != want {
			t.Errorf("a batch made at %v runs on %s, want %s", at, got, want)
		}
	}
	// and it is the partition PostgreSQL filed the message in
	ten := tenant(t, s)
	in, err := testenv.Record(ctx, s, store.NewMessage{ID: ids.NewSortable(ids.Message), TenantID: ten, Request: sms("+14155550100")})
	if err != nil {
		t.Fatal(err)
	}
	var filed string
	if err := pool.QueryRow(ctx, `SELECT tableoid::regclass::text FROM communication.message_logs WHERE tenant_id = $1 AND id = $2`, ten, in[0].ID).Scan(&filed); err != nil {
		t.Fatal(err)
	}
	if got := store.WeekTable("message_logs", in[0].CreatedAt); got != filed {
		t.Errorf("a batch of the message just recorded runs on %s; it was filed in %s", got, filed)
	}
	for _, times := range [][]time.Time{{monday, monday.Add(-time.Second)}, {{}, {}}, {}} {
		if got := store.WeekTable("message_logs", times...); got != "communication.message_logs" {
			t.Errorf("a batch made at %v runs on %s, want the partitioned table", times, got)
		}
	}
}

// How far the partitions reach is the shortest run of weeks from now's over the history tables:
// a table extended further, a week missing in the middle or now's week missing bring it back.
func TestPartitionedUntilIsTheShortestRunOfWeeksFromNow(t *testing.T) {
	pool := testenv.DB(t)
	s := store.New(pool)
	ctx := context.Background()
	now := time.Now().UTC()
	monday := func(at time.Time) time.Time {
		at = at.UTC().Truncate(24 * time.Hour)
		return at.AddDate(0, 0, -(int(at.Weekday())+6)%7)
	}
	until := func() time.Time {
		t.Helper()
		u, err := s.PartitionedUntil(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	if _, err := s.CreatePartitions(ctx, now, now.AddDate(0, 0, 30)); err != nil {
		t.Fatal(err)
	}
	want := monday(now.AddDate(0, 0, 30)).AddDate(0, 0, 7)
	if got := until(); !got.Equal(want) {
		t.Fatalf("partitions made to 30 days ahead reach %s, want %s", got, want)
	}
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(`SELECT communication.create_partitions('message_logs', $1::date, $2::date)`, now.AddDate(0, 0, 30), now.AddDate(0, 0, 90))
	if got := until(); !got.Equal(want) {
		t.Errorf("with message_logs alone made further: %s, want the others' %s", got, want)
	}
	gap := monday(now.AddDate(0, 0, 14))
	exec(`DROP TABLE communication.message_events` + weekOf(gap))
	if got := until(); !got.Equal(gap) {
		t.Errorf("with a week of events missing: %s, want its start %s", got, gap)
	}
	exec(`DROP TABLE communication.callbacks` + weekOf(now))
	if got := until(); !got.Equal(now) {
		t.Errorf("with this week's callbacks missing: %s, want now (%s)", got, now)
	}
}
