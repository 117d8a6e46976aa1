// Package queue carries send intents over Kafka: the envelope format, a batching producer with
// acks=all, topic creation, and a consumer-side offset tracker that never commits past an
// unfinished message.
package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/logicspike/comms/pkg/message"
)

// Topics: the bare names, after the prefix Configure sets (Settings.TopicPrefix).
var (
	TopicSend   = baseSend
	TopicDLQ    = baseDLQ
	TopicEvents = baseEvents
)

// RetryTiers are the delays of the retry topics, comms.send.retry.<tier>. A waiting intent goes
// to the longest tier not beyond its delay, so the intents of one tier become due at about the
// same pace and never hold up a shorter wait.
var RetryTiers = []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute, time.Hour}

// RetryTopic names the tier topic for a wait of d.
func RetryTopic(d time.Duration) string {
	tier := RetryTiers[0]
	for _, t := range RetryTiers {
		if t <= d {
			tier = t
		}
	}
	return TierTopic(tier)
}

// TierTopic names the topic of one tier: comms.send.retry.5s, .30s, .2m, .10m, .1h.
func TierTopic(tier time.Duration) string {
	var s string
	switch {
	case tier%time.Hour == 0:
		s = strconv.Itoa(int(tier/time.Hour)) + "h"
	case tier%time.Minute == 0:
		s = strconv.Itoa(int(tier/time.Minute)) + "m"
	default:
		s = strconv.Itoa(int(tier/time.Second)) + "s"
	}
	return TopicSend + ".retry." + s
}

// AllTopics is every topic the service uses.
func AllTopics() []string {
	out := []string{TopicSend, TopicDLQ, TopicEvents}
	for _, t := range RetryTiers {
		out = append(out, TierTopic(t))
	}
	return out
}

// Envelope is a send intent on comms.send. It carries identifiers only: the message content is
// read from PostgreSQL when the intent is claimed, so the topic never holds personal data.
type Envelope struct {
	MessageID  string          `json:"message_id"`
	TenantID   string          `json:"tenant_id"`
	Channel    message.Channel `json:"channel"`
	Attempt    int             `json:"attempt"`
	EnqueuedAt time.Time       `json:"enqueued_at"`
	// NotBefore is a retry's time: a worker that receives the intent earlier puts it back on a
	// retry topic instead of attempting it.
	NotBefore time.Time `json:"not_before,omitzero"`
	// TraceParent is the message's W3C trace context; it travels in the record's traceparent
	// header, not in the body, so that any Kafka instrumentation can read it.
	TraceParent string `json:"-"`
	// Category (transactional, marketing or a tenant's own) lets a worker know the message's routes before it
	// claims it; empty in intents from before it existed and from the sweeper.
	Category message.Category `json:"category,omitempty"`
	// Parks counts how often workers deferred this intent unclaimed because every route was
	// refusing sends (an open breaker, a full bulkhead); bounded by the worker's MaxParks.
	Parks int `json:"parks,omitempty"`
	// Parked is true while this intent waits as a park (deferred unclaimed, its message queued
	// and due), false while it waits out a retry's backoff. Only a parked intent may be made due
	// early when its provider recovers: a retry's claim would refuse it before its time.
	Parked bool `json:"parked,omitempty"`
}

// Validate reports what is wrong with an envelope decoded from the wire.
func (e Envelope) Validate() error {
	switch {
	case e.MessageID == "":
		return errors.New("envelope has no message_id")
	case e.TenantID == "":
		return errors.New("envelope has no tenant_id")
	}
	return nil
}

// Decode parses an envelope from a Kafka message value.
func Decode(b []byte) (Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(b, &e); err != nil {
		return Envelope{}, fmt.Errorf("decode envelope: %w", err)
	}
	return e, e.Validate()
}

// DecodeMessage parses an envelope from a fetched record, its trace context included.
func DecodeMessage(m Message) (Envelope, error) {
	e, err := Decode(m.Value)
	e.TraceParent = m.Header(TraceParentHeader)
	return e, err
}

// TraceParentHeader is the record header carrying the W3C trace context.
const TraceParentHeader = "traceparent"

