package runner_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/logicspike/comms/internal/platform/runner"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// recorder notes the order in which services stop.
type recorder struct {
	mu      sync.Mutex
	stopped []string
}

func (r *recorder) service(name string, linger time.Duration) runner.Service {
	return runner.Service{Name: name, Run: func(ctx context.Context) error {
		<-ctx.Done()
		time.Sleep(linger) // finishing what it holds
		r.mu.Lock()
		r.stopped = append(r.stopped, name)
		r.mu.Unlock()
		return nil
	}}
}

// Stages stop in order, each waited for before the next, however long its services take.
func TestStagesStopInOrderAndAreWaitedFor(t *testing.T) {
	var r recorder
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- runner.Run(ctx, quiet,
			runner.Stage{r.service("http", 30*time.Millisecond), r.service("consumer", 10*time.Millisecond)},
			runner.Stage{r.service("batcher", 0)},
			runner.Stage{r.service("sweeper", 0), r.service("listener", 5*time.Millisecond)})
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("orderly stop returned %v", err)
	}
	pos := func(name string) int { return slices.Index(r.stopped, name) }
	if len(r.stopped) != 5 || pos("batcher") < pos("http") || pos("batcher") < pos("consumer") ||
		pos("sweeper") < pos("batcher") || pos("listener") < pos("batcher") {
		t.Fatalf("stop order %v: want http and consumer, then batcher, then sweeper and listener", r.stopped)
	}
}

// A service that returns before shutdown stops the whole process, in order, and Run names it.
func TestAServiceStoppingEarlyStopsEverything(t *testing.T) {
	var r recorder
	boom := errors.New("connection lost")
	err := runner.Run(context.Background(), quiet,
		runner.Stage{r.service("http", 0)},
		runner.Stage{{Name: "publisher", Run: func(context.Context) error { return boom }}, r.service("sweeper", 0)})
	if !errors.Is(err, boom) || err.Error() != "publisher: connection lost" {
		t.Fatalf("Run = %v, want the publisher's failure", err)
	}
	if !slices.Equal(r.stopped, []string{"http", "sweeper"}) {
		t.Fatalf("stopped %v, want http then sweeper", r.stopped)
	}
	// Returning nil early is a failure too: nothing may stop working silently.
	err = runner.Run(context.Background(), quiet, runner.Stage{runner.Loop("fold", func(context.Context) {})})
	if !errors.Is(err, runner.ErrStopped) {
		t.Fatalf("a loop returning early: %v, want ErrStopped", err)
	}
}

// Each stage stops for the process's cause, so a part can tell a kill (a crash test's) from a
// shutdown.
func TestStagesStopForTheProcesssCause(t *testing.T) {
	killed := errors.New("killed")
	causes := make(chan error, 2)
	svc := func(name string) runner.Service {
		return runner.Service{Name: name, Run: func(ctx context.Context) error {
			<-ctx.Done()
			causes <- context.Cause(ctx)
			return nil
		}}
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(killed)
	if err := runner.Run(ctx, quiet, runner.Stage{svc("a")}, runner.Stage{svc("b")}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if c := <-causes; !errors.Is(c, killed) {
			t.Fatalf("a stage stopped for %v, want the process's cause", c)
		}
	}
}
