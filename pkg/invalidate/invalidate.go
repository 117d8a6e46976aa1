// Package invalidate tells running workers that a tenant's provider configs changed, over Redis
// pub/sub, so a disabled or re-keyed config stops being used at once rather than when the
// route cache expires. Pub/sub is fire-and-forget: a worker that misses a notice (disconnected at
// that moment) still picks the change up when its cache entry expires (COMMS_ROUTE_CACHE_TTL).
package invalidate

import (
	"context"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
)

// Channel is the pub/sub channel's name after the deployment's Redis prefix.
const Channel = "provider-configs-changed"

// systemWide is the payload for a system-default change, which concerns every tenant.
const systemWide = "*"

// Notifier publishes changes.
type Notifier struct {
	rdb     *redis.Client
	channel string
	log     *slog.Logger
}

// NewNotifier publishes on prefix+Channel.
func NewNotifier(rdb *redis.Client, prefix string, log *slog.Logger) *Notifier {
	return &Notifier{rdb: rdb, channel: prefix + Channel, log: log}
}

// Changed announces that tenantID's configs changed; "" means the system defaults did.
func (n *Notifier) Changed(ctx context.Context, tenantID string) {
	if tenantID == "" {
		tenantID = systemWide
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := n.rdb.Publish(ctx, n.channel, tenantID).Err(); err != nil {
		// The change is committed; workers see it when their cache expires.
		n.log.WarnContext(ctx, "could not announce a provider config change; workers pick it up when their route cache expires",
			"tenant_id", tenantID, "err", err)
	}
}

// Listen calls drop with each changed tenant id ("" for all tenants) until ctx ends,
// resubscribing after Redis outages.
func Listen(ctx context.Context, rdb *redis.Client, prefix string, log *slog.Logger, drop func(tenantID string)) {
	for ctx.Err() == nil {
		sub := rdb.Subscribe(ctx, prefix+Channel)
		if _, err := sub.Receive(ctx); err != nil {
			_ = sub.Close()
			if ctx.Err() == nil {
				log.Warn("route invalidation unavailable; relying on the route cache TTL", "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(5 * time.Second):
				}
			}
			continue
		}
		// Anything may have changed while we were not listening.
		drop("")
		for m := range sub.Channel() {
			t := m.Payload
			if t == systemWide {
				t = ""
			}
			drop(t)
		}
		_ = sub.Close()
	}
}
