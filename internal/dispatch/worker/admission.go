package worker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/logicspike/comms/internal/platform/metrics"
	"github.com/logicspike/comms/pkg/provider"
)

// admission answers, for each provider config, whether a send may go to it: now, after a wait,
// or not before a given time. It holds the config's send cap (shared across workers), its circuit
// breaker and its bulkhead with the line waiting for it. Before a message is claimed, park says
// whether every route refuses sends and how long to defer the intent; while a message is
// attempted, admit takes a route's permission and the ticket it returns records the send.
type admission struct {
	cfg       Config
	breakers  *breakers
	bulkheads *bulkheads
	// changed is told every breaker transition (the worker records it on the config's health).
	changed func(ctx context.Context, route Route, state, reason string)
}

func newAdmission(cfg Config, changed func(context.Context, Route, string, string)) *admission {
	return &admission{cfg: cfg, changed: changed,
		breakers:  &breakers{threshold: cfg.BreakerThreshold, cooldown: cfg.BreakerCooldown, maxCooldown: cfg.BreakerMaxCooldown, m: map[string]*breaker{}},
		bulkheads: newBulkheads(cfg.PerConfigInFlight, cfg.PerConfigWaiting, cfg.PerConfigLineWait)}
}

// park reports whether every one of routes refuses sends right now (its breaker open, or its
// bulkhead full), and if so how long to defer an intent parked parks times before.
//
// Behind an open breaker: the first intent parked in each cooldown comes back as it ends, to carry
// the probe; the others wait parkWait, longer with each park, since the breaker closing releases
// them all at once (recovered). So a provider down for an hour costs a few returns per intent,
// and its recovery is noticed within one cooldown and acted on at once.
//
// Behind a full bulkhead: until its turn, after the intents deferred before it, at the pace the
// provider takes sends (bulkheads.turn), between a first retry's wait and the longest cooldown.
//
// Only this worker's breakers and bulkheads are consulted; an intent another worker could send is
// at worst delayed by one wait.
func (a *admission) park(routes []Route, parks int) (time.Duration, bool) {
	now := time.Now()
	var (
		soonest = time.Duration(-1)
		behind  *breaker // the breaker the soonest wait is for; nil for a bulkhead's turn
		turnOf  string   // the config whose turn the soonest wait is
	)
	for _, r := range routes {
		b := a.breakers.get(r.Config.ID)
		wait, _, open := b.blocked(now)
		config := ""
		if !open {
			turn, deferred := a.bulkheads.turn(r.Config.ID, parks > 0)
			if !deferred {
				return 0, false
			}
			wait, b, config = min(max(a.cfg.RetryInitial, turn), a.cfg.BreakerMaxCooldown), nil, r.Config.ID
		}
		if soonest < 0 || wait < soonest {
			soonest, behind, turnOf = wait, b, config
		}
	}
	switch {
	case soonest < 0:
		return 0, false
	case behind == nil:
		a.bulkheads.book(turnOf, soonest)
		return soonest, true
	case behind.bookCarrier(now):
		return soonest, true
	}
	long := a.parkWait(parks)
	return max(soonest, long) + time.Duration(rand.Int64N(int64(long/2)+1)), true //nolint:gosec // jitter
}

// parkWait is how long an intent parked parks times before waits behind an open breaker.
func (a *admission) parkWait(parks int) time.Duration {
	return min(a.cfg.ParkWait<<min(parks, 16), a.cfg.ParkMaxWait)
}

// recovered closes this worker's breaker for configID: a probe succeeded elsewhere.
func (a *admission) recovered(configID string) {
	if a.breakers.reset(configID) {
		metrics.BreakerState.WithLabelValues(configID).Set(0)
	}
}

// awaitCarrier makes sure the cooldown b has just begun ends in a probe. Its carrier is an intent
// parked during the cooldown; when none was (no new intent came, and those parked before wait
// far longer), the retriers are asked to bring one parked intent of the tenant back as the
// cooldown ends. While no probe comes, carried or not (a retrier may not hold the tenant's parked
// intents yet, or a carrier may be held up), they are asked again every cooldown. Without this,
// a recovery would go unnoticed until the next intent's park ended, minutes later.
func (a *admission) awaitCarrier(ctx context.Context, route Route, b *breaker) {
	if a.cfg.Announcer == nil {
		return
	}
	until := b.openedUntil()
	cooldown := max(time.Until(until), time.Second)
	var ask func(evenCarried bool)
	ask = func(evenCarried bool) {
		if ctx.Err() == nil && b.unprobed(until, evenCarried) {
			a.cfg.Announcer.ProbeWanted(ctx, route.Config.TenantID, route.Config.ID)
		}
		if ctx.Err() == nil && b.unprobed(until, true) {
			time.AfterFunc(cooldown, func() { ask(true) })
		}
	}
	time.AfterFunc(time.Until(until), func() { ask(false) })
}

