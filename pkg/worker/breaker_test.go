package worker

import (
	"testing"
	"time"
)

func ok(allowed bool, _ time.Duration) bool { return allowed }

func TestBreakerOpensProbesAndCloses(t *testing.T) {
	now := time.Unix(1000, 0)
	b := newBreaker(3, 10*time.Second)
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
