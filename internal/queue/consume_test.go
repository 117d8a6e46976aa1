package queue

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A broker that answers fetches late (loaded, or far away) is waited for: the consumer reads
// every record and keeps its connection, where a fetch deadline with too little slack for the
// round trip closed the connection and dialled again on every fetch, and read nothing.
func TestAConsumerWaitsForABrokerThatAnswersLate(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, TopicSend))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const late = 200 * time.Millisecond
	var fetches, listOffsets atomic.Int64
	c.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		fetches.Add(1)
		c.SleepControl(func() { time.Sleep(late) })
		return nil, nil, false
	})
	// A reader lists its partition's offsets each time it connects, and only then.
	c.ControlKey(int16(kmsg.ListOffsets), func(kmsg.Request) (kmsg.Response, error, bool) {
		listOffsets.Add(1)
		return nil, nil, false
	})

	ctx := context.Background()
	p := NewProducer(c.ListenAddrs(), TopicSend)
	defer p.Close()
	const records = 20
	for i := range records {
		if err := p.PublishRaw(ctx, Message{Key: []byte("ten_a"), Value: fmt.Appendf(nil, "record %d", i)}); err != nil {
			t.Fatal(err)
		}
	}

	cctx, stop := context.WithCancel(ctx)
	defer stop()
	var got atomic.Int64
	all := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Consume(cctx, ConsumerConfig{Brokers: c.ListenAddrs(), Group: "late-broker", Topic: TopicSend,
			InFlight: records, Log: slog.Default()}, func(_ context.Context, d *Delivery) {
			d.Finish(true)
			if got.Add(1) == records {
				close(all)
			}
		})
	}()
	select {
	case <-all:
	case <-time.After(60 * time.Second):
		t.Fatalf("%d of %d records read in a minute, over %d fetches and %d offset listings (reconnections)",
			got.Load(), records, fetches.Load(), listOffsets.Load())
	}
	// Three more fetches, each answered late, on the same connection.
	connected, after := listOffsets.Load(), fetches.Load()
	for deadline := time.Now().Add(time.Minute); fetches.Load() < after+3; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d fetches in a minute after the records were read", fetches.Load()-after)
		}
	}
	if n := listOffsets.Load(); n != connected {
		t.Fatalf("the reader connected again %d times over 3 late fetches", n-connected)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
