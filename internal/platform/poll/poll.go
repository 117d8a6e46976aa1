// Package poll runs the background loops that work through a table in batches: every interval,
// take batches until one comes back short, then wait for the next tick.
package poll

import (
	"context"
	"time"
)

// Batches calls take every interval until ctx ends; within a tick it calls take again at once
// while take reports a full batch (more may be waiting), and stops on a short batch or an error
// (take logs its own errors).
func Batches(ctx context.Context, interval time.Duration, take func(ctx context.Context) (full bool, err error)) {
	Every(ctx, interval, func(ctx context.Context) {
		for ctx.Err() == nil {
			if full, err := take(ctx); err != nil || !full {
				return
			}
		}
	})
}

// Every calls tick every interval until ctx ends: a loop with nothing to drain (a gauge, a fold,
// a sweep that pages itself).
func Every(ctx context.Context, interval time.Duration, tick func(ctx context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			tick(ctx)
		}
	}
}
