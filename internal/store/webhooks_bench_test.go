package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/testing/testenv"
	"github.com/logicspike/comms/pkg/event"
	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/message"
)

// BenchmarkRecordWebhookOutcomes: the deliverer's write of new deliveries, in batches of 500 as
// its batcher sends them, each an event naming a recipient, for a tenant that has erased 100
// other people before: outcomes/s. With an erasure of another of its people running, each
// delivery is looked up among the erasures that can matter.
func BenchmarkRecordWebhookOutcomes(b *testing.B) {
	for _, running := range []bool{false, true} {
		b.Run(fmt.Sprintf("erasure_running=%v", running), func(b *testing.B) { benchmarkRecordWebhookOutcomes(b, running) })
	}
}

func benchmarkRecordWebhookOutcomes(b *testing.B, running bool) {
	ctx := context.Background()
	s := store.New(testenv.DB(b))
	ten := tenant(b, s)
	ep := endpoint(b, s, ten)
	for i := range 100 {
		if _, _, err := s.CreateErasure(ctx, ids.New("era"), ten, message.SMS, fmt.Sprintf("+1415666%04d", i)); err != nil {
			b.Fatal(err)
		}
		if _, _, err := s.EraseNext(ctx, 1000); err != nil {
			b.Fatal(err)
		}
	}
	if running {
		if _, _, err := s.CreateErasure(ctx, ids.New("era"), ten, message.SMS, "+14156669999"); err != nil {
			b.Fatal(err)
		}
	}
	const batch = 500
	outs := make([]store.WebhookOutcome, 0, batch)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		now := time.Now()
		msgID := ids.NewSortableAt(ids.Message, now)
		body, _ := json.Marshal(event.Event{SpecVersion: "1.0", ID: fmt.Sprintf("evt_%d", i), Source: event.Source(ten), Type: event.Sent,
			Subject: msgID, Time: now, DataContentType: "application/json",
			Data: event.Data{TenantID: ten, MessageID: msgID, Channel: "sms", Recipient: fmt.Sprintf("+1415555%04d", i%10000), Status: "sent"}})
		outs = append(outs, store.WebhookOutcome{At: now.Truncate(time.Microsecond), AttemptsAdded: 1,
			Delivery: domain.WebhookDelivery{EndpointID: ep, TenantID: ten, EventID: fmt.Sprintf("evt_%d", i), EventType: event.Sent,
				Payload: body, Status: "succeeded", RoundAttempts: 1},
			Attempt: &domain.WebhookAttempt{At: now, StatusCode: 204, LatencyMS: 3},
			Named:   store.EventAddress{Channel: message.SMS, Recipient: fmt.Sprintf("+1415555%04d", i%10000), Published: now}})
		if len(outs) == batch || i == b.N-1 {
			if err := s.RecordWebhookOutcomes(ctx, outs); err != nil {
				b.Fatal(err)
			}
			outs = outs[:0]
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "outcomes/s")
}
