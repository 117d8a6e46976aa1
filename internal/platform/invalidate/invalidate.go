// Package invalidate tells running workers, over Redis pub/sub, that a tenant's provider configs
// changed, so a disabled or re-keyed config stops being used at once rather than when the route
// cache expires, that a config's provider recovered, so every worker closes its breaker and
// releases the intents parked behind it, and that an open breaker's cooldown ended with no intent
// parked to carry its probe, so the retriers bring one back. Pub/sub is fire-and-forget: a worker that misses a
// notice (disconnected at that moment) still picks the change up when its cache entry expires
// (COMMS_ROUTE_CACHE_TTL), and parked intents come back when their park ends.
package invalidate

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Channel is the pub/sub channel's name after the deployment's Redis prefix.
const Channel = "provider-configs-changed"

// RecoveredChannel carries "<tenant id> <config id>" when a config's breaker closes.
const RecoveredChannel = "provider-recovered"

// ProbeWantedChannel carries "<tenant id> <config id>" when a config's breaker cooldown ends with
// no intent parked to carry its probe.
const ProbeWantedChannel = "provider-probe-wanted"

// EndpointsChannel carries a tenant id when its webhook endpoints change.
const EndpointsChannel = "webhook-endpoints-changed"

// systemWide is the payload for a system-default change, which concerns every tenant.
const systemWide = "*"

// Notifier publishes changes.
type Notifier struct {
	rdb     *redis.Client
	prefix  string
	channel string
	log     *slog.Logger
}

// NewNotifier publishes on prefix+Channel.
func NewNotifier(rdb *redis.Client, prefix string, log *slog.Logger) *Notifier {
	return &Notifier{rdb: rdb, prefix: prefix, channel: prefix + Channel, log: log}
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

// EndpointsChanged announces that tenantID's webhook endpoints changed.
func (n *Notifier) EndpointsChanged(ctx context.Context, tenantID string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := n.rdb.Publish(ctx, n.prefix+EndpointsChannel, tenantID).Err(); err != nil {
		n.log.WarnContext(ctx, "could not announce a webhook endpoint change; workers pick it up when their cache expires",
			"tenant_id", tenantID, "err", err)
	}
}

// ListenEndpoints calls drop with each tenant whose webhook endpoints changed ("" for all, after
// a gap in the subscription) until ctx ends.
func ListenEndpoints(ctx context.Context, rdb *redis.Client, prefix string, log *slog.Logger, drop func(tenantID string)) {
	Subscribe(ctx, rdb, prefix+EndpointsChannel, log, func() { drop("") }, drop)
}

// Recovered announces that configID (of tenantID; "" for a system default) answers again.
func (n *Notifier) Recovered(ctx context.Context, tenantID, configID string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := n.rdb.Publish(ctx, n.prefix+RecoveredChannel, tenantID+" "+configID).Err(); err != nil {
		n.log.WarnContext(ctx, "could not announce a provider's recovery; parked intents come back when their park ends",
			"tenant_id", tenantID, "provider_id", configID, "err", err)
	}
}

// ProbeWanted announces that configID's (of tenantID; "" for a system default) breaker cooldown
// ended with no intent to carry its probe.
func (n *Notifier) ProbeWanted(ctx context.Context, tenantID, configID string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := n.rdb.Publish(ctx, n.prefix+ProbeWantedChannel, tenantID+" "+configID).Err(); err != nil {
		n.log.WarnContext(ctx, "could not ask for a provider's probe; it is probed when a parked or new intent comes",
			"tenant_id", tenantID, "provider_id", configID, "err", err)
	}
}

// Listen calls drop with each changed tenant id ("" for all tenants) until ctx ends,
// resubscribing after Redis outages.
func Listen(ctx context.Context, rdb *redis.Client, prefix string, log *slog.Logger, drop func(tenantID string)) {
	Subscribe(ctx, rdb, prefix+Channel, log, func() { drop("") }, func(payload string) {
		if payload == systemWide {
			payload = ""
		}
		drop(payload)
	})
}

// ListenRecovered calls recovered for each announced recovery until ctx ends.
func ListenRecovered(ctx context.Context, rdb *redis.Client, prefix string, log *slog.Logger, recovered func(tenantID, configID string)) {
	Subscribe(ctx, rdb, prefix+RecoveredChannel, log, func() {}, func(payload string) {
		tenant, config, ok := strings.Cut(payload, " ")
		if ok {
			recovered(tenant, config)
		}
	})
}

// ListenProbeWanted calls wanted for each config announced as wanting a probe until ctx ends.
func ListenProbeWanted(ctx context.Context, rdb *redis.Client, prefix string, log *slog.Logger, wanted func(tenantID, configID string)) {
	Subscribe(ctx, rdb, prefix+ProbeWantedChannel, log, func() {}, func(payload string) {
		if tenant, config, ok := strings.Cut(payload, " "); ok {
			wanted(tenant, config)
		}
	})
}

// Subscribe hands each message on channel to handle until ctx ends, resubscribing after Redis
// outages and calling resumed each time it (re)subscribes: anything may have happened meanwhile.
func Subscribe(ctx context.Context, rdb *redis.Client, channel string, log *slog.Logger, resumed func(), handle func(string)) {
	for ctx.Err() == nil {
		sub := rdb.Subscribe(ctx, channel)
		if _, err := sub.Receive(ctx); err != nil {
			_ = sub.Close()
			if ctx.Err() == nil {
				log.Warn("notices unavailable; relying on caches' TTLs and parks' ends", "channel", channel, "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(5 * time.Second):
				}
			}
			continue
		}
		resumed()
		msgs := sub.Channel()
	receive:
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					break receive
				}
				handle(m.Payload)
			case <-ctx.Done():
				break receive
			}
		}
		_ = sub.Close()
	}
}
