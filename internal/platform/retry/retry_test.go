package retry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/platform/retry"
)

// An outage is waited out, a permanent error is not retried, and the context bounds the wait.
func TestUntilDoneWaitsOutFailuresWithinItsContext(t *testing.T) {
	calls := 0
	if err := retry.UntilDone(context.Background(), func() error {
		if calls++; calls < 4 {
			return errors.New("database unreachable")
		}
		return nil
	}); err != nil || calls != 4 {
		t.Fatalf("after %d calls: %v, want success on the 4th", calls, err)
	}
	stop := errors.New("stopped")
	calls = 0
	if err := retry.UntilDone(context.Background(), func() error { calls++; return retry.Permanent(stop) }); !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("permanent: %v after %d calls", err, calls)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := retry.UntilDone(ctx, func() error { return errors.New("down") }); err == nil {
		t.Fatal("a failure that outlasts the context must be returned")
	}
	if b := retry.Backoff(); b.InitialInterval != 50*time.Millisecond || b.MaxInterval != 5*time.Second || b.MaxElapsedTime != 0 {
		t.Fatalf("backoff %v..%v, gives up after %v", b.InitialInterval, b.MaxInterval, b.MaxElapsedTime)
	}
}
