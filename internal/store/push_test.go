package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/db"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/ids"
)

// One statement serves a batch of push attempts from several tenants and messages: each attempt
// gets its own profile's devices and its own message's deliveries, a final delivery is never
// overwritten, and a device two messages of the batch report gone is removed and announced once.
// Two attempts of one message in a batch fail as a row error, which the worker's batcher isolates.
func TestPushStatementsServeABatchOfAttempts(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	a, b := tenant(t, s), tenant(t, s)
	// Each device expires at its own time: one device's must not show on another in a batch.
	expires := time.Now().Add(time.Hour).Truncate(time.Second)
	device := func(tn, profile, token string) domain.Device {
		t.Helper()
		expires = expires.Add(time.Hour)
		at := expires
		d, _, err := s.PutDevice(ctx, tn, domain.Device{ID: ids.New(ids.Device), RecipientID: profile, Platform: domain.FCM, Token: token, ExpiresAt: &at}, 10)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, p := range []struct{ tenant, id string }{{a, "u_1"}, {a, "u_2"}, {b, "u_1"}} {
		if _, _, err := s.PutRecipient(ctx, p.tenant, domain.Recipient{ExternalID: p.id, Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	a1, a2, a3, b1 := device(a, "u_1", "t-a1"), device(a, "u_1", "t-a2"), device(a, "u_2", "t-a3"), device(b, "u_1", "t-b1")
	m1, m2, m3 := ids.NewSortable(ids.Message), ids.NewSortable(ids.Message), ids.NewSortable(ids.Message)
	attempts := []store.PushAttempt{{a, m1, "u_1"}, {a, m2, "u_2"}, {b, m3, "u_1"}, {a, m2, "nobody"}}

	targets, err := s.PushTargets(ctx, attempts)
	if err != nil {
		t.Fatal(err)
	}
	if got := deviceIDs(targets); len(got) != 4 || !sameSet(got[0], a1.ID, a2.ID) || !sameSet(got[1], a3.ID) || !sameSet(got[2], b1.ID) || len(got[3]) != 0 {
		t.Fatalf("targets %v, want [%s %s] [%s] [%s] []", got, a1.ID, a2.ID, a3.ID, b1.ID)
	}
	for _, want := range []domain.Device{a1, a2, a3, b1} {
		for _, l := range targets {
			for _, got := range l {
				if got.ID == want.ID && (got.ExpiresAt == nil || !got.ExpiresAt.Equal(*want.ExpiresAt)) {
					t.Fatalf("device %s expires at %v, want %v", got.ID, got.ExpiresAt, *want.ExpiresAt)
				}
			}
		}
	}

	del := func(d domain.Device, status string) domain.PushDelivery {
		return domain.PushDelivery{DeviceID: d.ID, Platform: d.Platform, Status: status, Attempt: 1, ErrorMessage: status}
	}
	first := []store.PushRecord{
		{PushAttempt: attempts[0], Deliveries: []domain.PushDelivery{del(a1, domain.DeliverySent), del(a2, domain.DeliveryRetrying)}},
		{PushAttempt: attempts[1], Deliveries: []domain.PushDelivery{del(a3, domain.DeliveryRemoved)}},
		{PushAttempt: attempts[2], Deliveries: []domain.PushDelivery{del(b1, domain.DeliveryFailed)}},
	}
	all, err := s.RecordPushDeliveries(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(all); len(got) != 3 || got[0][a1.ID] != "sent" || got[0][a2.ID] != "retrying" || len(got[0]) != 2 ||
		got[1][a3.ID] != "removed" || len(got[1]) != 1 || got[2][b1.ID] != "failed" || len(got[2]) != 1 {
		t.Fatalf("deliveries after the first attempts: %v", got)
	}

	// The retry of m1 goes to the device still waiting, and may not overwrite m1's sent delivery.
	// Two more messages (m4, m6) report a new device (a4) gone, and m4 a3 again.
	a4 := device(a, "u_2", "t-a4")
	m4, m6 := ids.NewSortable(ids.Message), ids.NewSortable(ids.Message)
	if targets, err = s.PushTargets(ctx, attempts[:1]); err != nil || !sameSet(deviceIDs(targets)[0], a2.ID) {
		t.Fatalf("m1's retry targets %v (%v), want only %s", deviceIDs(targets), err, a2.ID)
	}
	again := []store.PushRecord{
		{PushAttempt: attempts[0], Deliveries: []domain.PushDelivery{del(a1, domain.DeliveryFailed), del(a2, domain.DeliverySent)}},
		{PushAttempt: store.PushAttempt{TenantID: a, MessageID: m4, RecipientID: "u_2"}, Deliveries: []domain.PushDelivery{del(a3, domain.DeliveryRemoved), del(a4, domain.DeliveryRemoved)}},
		{PushAttempt: store.PushAttempt{TenantID: a, MessageID: m6, RecipientID: "u_2"}, Deliveries: []domain.PushDelivery{del(a4, domain.DeliveryRemoved)}},
	}
	if all, err = s.RecordPushDeliveries(ctx, again); err != nil {
		t.Fatal(err)
	}
	if got := statuses(all); got[0][a1.ID] != "sent" || got[0][a2.ID] != "sent" || got[1][a3.ID] != "removed" || got[1][a4.ID] != "removed" || got[2][a4.ID] != "removed" {
		t.Fatalf("deliveries after the retry: %v", got)
	}
	for _, d := range []domain.Device{a3, a4} {
		var events int
		if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM communication.account_events WHERE tenant_id = $1 AND subject = $2`, a, d.ID).Scan(&events); err != nil || events != 1 {
			t.Fatalf("%d comms.device.removed events for %s (%v), want 1", events, d.ID, err)
		}
	}
	if targets, err = s.PushTargets(ctx, []store.PushAttempt{{a, ids.NewSortable(ids.Message), "u_2"}}); err != nil || len(targets[0]) != 0 {
		t.Fatalf("a removed device is still a target: %v (%v)", deviceIDs(targets), err)
	}

	m5 := store.PushAttempt{TenantID: b, MessageID: ids.NewSortable(ids.Message), RecipientID: "u_1"}
	dup := []store.PushRecord{{PushAttempt: m5, Deliveries: []domain.PushDelivery{del(b1, domain.DeliveryRetrying)}},
		{PushAttempt: m5, Deliveries: []domain.PushDelivery{del(b1, domain.DeliverySent)}}}
	if _, err := s.RecordPushDeliveries(ctx, dup); !db.RowError(err) {
		t.Fatalf("two attempts of one message in a batch: %v, want a row error for the batcher to isolate", err)
	}
}

func deviceIDs(lists [][]domain.Device) [][]string {
	out := make([][]string, len(lists))
	for i, l := range lists {
		for _, d := range l {
			out[i] = append(out[i], d.ID)
		}
	}
	return out
}

func statuses(lists [][]domain.PushDelivery) []map[string]string {
	out := make([]map[string]string, len(lists))
	for i, l := range lists {
		out[i] = map[string]string{}
		for _, d := range l {
			out[i][d.DeviceID] = d.Status
		}
	}
	return out
}

func sameSet(got []string, want ...string) bool {
	if len(got) != len(want) {
		return false
	}
	seen := map[string]bool{}
	for _, g := range got {
		seen[g] = true
	}
	for _, w := range want {
		if !seen[w] {
			return false
		}
	}
	return true
}