// Header returns the value of the record header key ("" when absent).
func (m Message) Header(key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// Producer writes envelopes keyed by tenant, so one tenant's intents share a partition.
type Producer struct {
	w *kafka.Writer
}

// NewProducer returns a producer to topic. Writes wait for every in-sync replica (acks=all).
func NewProducer(brokers []string, topic string) *Producer {
	_, t := current()
	return &Producer{w: &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Transport:    t,
		Topic:        topic,
		Balancer:     &kafka.Murmur2Balancer{}, // the Java client's partitioner, so other producers agree
		RequiredAcks: kafka.RequireAll,
		// Callers hand over whole batches, so a short timeout only bounds how long a partial
		// batch waits for company.
		BatchTimeout: 2 * time.Millisecond,
		// kafka-go allocates a BatchSize-long []Message (152 bytes each) for every partition
		// batch it starts, however few messages the batch ends up holding, and at moderate rates
		// most batches hold one, so a large BatchSize is mostly allocation. A full batch is queued
		// at once and the next one starts, and a partition's batches go out back to back, so 32
		// still allows thousands a second per partition.
		BatchSize:    32,
		BatchBytes:   4 << 20,
		WriteTimeout: 10 * time.Second,
		ErrorLogger:  errorLogger(),
	}}
}

// Publish writes envelopes and returns once the broker acknowledged all of them.
func (p *Producer) Publish(ctx context.Context, envs ...Envelope) error {
	msgs := make([]kafka.Message, len(envs))
	for i, e := range envs {
		var err error
		if msgs[i], err = encode("", e); err != nil {
			return err
		}
	}
	return p.write(ctx, msgs)
}

// Routed is an envelope with the topic it goes to.
type Routed struct {
	Topic    string
	Envelope Envelope
}

// PublishRouted writes each envelope to its own topic in one produce call; the producer must have
// been made with no topic.
func (p *Producer) PublishRouted(ctx context.Context, rs ...Routed) error {
	msgs := make([]kafka.Message, len(rs))
	for i, r := range rs {
		var err error
		if msgs[i], err = encode(r.Topic, r.Envelope); err != nil {
			return err
		}
	}
	return p.write(ctx, msgs)
}

// encode makes e a Kafka message keyed by tenant; topic "" leaves it to the producer's own.
func encode(topic string, e Envelope) (kafka.Message, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("encode envelope %s: %w", e.MessageID, err)
	}
	m := kafka.Message{Topic: topic, Key: []byte(e.TenantID), Value: b}
	if e.TraceParent != "" {
		m.Headers = []kafka.Header{{Key: TraceParentHeader, Value: []byte(e.TraceParent)}}
	}
	return m, nil
}

// PublishRaw writes already-encoded messages (the DLQ keeps the original bytes).
func (p *Producer) PublishRaw(ctx context.Context, msgs ...Message) error {
	if len(msgs) == 0 {
		return nil
	}
	out := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		hs := make([]kafka.Header, len(m.Headers))
		for j, h := range m.Headers {
			hs[j] = kafka.Header{Key: h.Key, Value: h.Value}
		}
		out[i] = kafka.Message{Topic: m.Topic, Key: m.Key, Value: m.Value, Headers: hs}
	}
	return p.write(ctx, out)
}

func (p *Producer) write(ctx context.Context, msgs []kafka.Message) error {
	if err := p.w.WriteMessages(ctx, msgs...); err != nil {
		topic := p.w.Topic
		if topic == "" {
			topic = msgs[0].Topic
		}
		return fmt.Errorf("produce %d messages to %s: %w", len(msgs), topic, err)
	}
	return nil
}

// Close flushes and closes the producer.
func (p *Producer) Close() error { return p.w.Close() }

