package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/testing/testenv"
	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/message"
)

// finish records outs, each with event, and nothing else.
func finish(ctx context.Context, s *store.Store, event string, outs ...store.Outcome) ([]string, error) {
	return s.FinishAttempts(ctx, func(tx *store.OutcomeTx) error {
		for _, o := range outs {
			tx.Record(o)
			tx.Emit(o.Ref, event)
		}
		return nil
	})
}

// TestASupersededOutcomeWritesNothing: every write an outcome asks for is gated on its message
// still being in the attempt that produced it, so a late outcome of an attempt whose lease
// expired and was claimed again neither changes the message nor indexes, prices, dead-letters or
// suppresses it.
func TestASupersededOutcomeWritesNothing(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	ten := tenant(t, s)
	ins, err := testenv.Record(ctx, s, store.NewMessage{ID: ids.NewSortable(ids.Message), TenantID: ten, Request: sms("+14155550100")})
	if err != nil {
		t.Fatal(err)
	}
	ref := store.Ref{TenantID: ten, ID: ins[0].ID}
	if _, err := s.ClaimMessages(ctx, []store.Ref{ref}, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // the lease expires; a second claim starts attempt 2
	if c, err := s.ClaimMessages(ctx, []store.Ref{ref}, time.Minute); err != nil || len(c) != 1 || c[0].Attempt != 2 {
		t.Fatalf("second claim: %+v %v", c, err)
	}
	late := store.Outcome{Ref: ref, Attempt: 1, Status: message.Failed, ProviderConfigID: "prv_x", ProviderType: "twilio",
		ProviderMessageID: "SMlate", ErrorCode: "provider_unavailable"}
	got, err := s.FinishAttempts(ctx, func(tx *store.OutcomeTx) error {
		tx.Record(late)
		tx.Emit(ref, "failed")
		tx.IndexForCallbacks(ref)
		tx.PriceLater(ref)
		tx.DeadLetter(ref, []byte(`{"message_id":"`+ref.ID+`"}`))
		tx.Suppress(ref, "+14155550100", "complaint")
		return nil
	})
	if err != nil || len(got) != 0 {
		t.Fatalf("the superseded outcome was recorded: %v %v", got, err)
	}
	var status string
	var refs, prices, dead, events, sups int
	if err := s.Pool().QueryRow(ctx, `SELECT
		(SELECT status FROM communication.message_logs WHERE id = $1),
		(SELECT count(*) FROM communication.provider_message_refs WHERE message_id = $1),
		(SELECT count(*) FROM communication.price_checks WHERE message_id = $1),
		(SELECT count(*) FROM communication.dead_letters WHERE message_id = $1),
		(SELECT count(*) FROM communication.message_events WHERE message_id = $1 AND status = 'failed'),
		(SELECT count(*) FROM communication.suppressions WHERE message_id = $1)`, ref.ID).
		Scan(&status, &refs, &prices, &dead, &events, &sups); err != nil {
		t.Fatal(err)
	}
	if status != "sending" || refs+prices+dead+events+sups != 0 {
		t.Fatalf("after a superseded outcome: status %s, %d refs, %d price checks, %d dead letters, %d failed events, %d suppressions",
			status, refs, prices, dead, events, sups)
	}
}

func TestOutcomeTxRefusesIncompleteWrites(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	ref := store.Ref{TenantID: "ten_x", ID: "msg_x"}
	for name, tc := range map[string]struct {
		fn   func(tx *store.OutcomeTx)
		want string
	}{
		"no event": {func(tx *store.OutcomeTx) {
			tx.Record(store.Outcome{Ref: ref, Attempt: 1, Status: message.Sent})
		}, "no event"},
		"a write for an outcome never recorded": {func(tx *store.OutcomeTx) {
			tx.PriceLater(ref)
		}, "no recorded outcome"},
		"a dead letter without its intent": {func(tx *store.OutcomeTx) {
			tx.Record(store.Outcome{Ref: ref, Attempt: 1, Status: message.Failed})
			tx.Emit(ref, "failed")
			tx.DeadLetter(ref, nil)
		}, "needs its envelope"},
		"a retry without its time": {func(tx *store.OutcomeTx) {
			tx.Record(store.Outcome{Ref: ref, Attempt: 1, Status: message.Queued})
		}, "queued with a next attempt"},
	} {
		_, err := s.FinishAttempts(ctx, func(tx *store.OutcomeTx) error { tc.fn(tx); return nil })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
		}
	}
}
