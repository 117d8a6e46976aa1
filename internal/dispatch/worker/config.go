package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/logicspike/comms/internal/platform/ratelimit"
	"github.com/logicspike/comms/pkg/message"
)

// Config tunes a worker. Zero values take the defaults in WithDefaults.
type Config struct {
	InFlight       int           // messages processed at once
	Batch          int           // claims and outcomes per database round trip, at most
	Linger         time.Duration // how long a claim, outcome or push device lookup waits for others to share its round trip
	Lease          time.Duration // how long a claim is exclusive; must outlast AttemptTimeout
	AttemptTimeout time.Duration // one provider call
	CommitInterval time.Duration
	DrainTimeout   time.Duration // graceful shutdown: how long in-flight work may finish
	Brokers        []string      // Kafka
	Group          string        // consumer group of comms.send
	// SendLimiter enforces provider configs' send caps across workers; nil: caps are not enforced.
	SendLimiter SendLimiter
	// PerConfigInFlight bounds the sends in flight through one provider config (a bulkhead).
	// Messages beyond it wait for the config without holding one of the InFlight slots, up to
	// PerConfigWaiting of them and no more than would get a slot within PerConfigLineWait at the
	// config's recent pace; more are parked before they are claimed (and a claimed one beyond
	// PerConfigWaiting is retried). So a provider that hangs holds at most
	// PerConfigInFlight slots and a short line, and a slow but healthy one queues rather than
	// churns. Defaults InFlight/2, 4×PerConfigInFlight and 2 s; a negative PerConfigLineWait
	// bounds the line by PerConfigWaiting alone.
	PerConfigInFlight int
	PerConfigWaiting  int
	PerConfigLineWait time.Duration
	RetryInitial      time.Duration // first retry's wait (before jitter); each next one ×3
	RetryMax          time.Duration // longest wait between attempts
	// A config's breaker opens after BreakerThreshold consecutive unavailable/timeout failures
	// and lets a probe through after BreakerCooldown; each failed probe doubles the wait for the
	// next, up to BreakerMaxCooldown (defaults 5, 10 s, 1.5×BreakerCooldown): a provider's
	// recovery is noticed within 15 s however long it was down, at four probes a minute.
	BreakerThreshold   int
	BreakerCooldown    time.Duration
	BreakerMaxCooldown time.Duration
	// An intent parked behind an open breaker waits ParkWait, doubled for each earlier park up to
	// ParkMaxWait (defaults 3× and 24×BreakerCooldown: 30 s and 4 min), unless it carries the
	// next probe; all are released as soon as the breaker closes on any worker (Announcer and
	// RouteRecovered). A cooldown that ends with no intent parked to carry its probe asks the
	// retriers for one (Announcer.ProbeWanted), so the recovery is noticed within a cooldown
	// even when no new intent comes.
	ParkWait    time.Duration
	ParkMaxWait time.Duration
	// MaxParks bounds how often one intent is deferred unclaimed while every route refuses sends
	// (default 20: over an hour behind a breaker that keeps failing its probes); after that it
	// is attempted, and its retry budget counts down as usual. Negative: never park.
	MaxParks int
	// Announcer tells every worker that a config's breaker closed, so they close theirs and
	// release the intents parked behind it, and asks the retriers for a probe's carrier; nil:
	// each worker finds out by its own probes, when an intent comes.
	Announcer Announcer
	// Unsubscribe gives an email the List-Unsubscribe headers its category asks for
	// (unsubscribe.Links); nil: none.
	Unsubscribe Unsubscriber
	// Inbox tells the open inbox streams that an in_app message reached its inbox
	// (inbox.Announcer); nil: streams see it on their next reload.
	Inbox InboxAnnouncer
}

// InboxAnnouncer announces a message's arrival in a recipient's inbox.
type InboxAnnouncer interface {
	Arrived(ctx context.Context, tenantID, recipientID, messageID string)
}

// Unsubscriber makes the headers an email carries so its recipient can leave its category.
type Unsubscriber interface {
	Headers(ctx context.Context, m message.Message) (map[string]string, error)
}

// Announcer broadcasts that a provider config recovered, and that a config's breaker cooldown
// ended with no intent parked to carry its probe (invalidate.Notifier).
type Announcer interface {
	Recovered(ctx context.Context, tenantID, configID string)
	ProbeWanted(ctx context.Context, tenantID, configID string)
}

// WithDefaults fills zero fields.
func (c Config) WithDefaults() Config {
	if c.InFlight == 0 {
		c.InFlight = 1024
	}
	if c.Batch == 0 {
		c.Batch = 500
	}
	if c.Linger == 0 {
		c.Linger = 3 * time.Millisecond
	}
	if c.AttemptTimeout == 0 {
		c.AttemptTimeout = 30 * time.Second
	}
	if c.Lease == 0 {
		c.Lease = 2*c.AttemptTimeout + 30*time.Second
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = 200 * time.Millisecond
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 25 * time.Second
	}
	if c.PerConfigInFlight == 0 {
		c.PerConfigInFlight = max(1, c.InFlight/2)
	}
	if c.PerConfigWaiting == 0 {
		c.PerConfigWaiting = 4 * c.PerConfigInFlight
	}
	if c.PerConfigLineWait == 0 {
		c.PerConfigLineWait = 2 * time.Second
	}
	if c.RetryInitial == 0 {
		c.RetryInitial = 5 * time.Second
	}
	if c.RetryMax == 0 {
		c.RetryMax = time.Hour
	}
	if c.BreakerThreshold == 0 {
		c.BreakerThreshold = 5
	}
	if c.BreakerCooldown == 0 {
		c.BreakerCooldown = 10 * time.Second
	}
	// The rest scale with the cooldown, so that a test's short cooldown shortens them all.
	if c.BreakerMaxCooldown == 0 {
		c.BreakerMaxCooldown = c.BreakerCooldown * 3 / 2
	}
	if c.ParkWait == 0 {
		c.ParkWait = 3 * c.BreakerCooldown
	}
	if c.ParkMaxWait == 0 {
		c.ParkMaxWait = max(c.ParkWait, 24*c.BreakerCooldown)
	}
	if c.MaxParks == 0 {
		c.MaxParks = 20
	}
	return c
}

// Validate names each bad setting.
func (c Config) Validate() error {
	var errs []error
	if c.InFlight < 1 {
		errs = append(errs, errors.New("in-flight must be at least 1"))
	}
	if c.Lease <= c.AttemptTimeout {
		errs = append(errs, fmt.Errorf("lease (%s) must be longer than the attempt timeout (%s)", c.Lease, c.AttemptTimeout))
	}
	return errors.Join(errs...)
}

// SendLimiter is a shared token bucket (ratelimit.Limiter).
type SendLimiter interface {
	Allow(ctx context.Context, key string, rate float64, burst int) (ratelimit.Result, error)
}
