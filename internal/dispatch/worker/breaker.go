package worker

import (
	"context"
	"sync"
	"time"
)

// Breaker states, as shown in a provider config's health.
const (
	BreakerClosed   = "healthy"
	BreakerOpen     = "circuit_open"
	BreakerHalfOpen = "half_open"
)

// breaker is one provider config's circuit breaker in this worker: after Threshold consecutive
// failures that say the provider itself is in trouble (unavailable, timing out) it opens, and
// sends to that config are skipped (failing over, or waiting for a retry) for Cooldown; then one
// probe is let through, and its result closes or re-opens it. Each failed probe doubles the next
// cooldown, up to MaxCooldown, which bounds how late a recovery is noticed. The probe is a real
// message: one intent parked behind each cooldown (the carrier) comes back as it ends, while the
// others wait longer and are released when the breaker closes (Worker.RouteRecovered).
type breaker struct {
	threshold   int
	cooldown    time.Duration // the first cooldown after opening
	maxCooldown time.Duration
	current     time.Duration // this opening's cooldown

	mu        sync.Mutex
	state     string
	failures  int
	openUntil time.Time
	probing   bool
	// reserved is when blocked() last let an intent through to become the probe of an open
	// breaker whose cooldown has passed: until that probe is decided (or cooldown/10 passes),
	// other intents keep parking instead of racing it to claims that would fail fast.
	reserved time.Time
	// carrier is the openUntil for which an intent was parked to come back as the probe.
	carrier time.Time
}

func newBreaker(threshold int, cooldown, maxCooldown time.Duration) *breaker {
	return &breaker{threshold: threshold, cooldown: cooldown, maxCooldown: max(cooldown, maxCooldown), current: cooldown, state: BreakerClosed}
}

// allow reports whether a send may go to the provider now and, when not, how long until it may.
func (b *breaker) allow(now time.Time) (ok bool, wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case BreakerOpen:
		if now.Before(b.openUntil) {
			return false, b.openUntil.Sub(now)
		}
		b.state, b.probing = BreakerHalfOpen, true
		return true, 0
	case BreakerHalfOpen:
		if b.probing {
			return false, b.cooldown / 10 // one probe at a time; its answer comes soon
		}
		b.probing = true
		return true, 0
	}
	return true, 0
}

// blocked reports, without taking the half-open probe, whether the breaker would turn a send away
// now, for how long at least, and its current cooldown (over which deferred intents are spread).
func (b *breaker) blocked(now time.Time) (wait, cooldown time.Duration, blocked bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.state == BreakerOpen && now.Before(b.openUntil):
		return b.openUntil.Sub(now), b.current, true
	case b.state == BreakerOpen && now.Sub(b.reserved) < b.cooldown/10:
		return b.cooldown / 10, b.current, true // one intent is on its way to be the probe
	case b.state == BreakerOpen:
		b.reserved = now
	case b.state == BreakerHalfOpen && b.probing:
		return b.cooldown / 10, b.current, true
	}
	return 0, 0, false
}

// record notes a send's result and returns the new state when it changed.
func (b *breaker) record(ok bool, now time.Time) (changed string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	before := b.state
	b.probing, b.reserved = false, time.Time{}
	if ok {
		b.failures, b.state, b.current = 0, BreakerClosed, b.cooldown
	} else {
		b.failures++
		switch {
		case b.state == BreakerHalfOpen:
			b.current = min(2*b.current, b.maxCooldown) // the probe failed: wait longer this time
			b.state, b.openUntil = BreakerOpen, now.Add(b.current)
		case b.state == BreakerClosed && b.failures >= b.threshold:
			b.current = b.cooldown
			b.state, b.openUntil = BreakerOpen, now.Add(b.current)
		}
	}
	if b.state != before {
		return b.state
	}
	return ""
}