// ticket is a route's permission for one send.
type ticket struct {
	a     *admission
	route Route
	b     *breaker
	start time.Time
}

// admit waits for route's send cap and a place in its bulkhead (giving back the message's in-flight
// slot through release while it waits) and takes its breaker's permission. A refusal comes back as
// the failure to record for this route. ok is false when ctx ended while waiting.
func (a *admission) admit(ctx context.Context, route Route, release func()) (t *ticket, refused *provider.Error, ok bool) {
	b := a.breakers.get(route.Config.ID)
	if capped := a.waitForSendCap(ctx, route); capped != nil {
		return nil, capped, true
	}
	if allowed, _ := b.allow(time.Now()); !allowed {
		// Retried on the message's own backoff, not at the breaker's reopening: the messages an
		// open breaker turned away would otherwise come back as one burst, which slows every
		// other tenant.
		return nil, &provider.Error{Code: provider.ProviderUnavailable, Provider: route.Config.Type,
			Message: "circuit open: recent sends through this provider config failed; it is probed again shortly"}, true
	}
	if !a.bulkheads.acquire(ctx, route.Config.ID, release) {
		b.release()
		if ctx.Err() != nil {
			return nil, nil, false
		}
		return nil, &provider.Error{Code: provider.ProviderUnavailable, Provider: route.Config.Type,
			Message: fmt.Sprintf("%d sends in flight and %d more waiting for this provider config (it is answering slowly)",
				a.cfg.PerConfigInFlight, a.cfg.PerConfigWaiting)}, true
	}
	return &ticket{a: a, route: route, b: b, start: time.Now()}, nil, true
}

// done records the send's result (nil: the provider took it) in the bulkhead's pace and the
// breaker.
func (t *ticket) done(ctx context.Context, failed *provider.Error) {
	t.a.bulkheads.release(t.route.Config.ID, time.Since(t.start))
	switch {
	case failed == nil:
		t.a.changed(ctx, t.route, t.b.record(true, time.Now()), "")
	case failed.Code == provider.ProviderUnavailable || failed.Code == provider.Timeout:
		state := t.b.record(false, time.Now())
		t.a.changed(ctx, t.route, state, failed.Describe())
		if state == BreakerOpen {
			t.a.awaitCarrier(ctx, t.route, t.b)
		}
	case failed.Code == provider.RateLimited:
		t.b.release() // says nothing about the provider's health
	default:
		t.a.changed(ctx, t.route, t.b.record(true, time.Now()), "") // the provider answered
	}
}

// abandon gives the permission back without a verdict: the send's outcome is unknown.
func (t *ticket) abandon() {
	t.a.bulkheads.release(t.route.Config.ID, time.Since(t.start))
	t.b.release()
}

// waitForSendCap takes a token from the config's shared send cap, waiting for one if it comes
// within a second; otherwise it returns a rate_limited failure carrying the wait, which fails over
// or schedules a retry like the provider's own 429 would.
func (a *admission) waitForSendCap(ctx context.Context, route Route) *provider.Error {
	rate := route.Config.SendRatePerSecond
	if rate <= 0 || a.cfg.SendLimiter == nil {
		return nil
	}
	burst := max(1, int(rate))
	for {
		res, err := a.cfg.SendLimiter.Allow(ctx, "prv:"+route.Config.ID, rate, burst)
		if err != nil {
			metrics.RateLimitErrors.WithLabelValues("send").Inc()
			return nil // the cap is a courtesy to the provider; Redis trouble must not stop sending
		}
		if res.Allowed {
			return nil
		}
		if res.Wait > time.Second {
			return &provider.Error{Code: provider.RateLimited, Provider: route.Config.Type, RetryAfter: res.Wait,
				Message: fmt.Sprintf("send cap of %g per second for this provider config reached", rate)}
		}
		select {
		case <-time.After(res.Wait):
		case <-ctx.Done():
			return &provider.Error{Code: provider.Timeout, Provider: route.Config.Type, Message: "stopped waiting for the send cap"}
		}
	}
}
