package retention_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/retention"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/testing/testenv"
	"github.com/logicspike/comms/pkg/message"
)

// TestHistoryIsDeletedPastItsRetentionAndNothingElse: a tenant's messages past its history
// retention go with their events, callbacks, dead letters and webhook deliveries, and its audit
// entries past the audit retention go too; younger ones, messages still to be sent, another
// tenant's under a longer retention and the usage rollups stay. The audit log still refuses to
// lose an entry before its time.
func TestHistoryIsDeletedPastItsRetentionAndNothingElse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := fixture{t, store.New(testenv.DB(t))}
	pool := f.st.Pool()
	day := int64(86400)
	short, long := f.tenant(30*day), f.tenant(30*day)
	if _, err := f.st.UpdateTenant(ctx, short, domain.TenantPatch{HistoryRetentionSeconds: &day}); err != nil {
		t.Fatal(err)
	}
	old := f.message(short, 50*time.Hour, message.Delivered)
	oldWaiting := f.message(short, 50*time.Hour, message.Queued)
	young := f.message(short, 2*time.Hour, message.Delivered)
	theirs := f.message(long, 50*time.Hour, message.Delivered)
	past := time.Now().Add(-50 * time.Hour)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO communication.callbacks (provider_config_id, provider_type, event_key, provider_message_id, status, recipient, occurred_at, payload, received_at, next_try_at, message_id, outcome)
		 VALUES ('prv_x', 'twilio', 'SM1:delivered', 'SM1', 'delivered', 'ada@example.com', $2, '{}', $2, $2, $1, 'applied')`, []any{old, past}},
		{`INSERT INTO communication.dead_letters (message_id, tenant_id, channel, provider_type, provider_config_id, error_code, error_message, attempts, envelope)
		 VALUES ($1, $2, 'email', 'ses', 'prv_x', 'provider_unavailable', '', 3, '{}')`, []any{old, short}},
		{`INSERT INTO communication.webhook_endpoints (id, tenant_id, url, description, event_types, enabled, key_version, secret_sealed, created_at, updated_at)
		 VALUES ('whe_old', $1, 'https://example.com/h', '', '{}', true, 'v1', '\x00', $2, $2)`, []any{short, past}},
		{`INSERT INTO communication.webhook_deliveries (endpoint_id, tenant_id, event_id, event_type, payload, status, attempts, round_attempts, next_attempt_at, created_at)
		 VALUES ('whe_old', $1, 'evt_1', 'comms.message.delivered', '\x7b7d', 'succeeded', 1, 1, $2, $2)`, []any{short, past}},
		{`INSERT INTO communication.webhook_attempts (tenant_id, delivery_id, delivery_at, attempted_at, status_code, latency_ms)
		 SELECT tenant_id, id, created_at, created_at, 200, 5 FROM communication.webhook_deliveries WHERE tenant_id = $1`, []any{short}},
		{`INSERT INTO communication.audit_log (at, tenant_id, actor_kind, actor_id, action, target_type, target_id)
		 VALUES (now() - interval '401 days', $1, 'cli', 'ops', 'tenant.updated', 'tenant', $1), (now() - interval '10 days', $1, 'cli', 'ops', 'tenant.updated', 'tenant', $1)`, []any{short}},
	} {
		if _, err := pool.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	count := func(q string, args ...any) int {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, q, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	usage := count(`SELECT count(*) FROM communication.usage_deltas WHERE tenant_id = $1`, short) +
		count(`SELECT count(*) FROM communication.usage_daily WHERE tenant_id = $1`, short)
	if _, err := pool.Exec(ctx, `DELETE FROM communication.audit_log WHERE tenant_id = $1 AND at > now() - interval '1 day' * 20`, short); err == nil {
		t.Fatal("the audit log let an entry go before its retention")
	}

	p := retention.New(retention.Config{Batch: 1}, f.st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if _, err := p.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct{ tenant, id string }{{short, oldWaiting}, {short, young}, {long, theirs}} {
		if _, err := f.st.GetMessage(ctx, m.tenant, m.id); err != nil {
			t.Errorf("%s went: %v", m.id, err)
		}
	}
	if _, err := f.st.GetMessage(ctx, short, old); err != store.ErrNotFound {
		t.Fatalf("the message past its retention: %v", err)
	}
	for table, n := range map[string]int{
		"events":              count(`SELECT count(*) FROM communication.message_events WHERE message_id = $1`, old),
		"callbacks":           count(`SELECT count(*) FROM communication.callbacks WHERE message_id = $1`, old),
		"dead letters":        count(`SELECT count(*) FROM communication.dead_letters WHERE message_id = $1`, old),
		"webhook deliveries":  count(`SELECT count(*) FROM communication.webhook_deliveries WHERE tenant_id = $1`, short),
		"webhook attempts":    count(`SELECT count(*) FROM communication.webhook_attempts WHERE tenant_id = $1`, short),
		"old audit entries":   count(`SELECT count(*) FROM communication.audit_log WHERE tenant_id = $1 AND at < now() - interval '400 days'`, short),
		"young audit entries": count(`SELECT count(*) FROM communication.audit_log WHERE tenant_id = $1 AND at > now() - interval '400 days'`, short) - 1,
	} {
		if n != 0 {
			t.Errorf("%s: %d left over", table, n)
		}
	}
	if count(`SELECT count(*) FROM communication.message_events WHERE message_id = $1`, theirs) == 0 {
		t.Error("the other tenant's events went")
	}
	if got := count(`SELECT count(*) FROM communication.usage_deltas WHERE tenant_id = $1`, short) +
		count(`SELECT count(*) FROM communication.usage_daily WHERE tenant_id = $1`, short); got != usage || usage == 0 {
		t.Errorf("usage rows %d, were %d: the bill must stay", got, usage)
	}
	// The message still to be sent goes once it is final.
	f.set(short, oldWaiting, message.Sent)
	if _, err := p.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.GetMessage(ctx, short, oldWaiting); err != store.ErrNotFound {
		t.Fatalf("the message sent past its retention: %v", err)
	}
}

// A pass of the eraser returns, rather than spinning, when the only erasure left waits for a
// message being sent, and finishes it on a later pass once the message is final.
func TestEraserPassReturnsWhileAMessageIsBeingSent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := fixture{t, store.New(testenv.DB(t))}
	ten := f.tenant(30 * 86400)
	sending := f.message(ten, time.Minute, message.Sending)
	f.message(ten, time.Minute, message.Delivered)
	if _, _, err := f.st.CreateErasure(ctx, "era_pass", ten, message.Email, "ada@example.com"); err != nil {
		t.Fatal(err)
	}
	e := retention.NewEraser(retention.EraserConfig{Busy: 1}, f.st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	pass, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if n, err := e.Pass(pass); err != nil || n != 0 {
		t.Fatalf("the pass beside a send: %d finished, %v (a timeout means it spun)", n, err)
	}
	f.set(ten, sending, message.Sent)
	if n, err := e.Pass(ctx); err != nil || n != 1 {
		t.Fatalf("the pass once sent: %d finished, %v", n, err)
	}
	if got, err := f.st.GetErasure(ctx, ten, "era_pass"); err != nil || got.Counts.Messages != 2 {
		t.Fatalf("%+v %v", got, err)
	}
}

// pacedStore records when each of the eraser's transactions started and ended.
type pacedStore struct {
	retention.EraserStore
	mu         sync.Mutex
	start, end []time.Time
}

func (p *pacedStore) EraseNext(ctx context.Context, limit int) (domain.Erasure, bool, error) {
	start := time.Now()
	e, found, err := p.EraserStore.EraseNext(ctx, limit)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.start, p.end = append(p.start, start), append(p.end, time.Now())
	return e, found, err
}

// The eraser at Busy 0.25 rests three times as long as each transaction took before it starts the
// next (COMMS_ERASER_BUSY): its share of the database beside live traffic is what it is set to.
func TestEraserRestsAfterEachTransactionAsItsBusyShareSays(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := fixture{t, store.New(testenv.DB(t))}
	ten := f.tenant(30 * 86400)
	for range 3 {
		f.message(ten, time.Minute, message.Delivered)
	}
	if _, _, err := f.st.CreateErasure(ctx, "era_paced", ten, message.Email, "ada@example.com"); err != nil {
		t.Fatal(err)
	}
	ps := &pacedStore{EraserStore: f.st}
	e := retention.NewEraser(retention.EraserConfig{Batch: 1, Busy: 0.25}, ps, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if n, err := e.Pass(ctx); err != nil || n != 1 {
		t.Fatalf("the pass: %d finished, %v", n, err)
	}
	if len(ps.start) < 4 { // a message a transaction, then the one that finds none left
		t.Fatalf("%d transactions for 3 messages of one at a time", len(ps.start))
	}
	for i := 1; i < len(ps.start); i++ {
		took, rested := ps.end[i-1].Sub(ps.start[i-1]), ps.start[i].Sub(ps.end[i-1])
		if rested < 3*took {
			t.Errorf("transaction %d took %s and the eraser rested %s after it, want at least %s", i, took, rested, 3*took)
		}
	}
}
