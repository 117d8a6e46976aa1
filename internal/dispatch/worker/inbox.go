package worker

import (
	"context"
	"time"

	"github.com/logicspike/comms/internal/platform/metrics"
	"github.com/logicspike/comms/internal/queue"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/message"
)

// inboxProvider is the provider an in_app message records: comms itself.
const inboxProvider = "inbox"

// toInbox is the outcome of an in_app message's attempt: it needs no provider, and is sent once
// it is in its recipient's inbox, which its row already is (docs/inbox.md).
func toInbox(out outcome) outcome {
	out.Status, out.ProviderType = message.Sent, inboxProvider
	return out
}

// sent counts a message recorded sent and, for an in_app one, tells the open streams of its
// inbox.
func (w *Worker) sent(ctx context.Context, c *store.Claimed, env queue.Envelope, providerType string) {
	metrics.Sent.WithLabelValues(c.TenantID, string(c.Channel), providerType).Inc()
	if env.Attempt == 1 && env.Parks == 0 && !env.EnqueuedAt.IsZero() {
		metrics.AcceptedToSent.WithLabelValues(string(c.Channel)).Observe(max(0, time.Since(env.EnqueuedAt).Seconds()))
	}
	if c.Channel == message.InApp && w.cfg.Inbox != nil {
		w.cfg.Inbox.Arrived(ctx, c.TenantID, c.RecipientID, c.ID)
	}
}
