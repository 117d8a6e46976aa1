package retrier_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/dispatch/retrier"
	"github.com/logicspike/comms/internal/queue"
	"github.com/logicspike/comms/internal/testing/testenv"
)

func topics() []string { return queue.AllTopics() }

// run starts a retrier on brokers and returns a function that stops it and waits for it.
func run(t *testing.T, brokers []string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		retrier.New(retrier.Config{Brokers: brokers, Group: "test-retrier", CommitInterval: 20 * time.Millisecond},
			slog.New(slog.NewTextHandler(io.Discard, nil))).Run(ctx)
	}()
	var stopped bool
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return stop
}

// started starts a retrier on a new broker for the test, and returns the brokers, the retrier and
// a producer to put intents on its tiers.
func started(t *testing.T) ([]string, *retrier.Retrier, *queue.Producer) {
	t.Helper()
	brokers := testenv.Kafka(t, 3, topics()...)
	out := queue.NewProducer(brokers, "")
	t.Cleanup(func() { _ = out.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	r := retrier.New(retrier.Config{Brokers: brokers, Group: "test-retrier", CommitInterval: 20 * time.Millisecond},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	go r.Run(ctx)
	return brokers, r, out
}

// released reads n intents back from comms.send, noting when each arrived and when it was
// produced (the record's timestamp, set by the retrier's writer, to the millisecond).
func released(t *testing.T, brokers []string, group string, n int, within time.Duration) (arrived, produced map[string]time.Time) {
	t.Helper()
	c := queue.NewGroupReader(brokers, group, queue.TopicSend)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	got, produced := map[string]time.Time{}, map[string]time.Time{}
	for len(got) < n {
		m, err := c.Fetch(ctx)
		if err != nil {
			t.Fatalf("%d of %d intents back on %s: %v", len(got), n, queue.TopicSend, err)
		}
		env, err := queue.Decode(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := got[env.MessageID]; dup {
			// Allowed: a rebalance of the retrier's group (its tiers join one by one, later on a
			// loaded machine) hands a partition back from its last commit, and the claim absorbs
			// the repeat. Order and due times are what these tests hold.
			t.Logf("%s released twice", env.MessageID)
			continue
		}
		got[env.MessageID], produced[env.MessageID] = time.Now(), m.Time
	}
	return got, produced
}

func TestIntentsComeBackWhenDueNotBeforeAndInDueOrder(t *testing.T) {
	t.Parallel()
	brokers := testenv.Kafka(t, 3, topics()...)
	out := queue.NewProducer(brokers, "")
	defer out.Close()

	// Once the retrier is reading the tier (an overdue intent came back through it)...
	run(t, brokers)
	tier := queue.RetryTopic(5 * time.Second)
	if err := out.PublishRouted(context.Background(), queue.Routed{Topic: tier, Envelope: queue.Envelope{
		MessageID: "warm", TenantID: "ten_a", Channel: "sms", Attempt: 2, EnqueuedAt: time.Now(), NotBefore: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	released(t, brokers, "warm-up", 1, 20*time.Second)

	// ...four intents published in the reverse of their due order, on one tier; one is overdue.
	now := time.Now()
	dues := map[string]time.Time{}
	var rs []queue.Routed
	for i, after := range []time.Duration{900 * time.Millisecond, 600 * time.Millisecond, 300 * time.Millisecond, -time.Second} {
		id := fmt.Sprintf("msg_%d", i)
		dues[id] = now.Add(after)
		rs = append(rs, queue.Routed{Topic: tier, Envelope: queue.Envelope{
			MessageID: id, TenantID: "ten_a", Channel: "sms", Attempt: 2, EnqueuedAt: now, NotBefore: dues[id]}})
	}
	if err := out.PublishRouted(context.Background(), rs...); err != nil {
		t.Fatal(err)
	}
	got, produced := released(t, brokers, "reader", len(dues)+1, 20*time.Second)
	for id, at := range got {
		if at.Before(dues[id]) {
			t.Errorf("%s released %s before it was due", id, dues[id].Sub(at))
		}
	}
	// 300 ms apart: each is put back after the one due before it. (When they arrive here says
	// nothing about that: a late reader finds them all waiting, and fetches partition by partition.)
	for i := 0; i < 3; i++ {
		later, earlier := fmt.Sprintf("msg_%d", i), fmt.Sprintf("msg_%d", i+1)
		if !produced[later].After(produced[earlier]) {
			t.Errorf("%s (due %s) came back before %s (due %s)", later, dues[later].Format(time.StampMilli), earlier, dues[earlier].Format(time.StampMilli))
		}
	}
}

// A retrier stopped while intents wait does not commit them: the next one releases them, on time.
func TestWaitingIntentsSurviveARestart(t *testing.T) {
	t.Parallel()
	brokers := testenv.Kafka(t, 3, topics()...)
	out := queue.NewProducer(brokers, "")
	defer out.Close()
	due := time.Now().Add(1500 * time.Millisecond)
	var rs []queue.Routed
	for i := range 20 {
		rs = append(rs, queue.Routed{Topic: queue.RetryTopic(30 * time.Second), Envelope: queue.Envelope{
			MessageID: fmt.Sprintf("msg_%d", i), TenantID: "ten_a", Channel: "sms", Attempt: 2, EnqueuedAt: time.Now(), NotBefore: due}})
	}
	if err := out.PublishRouted(context.Background(), rs...); err != nil {
		t.Fatal(err)
	}
	stop := run(t, brokers)
	time.Sleep(500 * time.Millisecond) // fetched and waiting
	stop()
	run(t, brokers)
	got, _ := released(t, brokers, "reader", len(rs), 30*time.Second)
	for id, at := range got {
		if at.Before(due) {
			t.Errorf("%s released %s early", id, due.Sub(at))
		}
	}
}

// Release brings back at once the intents parked for a tenant whose provider recovered, and only
// those: another tenant's parked intents and a retry waiting out its backoff keep their times.
func TestReleaseBringsBackOnlyTheTenantsParkedIntents(t *testing.T) {
	t.Parallel()
	brokers, r, out := started(t)

	later := time.Now().Add(time.Hour)
	intent := func(id, tenant string, parks int, parked bool) queue.Routed {
		return queue.Routed{Topic: queue.RetryTopic(time.Hour), Envelope: queue.Envelope{
			MessageID: id, TenantID: tenant, Channel: "sms", Attempt: 1, Parks: parks, Parked: parked, EnqueuedAt: time.Now(), NotBefore: later}}
	}
	// "retried" was parked once, then claimed and failed: it waits out a real backoff now.
	if err := out.PublishRouted(context.Background(),
		intent("parked_1", "ten_a", 1, true), intent("parked_2", "ten_a", 3, true), intent("other", "ten_b", 1, true),
		intent("backoff", "ten_a", 0, false), intent("retried", "ten_a", 1, false)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for r.Waiting() < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("the retrier holds %d of 5 intents", r.Waiting())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := r.Release("ten_a"); n != 2 {
		t.Fatalf("released %d intents, want ten_a's 2 parked ones", n)
	}
	got, _ := released(t, brokers, "reader", 2, 20*time.Second)
	if _, ok := got["parked_1"]; !ok {
		t.Fatalf("released %v", got)
	}
	if _, ok := got["parked_2"]; !ok {
		t.Fatalf("released %v", got)
	}
}

// ReleaseOne brings back the tenant's parked intent due soonest, not another tenant's, another
// parked one or a retry waiting out its backoff: it carries the probe of a breaker whose cooldown
// ended with no intent to carry it.
func TestReleaseOneBringsBackTheTenantsSoonestParkedIntent(t *testing.T) {
	t.Parallel()
	brokers, r, out := started(t)

	intent := func(id, tenant string, in time.Duration, parked bool) queue.Routed {
		return queue.Routed{Topic: queue.RetryTopic(in), Envelope: queue.Envelope{
			MessageID: id, TenantID: tenant, Channel: "sms", Attempt: 1, Parks: 1, Parked: parked, EnqueuedAt: time.Now(), NotBefore: time.Now().Add(in)}}
	}
	// On different tiers; the soonest of all is another tenant's, then a real backoff.
	if err := out.PublishRouted(context.Background(),
		intent("later", "ten_a", time.Hour, true), intent("soonest", "ten_a", 4*time.Minute, true),
		intent("other", "ten_b", time.Minute, false), intent("backoff", "ten_a", 2*time.Minute, false)); err != nil {
		t.Fatal(err)
	}
	// A rebalance of the retrier's group (its tiers join one by one) may fetch an intent twice,
	// so the retrier holds at least the four.
	deadline := time.Now().Add(20 * time.Second)
	for r.Waiting() < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("the retrier holds %d of 4 intents", r.Waiting())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r.ReleaseOne("ten_c") {
		t.Fatal("released an intent for a tenant with none parked")
	}
	if !r.ReleaseOne("ten_a") {
		t.Fatal("released none of ten_a's parked intents")
	}
	// The others are due in a minute or more: the first back is the one released.
	got, _ := released(t, brokers, "reader", 1, 20*time.Second)
	if _, ok := got["soonest"]; !ok {
		t.Fatalf("released %v, want ten_a's soonest parked intent", got)
	}
}

// An intent parked before its tenant's release that reaches the retrier only after it (it was on
// its way through its tier, or a rebalance handed it over again) is released too, rather than
// waiting out its park: one parked after the release, or another tenant's, keeps its time.
func TestIntentParkedBeforeAReleaseThatArrivesAfterItIsReleased(t *testing.T) {
	t.Parallel()
	brokers, r, out := started(t)

	intent := func(id, tenant string, parkedAt time.Time, parked bool) queue.Routed {
		return queue.Routed{Topic: queue.RetryTopic(time.Hour), Envelope: queue.Envelope{
			MessageID: id, TenantID: tenant, Channel: "sms", Attempt: 1, Parks: 2, Parked: parked, EnqueuedAt: parkedAt, NotBefore: parkedAt.Add(time.Hour)}}
	}
	// Nothing is held yet: the release finds nothing, and is remembered.
	if n := r.Release("ten_a"); n != 0 {
		t.Fatalf("released %d intents from an empty retrier", n)
	}
	releasedAt := time.Now()
	if err := out.PublishRouted(context.Background(),
		intent("after", "ten_a", releasedAt.Add(time.Minute), true), intent("other", "ten_b", releasedAt.Add(-time.Second), true),
		intent("backoff", "ten_a", releasedAt.Add(-time.Second), false), intent("late", "ten_a", releasedAt.Add(-time.Second), true)); err != nil {
		t.Fatal(err)
	}
	// The others are due in an hour: the first back must be the late one, and within seconds.
	got, _ := released(t, brokers, "reader", 1, 20*time.Second)
	if _, ok := got["late"]; !ok {
		t.Fatalf("released %v, want the intent parked before the release", got)
	}
	deadline := time.Now().Add(20 * time.Second)
	for r.Waiting() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the retrier holds %d of the 3 intents that keep their times", r.Waiting())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
