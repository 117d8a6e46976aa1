package queue

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/logicspike/comms/internal/platform/retry"
)

// Message is a fetched record.
type Message struct {
	Topic      string
	Partition  int
	Offset     int64
	Key, Value []byte
	Headers    []Header
	Time       time.Time // the record's timestamp, as its producer set it
}

// Header is a record header.
type Header struct {
	Key   string
	Value []byte
}

// ConsumerConfig says what Consume reads and how.
type ConsumerConfig struct {
	Brokers []string
	Group   string
	Topic   string
	// InFlight bounds the deliveries not yet finished (or released, Delivery.Release).
	InFlight int
	// CommitInterval is how often finished offsets are committed (default 200 ms).
	CommitInterval time.Duration
	// DrainTimeout is how long unfinished deliveries may still finish once ctx ends; then the
	// handlers' context is cancelled (phase two) and Consume waits for them to finish.
	DrainTimeout time.Duration
	Log          *slog.Logger
}

// ErrKilled, as the cause that ends Consume's context (context.WithCancelCause), stops the
// consumption as a killed process would: the handlers' context is cancelled at once, nothing more
// is committed and the reader is closed. Crash tests kill a process so; nothing else does.
var ErrKilled = errors.New("process killed")

// Delivery is a fetched message being processed. Its handler finishes it exactly once.
type Delivery struct {
	Message
	c        *consumption
	released sync.Once
	finished sync.Once
}

// Release gives the delivery's in-flight slot back before it is finished: it is waiting for
// something else (a provider's bulkhead, its due time) and should not keep others from being
// fetched.
func (d *Delivery) Release() { d.released.Do(func() { <-d.c.slots }) }

// Finish ends the delivery. With commit, its offset may be committed once every offset fetched
// before it on its partition is too; without, it is fetched again after a restart or rebalance.
func (d *Delivery) Finish(commit bool) {
	d.finished.Do(func() {
		if commit {
			d.c.tracker.Done(topicPartition{Topic: d.Topic, Partition: d.Partition}, d.Offset)
		}
		d.Release()
		d.c.unfinished.Done()
	})
}

type consumption struct {
	slots      chan struct{}
	tracker    *offsetTracker
	unfinished sync.WaitGroup
}

// Consume reads cfg.Topic in consumer group cfg.Group until ctx ends, handing each message to
// handle. It is the one consumer loop: it bounds the unfinished deliveries to cfg.InFlight,
// commits each partition's offsets only below its lowest unfinished message (processing is
// concurrent, and committing past an unfinished message would lose it in a crash), and shuts down
// in two phases: when ctx ends it stops fetching and waits up to cfg.DrainTimeout for unfinished
// deliveries, then cancels the handlers' context and waits for them; it commits what finished
// and closes the reader.
//
// handle runs on the fetch loop and must not block: it finishes the delivery itself or hands it
// on (to a goroutine, a wait list). Its ctx is the handlers' context.
func Consume(ctx context.Context, cfg ConsumerConfig, handle func(ctx context.Context, d *Delivery)) error {
	if cfg.CommitInterval <= 0 {
		cfg.CommitInterval = 200 * time.Millisecond
	}
	reader := newReader(cfg.Brokers, cfg.Group, cfg.Topic)
	c := &consumption{slots: make(chan struct{}, max(1, cfg.InFlight)), tracker: newOffsetTracker()}
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	abandoned := func() bool { return errors.Is(context.Cause(ctx), ErrKilled) }
	fetchCtx, stopFetch := context.WithCancel(ctx)
	defer stopFetch()
	go func() {
		select {
		case <-ctx.Done():
			if abandoned() {
				stopWork()
			}
		case <-workCtx.Done():
		}
	}()

	committerDone := make(chan struct{})
	go func() {
		defer close(committerDone)
		t := time.NewTicker(cfg.CommitInterval)
		defer t.Stop()
		for {
			select {
			case <-workCtx.Done():
				return
			case <-t.C:
				if !abandoned() {
					commit(workCtx, reader, c.tracker, cfg.Log)
				}
			}
		}
	}()

	fetchBackoff := retry.Backoff()
	for {
		select {
		case c.slots <- struct{}{}:
		case <-fetchCtx.Done():
		}
		if fetchCtx.Err() != nil {
			break
		}
		m, err := reader.FetchMessage(fetchCtx)
		if err != nil {
			<-c.slots
			if fetchCtx.Err() != nil {
				break
			}
			d := fetchBackoff.NextBackOff()
			cfg.Log.Error("fetch failed", "topic", cfg.Topic, "err", err, "retry_in", d)
			sleep(fetchCtx, d)
			continue
		}
		fetchBackoff.Reset()
		c.tracker.Add(topicPartition{Topic: m.Topic, Partition: m.Partition}, m.Offset)
		c.unfinished.Add(1)
		handle(workCtx, &Delivery{Message: fromKafka(m), c: c})
	}

	// Phase one: let unfinished deliveries finish. Phase two: cancel them.
	drained := make(chan struct{})
	go func() { c.unfinished.Wait(); close(drained) }()
	if abandoned() {
		stopWork()
	}
	select {
	case <-drained:
	case <-time.After(cfg.DrainTimeout):
		if n := c.tracker.InFlight(); n > 0 {
			cfg.Log.Warn("drain timeout: cancelling unfinished deliveries", "topic", cfg.Topic, "unfinished", n)
		}
		stopWork()
		<-drained
	}
	stopWork()
	<-committerDone
	if !abandoned() {
		final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		commit(final, reader, c.tracker, cfg.Log)
		cancel()
	}
	return reader.Close()
}

func commit(ctx context.Context, reader *kafka.Reader, tracker *offsetTracker, log *slog.Logger) {
	offsets := tracker.Committable()
	if len(offsets) == 0 {
		return
	}
	msgs := make([]kafka.Message, 0, len(offsets))
	for tp, off := range offsets {
		msgs = append(msgs, kafka.Message{Topic: tp.Topic, Partition: tp.Partition, Offset: off})
	}
	if err := reader.CommitMessages(ctx, msgs...); err != nil {
		// The next commit (the shutdown's, at the latest) carries these offsets again.
		tracker.Failed(offsets)
		if ctx.Err() == nil {
			log.Warn("commit offsets failed", "err", err)
		}
	}
}

func fromKafka(m kafka.Message) Message {
	hs := make([]Header, len(m.Headers))
	for i, h := range m.Headers {
		hs[i] = Header{Key: h.Key, Value: h.Value}
	}
	return Message{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value, Headers: hs, Time: m.Time}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
