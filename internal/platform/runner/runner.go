// Package runner runs a process's long-lived parts (servers, consumers, background loops) and
// stops them in a stated order, waiting for every one: one way for every binary and for the test
// stack to start and stop what they run.
//
// Services are grouped in stages. All start at once. When the context ends, or any service
// returns before then (a failure: the process should exit and be restarted rather than run on
// without it), the stages stop in order, first to last: a stage's context is cancelled and each
// of its services is waited for before the next stage's context is. A binary lists first what
// takes work in (the HTTP server, the consumer), then what flushes what they took (batchers,
// publishers), then the loops that only tidy up.
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Service is one long-lived part. Run runs until ctx ends and then returns, having finished
// what it holds; returning earlier is a failure, with or without an error.
type Service struct {
	Name string
	Run  func(ctx context.Context) error
}

// Loop adapts a loop that runs until ctx ends and reports nothing.
func Loop(name string, run func(ctx context.Context)) Service {
	return Service{Name: name, Run: func(ctx context.Context) error { run(ctx); return nil }}
}

// Stage is services stopped together.
type Stage []Service

var running = promauto.NewGaugeVec(prometheus.GaugeOpts{
	Name: "comms_service_running", Help: "Long-lived parts of the process running (1) or stopped (0), by name.",
}, []string{"service"})

// ErrStopped is returned (wrapped, naming the service) when a service returned before it was
// asked to stop.
var ErrStopped = errors.New("stopped before shutdown")

// Run runs every service of stages until ctx ends or one stops early, then stops the stages in
// order and waits for all of them. It returns the first failure, or nil after an orderly stop.
// The stages' contexts end with ctx's cause, so a part can tell a kill from a shutdown.
func Run(ctx context.Context, log *slog.Logger, stages ...Stage) error {
	failed := make(chan error, 1)
	fail := func(err error) {
		select {
		case failed <- err:
		default:
		}
	}
	type stage struct {
		cancel context.CancelCauseFunc
		wg     sync.WaitGroup
	}
	started := make([]*stage, len(stages))
	var stopping sync.Mutex // held once shutdown begins; a service returning then is not a failure
	shutdown := false
	for i, services := range stages {
		sctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
		st := &stage{cancel: cancel}
		started[i] = st
		for _, svc := range services {
			st.wg.Add(1)
			running.WithLabelValues(svc.Name).Set(1)
			go func() {
				defer st.wg.Done()
				err := svc.Run(sctx)
				running.WithLabelValues(svc.Name).Set(0)
				stopping.Lock()
				early := !shutdown && sctx.Err() == nil
				stopping.Unlock()
				switch {
				case early:
					if err == nil {
						err = ErrStopped
					}
					log.Error("service stopped before shutdown; stopping the process", "service", svc.Name, "err", err)
					fail(fmt.Errorf("%s: %w", svc.Name, err))
				case err != nil:
					log.Error("service failed while stopping", "service", svc.Name, "err", err)
					fail(fmt.Errorf("%s: %w", svc.Name, err))
				}
			}()
		}
	}
	var first error
	select {
	case <-ctx.Done():
	case first = <-failed:
	}
	stopping.Lock()
	shutdown = true
	stopping.Unlock()
	// Each stage stops for the process's cause (a crash test's kill reaches every part).
	cause := context.Cause(ctx)
	for i, st := range started {
		st.cancel(cause)
		st.wg.Wait()
		log.Debug("stage stopped", "stage", i)
	}
	if first == nil {
		select {
		case first = <-failed:
		default:
		}
	}
	return first
}
