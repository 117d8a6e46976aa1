package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/testing/testenv"
	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/message"
)

// The database's recipient_key and recipient_hash (migration 0022) agree with Go's
// message.RecipientKey and Store.RecipientHash, which the intake uses: an opt-out kept as the
// hash alone holds only if they do.
func TestRecipientKeyAndHashAgreeWithTheDatabase(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	s := store.New(pool)
	ctx := context.Background()
	for _, c := range []struct {
		ch message.Channel
		to string
	}{
		{message.Email, "ann@example.com"}, {message.Email, "Ann@Example.COM"}, {message.Email, "Ann <Ann@Example.com>"},
		{message.Email, `"Smith, Ann" <ann.smith+news@example.co.uk>`}, {message.Email, " ann@example.com "},
		{message.SMS, "+14155550123"}, {message.SMS, " +14155550123"},
	} {
		var key, hash string
		if err := pool.QueryRow(ctx, `SELECT communication.recipient_key($1, $2), communication.recipient_hash('ten_1', $1, communication.recipient_key($1, $2))`,
			string(c.ch), c.to).Scan(&key, &hash); err != nil {
			t.Fatal(err)
		}
		if want := message.RecipientKey(c.ch, c.to); key != want {
			t.Errorf("recipient_key(%s, %q) = %q, Go says %q", c.ch, c.to, key, want)
		}
		want, err := s.RecipientHash(ctx, "ten_1", c.ch, c.to)
		if err != nil {
			t.Fatal(err)
		}
		if hash != want || len(hash) != 64 {
			t.Errorf("recipient_hash of %q = %s, Go says %s", c.to, hash, want)
		}
		if other, _ := s.RecipientHash(ctx, "ten_2", c.ch, c.to); other == want {
			t.Errorf("two tenants share the hash of %q", c.to)
		}
	}
}

