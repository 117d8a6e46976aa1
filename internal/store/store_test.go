package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/testing/testenv"
	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/message"
)

func newStore(t *testing.T) *store.Store {
	t.Helper()
	t.Parallel()
	return store.New(testenv.DB(t))
}

func tenant(t testing.TB, s *store.Store) string {
	t.Helper()
	tn, err := s.CreateTenant(context.Background(), domain.NewTenant{Name: "t", AllowSystemFallback: true})
	if err != nil {
		t.Fatal(err)
	}
	return tn.ID
}

func sms(to string) message.Request {
	return message.Request{Channel: message.SMS, To: to, Text: "hi"}
}

func TestRecordMessagesIdempotency(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	a, b := tenant(t, s), tenant(t, s)

	first, err := testenv.Record(ctx, s,
		store.NewMessage{ID: ids.NewSortable(ids.Message), TenantID: a, Request: sms("+14155550100"), IdempotencyKey: "k1", RequestHash: []byte("h1")},
		// same key, same tenant, same batch: must collapse onto the first
		store.NewMessage{ID: ids.NewSortable(ids.Message), TenantID: a, Request: sms("+14155550100"), IdempotencyKey: "k1", RequestHash: []byte("h1")},
		// same key, other tenant: independent
		store.NewMessage{ID: ids.NewSortable(ids.Message), TenantID: b, Request: sms("+14155550100"), IdempotencyKey: "k1", RequestHash: []byte("h1")},
		store.NewMessage{ID: ids.NewSortable(ids.Message), TenantID: a, Request: sms("+14155550101")},
	)
	if err != nil {
		t.Fatal(err)
	}
	if first[0].Duplicate || !first[1].Duplicate || first[1].ID != first[0].ID || first[1].Mismatch {
		t.Fatalf("in-batch duplicate not collapsed: %+v", first)
	}
	if first[2].Duplicate || first[2].ID == first[0].ID || first[3].Duplicate {
		t.Fatalf("tenants or keyless messages interfered: %+v", first)
	}

	again, err := testenv.Record(ctx, s,
		store.NewMessage{ID: ids.NewSortable(ids.Message), TenantID: a, Request: sms("+14155550100"), IdempotencyKey: "k1", RequestHash: []byte("h1")},
		store.NewMessage{ID: ids.NewSortable(ids.Message), TenantID: a, Request: sms("+14155550199"), IdempotencyKey: "k1", RequestHash: []byte("other")},
	)
	if err != nil {
		t.Fatal(err)
	}
	if !again[0].Duplicate || again[0].ID != first[0].ID || again[0].Mismatch {
		t.Fatalf("repeat: %+v", again[0])
	}
	if !again[1].Mismatch {
		t.Fatalf("different body under the same key must be a mismatch: %+v", again[1])
	}
	list, _, err := s.ListMessages(ctx, a, domain.MessageFilter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("tenant a has %d messages, want 2", len(list))
	}
}

