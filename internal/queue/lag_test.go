package queue

import (
	"context"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/testing/testenv"
)

// GroupLag counts what the broker holds beyond the group's commits, over every partition.
func TestGroupLagFollowsCommits(t *testing.T) {
	t.Parallel()
	brokers := testenv.Kafka(t, 3, TopicSend)
	ctx := context.Background()
	p := NewProducer(brokers, TopicSend)
	defer p.Close()
	for i := range 10 {
		env := Envelope{MessageID: "msg_" + string(rune('a'+i)), TenantID: "ten_" + string(rune('a'+i%4)), Channel: "sms", Attempt: 1, EnqueuedAt: time.Now()}
		if err := p.Publish(ctx, env); err != nil {
			t.Fatal(err)
		}
	}
	lag, err := GroupLag(ctx, brokers, "lag-test", TopicSend)
	if err != nil || lag != 10 {
		t.Fatalf("before any commit: lag %d, %v; want 10", lag, err)
	}
	r := newReader(brokers, "lag-test", TopicSend)
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
	lag, err = GroupLag(ctx, brokers, "lag-test", TopicSend)
	if err != nil || lag != 6 {
		t.Fatalf("after committing 4: lag %d, %v; want 6", lag, err)
	}
}
