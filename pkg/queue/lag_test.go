package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/testenv"
	"github.com/logicspike/comms/pkg/queue"
)

// GroupLag counts what the broker holds beyond the group's commits, over every partition.
func TestGroupLagFollowsCommits(t *testing.T) {
	t.Parallel()
	brokers := testenv.Kafka(t, 3, queue.TopicSend)
	ctx := context.Background()
	p := queue.NewProducer(brokers, queue.TopicSend)
	defer p.Close()
	for i := range 10 {
		env := queue.Envelope{MessageID: "msg_" + string(rune('a'+i)), TenantID: "ten_" + string(rune('a'+i%4)), Channel: "sms", Attempt: 1, EnqueuedAt: time.Now()}
		if err := p.Publish(ctx, env); err != nil {
			t.Fatal(err)
		}
	}
	lag, err := queue.GroupLag(ctx, brokers, "lag-test", queue.TopicSend)
	if err != nil || lag != 10 {
		t.Fatalf("before any commit: lag %d, %v; want 10", lag, err)
	}
	r := queue.NewConsumer(brokers, "lag-test", queue.TopicSend)
	defer r.Close()
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for range 4 {
		m, err := r.FetchMessage(fctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.CommitMessages(fctx, m); err != nil {
			t.Fatal(err)
		}
	}
	lag, err = queue.GroupLag(ctx, brokers, "lag-test", queue.TopicSend)
	if err != nil || lag != 6 {
		t.Fatalf("after committing 4: lag %d, %v; want 6", lag, err)
	}
}
