package ratelimit_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/testenv"
	"github.com/logicspike/comms/pkg/ratelimit"
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
