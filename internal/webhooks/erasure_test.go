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

// An event published before its person was erased can reach the deliverer after the eraser has
// passed its message (a backlog on comms.events): its delivery is stored without the address. A
// message made after the erasure finished is the person's again, and another person's is kept.
func TestADeliveryOfAnErasedPersonsEventIsStoredWithoutTheAddress(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	s.StartDeliverer(webhooks.Config{})
	tenant, key := s.Tenant()
	rcv := newReceiver(t)
	rcv.trust(createEndpoint(t, s, key, webhooks.Input{URL: rcv.URL}).Secret)
	ctx := context.Background()

	// One person erased (finished), one being erased (running).
	made := time.Now().Add(-time.Minute)
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
	time.Sleep(10 * time.Millisecond) // a message made from here on comes after the erasures
	after := time.Now()
	if _, _, err := s.Store.CreateErasure(ctx, "era_running", tenant, message.SMS, "+14155550102"); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		id, channel, to string
		at              time.Time
		erased          bool
	}{
		{"evt_before", "sms", "+14155550101", made, true},
		{"evt_after", "sms", "+14155550101", after, false},
		{"evt_running", "sms", "+14155550102", made, true},
		{"evt_other", "sms", "+14155550103", made, false},
		{"evt_mail", "email", "Ann <ANN@Example.com>", made, true},
	}
	var msgs []queue.Message
	for _, c := range cases {
		msgID := ids.NewSortableAt(ids.Message, c.at)
		b, _ := json.Marshal(event.Event{SpecVersion: "1.0", ID: c.id, Source: event.Source(tenant), Type: event.Failed, Subject: msgID,
			Time: c.at, DataContentType: "application/json", Data: event.Data{TenantID: tenant, MessageID: msgID, Channel: c.channel,
				Recipient: c.to, Status: "failed", Error: &event.Error{Message: "unreachable: " + c.to}}})
		msgs = append(msgs, queue.Message{Key: []byte(tenant), Value: b})
	}
	prod := queue.NewProducer(s.Brokers, queue.TopicEvents)
	defer prod.Close()
	if err := prod.PublishRaw(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deliveries recorded", func() bool {
		var n int
		err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM communication.webhook_deliveries WHERE tenant_id = $1 AND status = 'succeeded'`, tenant).Scan(&n)
		return err == nil && n == len(cases)
	})
	for _, c := range cases {
		var body []byte
		if err := s.Pool.QueryRow(ctx, `SELECT payload FROM communication.webhook_deliveries WHERE tenant_id = $1 AND event_id = $2`,
			tenant, c.id).Scan(&body); err != nil {
			t.Fatalf("%s: %v", c.id, err)
		}
		var e event.Event
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("%s: stored body is not an event: %v (%s)", c.id, err, body)
		}
		address := message.RecipientKey(message.Channel(c.channel), c.to)
		holds := strings.Contains(strings.ToLower(string(body)), address)
		switch {
		case c.erased && (holds || e.Data.Recipient != "" || e.Data.MessageID == ""):
			t.Errorf("%s: stored with the erased address, or without its shape: %s", c.id, body)
		case !c.erased && (e.Data.Recipient != c.to || !strings.Contains(e.Data.Error.Message, c.to)):
			t.Errorf("%s: stored without the address of a person not erased: %s", c.id, body)
		}
	}
}
