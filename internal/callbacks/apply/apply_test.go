package apply_test

import (
	"context"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/callbacks/apply"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/internal/testing/testenv"
	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// applier applies with no backoff, so each ApplyOnce is the next try.
type applier struct {
	*apply.Applier
	s *store.Store
}

func (a applier) withMaxTries(n int) applier {
	a.Applier = apply.New(apply.Config{Batch: 10, MaxTries: n, Backoff: func(int) time.Duration { return 0 }}, a.s, stacktest.Logger())
	return a
}

func setup(t *testing.T) (*store.Store, applier) {
	t.Helper()
	t.Parallel()
	s := store.New(testenv.DB(t))
	return s, applier{s: s}.withMaxTries(5)
}

func tenant(t *testing.T, s *store.Store) string {
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

// sentMessage records a message and its successful attempt through provider config cfg.
func sentMessage(t *testing.T, s *store.Store, tenantID, cfg, pmid string) string {
	t.Helper()
	ctx := context.Background()
	id := ids.NewSortable(ids.Message)
	if _, err := testenv.Record(ctx, s, store.NewMessage{ID: id, TenantID: tenantID, Request: sms("+14155550100")}); err != nil {
		t.Fatal(err)
	}
	ref := store.Ref{TenantID: tenantID, ID: id}
	if _, err := s.ClaimMessages(ctx, []store.Ref{ref}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FinishAttempts(ctx, func(tx *store.OutcomeTx) error {
		tx.Record(store.Outcome{Ref: ref, Attempt: 1, Status: message.Sent, ProviderConfigID: cfg, ProviderType: "twilio", ProviderMessageID: pmid})
		tx.Emit(ref, "sent")
		tx.IndexForCallbacks(ref)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return id
}

func callbackFor(cfg, pmid, key string, st message.Status) provider.Event {
	return provider.Event{ProviderConfigID: cfg, ProviderType: "twilio", EventKey: key, ProviderMessageID: pmid, Status: st,
		OccurredAt: time.Now().UTC(), Payload: []byte(`{}`)}
}

// A callback that beats the worker's commit waits, and is applied once the message is known.
func TestCallbackWaitsForALateMessage(t *testing.T) {
	s, a := setup(t)
	ctx := context.Background()
	tn := tenant(t, s)
	fresh, err := s.InsertCallbacks(ctx, []provider.Event{callbackFor("prv_a", "SM1", "SM1:delivered", message.Delivered)})
	if err != nil || !fresh[0] {
		t.Fatalf("insert: %v %v", fresh, err)
	}
	a = a.withMaxTries(5)
	res, err := a.ApplyOnce(ctx)
	if err != nil || res.Waiting != 1 || res.Applied != 0 {
		t.Fatalf("before the message exists: %+v %v", res, err)
	}
	id := sentMessage(t, s, tn, "prv_a", "SM1")
	res, err = a.ApplyOnce(ctx)
	if err != nil || res.Applied != 1 {
		t.Fatalf("after: %+v %v", res, err)
	}
	m, err := s.GetMessage(ctx, tn, id)
	if err != nil || m.Status != message.Delivered || m.DeliveredAt == nil {
		t.Fatalf("message: %+v %v", m, err)
	}
	// The same provider message id under another config is another message: it waits.
	if _, err := s.InsertCallbacks(ctx, []provider.Event{callbackFor("prv_b", "SM1", "SM1:failed", message.Failed)}); err != nil {
		t.Fatal(err)
	}
	if res, _ := a.ApplyOnce(ctx); res.Waiting != 1 {
		t.Fatalf("a callback matched another config's message: %+v", res)
	}
	if m, _ := s.GetMessage(ctx, tn, id); m.Status != message.Delivered {
		t.Fatalf("moved by another config's callback: %s", m.Status)
	}
}

// After its last try a callback is kept as unmatched, listed for reconciliation, and can be
// queued again.
func TestUnmatchedCallbacksAreKept(t *testing.T) {
	s, a := setup(t)
	ctx := context.Background()
	tn := tenant(t, s)
	if _, err := s.InsertCallbacks(ctx, []provider.Event{callbackFor("prv_u", "SMX", "SMX:delivered", message.Delivered)}); err != nil {
		t.Fatal(err)
	}
	a = a.withMaxTries(2)
	for i, want := range []apply.Result{{Waiting: 1}, {Unmatched: 1}, {}} {
		res, err := a.ApplyOnce(ctx)
		if err != nil || res.Waiting != want.Waiting || res.Unmatched != want.Unmatched || res.Applied != 0 {
			t.Fatalf("round %d: %+v %v", i, res, err)
		}
	}
	list, err := s.ListUnmatchedCallbacks(ctx, 10)
	if err != nil || len(list) != 1 || list[0].ProviderMessageID != "SMX" || list[0].Tries != 2 {
		t.Fatalf("unmatched: %+v %v", list, err)
	}
	id := sentMessage(t, s, tn, "prv_u", "SMX")
	if n, err := s.RetryUnmatchedCallbacks(ctx); err != nil || n != 1 {
		t.Fatalf("retry: %d %v", n, err)
	}
	if res, _ := a.ApplyOnce(ctx); res.Applied != 1 {
		t.Fatalf("after reconciliation: %+v", res)
	}
	if m, _ := s.GetMessage(ctx, tn, id); m.Status != message.Delivered {
		t.Fatalf("status %s", m.Status)
	}
}

// Provider-error breakdowns add whole days from the daily rollup and partial days from the hourly
// one: every range counts each error exactly once.
func TestProviderErrorsAcrossDayAndHourRollups(t *testing.T) {
	s, a := setup(t)
	ctx := context.Background()
	tn := tenant(t, s)
	day1 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var cbs []provider.Event
	for i, at := range []time.Time{day1.Add(23 * time.Hour), day1.Add(36 * time.Hour), day1.Add(49 * time.Hour)} {
		pmid := "SMerr" + string(rune('a'+i))
		sentMessage(t, s, tn, "prv_e", pmid)
		cb := callbackFor("prv_e", pmid, pmid+":undelivered", message.Undelivered)
		cb.ErrorCode, cb.ProviderCode, cb.Reason, cb.OccurredAt = "invalid_recipient", "30003", "Unreachable destination handset", at
		cbs = append(cbs, cb)
	}
	if _, err := s.InsertCallbacks(ctx, cbs); err != nil {
		t.Fatal(err)
	}
	if res, err := a.withMaxTries(1).ApplyOnce(ctx); err != nil || res.Applied != 3 {
		t.Fatalf("apply: %+v %v", res, err)
	}
	h := func(n int) time.Time { return day1.Add(time.Duration(n) * time.Hour) }
	for _, c := range []struct {
		from, to time.Time
		want     int64
	}{
		{h(22), h(50), 3},                       // partial, whole, partial
		{h(0), h(72), 3},                        // whole days only
		{h(23).Add(30 * time.Minute), h(24), 1}, // from rounds down to its hour
		{h(24), h(48), 1},                       // exactly one whole day
		{h(24), h(36), 0},                       // hours of a day, before its error
		{h(37), h(49), 0},                       // across midnight, between errors
		{h(0), h(23), 0},
	} {
		got, err := s.ListProviderErrors(ctx, tn, "", c.from, c.to)
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, e := range got {
			n += e.Count
		}
		if n != c.want {
			t.Errorf("[%s, %s): %d errors, want %d", c.from.Format(time.RFC3339), c.to.Format(time.RFC3339), n, c.want)
		}
		if n > 0 && (got[0].Example.ProviderCode != "30003" || got[0].Example.Message != "Unreachable destination handset") {
			t.Errorf("example: %+v", got[0].Example)
		}
	}
	// The timeseries counts the same failures by the provider's event time.
	ts, err := s.GetTimeseries(ctx, tn, "", h(0), h(72), "day")
	if err != nil || len(ts) != 3 || ts[0].Failed != 1 || ts[1].Failed != 1 || ts[2].Failed != 1 {
		t.Fatalf("timeseries: %+v %v", ts, err)
	}
}
