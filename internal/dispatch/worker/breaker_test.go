package worker

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/domain"
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

// Intents turned away by a full bulkhead are given turns one send's share of the provider's pace
// apart, in the order they came, so a backlog comes back about as fast as the provider takes it.
// Room that opens in the line is kept for the deferred intents whose turn it is: a new intent
// does not overtake them, and is let in again once no one is deferred ahead of it.
func TestFullBulkheadGivesDeferredIntentsTurnsAtTheProvidersPace(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	bs := newBulkheads(2, 8, 2*time.Second) // 2 in flight, 2 s of line
	bs.now = func() time.Time { return now }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bs.acquire(ctx, "cfg", func() {})
	bs.release("cfg", 10*time.Second) // the provider takes 10 s a send: a line of one, a slot every 5 s
	bs.acquire(ctx, "cfg", func() {})
	if _, deferred := bs.turn("cfg", false); deferred {
		t.Fatal("deferred with a send slot free")
	}
	bs.acquire(ctx, "cfg", func() {})
	if _, deferred := bs.turn("cfg", false); deferred {
		t.Fatal("deferred with room in the line and no one deferred")
	}
	waiter := make(chan bool)
	go func() { waiter <- bs.acquire(ctx, "cfg", func() {}) }()
	for waitingFor(bs, "cfg") != 1 {
		time.Sleep(time.Millisecond)
	}

	start := now
	for i, want := range []time.Duration{5 * time.Second, 10 * time.Second, 15 * time.Second} {
		wait, deferred := bs.turn("cfg", false)
		if turn := now.Add(wait).Sub(start); !deferred || turn != want {
			t.Fatalf("intent %d: deferred %v, its turn %s after the first came; want %s", i+1, deferred, turn, want)
		}
		bs.book("cfg", wait)
		now = now.Add(time.Second) // they come a second apart, faster than the provider's pace
	}

	now = now.Add(2 * time.Second) // 5 s on: the first deferred intent's turn
	bs.release("cfg", 10*time.Second)
	if !<-waiter {
		t.Fatal("the waiting send did not get the freed slot")
	}
	if _, deferred := bs.turn("cfg", false); !deferred {
		t.Fatal("a new intent took the room in the line ahead of the deferred ones")
	}
	if _, deferred := bs.turn("cfg", true); deferred {
		t.Fatal("a deferred intent back at its turn was turned away from the room in the line")
	}
	now = now.Add(11 * time.Second) // past the last turn given
	if _, deferred := bs.turn("cfg", false); deferred {
		t.Fatal("a new intent was deferred with room in the line and no one deferred ahead of it")
	}
}

// The line of messages waiting for a full bulkhead is as long as will get a slot within the line
// wait at the config's recent pace: long for a fast provider, short for one that takes 10 s a
// send or has stopped giving slots back, so a hanging provider does not hold thousands of claimed
// messages (and their goroutines) for tens of seconds.
func TestBulkheadLineFollowsTheProvidersPace(t *testing.T) {
	tests := []struct {
		name     string
		took     time.Duration // how long the sends so far took
		idle     time.Duration // after that, before a burst took every slot
		stalled  time.Duration // then, with every slot taken and none given back
		wantLine int
	}{
		{"fast provider: the whole line", 100 * time.Millisecond, 0, 0, 8},
		{"10 s a send: one waits", 10 * time.Second, 0, 0, 1},
		{"1 s a send: as many as drain in 2 s", time.Second, 0, 0, 4},
		{"fast until it stopped answering 4 s ago", 100 * time.Millisecond, 0, 4 * time.Second, 1},
		{"fast, and answered a moment ago", 100 * time.Millisecond, 0, 50 * time.Millisecond, 8},
		{"fast, idle an hour, then filled by a burst", 100 * time.Millisecond, time.Hour, 50 * time.Millisecond, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Unix(1_700_000_000, 0)
			bs := newBulkheads(2, 8, 2*time.Second) // 2 in flight, up to 8 waiting, 2 s of line
			bs.now = func() time.Time { return now }
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			bs.acquire(ctx, "cfg", func() {})
			bs.release("cfg", tt.took)
			now = now.Add(tt.idle)
			bs.acquire(ctx, "cfg", func() {})
			bs.acquire(ctx, "cfg", func() {}) // every slot taken
			now = now.Add(tt.stalled)

			var waiters sync.WaitGroup
			defer waiters.Wait()
			defer cancel()
			for i := range tt.wantLine {
				if _, deferred := bs.turn("cfg", true); deferred {
					t.Fatalf("with %d waiting the bulkhead defers; want a line of %d", i, tt.wantLine)
				}
				joinLine(ctx, t, bs, &waiters)
			}
			if _, deferred := bs.turn("cfg", true); !deferred {
				t.Fatalf("with %d waiting the bulkhead does not defer; want a line of %d", tt.wantLine, tt.wantLine)
			}
		})
	}
}

