package worker

import (
	"context"
	"testing"
	"time"
)

func ok(allowed bool, _ time.Duration) bool { return allowed }

func TestBreakerOpensProbesAndCloses(t *testing.T) {
	now := time.Unix(1000, 0)
	b := newBreaker(3, 10*time.Second, 10*time.Second)
	for i := range 2 {
		if !ok(b.allow(now)) || b.record(false, now) != "" {
			t.Fatalf("failure %d opened early", i+1)
		}
	}
	if !ok(b.allow(now)) || b.record(false, now) != BreakerOpen {
		t.Fatal("third consecutive failure must open")
	}
	if allowed, wait := b.allow(now.Add(9 * time.Second)); allowed || wait != time.Second {
		t.Fatalf("open breaker: allowed %v, wait %s; want refused with the 1 s of cooldown left", allowed, wait)
	}
	probeAt := now.Add(10 * time.Second)
	if !ok(b.allow(probeAt)) || ok(b.allow(probeAt)) {
		t.Fatal("after cooldown exactly one probe goes through")
	}
	if b.record(false, probeAt) != BreakerOpen {
		t.Fatal("a failed probe re-opens")
	}
	later := probeAt.Add(10 * time.Second)
	if !ok(b.allow(later)) || b.record(true, later) != BreakerClosed {
		t.Fatal("a good probe closes")
	}
	// A success resets the count: failures must be consecutive.
	b.record(false, later)
	b.record(false, later)
	b.record(true, later)
	b.record(false, later)
	if !ok(b.allow(later)) {
		t.Fatal("non-consecutive failures opened the breaker")
	}
}

// Each failed probe doubles the next cooldown up to the maximum; a good probe starts over.
func TestFailedProbesBackOffTheBreaker(t *testing.T) {
	now := time.Unix(1000, 0)
	b := newBreaker(1, 10*time.Second, 35*time.Second)
	b.allow(now)
	b.record(false, now) // opens for 10 s
	for i, want := range []time.Duration{20 * time.Second, 35 * time.Second, 35 * time.Second} {
		wait, _, blocked := b.blocked(now)
		if !blocked {
			t.Fatalf("probe %d: not blocked", i)
		}
		now = now.Add(wait)
		if !ok(b.allow(now)) || b.record(false, now) != BreakerOpen {
			t.Fatalf("probe %d: not let through, or not re-opened", i)
		}
		if wait, cooldown, _ := b.blocked(now); wait != want || cooldown != want {
			t.Fatalf("after failed probe %d: wait %s, cooldown %s; want %s", i+1, wait, cooldown, want)
		}
	}
	now = now.Add(35 * time.Second)
	if !ok(b.allow(now)) || b.record(true, now) != BreakerClosed {
		t.Fatal("a good probe closes")
	}
	b.allow(now)
	b.record(false, now)
	if wait, _, _ := b.blocked(now); wait != 10*time.Second {
		t.Fatalf("after closing, the next opening waits %s; want the first cooldown again", wait)
	}
}

// A full bulkhead says how long its sends in flight and its waiting line would take at the recent
// pace, so intents deferred by it come back about when there is room rather than every few seconds.
func TestFullBulkheadEstimatesItsDrain(t *testing.T) {
	bs := &bulkheads{limit: 2, waiting: 1, m: map[string]*bulkhead{}}
	ctx := context.Background()
	bs.acquire(ctx, "cfg", func() {})
	bs.release("cfg", 10*time.Second) // the provider takes 10 s a send
	bs.acquire(ctx, "cfg", func() {})
	bs.acquire(ctx, "cfg", func() {})
	if full, _ := bs.full("cfg"); full {
		t.Fatal("full with no one waiting yet")
	}
	got := make(chan bool)
	go func() { got <- bs.acquire(ctx, "cfg", func() {}) }()
	for {
		bs.mu.Lock()
		w := bs.m["cfg"].waiting
		bs.mu.Unlock()
		if w == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if full, drain := bs.full("cfg"); !full || drain != 15*time.Second {
		t.Fatalf("full %v, drain %s; want full, 15 s (2 in flight and 1 waiting, 2 at a time, 10 s each)", full, drain)
	}
	bs.release("cfg", 10*time.Second)
	if !<-got {
		t.Fatal("the waiting send did not get the freed slot")
	}
}