// bookCarrier reports whether the caller, an intent being parked behind this open breaker, is to
// come back as its cooldown ends and carry the probe: true for the first caller per cooldown.
func (b *breaker) bookCarrier(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state != BreakerOpen || !now.Before(b.openUntil) || b.carrier.Equal(b.openUntil) {
		return false
	}
	b.carrier = b.openUntil
	return true
}

// openedUntil is when the breaker's current cooldown ends.
func (b *breaker) openedUntil() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.openUntil
}

// unprobed reports whether the cooldown ending at until is still the breaker's, with no probe let
// through since, and (unless evenCarried) no intent parked to carry its probe.
func (b *breaker) unprobed(until time.Time, evenCarried bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state == BreakerOpen && b.openUntil.Equal(until) && (evenCarried || !b.carrier.Equal(until))
}

// reset closes the breaker because another worker's probe succeeded: the provider is back.
func (b *breaker) reset() (changed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	changed = b.state != BreakerClosed
	b.state, b.failures, b.current, b.probing, b.reserved = BreakerClosed, 0, b.cooldown, false, time.Time{}
	return changed
}

// release gives back a half-open probe slot that was taken but not used for a send.
func (b *breaker) release() {
	b.mu.Lock()
	b.probing = false
	b.mu.Unlock()
}

// breakers holds one breaker per provider config.
type breakers struct {
	threshold             int
	cooldown, maxCooldown time.Duration
	mu                    sync.Mutex
	m                     map[string]*breaker
}

// reset closes configID's breaker, if this worker has one.
func (bs *breakers) reset(configID string) bool {
	bs.mu.Lock()
	b, ok := bs.m[configID]
	bs.mu.Unlock()
	return ok && b.reset()
}

func (bs *breakers) get(configID string) *breaker {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	b, ok := bs.m[configID]
	if !ok {
		b = newBreaker(bs.threshold, bs.cooldown, bs.maxCooldown)
		bs.m[configID] = b
	}
	return b
}

// bulkheads bound the sends in flight per provider config, so one slow provider cannot take every
// in-flight slot of the worker.
//
// Beyond the sends in flight, a line of claimed messages may wait for a slot: up to waiting of
// them, and no more than would get a slot within lineWait at the config's recent pace. The pace
// is checked before a message is claimed (turn), the count when it takes its place (acquire): a
// message claimed just as the line filled up still waits, rather than spending an attempt. So the
// shared system default, slow but healthy under load, keeps a long line (512 sends of 100 ms
// drain 2,048 waiting in 0.4 s), while a provider that hangs 10 s a send keeps about
// limit*lineWait/10s (102 at the defaults) instead of 2,048 claimed messages waiting 40 s each.
// Each waiting message is a goroutine whose stack every garbage collection scans, in the process
// every other tenant's sends share: a long line behind a hanging provider slows everyone's marks.
type bulkheads struct {
	limit, waiting int
	lineWait       time.Duration // 0: the line is bounded by waiting alone
	now            func() time.Time
	mu             sync.Mutex
	m              map[string]*bulkhead
}

type bulkhead struct {
	sends   chan struct{} // a token per send in flight
	waiting int           // guarded by bulkheads.mu
	// took is a moving average of how long this config's sends take (guarded by bulkheads.mu):
	// with the sends in flight and waiting, it says how long until the bulkhead has room.
	took time.Duration
	// moved is when a send last gave its slot back or took the last free one: while every slot is
	// taken, the time since then is a floor on how long the sends take now, which a provider that
	// just started hanging shows long before took does. (Counted from the last slot given back
	// alone, a config idle for an hour and then filled by a burst would look an hour slow.)
	moved time.Time
	// booked is the turn given to the latest intent deferred behind this config (guarded by
	// bulkheads.mu). Each intent deferred after it comes back one send's share of the pace later,
	// so a backlog comes back at about the rate the provider takes it, oldest first, rather than
	// all of it every half minute to find the line still full, deferred again and again.
	booked time.Time
}

