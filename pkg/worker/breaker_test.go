package worker

import (
	"testing"
	"time"
)

func TestBreakerOpensProbesAndCloses(t *testing.T) {
	now := time.Unix(1000, 0)
	b := newBreaker(3, 10*time.Second)
	for i := range 2 {
		if !b.allow(now) || b.record(false, now) != "" {
			t.Fatalf("failure %d opened early", i+1)
		}
	}
	if !b.allow(now) || b.record(false, now) != BreakerOpen {
		t.Fatal("third consecutive failure must open")
	}
	if b.allow(now.Add(9 * time.Second)) {
		t.Fatal("open breaker let a send through during cooldown")
	}
	probeAt := now.Add(10 * time.Second)
	if !b.allow(probeAt) || b.allow(probeAt) {
		t.Fatal("after cooldown exactly one probe goes through")
	}
	if b.record(false, probeAt) != BreakerOpen {
		t.Fatal("a failed probe re-opens")
	}
	later := probeAt.Add(10 * time.Second)
	if !b.allow(later) || b.record(true, later) != BreakerClosed {
		t.Fatal("a good probe closes")
	}
	// A success resets the count: failures must be consecutive.
	b.record(false, later)
	b.record(false, later)
	b.record(true, later)
	b.record(false, later)
	if !b.allow(later) {
		t.Fatal("non-consecutive failures opened the breaker")
	}
}
