// Package batch coalesces concurrent single-item calls into batched calls, so many requests
// share one database round trip.
//
// A batch is flushed when it is full or when linger has passed since its first item, whichever
// comes first; while every flush slot is busy, items keep accumulating. The linger is what makes
// batches form at moderate rates: without it a free slot flushes every item alone, and each flush
// is a database transaction.
package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrStopped is returned by Do once the batcher has stopped.
var ErrStopped = errors.New("batcher stopped")

// Func processes a batch and returns one result per item, in order. An error fails every item,
// unless the batcher isolates it (Options.IsolateFailures).
type Func[In, Out any] func(ctx context.Context, items []In) ([]Out, error)

// Done is the result of an item whose batch function answers only with an error (NewErr).
type Done struct{}

// Options shape a batcher.
type Options struct {
	// Size is the most items in one call of the batch function (at least 1).
	Size int
	// Concurrency is the most calls of the batch function in flight (at least 1).
	Concurrency int
	// Linger is how long a batch waits for company after its first item; 0 takes what is
	// already queued and goes.
	Linger time.Duration
	// IsolateFailures, when set, makes a batch that fails with an error for which it is true be
	// split in halves and each half run again, down to the single item that fails: callers whose
	// items are good get their results, and only the culprit gets the error. Batches mix callers
	// (tenants, requests), so without it one caller's bad item fails everyone beside it. Errors
	// for which it is false (the database is unreachable, say) fail the whole batch at once, as
	// splitting would only multiply the calls. A panicking function counts as an item's failure.
	// The batch function must then be all or nothing (one statement or one transaction).
	IsolateFailures func(error) bool
	// Queue is how many submitted items may wait for a batch (default Size × Concurrency). Past
	// it Do waits and TrySubmit refuses.
	Queue int
}

// Batcher runs Func over batches of items submitted by Do.
type Batcher[In, Out any] struct {
	fn       Func[In, Out]
	isolate  func(error) bool
	maxSize  int
	linger   time.Duration
	slots    chan struct{}
	in       chan call[In, Out]
	stopped  chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

type call[In, Out any] struct {
	item In
	res  chan result[Out]
}

type result[Out any] struct {
	out Out
	err error
}

// New returns a batcher running fn over batches shaped by o. Start it with Run.
func New[In, Out any](fn Func[In, Out], o Options) *Batcher[In, Out] {
	size, concurrency := max(1, o.Size), max(1, o.Concurrency)
	queue := o.Queue
	if queue <= 0 {
		queue = size * concurrency
	}
	return &Batcher[In, Out]{
		fn:      fn,
		isolate: o.IsolateFailures,
		maxSize: size,
		linger:  o.Linger,
		slots:   make(chan struct{}, concurrency),
		in:      make(chan call[In, Out], queue),
		stopped: make(chan struct{}),
	}
}

// NewErr returns a batcher for a function that answers for the whole batch with one error, which
// every caller of the batch gets (or nil).
func NewErr[In any](fn func(ctx context.Context, items []In) error, o Options) *Batcher[In, Done] {
	return New(func(ctx context.Context, items []In) ([]Done, error) {
		if err := fn(ctx, items); err != nil {
			return nil, err
		}
		return make([]Done, len(items)), nil
	}, o)
}

// Do submits item and waits for its result. If ctx ends first, Do returns ctx.Err() but the item
// may still be processed: callers that need to know must make processing idempotent.
func (b *Batcher[In, Out]) Do(ctx context.Context, item In) (Out, error) {
	c := call[In, Out]{item: item, res: make(chan result[Out], 1)}
	var zero Out
	select {
	case <-b.stopped:
		return zero, ErrStopped
	default:
	}
	select {
	case b.in <- c:
	case <-b.stopped:
		return zero, ErrStopped
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	select {
	case r := <-c.res:
		return r.out, r.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// TrySubmit queues item without waiting for its result, and reports false if the batcher is
// stopped or its queue is full. Errors of fire-and-forget items are the Func's to handle.
func (b *Batcher[In, Out]) TrySubmit(item In) bool {
	select {
	case <-b.stopped:
		return false
	default:
	}
	select {
	case b.in <- call[In, Out]{item: item}:
		return true
	default:
		return false
	}
}

// Run flushes batches until ctx ends, then flushes what was already submitted and waits for every
// flush to finish. Flushes run with a context that is not cancelled by ctx, so accepted work
// completes during shutdown.
func (b *Batcher[In, Out]) Run(ctx context.Context) {
	flushCtx := context.WithoutCancel(ctx)
	defer func() {
		b.stopOnce.Do(func() { close(b.stopped) })
		// Items that raced past the stopped check are still in the channel: flush them too.
		for {
			batch := b.drain(nil)
			if len(batch) == 0 {
				break
			}
			b.slots <- struct{}{}
			b.flush(flushCtx, batch)
		}
		b.wg.Wait()
	}()
	for {
		select {
		case b.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		var first call[In, Out]
		select {
		case first = <-b.in:
		case <-ctx.Done():
			<-b.slots
			return
		}
		batch := b.fill(ctx, []call[In, Out]{first})
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			b.flush(flushCtx, batch)
		}()
	}
}

// fill collects items until the batch is full, linger has passed, or ctx ends.
func (b *Batcher[In, Out]) fill(ctx context.Context, batch []call[In, Out]) []call[In, Out] {
	if b.linger <= 0 {
		return b.drain(batch)
	}
	t := time.NewTimer(b.linger)
	defer t.Stop()
	for len(batch) < b.maxSize {
		select {
		case c := <-b.in:
			batch = append(batch, c)
		case <-t.C:
			return b.drain(batch)
		case <-ctx.Done():
			return b.drain(batch)
		}
	}
	return batch
}

// drain appends whatever is immediately available, up to maxSize items.
func (b *Batcher[In, Out]) drain(batch []call[In, Out]) []call[In, Out] {
	for len(batch) < b.maxSize {
		select {
		case c := <-b.in:
			batch = append(batch, c)
		default:
			return batch
		}
	}
	return batch
}

func (b *Batcher[In, Out]) flush(ctx context.Context, batch []call[In, Out]) {
	defer func() { <-b.slots }()
	items := make([]In, len(batch))
	for i, c := range batch {
		items[i] = c.item
	}
	b.run(ctx, batch, items)
}

// run calls fn over items and answers each call, splitting a failed batch when isolating.
func (b *Batcher[In, Out]) run(ctx context.Context, batch []call[In, Out], items []In) {
	outs, err := b.safeCall(ctx, items)
	if err == nil && len(outs) != len(items) {
		err = fmt.Errorf("batch function returned %d results for %d items", len(outs), len(items))
	}
	if err != nil && len(items) > 1 && b.isolate != nil && (errors.Is(err, errPanicked) || b.isolate(err)) && ctx.Err() == nil {
		half := len(items) / 2
		b.run(ctx, batch[:half], items[:half])
		b.run(ctx, batch[half:], items[half:])
		return
	}
	for i, c := range batch {
		if c.res == nil {
			continue // submitted with TrySubmit
		}
		if err != nil {
			c.res <- result[Out]{err: err}
		} else {
			c.res <- result[Out]{out: outs[i]}
		}
	}
}

var errPanicked = errors.New("batch function panicked")

func (b *Batcher[In, Out]) safeCall(ctx context.Context, items []In) (outs []Out, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errPanicked, r)
		}
	}()
	return b.fn(ctx, items)
}
