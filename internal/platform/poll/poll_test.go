package poll

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A backlog is drained within one tick (full batches are followed at once), a short batch or an
// error waits for the next tick, and the loop ends with its context.
func TestBatchesDrainsABacklogThenWaits(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	backlog, calls, ticks := 5, 0, 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		Batches(ctx, 50*time.Millisecond, func(context.Context) (bool, error) {
			calls++
			if backlog > 0 {
				backlog--
				return true, nil
			}
			ticks++
			if ticks == 2 {
				cancel()
			}
			return false, errors.New("short")
		})
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Batches did not end with its context")
	}
	// Tick 1: five full batches and the short one; tick 2: the short one again.
	if calls != 7 {
		t.Errorf("%d calls, want 7", calls)
	}
}

// Every ticks until the context ends, and returns then.
func TestEveryTicksUntilTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ticks := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		Every(ctx, 5*time.Millisecond, func(context.Context) {
			if ticks++; ticks == 3 {
				cancel()
			}
		})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Every did not return after its context ended")
	}
	if ticks != 3 {
		t.Fatalf("%d ticks, want 3", ticks)
	}
}
