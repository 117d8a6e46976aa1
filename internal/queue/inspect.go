package queue

import (
	"context"
	"fmt"
	"strings"

	"github.com/segmentio/kafka-go"
)

// Reader reads a topic outside the consume loop, committing nothing: for tools and tests that
// inspect what is on a topic (the DLQ, the intents a retrier released).
type Reader struct{ r *kafka.Reader }

// NewGroupReader reads topic as a member of group, from the group's committed offsets.
func NewGroupReader(brokers []string, group, topic string) *Reader {
	return &Reader{r: newReader(brokers, group, topic)}
}

// NewPartitionReader reads one partition of topic from its first offset, in no group.
func NewPartitionReader(brokers []string, topic string, partition int) *Reader {
	return &Reader{r: kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Dialer: dialer(), Topic: topic, Partition: partition, MaxWait: fetchWait})}
}

// Fetch returns the next record, waiting for one until ctx ends.
func (r *Reader) Fetch(ctx context.Context) (Message, error) {
	m, err := r.r.FetchMessage(ctx)
	if err != nil {
		return Message{}, err
	}
	return fromKafka(m), nil
}

// Close leaves the group, if any, and closes the connections.
func (r *Reader) Close() error { return r.r.Close() }

// Committed returns group's committed offset on each of topic's partitions (-1: nothing
// committed yet).
func Committed(ctx context.Context, brokers []string, group, topic string, partitions ...int) (map[int]int64, error) {
	c := client(brokers)
	resp, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: partitions}})
	if err != nil {
		return nil, fmt.Errorf("committed offsets of %s on %s: %w", group, topic, err)
	}
	out := map[int]int64{}
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("committed offset of %s on %s/%d: %w", group, topic, p.Partition, p.Error)
		}
		out[p.Partition] = p.CommittedOffset
	}
	return out, nil
}

// DescribeGroup tells group's state and each member's assigned partitions, as the broker sees
// them, in one line: what a test prints when a consumer seems not to consume.
func DescribeGroup(ctx context.Context, brokers []string, group string) (string, error) {
	resp, err := client(brokers).DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil {
		return "", fmt.Errorf("describe group %s: %w", group, err)
	}
	var b strings.Builder
	for _, g := range resp.Groups {
		if g.Error != nil {
			return "", fmt.Errorf("describe group %s: %w", group, g.Error)
		}
		fmt.Fprintf(&b, "group %s %s, %d members", g.GroupID, g.GroupState, len(g.Members))
		for _, m := range g.Members {
			fmt.Fprintf(&b, "; %s:", m.MemberID)
			for _, t := range m.MemberAssignments.Topics {
				fmt.Fprintf(&b, " %s%v", t.Topic, t.Partitions)
			}
		}
	}
	return b.String(), nil
}