func newBulkheads(limit, waiting int, lineWait time.Duration) *bulkheads {
	return &bulkheads{limit: limit, waiting: waiting, lineWait: lineWait, now: time.Now, m: map[string]*bulkhead{}}
}

func (bs *bulkheads) get(configID string) *bulkhead {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	b, ok := bs.m[configID]
	if !ok {
		b = &bulkhead{sends: make(chan struct{}, bs.limit)}
		bs.m[configID] = b
	}
	return b
}

// line is how many may wait for b's slots at its recent pace (bs.mu held). turn asks it before a
// message is claimed; acquire, after the claim, holds the line to the count alone.
func (bs *bulkheads) line(b *bulkhead) int {
	if bs.lineWait <= 0 {
		return bs.waiting
	}
	took := bs.pace(b)
	if took <= 0 {
		return bs.waiting
	}
	// At least one may wait, so that a slow config still queues rather than churns.
	return max(1, min(bs.waiting, int(float64(cap(b.sends))*bs.lineWait.Seconds()/took.Seconds())))
}

// pace is how long b's sends take now (bs.mu held): their moving average, and while every slot is
// taken, at least the time since a slot last moved.
func (bs *bulkheads) pace(b *bulkhead) time.Duration {
	if len(b.sends) == cap(b.sends) {
		return max(b.took, bs.now().Sub(b.moved))
	}
	return b.took
}

// acquire takes a send slot of configID. When all are taken it waits, after calling yield (which
// gives back the caller's in-flight slot), unless the line already holds bs.waiting: then it
// returns false. The pace's shorter line is for turn, which is asked before the message is claimed.
// It returns false when ctx ends too.
func (bs *bulkheads) acquire(ctx context.Context, configID string, yield func()) bool {
	b := bs.get(configID)
	select {
	case b.sends <- struct{}{}:
		bs.tookSlot(b)
		return true
	default:
	}
	bs.mu.Lock()
	if b.waiting >= bs.waiting {
		bs.mu.Unlock()
		return false
	}
	b.waiting++
	bs.mu.Unlock()
	defer func() {
		bs.mu.Lock()
		b.waiting--
		bs.mu.Unlock()
	}()
	yield()
	select {
	case b.sends <- struct{}{}:
		bs.tookSlot(b)
		return true
	case <-ctx.Done():
		return false
	}
}

// tookSlot notes when b's last free slot was taken.
func (bs *bulkheads) tookSlot(b *bulkhead) {
	if len(b.sends) < cap(b.sends) || bs.lineWait <= 0 {
		return
	}
	bs.mu.Lock()
	b.moved = bs.now()
	bs.mu.Unlock()
}

// release gives back a send slot of configID, whose send took took.
func (bs *bulkheads) release(configID string, took time.Duration) {
	b := bs.get(configID)
	bs.mu.Lock()
	if b.took == 0 {
		b.took = took
	} else {
		b.took += (took - b.took) / 8
	}
	b.moved = bs.now()
	bs.mu.Unlock()
	<-b.sends
}

// turn reports whether an intent for configID should be deferred rather than claimed now and, if
// so, when its turn would come: after the intents deferred before it, one send's share of the
// config's pace apart. An intent may join the line when there is room in it, unless others are
// deferred ahead of it: it is their turn (returning) that the room was kept for.
func (bs *bulkheads) turn(configID string, returning bool) (time.Duration, bool) {
	b := bs.get(configID)
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if len(b.sends) < cap(b.sends) {
		return 0, false
	}
	now := bs.now()
	if b.waiting < bs.line(b) && (returning || !b.booked.After(now)) {
		return 0, false
	}
	at := now
	if b.booked.After(at) {
		at = b.booked
	}
	return at.Add(bs.pace(b) / time.Duration(cap(b.sends))).Sub(now), true
}

// book records that an intent deferred behind configID comes back after wait.
func (bs *bulkheads) book(configID string, wait time.Duration) {
	b := bs.get(configID)
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if at := bs.now().Add(wait); at.After(b.booked) {
		b.booked = at
	}
}
