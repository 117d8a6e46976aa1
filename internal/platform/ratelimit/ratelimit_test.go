package ratelimit_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/platform/ratelimit"
	"github.com/logicspike/comms/internal/testing/testenv"
)

// Many replicas hitting one bucket at once get exactly the burst, no more: the script is atomic.
func TestBurstIsSharedAcrossConcurrentCallers(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 8 { // replicas
		l := ratelimit.New(rdb, prefix)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				r, err := l.Allow(context.Background(), "tenant-a", 0.001, 100) // next token in 1,000 s
				if err != nil {
					t.Error(err)
					return
				}
				if r.Allowed {
					allowed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := allowed.Load(); n != 100 {
		t.Fatalf("allowed %d of 400 against a burst of 100", n)
	}
	r, _ := ratelimit.New(rdb, prefix).Allow(context.Background(), "tenant-a", 0.001, 100)
	if r.Allowed || r.Wait < 900*time.Second || r.Remaining != 0 || r.Limit != 100 {
		t.Fatalf("denied result: %+v", r)
	}
	// Another bucket is untouched.
	if r, _ := ratelimit.New(rdb, prefix).Allow(context.Background(), "tenant-b", 0.001, 100); !r.Allowed || r.Remaining != 99 {
		t.Fatalf("tenant-b: %+v", r)
	}
}

func TestRefill(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	l := ratelimit.New(rdb, prefix)
	ctx := context.Background()
	for range 5 {
		if _, err := l.Allow(ctx, "k", 5, 5); err != nil {
			t.Fatal(err)
		}
	}
	r, _ := l.Allow(ctx, "k", 5, 5)
	if r.Allowed || r.Wait <= 0 || r.Wait > 200*time.Millisecond {
		t.Fatalf("empty bucket: %+v", r)
	}
	time.Sleep(r.Wait + 10*time.Millisecond)
	if r, _ := l.Allow(ctx, "k", 5, 5); !r.Allowed {
		t.Fatalf("after the wait it names: %+v", r)
	}
}

// Calls from many goroutines on one limiter share script runs, with several buckets and repeats
// of one bucket inside a run: each bucket still allows exactly its burst, each allowed call sees
// its own remaining count, and a bucket's denials do not spill onto another's.
func TestConcurrentCallsShareRunsAndKeepEachBucketExact(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	l := ratelimit.New(rdb, prefix)
	buckets := map[string]int{"a": 100, "b": 37, "c": 1}
	var (
		mu        sync.Mutex
		allowed   = map[string]int{}
		remaining = map[string]map[int]bool{}
		wg        sync.WaitGroup
	)
	for key := range buckets {
		remaining[key] = map[int]bool{}
	}
	for key, burst := range buckets {
		for range 3 * burst {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := l.Allow(context.Background(), key, 0.001, burst)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if r.Allowed {
					allowed[key]++
					if remaining[key][r.Remaining] {
						t.Errorf("bucket %s: two allowed calls both left %d tokens", key, r.Remaining)
					}
					remaining[key][r.Remaining] = true
				} else if r.Remaining != 0 || r.Wait <= 0 || r.Limit != burst {
					t.Errorf("bucket %s denied: %+v", key, r)
				}
			}()
		}
	}
	wg.Wait()
	for key, burst := range buckets {
		if allowed[key] != burst {
			t.Errorf("bucket %s allowed %d of %d calls against a burst of %d", key, allowed[key], 3*burst, burst)
		}
	}
}

// A batch takes its tokens whole or not at all: a refused batch leaves the bucket as it was.
func TestAllowNTakesAllOrNothing(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	l := ratelimit.New(rdb, prefix)
	ctx := context.Background()
	for _, step := range []struct {
		n         int
		allowed   bool
		remaining int
	}{{4, true, 6}, {7, false, 6}, {6, true, 0}, {1, false, 0}} {
		r, err := l.AllowN(ctx, "batch", 0.001, 10, step.n)
		if err != nil || r.Allowed != step.allowed || r.Remaining != step.remaining {
			t.Fatalf("AllowN(%d) = %+v, %v; want allowed %v, %d left", step.n, r, err, step.allowed, step.remaining)
		}
	}
}
