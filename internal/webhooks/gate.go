package webhooks

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// gate is one endpoint's admission: at most cap deliveries in flight, a bounded line of waiters
// behind them, and its failure streak. A slow or hanging endpoint fills its own slots and line
// and nothing else: further deliveries to it are put off to the retry loop, while every other
// endpoint's deliveries go on.
type gate struct {
	slots   chan struct{}
	waiting atomic.Int32
	maxWait int32
	failing atomic.Pointer[time.Time] // start of the failure streak; nil while healthy
	freed   atomic.Int64              // when a slot was last given back (Unix ns)
}

// acquire takes a slot, waiting up to wait in line if there is room in it, and reports whether
// it got one. Call release after a true.
func (g *gate) acquire(ctx context.Context, wait time.Duration) bool {
	select {
	case g.slots <- struct{}{}:
		return true
	default:
	}
	if wait <= 0 || g.waiting.Add(1) > g.maxWait {
		if wait > 0 {
			g.waiting.Add(-1)
		}
		return false
	}
	defer g.waiting.Add(-1)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

func (g *gate) release() {
	g.freed.Store(time.Now().UnixNano())
	<-g.slots
}

// moving reports whether the endpoint finished a delivery within the last two seconds: a full
// gate that is moving is busy with a burst, one that is not is stuck behind hanging requests.
func (g *gate) moving() bool { return time.Since(time.Unix(0, g.freed.Load())) < 2*time.Second }

// gates holds one gate per endpoint id for the life of the process, so an endpoint's bound
// survives reloads of its config.
type gates struct {
	mu      sync.Mutex
	m       map[string]*gate
	perHost int
}

func (gs *gates) get(endpointID string) *gate {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	g, ok := gs.m[endpointID]
	if !ok {
		g = &gate{slots: make(chan struct{}, gs.perHost), maxWait: int32(4 * gs.perHost)}
		g.freed.Store(time.Now().UnixNano()) // a new gate counts as moving until its requests have had time to answer
		gs.m[endpointID] = g
	}
	return g
}