// EnsureTopics creates topics that do not exist yet, with the given partitions and replication.
func EnsureTopics(ctx context.Context, brokers []string, partitions, replication int, topics ...string) error {
	conn, err := dialer().DialContext(ctx, "tcp", brokers[0])
	if err != nil {
		return fmt.Errorf("dial kafka %s: %w", brokers[0], err)
	}
	defer conn.Close()
	controller, err := conn.Controller()
	if err != nil {
		return fmt.Errorf("find kafka controller: %w", err)
	}
	cc, err := dialer().DialContext(ctx, "tcp",
		net.JoinHostPort(controller.Host, strconv.Itoa(controller.Port)))
	if err != nil {
		return fmt.Errorf("dial kafka controller: %w", err)
	}
	defer cc.Close()
	for _, t := range topics {
		err := cc.CreateTopics(kafka.TopicConfig{Topic: t, NumPartitions: partitions, ReplicationFactor: replication})
		if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", t, err)
		}
	}
	return nil
}

// newReader returns a consumer-group reader of topics. Offsets are committed only by explicit
// CommitMessages calls (CommitInterval 0), which Consume makes for finished messages only.
func newReader(brokers []string, group string, topics ...string) *kafka.Reader {
	return kafka.NewReader(kafka.ReaderConfig{
		Brokers:           brokers,
		Dialer:            dialer(),
		GroupID:           group,
		GroupTopics:       topics,
		StartOffset:       kafka.FirstOffset,
		MinBytes:          1,
		MaxBytes:          16 << 20,
		MaxWait:           fetchWait,
		ReadBatchTimeout:  time.Second,
		QueueCapacity:     4096,
		HeartbeatInterval: time.Second,
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  10 * time.Second,
		ReadBackoffMin:    10 * time.Millisecond,
		ReadBackoffMax:    500 * time.Millisecond,
		ErrorLogger:       errorLogger(),
	})
}

// fetchWait is how long a fetch waits on the broker for a record. It does not delay a record:
// the broker answers as soon as one arrives. kafka-go uses it as the socket's deadline too and
// asks the broker to answer a second before it (a quarter of it below a second), so the second
// is the slack for the round trip. A shorter wait leaves little: at 100 ms it is 25 ms, which a
// loaded broker or host misses thousands of times a minute, and each miss closes the connection
// and dials again, a churn that leaves partitions unread for minutes
// (TestAConsumerWaitsForABrokerThatAnswersLate). Stopping a reader or a rebalance waits for the
// outstanding fetch, up to this long.
const fetchWait = 2 * time.Second

// GroupLag is how many messages of topic the consumer group has yet to commit: over every
// partition, the high watermark minus the group's committed offset (or minus the first offset
// still on the broker, where the group has committed nothing), as the broker reports them.
func GroupLag(ctx context.Context, brokers []string, group, topic string) (int64, error) {
	c := client(brokers)
	meta, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, fmt.Errorf("lag of %s on %s: metadata: %w", group, topic, err)
	}
	var parts []int
	for _, t := range meta.Topics {
		if t.Name == topic {
			if t.Error != nil {
				return 0, fmt.Errorf("lag of %s on %s: metadata: %w", group, topic, t.Error)
			}
			for _, p := range t.Partitions {
				parts = append(parts, p.ID)
			}
		}
	}
	if len(parts) == 0 {
		return 0, fmt.Errorf("lag of %s on %s: the topic has no partitions", group, topic)
	}
	reqs := make([]kafka.OffsetRequest, 0, 2*len(parts))
	for _, p := range parts {
		reqs = append(reqs, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	offs, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return 0, fmt.Errorf("lag of %s on %s: list offsets: %w", group, topic, err)
	}
	committed, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		return 0, fmt.Errorf("lag of %s on %s: committed offsets: %w", group, topic, err)
	}
	done := map[int]int64{}
	for _, p := range committed.Topics[topic] {
		if p.Error != nil {
			return 0, fmt.Errorf("lag of %s on %s: committed offset of partition %d: %w", group, topic, p.Partition, p.Error)
		}
		done[p.Partition] = p.CommittedOffset
	}
	var lag int64
	for _, p := range offs.Topics[topic] {
		if p.Error != nil {
			return 0, fmt.Errorf("lag of %s on %s: offsets of partition %d: %w", group, topic, p.Partition, p.Error)
		}
		from := max(done[p.Partition], p.FirstOffset) // -1: nothing committed
		lag += max(0, p.LastOffset-from)
	}
	return lag, nil
}