func TestClaimAndFinishStateMachine(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	ten := tenant(t, s)
	ins, err := testenv.Record(ctx, s, store.NewMessage{ID: ids.NewSortable(ids.Message), TenantID: ten, Request: sms("+14155550100")})
	if err != nil {
		t.Fatal(err)
	}
	ref := store.Ref{TenantID: ten, ID: ins[0].ID}

	// Another tenant cannot claim it.
	if c, err := s.ClaimMessages(ctx, []store.Ref{{TenantID: "ten_other", ID: ref.ID}}, time.Minute); err != nil || len(c) != 0 {
		t.Fatalf("cross-tenant claim: %v %v", c, err)
	}
	c, err := s.ClaimMessages(ctx, []store.Ref{ref, ref}, time.Minute)
	if err != nil || len(c) != 1 || c[0].Attempt != 1 || c[0].To != "+14155550100" {
		t.Fatalf("claim: %+v %v", c, err)
	}
	// A redelivered intent while the lease holds claims nothing.
	if again, _ := s.ClaimMessages(ctx, []store.Ref{ref}, time.Minute); len(again) != 0 {
		t.Fatalf("claimed a leased message twice")
	}
	// A stale attempt's outcome is ignored.
	if got, err := finish(ctx, s, "sent", store.Outcome{Ref: ref, Attempt: 7, Status: message.Sent}); err != nil || len(got) != 0 {
		t.Fatalf("stale outcome recorded: %v %v", got, err)
	}
	recorded, err := finish(ctx, s, "sent", store.Outcome{Ref: ref, Attempt: 1, Status: message.Sent, ProviderType: "sandbox", ProviderMessageID: "sb_1"})
	n := len(recorded)
	if err != nil || n != 1 {
		t.Fatalf("finish: %d %v", n, err)
	}
	if again, _ := s.ClaimMessages(ctx, []store.Ref{ref}, time.Minute); len(again) != 0 {
		t.Fatalf("claimed a sent message")
	}
	m, err := s.GetMessage(ctx, ten, ref.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []message.Status
	for _, e := range m.Events {
		got = append(got, e.Status)
	}
	if m.Status != message.Sent || m.ProviderMessageID != "sb_1" || m.SentAt == nil || len(got) != 3 ||
		got[0] != message.Queued || got[1] != message.Sending || got[2] != message.Sent {
		t.Fatalf("message %+v events %v", m, got)
	}
	if _, err := s.GetMessage(ctx, "ten_other", ref.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("other tenant read: %v", err)
	}
}

func TestExpiredLeaseIsReclaimedAndSwept(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	ten := tenant(t, s)
	ins, _ := testenv.Record(ctx, s, store.NewMessage{ID: ids.NewSortable(ids.Message), TenantID: ten, Request: sms("+14155550100")})
	ref := store.Ref{TenantID: ten, ID: ins[0].ID}
	if c, _ := s.ClaimMessages(ctx, []store.Ref{ref}, time.Millisecond); len(c) != 1 {
		t.Fatal("claim failed")
	}
	time.Sleep(20 * time.Millisecond)
	var swept []store.Stranded
	n, next, err := s.SweepLost(ctx, "", 10, time.Hour, func(_ context.Context, st []store.Stranded) error { swept = st; return nil })
	if err != nil || n != 1 || swept[0].ID != ref.ID || next != "" {
		t.Fatalf("sweep: %d %v %v, next page %q (want the end)", n, swept, err, next)
	}
	// Re-published once: the next sweep leaves it until it is claimed again.
	if n, _, _ := s.SweepLost(ctx, "", 10, time.Hour, func(context.Context, []store.Stranded) error { return nil }); n != 0 {
		t.Fatalf("re-published twice")
	}
	c, err := s.ClaimMessages(ctx, []store.Ref{ref}, time.Minute)
	if err != nil || len(c) != 1 || c[0].Attempt != 2 {
		t.Fatalf("reclaim: %+v %v", c, err)
	}
}

func TestSweepUnpublishedFailedPublishKeepsThem(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	ten := tenant(t, s)
	if _, err := testenv.Record(ctx, s, store.NewMessage{ID: ids.NewSortable(ids.Message), TenantID: ten, Request: sms("+14155550100")}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("broker down")
	if _, err := s.SweepUnpublished(ctx, 0, 10, func(context.Context, []store.Stranded) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("want publish error, got %v", err)
	}
	n, err := s.SweepUnpublished(ctx, 0, 10, func(context.Context, []store.Stranded) error { return nil })
	if err != nil || n != 1 {
		t.Fatalf("after a failed publish the message must still be swept: %d %v", n, err)
	}
	if n, _ := s.SweepUnpublished(ctx, 0, 10, func(context.Context, []store.Stranded) error { return nil }); n != 0 {
		t.Fatalf("a published message was swept again")
	}
}

func TestListMessagesFiltersAndPaginates(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	ten := tenant(t, s)
	var batch []store.NewMessage
	for i := 0; i < 7; i++ {
		r := sms("+14155550100")
		if i%2 == 1 {
			r = message.Request{Channel: message.Email, To: "a@example.com", Subject: "s", Text: "t"}
		}
		batch = append(batch, store.NewMessage{ID: ids.NewSortable(ids.Message), TenantID: ten, Request: r})
	}
	if _, err := testenv.Record(ctx, s, batch...); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		page, next, err := s.ListMessages(ctx, ten, domain.MessageFilter{Channel: message.SMS, Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page {
			if m.Channel != message.SMS || seen[m.ID] {
				t.Fatalf("bad page entry %+v", m)
			}
			seen[m.ID] = true
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != 4 {
		t.Fatalf("saw %d sms messages, want 4", len(seen))
	}
	if _, _, err := s.ListMessages(ctx, ten, domain.MessageFilter{Cursor: "!!", Limit: 2}); !errors.Is(err, store.ErrBadCursor) {
		t.Fatalf("bad cursor: %v", err)
	}
}

// The lease sweep reads the outbox a page at a time, and a lap of pages finds every expired lease
// wherever it sits, each once: the outbox holds every unfinished message (a failing provider's
// whole backlog), too many to look up in one statement.
func TestExpiredLeaseSweepPagesThroughTheOutbox(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	ten := tenant(t, s)
	msgs := make([]store.NewMessage, 25)
	for i := range msgs {
		msgs[i] = store.NewMessage{ID: ids.NewSortable(ids.Message), TenantID: ten, Request: sms(fmt.Sprintf("+1415555%04d", i))}
	}
	ins, err := testenv.Record(ctx, s, msgs...)
	if err != nil {
		t.Fatal(err)
	}
	// Every third message is stuck in sending with an expired lease; the rest wait, queued.
	var stuck []store.Ref
	for i, in := range ins {
		if i%3 == 0 {
			stuck = append(stuck, store.Ref{TenantID: ten, ID: in.ID})
		}
	}
	if c, err := s.ClaimMessages(ctx, stuck, time.Millisecond); err != nil || len(c) != len(stuck) {
		t.Fatalf("claimed %d of %d: %v", len(c), len(stuck), err)
	}
	time.Sleep(20 * time.Millisecond)

	swept := map[string]int{}
	page, pages := "", 0
	for {
		_, next, err := s.SweepLost(ctx, page, 4, time.Hour, func(_ context.Context, st []store.Stranded) error {
			if len(st) > 4 {
				t.Errorf("a page of 4 returned %d messages", len(st))
			}
			for _, x := range st {
				swept[x.ID]++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if next == "" {
			break
		}
		if next <= page {
			t.Fatalf("page after %q ends at %q: not moving forward", page, next)
		}
		page = next
	}
	if pages != 7 { // 25 entries, 4 a page
		t.Errorf("a lap took %d pages, want 7", pages)
	}
	if len(swept) != len(stuck) {
		t.Fatalf("a lap re-published %d messages, want the %d stuck ones", len(swept), len(stuck))
	}
	for _, r := range stuck {
		if swept[r.ID] != 1 {
			t.Fatalf("stuck message %s re-published %d times", r.ID, swept[r.ID])
		}
	}
}

// A queued message whose intent was published and then lost (no claim, no newer publish) is found
// once it has been due for longer than lostAfter; one still waiting for its retry, or published
// recently, is not. Times are set back in the tables, so a loaded machine cannot blur them.
func TestSweepLostFindsQueuedMessagesNoIntentTouched(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	s := store.New(pool)
	ctx := context.Background()
	ten := tenant(t, s)
	hourAgo := time.Now().Add(-time.Hour) // when both were accepted
	ins, err := testenv.Record(ctx, s,
		store.NewMessage{ID: ids.NewSortableAt(ids.Message, hourAgo), TenantID: ten, Request: sms("+14155550100")},
		store.NewMessage{ID: ids.NewSortableAt(ids.Message, hourAgo), TenantID: ten, Request: sms("+14155550101")},
	)
	if err != nil {
		t.Fatal(err)
	}
	lost, waiting := store.Ref{TenantID: ten, ID: ins[0].ID}, store.Ref{TenantID: ten, ID: ins[1].ID}
	// waiting failed its first attempt and waits for a retry an hour ahead.
	c, err := s.ClaimMessages(ctx, []store.Ref{waiting}, time.Minute)
	if err != nil || len(c) != 1 {
		t.Fatalf("claim: %v %v", c, err)
	}
	if _, err := finish(ctx, s, "retrying", store.Outcome{Ref: waiting, Attempt: 1, Status: message.Queued, ProviderType: "sandbox",
		ErrorCode: "provider_unavailable", NextAttemptAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkPublished(ctx, []store.Ref{lost, waiting}); err != nil {
		t.Fatal(err)
	}
	sweep := func() []string {
		var got []string
		if _, _, err := s.SweepLost(ctx, "", 10, 10*time.Minute, func(_ context.Context, st []store.Stranded) error {
			for _, x := range st {
				got = append(got, x.ID)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := sweep(); len(got) != 0 {
		t.Fatalf("swept %v, just published", got)
	}
	// An hour after their publication, nothing has touched either message.
	if _, err := pool.Exec(ctx, `UPDATE communication.dispatch_queue SET published_at = published_at - interval '1 hour' WHERE tenant_id = $1`, ten); err != nil {
		t.Fatal(err)
	}
	if got := sweep(); len(got) != 1 || got[0] != lost.ID {
		t.Fatalf("swept %v, want only the lost %s (not the retry waiting for its time)", got, lost.ID)
	}
	// Published again just now: not again until lostAfter has passed once more.
	if got := sweep(); len(got) != 0 {
		t.Fatalf("swept %v again at once", got)
	}

	// RetryDue tells an early intent of the waiting retry from a duplicate.
	due, waits, err := s.RetryDue(ctx, waiting, 1)
	if err != nil || !waits || time.Until(due) < 59*time.Minute {
		t.Fatalf("RetryDue after attempt 1: %v %v %v", due, waits, err)
	}
	if _, waits, _ := s.RetryDue(ctx, waiting, 0); waits {
		t.Fatal("an intent of an older attempt was taken for the waiting retry")
	}
	if _, waits, _ := s.RetryDue(ctx, lost, 0); waits {
		t.Fatal("a message due now was reported as waiting")
	}
}

// A batch of intents is claimed and finished whole whatever weeks its messages are in: all in one
// week (the week's partition is named directly), across two weeks, or naming a week that has no
// partition (dropped by retention), whose messages no longer exist and are simply not claimed.
func TestABatchIsClaimedAndFinishedWhateverWeeksItsMessagesAreIn(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	ten := tenant(t, s)
	now := time.Now()
	if _, err := s.CreatePartitions(ctx, now.AddDate(0, 0, -14), now); err != nil {
		t.Fatal(err)
	}
	record := func(at time.Time) store.Ref {
		t.Helper()
		in, err := testenv.Record(ctx, s, store.NewMessage{ID: ids.NewSortableAt(ids.Message, at), TenantID: ten, Request: sms("+14155550100")})
		if err != nil {
			t.Fatal(err)
		}
		return store.Ref{TenantID: ten, ID: in[0].ID}
	}
	gone := store.Ref{TenantID: ten, ID: ids.NewSortableAt(ids.Message, now.AddDate(-2, 0, 0))} // no week of 2 years ago exists
	thisWeek := []store.Ref{record(now), record(now.Add(-time.Second))}
	twoWeeks := []store.Ref{record(now.AddDate(0, 0, -8)), record(now)}
	for _, batch := range [][]store.Ref{thisWeek, twoWeeks, {gone}, {record(now), gone}, {gone, record(now.AddDate(0, 0, -8)), record(now)}} {
		want := len(batch)
		if slices.Contains(batch, gone) {
			want--
		}
		claimed, err := s.ClaimMessages(ctx, batch, time.Minute)
		if err != nil || len(claimed) != want {
			t.Fatalf("claimed %d of %v, want %d: %v", len(claimed), batch, want, err)
		}
		outs := make([]store.Outcome, 0, len(batch))
		for _, c := range claimed {
			outs = append(outs, store.Outcome{Ref: store.Ref{TenantID: ten, ID: c.ID}, Attempt: c.Attempt, Status: message.Sent, ProviderType: "sandbox", ProviderMessageID: "sb_" + c.ID})
		}
		if slices.Contains(batch, gone) { // an outcome for a message that no longer exists records nothing
			outs = append(outs, store.Outcome{Ref: gone, Attempt: 1, Status: message.Sent, ProviderType: "sandbox", ProviderMessageID: "sb_gone"})
		}
		got, err := finish(ctx, s, "sent", outs...)
		if err != nil || len(got) != want {
			t.Fatalf("finished %d of %v, want %d: %v", len(got), batch, want, err)
		}
		for _, c := range claimed {
			if m, err := s.GetMessage(ctx, ten, c.ID); err != nil || m.Status != message.Sent {
				t.Fatalf("%s after its outcome: %v %v", c.ID, m.Status, err)
			}
		}
	}
}
