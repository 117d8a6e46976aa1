package retention_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/retention"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/testing/testenv"
	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/message"
)

type fixture struct {
	t  *testing.T
	st *store.Store
}

func (f fixture) tenant(retentionSeconds int64) string {
	f.t.Helper()
	ctx := context.Background()
	tn, err := f.st.CreateTenant(ctx, domain.NewTenant{Name: "t", AllowSystemFallback: true})
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.st.UpdateTenant(ctx, tn.ID, domain.TenantPatch{ContentRetentionSeconds: &retentionSeconds}); err != nil {
		f.t.Fatal(err)
	}
	return tn.ID
}

// message records a message of tenant created age ago, in status.
func (f fixture) message(tenant string, age time.Duration, status message.Status) string {
	f.t.Helper()
	ctx := context.Background()
	id := ids.NewSortableAt(ids.Message, time.Now().Add(-age)) // created when its id was made
	if _, err := testenv.Record(ctx, f.st, store.NewMessage{ID: id, TenantID: tenant,
		Request: message.Request{Channel: message.Email, To: "ada@example.com", Subject: "Your code", Text: "Your code is 123456", HTML: "<b>123456</b>"}}); err != nil {
		f.t.Fatal(err)
	}
	f.set(tenant, id, status)
	return id
}

func (f fixture) set(tenant, id string, status message.Status) {
	f.t.Helper()
	if _, err := f.st.Pool().Exec(context.Background(), `UPDATE communication.message_logs SET status = $3
		WHERE tenant_id = $1 AND id = $2`, tenant, id, string(status)); err != nil {
		f.t.Fatal(err)
	}
	// a final message has left the dispatch outbox, as its outcome takes it out
	if _, err := f.st.Pool().Exec(context.Background(), `DELETE FROM communication.dispatch_queue
		WHERE message_id = $1 AND $2 NOT IN ('scheduled', 'queued', 'sending')`, id, string(status)); err != nil {
		f.t.Fatal(err)
	}
}

// content is what the message's subject and bodies hold now, and whether they were purged.
func (f fixture) content(tenant, id string) (string, bool) {
	f.t.Helper()
	m, err := f.st.GetMessage(context.Background(), tenant, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return m.Subject + m.Text + m.HTML, m.ContentPurgedAt != nil
}

// TestContentIsPurgedPastItsRetentionAndNothingElse: messages past their tenant's retention lose
// their subject and bodies; younger ones, another tenant's under a longer retention, and messages
// still to be sent keep theirs, and one of those loses it once it is final.
func TestContentIsPurgedPastItsRetentionAndNothingElse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := fixture{t, store.New(testenv.DB(t))}
	hour := f.tenant(3600)
	month := f.tenant(30 * 86400)
	old := f.message(hour, 2*time.Hour, message.Delivered)
	oldFailed := f.message(hour, 3*time.Hour, message.Failed)
	young := f.message(hour, 10*time.Minute, message.Delivered)
	waiting := f.message(hour, 2*time.Hour, message.Queued)
	theirs := f.message(month, 2*time.Hour, message.Delivered)

	p := retention.New(retention.Config{Batch: 2}, f.st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	n, err := p.Pass(ctx)
	if err != nil || n != 2 {
		t.Fatalf("the first pass purged %d (%v), want 2", n, err)
	}
	for _, id := range []string{old, oldFailed} {
		if c, purged := f.content(hour, id); c != "" || !purged {
			t.Errorf("%s past its retention: content %q, purged %v", id, c, purged)
		}
	}
	for _, m := range []struct{ tenant, id string }{{hour, young}, {hour, waiting}, {month, theirs}} {
		if c, purged := f.content(m.tenant, m.id); c == "" || purged {
			t.Errorf("%s lost its content", m.id)
		}
	}
	// The waiting message is sent later: the next pass purges it, and only it.
	f.set(hour, waiting, message.Sent)
	if n, err := p.Pass(ctx); err != nil || n != 1 {
		t.Fatalf("the second pass purged %d (%v), want 1", n, err)
	}
	if c, purged := f.content(hour, waiting); c != "" || !purged {
		t.Errorf("the message sent after its retention kept its content %q", c)
	}
	if n, err := p.Pass(ctx); err != nil || n != 0 {
		t.Fatalf("a pass with nothing new purged %d (%v)", n, err)
	}
}

// TestZeroRetentionPurgesOnceFinalAndAPurgedMessageIsNotReplayed: with content_retention 0 the
// content goes as soon as the message is final; a dead letter whose content is gone is matched
// by a replay but not sent again (there is nothing left to send).
func TestZeroRetentionPurgesOnceFinalAndAPurgedMessageIsNotReplayed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := fixture{t, store.New(testenv.DB(t))}
	ten := f.tenant(0)
	sending := f.message(ten, time.Second, message.Queued)
	ref := store.Ref{TenantID: ten, ID: sending}
	if _, err := f.st.ClaimMessages(ctx, []store.Ref{ref}, time.Minute); err != nil {
		t.Fatal(err)
	}
	p := retention.New(retention.Config{}, f.st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if n, err := p.Pass(ctx); err != nil || n != 0 {
		t.Fatalf("purged %d (%v) of a message being sent", n, err)
	}
	if _, err := f.st.FinishAttempts(ctx, func(tx *store.OutcomeTx) error {
		tx.Record(store.Outcome{Ref: ref, Attempt: 1, Status: message.Failed, ErrorCode: "provider_unavailable"})
		tx.Emit(ref, "failed")
		tx.DeadLetter(ref, []byte(`{"message_id":"`+sending+`"}`))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n, err := p.Pass(ctx); err != nil || n != 1 {
		t.Fatalf("purged %d (%v) once final, want 1", n, err)
	}
	rep, _, err := f.st.ReplayDeadLetters(ctx, domain.DeadLetterFilter{TenantID: ten}, "test", false)
	if err != nil || rep.Matched != 1 || rep.Replayed != 0 {
		t.Fatalf("replay of a purged message: %+v %v", rep, err)
	}
	if m, _ := f.st.GetMessage(ctx, ten, sending); m.Status != message.Failed {
		t.Fatalf("the purged message is %s after a replay", m.Status)
	}
}

// TestATenantIsPurgedByOnePurgerAtATime: while another purger holds a tenant, a purge of it does
// nothing (and returns at once); once released, the next one purges.
func TestATenantIsPurgedByOnePurgerAtATime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := fixture{t, store.New(testenv.DB(t))}
	ten := f.tenant(3600)
	old := f.message(ten, 2*time.Hour, message.Delivered)
	other, err := f.st.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback(ctx) //nolint:errcheck // released below; this one is for a failing test, which must not keep the connection
	// The purger's lock for this tenant, as another worker's purge would hold it.
	if _, err := other.Exec(ctx, `SELECT pg_advisory_xact_lock(x'636e7470'::int, hashtext($1))`, ten); err != nil {
		t.Fatal(err)
	}
	res, err := f.st.PurgeContent(ctx, ten, time.Now().Add(-time.Hour), 100)
	if err != nil || res.Looked != 0 || res.Purged != 0 {
		t.Fatalf("a purge beside another purger's: %+v %v", res, err)
	}
	if c, purged := f.content(ten, old); c == "" || purged {
		t.Fatal("purged while another purger held the tenant")
	}
	if err := other.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if res, err := f.st.PurgeContent(ctx, ten, time.Now().Add(-time.Hour), 100); err != nil || res.Purged != 1 {
		t.Fatalf("the purge after: %+v %v", res, err)
	}
}
