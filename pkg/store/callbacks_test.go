package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/store"
)

// sentMessage records a message and its successful attempt through provider config cfg.
func sentMessage(t *testing.T, s *store.Store, tenantID, cfg, pmid string) string {
	t.Helper()
	ctx := context.Background()
	id := ids.New(ids.Message)
	if _, err := s.InsertMessages(ctx, []store.NewMessage{{ID: id, TenantID: tenantID, Request: sms("+14155550100")}}); err != nil {
		t.Fatal(err)
	}
	ref := store.Ref{TenantID: tenantID, ID: id}
	if _, err := s.ClaimMessages(ctx, []store.Ref{ref}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FinishMessages(ctx, []store.Outcome{{Ref: ref, Attempt: 1, Status: message.Sent, ProviderConfigID: cfg, ProviderType: "twilio", ProviderMessageID: pmid}}); err != nil {
		t.Fatal(err)
	}
	return id
}

func callbackFor(cfg, pmid, key string, st message.Status) store.Callback {
	return store.Callback{ProviderConfigID: cfg, ProviderType: "twilio", EventKey: key, ProviderMessageID: pmid, Status: st,
		OccurredAt: time.Now().UTC(), Payload: []byte(`{}`)}
}

// A callback that beats the worker's commit waits, and is applied once the message is known.
func TestCallbackWaitsForALateMessage(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	tn := tenant(t, s)
	fresh, err := s.InsertCallbacks(ctx, []store.Callback{callbackFor("prv_a", "SM1", "SM1:delivered", message.Delivered)})
	if err != nil || !fresh[0] {
		t.Fatalf("insert: %v %v", fresh, err)
	}
	policy := store.ApplyPolicy{Limit: 10, MaxTries: 5, Backoff: func(int) time.Duration { return 0 }}
	res, err := s.ApplyCallbacks(ctx, policy)
	if err != nil || res.Waiting != 1 || res.Applied != 0 {
		t.Fatalf("before the message exists: %+v %v", res, err)
	}
	id := sentMessage(t, s, tn, "prv_a", "SM1")
	res, err = s.ApplyCallbacks(ctx, policy)
	if err != nil || res.Applied != 1 {
		t.Fatalf("after: %+v %v", res, err)
	}
	m, err := s.GetMessage(ctx, tn, id)
	if err != nil || m.Status != message.Delivered || m.DeliveredAt == nil {
		t.Fatalf("message: %+v %v", m, err)
	}
	// The same provider message id under another config is another message: it waits.
	if _, err := s.InsertCallbacks(ctx, []store.Callback{callbackFor("prv_b", "SM1", "SM1:failed", message.Failed)}); err != nil {
		t.Fatal(err)
	}
	if res, _ := s.ApplyCallbacks(ctx, policy); res.Waiting != 1 {
		t.Fatalf("a callback matched another config's message: %+v", res)
	}
	if m, _ := s.GetMessage(ctx, tn, id); m.Status != message.Delivered {
		t.Fatalf("moved by another config's callback: %s", m.Status)
	}
}

// After its last try a callback is kept as unmatched, listed for reconciliation, and can be
// queued again.
func TestUnmatchedCallbacksAreKept(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	tn := tenant(t, s)
	if _, err := s.InsertCallbacks(ctx, []store.Callback{callbackFor("prv_u", "SMX", "SMX:delivered", message.Delivered)}); err != nil {
		t.Fatal(err)
	}
	policy := store.ApplyPolicy{Limit: 10, MaxTries: 2, Backoff: func(int) time.Duration { return 0 }}
	for i, want := range []store.Applied{{Waiting: 1}, {Unmatched: 1}, {}} {
		res, err := s.ApplyCallbacks(ctx, policy)
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
	if res, _ := s.ApplyCallbacks(ctx, policy); res.Applied != 1 {
		t.Fatalf("after reconciliation: %+v", res)
	}
	if m, _ := s.GetMessage(ctx, tn, id); m.Status != message.Delivered {
		t.Fatalf("status %s", m.Status)
	}
}

// Provider retries of one event are stored once, even within one batch; text PostgreSQL cannot
// hold (NUL, invalid UTF-8, the JSON escape \u0000) is made storable rather than failing the
// batch forever.
func TestInsertCallbacksDeduplicatesAndSanitizes(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	odd := callbackFor("prv_s", "SM\x00\xff9", "k\x001", message.Delivered)
	odd.Reason, odd.Payload = "bad\x00byte \xfe", []byte(`{"a":"\u0000","b":"`+"\xff"+`"}`)
	fresh, err := s.InsertCallbacks(ctx, []store.Callback{odd, odd, callbackFor("prv_s", "SM2", "k2", message.Delivered)})
	if err != nil {
		t.Fatal(err)
	}
	if !fresh[0] || fresh[1] || !fresh[2] {
		t.Fatalf("fresh = %v", fresh)
	}
	again, err := s.InsertCallbacks(ctx, []store.Callback{odd})
	if err != nil || again[0] {
		t.Fatalf("a stored event was stored again: %v %v", again, err)
	}
}