// The pace's line is asked before a message is claimed. A message claimed just as that line
// filled up still waits for a slot rather than failing its attempt, up to the count bound; beyond
// it, it is turned away without giving back its in-flight slot.
func TestClaimedMessageWaitsPastThePacesLineUpToTheCount(t *testing.T) {
	bs := newBulkheads(1, 2, 2*time.Second) // 1 in flight, up to 2 waiting
	ctx, cancel := context.WithCancel(context.Background())
	bs.acquire(ctx, "cfg", func() {})
	bs.release("cfg", 10*time.Second) // 10 s a send: the pace's line is 1
	bs.acquire(ctx, "cfg", func() {})

	var waiters sync.WaitGroup
	defer waiters.Wait()
	defer cancel()
	for range 2 {
		joinLine(ctx, t, bs, &waiters)
	}
	if _, deferred := bs.turn("cfg", true); !deferred {
		t.Fatal("past the pace's line, an unclaimed intent is not deferred")
	}
	if bs.acquire(ctx, "cfg", func() { t.Error("a send turned away gave back its in-flight slot") }) {
		t.Fatal("a claimed message beyond the count got a slot")
	}
}

// joinLine starts one more claimed message waiting for cfg's slots, and fails the test if it is
// turned away instead.
func joinLine(ctx context.Context, t *testing.T, bs *bulkheads, waiters *sync.WaitGroup) {
	t.Helper()
	before := waitingFor(bs, "cfg")
	waiters.Add(1)
	returned := make(chan struct{})
	go func() { defer waiters.Done(); defer close(returned); bs.acquire(ctx, "cfg", func() {}) }()
	for waitingFor(bs, "cfg") != before+1 {
		select {
		case <-returned:
			t.Fatalf("a message was turned away from the line with %d waiting", before)
		case <-time.After(time.Millisecond):
		}
	}
}

func waitingFor(bs *bulkheads, configID string) int {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	return bs.m[configID].waiting
}

// probeAsks records the probes asked for.
type probeAsks struct{ n chan string }

func (p probeAsks) Recovered(context.Context, string, string) {}
func (p probeAsks) ProbeWanted(_ context.Context, _, configID string) {
	p.n <- configID
}

// A cooldown that ends with no probe asks for a carrier, and asks again every cooldown until a
// probe is let through (the first ask may find no parked intent); then it stops.
func TestAnUnprobedCooldownAsksForACarrierUntilAProbeComes(t *testing.T) {
	asks := probeAsks{n: make(chan string, 16)}
	cfg := Config{BreakerThreshold: 1, BreakerCooldown: 20 * time.Millisecond, Announcer: asks}.WithDefaults()
	a := newAdmission(cfg, func(context.Context, Route, string, string) {})
	route := Route{Config: domain.ProviderConfig{ID: "prv_a", TenantID: "ten_a"}}
	b := a.breakers.get("prv_a")
	if !ok(b.allow(time.Now())) {
		t.Fatal("a closed breaker refused a send")
	}
	if b.record(false, time.Now()) != BreakerOpen {
		t.Fatal("the failure did not open the breaker")
	}
	a.awaitCarrier(context.Background(), route, b)
	for i := range 3 {
		select {
		case id := <-asks.n:
			if id != "prv_a" {
				t.Fatalf("asked for %s", id)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("ask %d never came", i+1)
		}
	}
	if !ok(b.allow(time.Now())) { // the probe
		t.Fatal("the cooldown passed and no probe was let through")
	}
	for len(asks.n) > 0 { // asked before the probe
		<-asks.n
	}
	select {
	case <-asks.n:
		t.Fatal("asked for a carrier while a probe was under way")
	case <-time.After(100 * time.Millisecond):
	}
}
