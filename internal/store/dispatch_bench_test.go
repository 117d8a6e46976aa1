package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/testing/testenv"
	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/message"
)

// BenchmarkClaimAndFinish: a worker's two statements for each batch of intents, the claim and the
// outcome (sent), on batches of 32 messages of 4 tenants, on one connection at a time, with the 15
// weeks of partitions of a 90-day history: messages/s. The messages are recorded and marked
// published before the timer starts.
func BenchmarkClaimAndFinish(b *testing.B) {
	ctx := context.Background()
	s := store.New(testenv.DB(b))
	now := time.Now()
	if _, err := s.CreatePartitions(ctx, now.AddDate(0, 0, -90), now.AddDate(0, 0, 14)); err != nil {
		b.Fatal(err)
	}
	tenants := []string{tenant(b, s), tenant(b, s), tenant(b, s), tenant(b, s)}
	const batch = 32
	batches := make([][]store.Ref, b.N)
	for i := range batches {
		msgs := make([]store.NewMessage, batch)
		for j := range msgs {
			msgs[j] = store.NewMessage{ID: ids.NewSortable(ids.Message), TenantID: tenants[j%len(tenants)], Request: sms(fmt.Sprintf("+1415555%04d", (i*batch+j)%10000))}
		}
		ins, err := testenv.Record(ctx, s, msgs...)
		if err != nil {
			b.Fatal(err)
		}
		for j, in := range ins {
			batches[i] = append(batches[i], store.Ref{TenantID: msgs[j].TenantID, ID: in.ID})
		}
		if err := s.MarkPublished(ctx, batches[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := time.Now()
	for _, refs := range batches {
		claimed, err := s.ClaimMessages(ctx, refs, time.Minute)
		if err != nil || len(claimed) != len(refs) {
			b.Fatalf("claimed %d of %d: %v", len(claimed), len(refs), err)
		}
		got, err := s.FinishAttempts(ctx, func(tx *store.OutcomeTx) error {
			for _, c := range claimed {
				o := store.Outcome{Ref: store.Ref{TenantID: c.TenantID, ID: c.ID}, Attempt: c.Attempt, Status: message.Sent, ProviderType: "sandbox", ProviderMessageID: "sb_" + c.ID}
				tx.Record(o)
				tx.Emit(o.Ref, "sent")
			}
			return nil
		})
		if err != nil || len(got) != len(refs) {
			b.Fatalf("finished %d of %d: %v", len(got), len(refs), err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "messages/s")
}
