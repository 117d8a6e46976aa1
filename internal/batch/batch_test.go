package batch

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestConcurrentCallsShareBatchesAndGetTheirOwnResults(t *testing.T) {
	var calls, maxSize atomic.Int64
	b := New(func(_ context.Context, in []int) ([]int, error) {
		calls.Add(1)
		if n := int64(len(in)); n > maxSize.Load() {
			maxSize.Store(n)
		}
		out := make([]int, len(in))
		for i, v := range in {
			out[i] = v * 2
		}
		return out, nil
	}, Options{Size: 50, Concurrency: 1, Linger: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	go b.Run(ctx)
	defer cancel()

	const n = 200
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := b.Do(context.Background(), i)
			if err != nil || got != i*2 {
				t.Errorf("Do(%d) = %d, %v", i, got, err)
			}
		}()
	}
	wg.Wait()
	if calls.Load() >= n {
		t.Fatalf("%d calls for %d items: nothing was batched", calls.Load(), n)
	}
	if maxSize.Load() > 50 {
		t.Fatalf("a batch of %d exceeded the maximum of 50", maxSize.Load())
	}
}

func TestErrorsAndPanicsFailTheirBatch(t *testing.T) {
	boom := errors.New("boom")
	for name, fn := range map[string]Func[int, int]{
		"error": func(context.Context, []int) ([]int, error) { return nil, boom },
		"panic": func(context.Context, []int) ([]int, error) { panic("bad") },
		"short": func(context.Context, []int) ([]int, error) { return nil, nil },
	} {
		t.Run(name, func(t *testing.T) {
			b := New(fn, Options{Size: 10, Concurrency: 1})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go b.Run(ctx)
			if _, err := b.Do(context.Background(), 1); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}

func TestStopFlushesSubmittedItemsThenRefuses(t *testing.T) {
	var flushed atomic.Int64
	b := NewErr(func(_ context.Context, in []int) error {
		time.Sleep(10 * time.Millisecond)
		flushed.Add(int64(len(in)))
		return nil
	}, Options{Size: 5, Concurrency: 4, Linger: time.Millisecond}) // queue capacity 5×4 = 20
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	for i := 0; i < 20; i++ {
		if !b.TrySubmit(i) {
			t.Fatalf("TrySubmit %d refused", i)
		}
	}
	cancel()
	<-done
	if flushed.Load() != 20 {
		t.Fatalf("flushed %d of 20 submitted items on stop", flushed.Load())
	}
	if _, err := b.Do(context.Background(), 1); !errors.Is(err, ErrStopped) {
		t.Fatalf("Do after stop: %v", err)
	}
	if b.TrySubmit(1) {
		t.Fatal("TrySubmit accepted after stop")
	}
}

func TestIsolatedBatchFailsOnlyTheBadItem(t *testing.T) {
	errBad := errors.New("bad row")
	var calls atomic.Int64
	b := New(func(_ context.Context, in []int) ([]int, error) {
		calls.Add(1)
		for _, v := range in {
			switch v % 100 {
			case 7:
				return nil, errBad
			case 13:
				panic("bad row")
			}
		}
		return in, nil
	}, Options{Size: 64, Concurrency: 2, Linger: 5 * time.Millisecond, IsolateFailures: func(err error) bool { return errors.Is(err, errBad) }})
	ctx, cancel := context.WithCancel(context.Background())
	go b.Run(ctx)
	defer cancel()

	const n = 1000
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := b.Do(context.Background(), i)
			bad := i%100 == 7 || i%100 == 13
			switch {
			case bad && err == nil:
				t.Errorf("Do(%d) succeeded; its item is bad", i)
			case bad:
				failed.Add(1)
			case err != nil || got != i:
				t.Errorf("Do(%d) = %d, %v: a good item failed beside a bad one", i, got, err)
			}
		}()
	}
	wg.Wait()
	if failed.Load() != 20 {
		t.Fatalf("%d items failed, want the 20 bad ones", failed.Load())
	}
	if calls.Load() >= 4*n {
		t.Fatalf("%d calls for %d items: splitting went far beyond the bad items", calls.Load(), n)
	}
}

func TestUnisolatedErrorsFailTheWholeBatchAtOnce(t *testing.T) {
	errDown := errors.New("database unreachable")
	var calls atomic.Int64
	b := New(func(_ context.Context, in []int) ([]int, error) {
		calls.Add(1)
		return nil, errDown
	}, Options{Size: 64, Concurrency: 1, Linger: 20 * time.Millisecond, IsolateFailures: func(err error) bool { return false }})
	ctx, cancel := context.WithCancel(context.Background())
	go b.Run(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := b.Do(context.Background(), i); !errors.Is(err, errDown) {
				t.Errorf("Do(%d) = %v, want the batch's error", i, err)
			}
		}()
	}
	wg.Wait()
	if calls.Load() >= 32 {
		t.Fatalf("%d calls for 32 items: an error that is not an item's was split", calls.Load())
	}
}

// The queue holds what Options.Queue says, then refuses: fire-and-forget items never pile up
// without bound.
func TestTrySubmitIsBoundedByTheQueue(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want int
	}{
		{Options{Size: 10, Concurrency: 2}, 20},
		{Options{Size: 10, Concurrency: 2, Queue: 35}, 35},
	} {
		b := NewErr(func(context.Context, []int) error { return nil }, tc.opts)
		accepted := 0
		for i := 0; i < 100; i++ {
			if b.TrySubmit(i) {
				accepted++
			}
		}
		if accepted != tc.want {
			t.Errorf("%+v: TrySubmit accepted %d of 100 before Run, want %d", tc.opts, accepted, tc.want)
		}
	}
}
