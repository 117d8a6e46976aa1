package worker_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/logicspike/comms/internal/dispatch/sweeper"
	"github.com/logicspike/comms/internal/dispatch/worker"
	"github.com/logicspike/comms/internal/testing/fakeprovider"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// TestCrashMidRunLosesNothing kills a worker in the middle of 5,000 messages over 20 tenants
// (in-flight work cancelled, nothing more recorded or committed, connections closed) and starts
// another. Every accepted message must reach a final state, and the provider may have seen a
// message twice only if it was inside the documented duplicate window: handed to the provider
// by the killed worker, with its outcome never recorded.
func TestCrashMidRunLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("5,000-message crash test")
	}
	t.Parallel()
	const tenants, perTenant = 20, 250
	s := stacktest.Start(t, stacktest.Options{
		Partitions:       4,
		SandboxLatencyMS: 5,
		Sweeper:          sweeper.Config{Interval: 100 * time.Millisecond, Grace: 2 * time.Second},
	})
	cfg := worker.Config{InFlight: 64, AttemptTimeout: time.Second, Lease: 2 * time.Second, CommitInterval: 50 * time.Millisecond}
	first := s.StartWorker(cfg)

	var (
		mu  sync.Mutex
		all []string
		wg  sync.WaitGroup
	)
	for range tenants {
		_, key := s.Tenant()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perTenant {
				id := s.Send(key, "", message.Request{Channel: message.SMS, To: "+14155550123", Text: fmt.Sprint("m", i)})
				mu.Lock()
				all = append(all, id)
				mu.Unlock()
			}
		}()
	}

	for s.Recorder.Total() < 1500 {
		time.Sleep(time.Millisecond)
	}
	first.Kill()

	// The duplicate window: messages the killed worker handed to the provider whose outcome it
	// never recorded.
	window := map[string]bool{}
	rows, err := s.Pool.Query(context.Background(), `SELECT id FROM communication.message_logs WHERE status = 'sending'`)
	if err != nil {
		t.Fatal(err)
	}
	sending, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range sending {
		if s.Recorder.Count(id) > 0 {
			window[id] = true
		}
	}
	sentBeforeCrash := s.Recorder.Total()

	s.StartWorker(cfg)
	wg.Wait()
	counts := s.WaitAllFinal(2 * time.Minute)

	if len(all) != tenants*perTenant || counts[message.Sent] != tenants*perTenant {
		t.Fatalf("accepted %d, final statuses %v: want every one of %d sent", len(all), counts, tenants*perTenant)
	}
	var dups, lost int
	for _, id := range all {
		switch n := s.Recorder.Count(id); {
		case n == 0:
			lost++
		case n > 1:
			dups++
			if !window[id] {
				t.Errorf("%s reached the provider %d times but was not in the duplicate window", id, n)
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d sent messages never reached the provider", lost)
	}
	t.Logf("crash test: %d messages, crash after %d provider sends, %d in the duplicate window, %d sent twice (%.2f%%)",
		len(all), sentBeforeCrash, len(window), dups, 100*float64(dups)/float64(len(all)))
}

// TestCrashDuringRetriesLosesNothing kills a worker while messages are failing, waiting on the
// retry tiers and being retried, and starts another: every message is sent in the end, and a
// message reaches the provider successfully twice only inside the documented duplicate window.
func TestCrashDuringRetriesLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test")
	}
	t.Parallel()
	tw := fakeprovider.NewTwilio()
	defer tw.Close()
	s := stacktest.Start(t, stacktest.Options{
		Partitions: 4,
		Env:        provider.Env{TwilioBaseURL: tw.URL},
		Sweeper:    sweeper.Config{Interval: 100 * time.Millisecond, Grace: 2 * time.Second, LeaseInterval: 200 * time.Millisecond},
	})
	cfg := retrying
	cfg.InFlight, cfg.AttemptTimeout, cfg.Lease, cfg.BreakerThreshold = 32, time.Second, 2*time.Second, 1_000_000
	first := s.StartWorker(cfg)

	const tenants, perTenant = 10, 40
	type sent struct{ tenant, id, to string }
	var all []sent
	for i := range tenants {
		tid, key := ownOnly(t, s)
		addTwilio(t, s, key, tw, "tw", "+14155550001", 1)
		for j := range perTenant {
			to := fmt.Sprintf("+1415556%02d%02d", i, j)
			tw.FailTimes(to, provider.ProviderUnavailable, 2) // two retries each, then success
			all = append(all, sent{tid, s.Send(key, "", message.Request{Channel: message.SMS, To: to, Text: "retry me"}), to})
		}
	}
	for len(tw.Received()) < 100 {
		time.Sleep(5 * time.Millisecond)
	}
	first.Kill()
	window := map[string]bool{} // recipients whose message was sending, with a success already at the provider
	rows, err := s.Pool.Query(context.Background(), `SELECT recipient FROM communication.message_logs WHERE status = 'sending'`)
	if err != nil {
		t.Fatal(err)
	}
	sending, _ := pgx.CollectRows(rows, pgx.RowTo[string])
	got := map[string]int{}
	for _, r := range tw.Received() {
		got[r.To]++
	}
	for _, to := range sending {
		if got[to] > 0 {
			window[to] = true
		}
	}
	s.StartWorker(cfg)
	counts := s.WaitAllFinal(2 * time.Minute)
	if counts[message.Sent] != len(all) {
		t.Fatalf("final statuses %v: want all %d sent", counts, len(all))
	}
	clear(got)
	for _, r := range tw.Received() {
		got[r.To]++
	}
	dups := 0
	for _, m := range all {
		switch n := got[m.to]; {
		case n == 0:
			t.Fatalf("%s is sent but never reached the provider", m.id)
		case n > 1:
			dups++
			if !window[m.to] {
				t.Errorf("%s reached the provider %d times outside the duplicate window", m.id, n)
			}
		}
		if mm := getMessage(t, s, m.tenant, m.id); mm.Attempts < 3 {
			t.Fatalf("%s sent after %d attempts; the fake fails the first two", m.id, mm.Attempts)
		}
	}
	t.Logf("crash during retries: %d messages, killed after %d provider successes, %d in the duplicate window, %d sent twice", len(all), 100, len(window), dups)
}