// An erasure runs in batches of the limit, each committed with its counts, so one stopped
// half-way resumes where it was; asking again while it runs answers the same erasure.
func TestErasureRunsInBatchesAndResumes(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	ten := tenant(t, s)
	var msgs []store.NewMessage
	for range 5 {
		msgs = append(msgs, store.NewMessage{ID: ids.NewSortable(ids.Message), TenantID: ten, Request: sms("+14155550123")})
	}
	msgs = append(msgs, store.NewMessage{ID: ids.NewSortable(ids.Message), TenantID: ten, Request: sms("+14155550124")})
	if _, err := testenv.Record(ctx, s, msgs...); err != nil {
		t.Fatal(err)
	}
	e, created, err := s.CreateErasure(ctx, ids.New(ids.Erasure), ten, message.SMS, "+14155550123")
	if err != nil || !created {
		t.Fatal(created, err)
	}
	again, created, err := s.CreateErasure(ctx, ids.New(ids.Erasure), ten, message.SMS, " +14155550123")
	if err != nil || created || again.ID != e.ID {
		t.Fatalf("asked again: %s (created %v), running %s, %v", again.ID, created, e.ID, err)
	}
	var steps []int64
	for range 10 {
		got, found, err := s.EraseNext(ctx, 2)
		if err != nil || !found {
			t.Fatal(found, err)
		}
		steps = append(steps, got.Counts.Messages)
		if got.Status == domain.ErasureDone {
			break
		}
	}
	if len(steps) != 3 || steps[0] != 2 || steps[1] != 4 || steps[2] != 5 {
		t.Fatalf("messages erased after each call: %v", steps)
	}
	if _, found, err := s.EraseNext(ctx, 2); err != nil || found {
		t.Fatalf("a finished erasure was taken again: %v %v", found, err)
	}
	got, err := s.GetErasure(ctx, ten, e.ID)
	if err != nil || got.Status != domain.ErasureDone || got.FinishedAt == nil || got.Counts.Canceled != 5 {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := s.GetErasure(ctx, tenant(t, s), e.ID); err != store.ErrNotFound {
		t.Fatalf("another tenant reads the erasure: %v", err)
	}
	list, _, err := s.ListMessages(ctx, ten, domain.MessageFilter{Recipient: "+14155550124", Limit: 10})
	if err != nil || len(list) != 1 {
		t.Fatalf("the other recipient's messages: %d %v", len(list), err)
	}
}

// A message being sent is left to its attempt: the erasure stays running until it is final, then
// erases it. An email address is found however it was written ("Ann <Ann@Example.com>"), by the
// eraser and by the message list's recipient filter alike.
func TestErasureWaitsForAMessageBeingSent(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	ten := tenant(t, s)
	mail := message.Request{Channel: message.Email, To: "Ann <Ann@Example.com>", Subject: "hi", Text: "hello"}
	sending := store.NewMessage{ID: ids.NewSortable(ids.Message), TenantID: ten, Request: mail}
	if _, err := testenv.Record(ctx, s, sending, store.NewMessage{ID: ids.NewSortable(ids.Message), TenantID: ten, Request: mail}); err != nil {
		t.Fatal(err)
	}
	if list, _, err := s.ListMessages(ctx, ten, domain.MessageFilter{Recipient: "ann@example.com", Limit: 10}); err != nil || len(list) != 2 {
		t.Fatalf("listed by the bare address: %d %v", len(list), err)
	}
	ref := store.Ref{TenantID: ten, ID: sending.ID}
	if _, err := s.ClaimMessages(ctx, []store.Ref{ref}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateErasure(ctx, ids.New(ids.Erasure), ten, message.Email, "ANN@example.com"); err != nil {
		t.Fatal(err)
	}
	e, _, err := s.EraseNext(ctx, 100)
	if err != nil || e.Status != domain.ErasureRunning || e.Counts.Messages != 1 {
		t.Fatalf("beside a send: %+v %v", e, err)
	}
	if _, err := s.FinishAttempts(ctx, func(tx *store.OutcomeTx) error {
		tx.Record(store.Outcome{Ref: ref, Attempt: 1, Status: message.Sent})
		tx.Emit(ref, "sent")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if e, _, err = s.EraseNext(ctx, 100); err != nil || e.Status != domain.ErasureDone || e.Counts.Messages != 2 {
		t.Fatalf("once sent: %+v %v", e, err)
	}
	if m, err := s.GetMessage(ctx, ten, sending.ID); err != nil || m.To != "" || m.ErasedAt == nil || m.Status != message.Sent {
		t.Fatalf("the message sent during the erasure: %+v %v", m, err)
	}
}

// A message's callbacks are found in the weeks from its own on, however late they came: the
// eraser searches no week before the message's (less an hour's grace for clocks that disagree).
func TestErasureFindsCallbacksInTheWeeksAfterTheMessage(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	ten := tenant(t, s)
	made := time.Now().AddDate(0, 0, -15)
	id := smsMadeAt(t, s, ten, made)
	if _, err := s.CreatePartitions(ctx, made.Add(-time.Hour), time.Now()); err != nil {
		t.Fatal(err)
	}
	// In the message's week (received before its id's time, within the grace), a week later and now.
	received := []time.Time{made.Add(-30 * time.Minute), made.AddDate(0, 0, 8), time.Now()}
	for i, at := range received {
		if _, err := s.Pool().Exec(ctx, `
			INSERT INTO communication.callbacks (provider_config_id, provider_type, event_key, provider_message_id, status, occurred_at, payload,
			                                     received_at, received_week, message_id, outcome, recipient)
			VALUES ('prv_x', 'twilio', $1, 'SMx', 'delivered', $2, '{"To": "+14155550123"}', $2, date_trunc('week', $2::timestamptz, 'UTC'),
			        $3, 'applied', '+14155550123')`, fmt.Sprintf("ev%d", i), at, id); err != nil {
			t.Fatal(err)
		}
	}
	e := eraseAll(t, s, ten)
	var left int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM communication.callbacks
		WHERE message_id = $1 AND (recipient <> '' OR payload::text LIKE '%4155550123%')`, id).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 || e.Counts.Callbacks != int64(len(received)) {
		t.Fatalf("%d of the message's %d callbacks keep the address; %d erased", left, len(received), e.Counts.Callbacks)
	}
}

// A webhook delivery is filed under its event's time, which may be up to a week before its
// message (a provider's clock behind), or else under its publication's, any time after the
// message (an event published again later), flagged so (webhooks.deliveryTime); one written by a
// release that did not flag says neither (migrations/0044). The eraser finds each, and only the
// person's.
func TestErasureFindsWebhookDeliveriesWhereverTheyAreFiled(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	ten := tenant(t, s)
	made := time.Now().AddDate(0, 0, -15).Truncate(time.Microsecond)
	id := smsMadeAt(t, s, ten, made)
	occurred := made.Add(-7*24*time.Hour + time.Minute)
	var event int64
	if err := s.Pool().QueryRow(ctx, `UPDATE communication.message_events SET occurred_at = $2 WHERE message_id = $1 RETURNING id`,
		id, occurred).Scan(&event); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreatePartitions(ctx, occurred, time.Now()); err != nil {
		t.Fatal(err)
	}
	// Someone else's message in the same weeks, delivered on the same endpoints: it keeps its address.
	in, err := testenv.Record(ctx, s, store.NewMessage{ID: ids.NewSortableAt(ids.Message, made), TenantID: ten, Request: sms("+14155550999")})
	if err != nil {
		t.Fatal(err)
	}
	var other int64
	if err := s.Pool().QueryRow(ctx, `SELECT id FROM communication.message_events WHERE message_id = $1`, in[0].ID).Scan(&other); err != nil {
		t.Fatal(err)
	}
	deliver := func(endpoint string, event int64, to string, at time.Time, late bool) {
		t.Helper()
		d := domain.WebhookDelivery{EndpointID: endpoint, TenantID: ten, EventID: fmt.Sprintf("evt_%d", event), EventType: "comms.message.accepted",
			Payload: []byte(`{"data":{"recipient":"` + to + `"}}`), Status: "succeeded"}
		if err := s.RecordWebhookOutcomes(ctx, []store.WebhookOutcome{{Delivery: d, At: at, FiledLate: late}}); err != nil {
			t.Fatal(err)
		}
	}
	filed := []struct {
		at   time.Time
		late bool
	}{{occurred, false}, {made.AddDate(0, 0, 10), true}, {time.Now(), true}, {made.AddDate(0, 0, 3), false}}
	for i, f := range filed {
		endpoint := fmt.Sprintf("whe_%d", i)
		if _, err := s.Pool().Exec(ctx, `
			INSERT INTO communication.webhook_endpoints (id, tenant_id, url, description, event_types, enabled, key_version, secret_sealed)
			VALUES ($1, $2, 'https://example.com/h', '', '{}', true, 'v1', '\x00')`, endpoint, ten); err != nil {
			t.Fatal(err)
		}
		deliver(endpoint, event, "+14155550123", f.at, f.late)
		deliver(endpoint, other, "+14155550999", f.at, f.late)
	}
	// The last was written by a release that did not flag: NULL.
	if _, err := s.Pool().Exec(ctx, `UPDATE communication.webhook_deliveries SET filed_late = NULL WHERE endpoint_id = 'whe_3'`); err != nil {
		t.Fatal(err)
	}
	e := eraseAll(t, s, ten)
	var left []time.Time
	if err := s.Pool().QueryRow(ctx, `SELECT coalesce(array_agg(created_at), '{}') FROM communication.webhook_deliveries
		WHERE tenant_id = $1 AND convert_from(payload, 'UTF8') LIKE '%4155550123%'`, ten).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 || e.Counts.WebhookDeliveries != int64(len(filed)) {
		t.Fatalf("deliveries filed at %v keep the address; %d of %d erased", left, e.Counts.WebhookDeliveries, len(filed))
	}
	var kept int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM communication.webhook_deliveries
		WHERE tenant_id = $1 AND convert_from(payload, 'UTF8') LIKE '%4155550999%'`, ten).Scan(&kept); err != nil {
		t.Fatal(err)
	}
	if kept != len(filed) {
		t.Fatalf("%d of the other recipient's %d deliveries keep their address", kept, len(filed))
	}
}

// smsMadeAt records an SMS to +14155550123 for tenant ten, made at made, and returns its id.
func smsMadeAt(t *testing.T, s *store.Store, ten string, made time.Time) string {
	t.Helper()
	in, err := testenv.Record(context.Background(), s, store.NewMessage{ID: ids.NewSortableAt(ids.Message, made), TenantID: ten, Request: sms("+14155550123")})
	if err != nil {
		t.Fatal(err)
	}
	return in[0].ID
}

// eraseAll erases +14155550123 from tenant ten at once, and returns the finished erasure.
func eraseAll(t *testing.T, s *store.Store, ten string) domain.Erasure {
	t.Helper()
	ctx := context.Background()
	if _, _, err := s.CreateErasure(ctx, ids.New(ids.Erasure), ten, message.SMS, "+14155550123"); err != nil {
		t.Fatal(err)
	}
	e, found, err := s.EraseNext(ctx, 100)
	if err != nil || !found || e.Status != domain.ErasureDone {
		t.Fatalf("%+v found %v: %v", e, found, err)
	}
	return e
}
