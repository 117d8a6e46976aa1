package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/testing/testenv"
	"github.com/logicspike/comms/pkg/ids"
)

// The outbox's age (comms_event_outbox_oldest_seconds, which the EventOutboxStuck alert reads)
// is the wait of its oldest event, and 0 once every event is published.
func TestEventOutboxAgeIsTheOldestEventsWait(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if age, err := s.GetEventOutboxAge(ctx); err != nil || age != 0 {
		t.Fatalf("empty outbox: age %v, %v; want 0", age, err)
	}
	a := tenant(t, s)
	if _, err := testenv.Record(ctx, s, store.NewMessage{ID: ids.NewSortable(ids.Message), TenantID: a, Request: sms("+14155550100")}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	age, err := s.GetEventOutboxAge(ctx)
	if err != nil || age < 50*time.Millisecond || age > time.Minute {
		t.Fatalf("one queued event 50 ms old: age %v, %v", age, err)
	}
	if _, err := s.PublishEvents(ctx, 100, func(context.Context, []store.OutboxEvent) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if age, err := s.GetEventOutboxAge(ctx); err != nil || age != 0 {
		t.Fatalf("after publishing: age %v, %v; want 0", age, err)
	}
}
