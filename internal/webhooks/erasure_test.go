package webhooks_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/queue"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/internal/webhooks"
	"github.com/logicspike/comms/pkg/event"
	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/message"
)

// An event published before its person's erasure finished can reach the deliverer after the
// eraser has passed its message (a backlog on comms.events): its delivery is stored without the
// address. An event published after it names a message made after it (the person is a recipient
// again) and is kept, as is another person's.
func TestADeliveryOfAnErasedPersonsEventIsStoredWithoutTheAddress(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	tenant, key := s.Tenant()
	rcv := newReceiver(t)
	rcv.trust(createEndpoint(t, s, key, webhooks.Input{URL: rcv.URL}).Secret)
	ctx := context.Background()
	prod := queue.NewProducer(s.Brokers, queue.TopicEvents)
	defer prod.Close()
	publish := func(id, channel, to string) {
		t.Helper()
		msgID := ids.NewSortable(ids.Message)
		b, _ := json.Marshal(event.Event{SpecVersion: "1.0", ID: id, Source: event.Source(tenant), Type: event.Failed, Subject: msgID,
			Time: time.Now(), DataContentType: "application/json", Data: event.Data{TenantID: tenant, MessageID: msgID, Channel: channel,
				Recipient: to, Status: "failed", Error: &event.Error{Message: "unreachable: " + to}}})
		if err := prod.PublishRaw(ctx, queue.Message{Key: []byte(tenant), Value: b}); err != nil {
			t.Fatal(err)
		}
	}

	// Published while no deliverer runs: the backlog the erasures below finish behind.
	publish("evt_before", "sms", "+14155550101")
	publish("evt_running", "sms", "+14155550102")
	publish("evt_other", "sms", "+14155550103")
	publish("evt_mail", "email", "Ann <ANN@Example.com>")
	if _, _, err := s.Store.CreateErasure(ctx, "era_done", tenant, message.SMS, "+14155550101"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Store.CreateErasure(ctx, "era_mail", tenant, message.Email, "ann@example.com"); err != nil {
		t.Fatal(err)
	}
	for found := true; found; {
		var err error
		if _, found, err = s.Store.EraseNext(ctx, 100); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.Store.CreateErasure(ctx, "era_running", tenant, message.SMS, "+14155550102"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // clearly after the erasure finished
	publish("evt_after", "sms", "+14155550101")
	s.StartDeliverer(webhooks.Config{})

	erased := map[string]bool{"evt_before": true, "evt_running": true, "evt_mail": true, "evt_other": false, "evt_after": false}
	waitFor(t, "the deliveries recorded", func() bool {
		var n int
		err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM communication.webhook_deliveries WHERE tenant_id = $1 AND status = 'succeeded'`, tenant).Scan(&n)
		return err == nil && n == len(erased)
	})
	for id, want := range erased {
		var body []byte
		if err := s.Pool.QueryRow(ctx, `SELECT payload FROM communication.webhook_deliveries WHERE tenant_id = $1 AND event_id = $2`,
			tenant, id).Scan(&body); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		var e event.Event
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("%s: stored body is not an event: %v (%s)", id, err, body)
		}
		ch := message.Channel(e.Data.Channel)
		switch {
		case want && (e.Data.Recipient != "" || e.Data.MessageID == "" || !strings.HasPrefix(e.Data.Error.Message, "unreachable: ") ||
			strings.Contains(strings.ToLower(string(body)), "14155550101") || strings.Contains(strings.ToLower(string(body)), "ann@example.com") ||
			strings.Contains(string(body), "14155550102")):
			t.Errorf("%s: stored with the erased address, or without its shape: %s", id, body)
		case !want && (e.Data.Recipient == "" || !strings.Contains(e.Data.Error.Message, message.RecipientKey(ch, e.Data.Recipient))):
			t.Errorf("%s: stored without the address of a person not erased: %s", id, body)
		}
	}
}
