package stacktest

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/logicspike/comms/internal/queue"
)

// whereStuck tells where unfinished messages wait, so that a failure can be read from its log:
// never published (the outbox row's published_at is empty), published but not consumed (the
// group's lag on comms.send), or consumed and then held (attempts, the last update).
func (s *Stack) whereStuck() string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var b strings.Builder
	rows, err := s.Pool.Query(ctx, `
		SELECT m.id, m.status, m.attempts, m.updated_at, q.message_id IS NOT NULL, q.published_at
		FROM communication.message_logs m LEFT JOIN communication.dispatch_queue q ON q.message_id = m.id
		WHERE m.status IN ('scheduled', 'queued', 'sending') ORDER BY m.updated_at LIMIT 5`)
	if err != nil {
		return fmt.Sprintf("unfinished messages: %v", err)
	}
	for rows.Next() {
		var (
			id, st    string
			attempts  int
			updated   time.Time
			inOutbox  bool
			published *time.Time
		)
		if err := rows.Scan(&id, &st, &attempts, &updated, &inOutbox, &published); err != nil {
			return fmt.Sprintf("unfinished messages: %v", err)
		}
		fmt.Fprintf(&b, "%s: %s, %d attempts, updated %s ago, in the outbox %t, published %v\n",
			id, st, attempts, time.Since(updated).Round(time.Millisecond), inOutbox, published)
	}
	if err := rows.Err(); err != nil {
		return fmt.Sprintf("unfinished messages: %v", err)
	}
	if lag, err := queue.GroupLag(ctx, s.Brokers, s.groupID, queue.TopicSend); err != nil {
		fmt.Fprintf(&b, "workers' lag on %s: %v\n", queue.TopicSend, err)
	} else {
		fmt.Fprintf(&b, "workers' lag on %s: %d\n", queue.TopicSend, lag)
	}
	parts := make([]int, s.parts)
	for i := range parts {
		parts[i] = i
	}
	if c, err := queue.Committed(ctx, s.Brokers, s.groupID, queue.TopicSend, parts...); err != nil {
		fmt.Fprintf(&b, "%v\n", err)
	} else {
		fmt.Fprintf(&b, "workers' committed offsets on %s by partition: %v\n", queue.TopicSend, c)
	}
	for _, group := range []string{s.groupID, s.groupID + "-retrier"} {
		if desc, err := queue.DescribeGroup(ctx, s.Brokers, group); err != nil {
			fmt.Fprintf(&b, "%v\n", err)
		} else {
			fmt.Fprintf(&b, "%s\n", desc)
		}
	}
	for _, tier := range queue.RetryTiers {
		topic := queue.TierTopic(tier)
		if lag, err := queue.GroupLag(ctx, s.Brokers, s.groupID+"-retrier", topic); err == nil && lag > 0 {
			fmt.Fprintf(&b, "retriers' lag on %s: %d\n", topic, lag)
		}
	}
	return b.String()
}
