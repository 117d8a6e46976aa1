package worker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/logicspike/comms/internal/dispatch/sweeper"
	"github.com/logicspike/comms/internal/dispatch/worker"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/queue"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

var fast = worker.Config{CommitInterval: 20 * time.Millisecond, DrainTimeout: 10 * time.Second}

func sms(text string) message.Request {
	return message.Request{Channel: message.SMS, To: "+14155550123", Text: text}
}

func getMessage(t *testing.T, s *stacktest.Stack, tenantID, id string) message.Message {
	t.Helper()
	m, err := s.Store.GetMessage(context.Background(), tenantID, id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDeliversEveryMessageOnceWithTimeline(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	s.StartWorker(fast)
	tenants := map[string]string{}
	var ids []string
	for range 2 {
		tid, key := s.Tenant()
		for i := range 10 {
			id := s.Send(key, "", sms(fmt.Sprint("hello ", i)))
			tenants[id] = tid
			ids = append(ids, id)
		}
	}
	counts := s.WaitAllFinal(30 * time.Second)
	if counts[message.Sent] != 20 {
		t.Fatalf("statuses %v, want 20 sent", counts)
	}
	for _, id := range ids {
		if n := s.Recorder.Count(id); n != 1 {
			t.Fatalf("%s reached the provider %d times", id, n)
		}
		m := getMessage(t, s, tenants[id], id)
		var seq []message.Status
		for _, e := range m.Events {
			seq = append(seq, e.Status)
		}
		if fmt.Sprint(seq) != "[queued sending sent]" || m.ProviderType != "sandbox" || m.ProviderMessageID == "" || m.ProviderConfigID == "" {
			t.Fatalf("message %s: %+v events %v", id, m, seq)
		}
	}
}

// stageSamples reads how many times comms_dispatch_stage_seconds observed stage, in this process.
func stageSamples(t *testing.T, stage string) uint64 {
	return histogramSamples(t, "comms_dispatch_stage_seconds", "stage", stage)
}

// histogramSamples is how many observations the histogram family holds under label=value.
func histogramSamples(t *testing.T, family, label, value string) uint64 {
	t.Helper()
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != family {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

// Other tests in this package dispatch concurrently, so the counts may grow by more than this
// test's messages, never by less.
func TestDispatchStagesAreTimed(t *testing.T) {
	t.Parallel()
	stages := []string{"queue", "claim", "record"}
	before := map[string]uint64{}
	for _, st := range stages {
		before[st] = stageSamples(t, st)
	}
	sentBefore := histogramSamples(t, "comms_accepted_to_sent_seconds", "channel", "sms")
	s := stacktest.Start(t, stacktest.Options{})
	s.StartWorker(fast)
	_, key := s.Tenant()
	for i := range 5 {
		s.Send(key, "", sms(fmt.Sprint("timed ", i)))
	}
	if counts := s.WaitAllFinal(30 * time.Second); counts[message.Sent] != 5 {
		t.Fatalf("statuses %v, want 5 sent", counts)
	}
	for _, st := range stages {
		if got := stageSamples(t, st) - before[st]; got < 5 {
			t.Errorf("stage %s timed %d more times, want at least 5 (one per message)", st, got)
		}
	}
	if got := histogramSamples(t, "comms_accepted_to_sent_seconds", "channel", "sms") - sentBefore; got < 5 {
		t.Errorf("accepted → sent timed %d more times, want at least 5", got)
	}
}

func TestProviderFailureIsRecordedWithItsReason(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	s.StartWorker(fast)
	tid, key := s.Tenant()
	id := s.Send(key, "", message.Request{Channel: message.SMS, To: "+15005550001", Text: "x"})
	s.WaitAllFinal(30 * time.Second)
	m := getMessage(t, s, tid, id)
	if m.Status != message.Failed || m.Error == nil || m.Error.Code != string(provider.InvalidRecipient) || m.Error.Message == "" {
		t.Fatalf("failed message: %+v", m)
	}
	last := m.Events[len(m.Events)-1]
	if last.Status != message.Failed || last.ErrorCode != string(provider.InvalidRecipient) || last.Reason == "" {
		t.Fatalf("failure event: %+v", last)
	}
}

func TestNoProviderWhenFallbackForbidden(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	s.StartWorker(fast)
	ctx := context.Background()
	tn, err := s.Store.CreateTenant(ctx, domain.NewTenant{Name: "strict", AllowSystemFallback: false})
	if err != nil {
		t.Fatal(err)
	}
	_, key, _ := s.Store.CreateAPIKey(ctx, domain.KindTenant, tn.ID, "k", nil)
	id := s.Send(key, "", sms("x"))
	s.WaitAllFinal(30 * time.Second)
	m := getMessage(t, s, tn.ID, id)
	if m.Status != message.Failed || m.Error.Code != string(provider.NoProvider) || s.Recorder.Count(id) != 0 {
		t.Fatalf("message %+v (provider saw it %d times)", m, s.Recorder.Count(id))
	}
}

func TestRedeliveredIntentIsNotSentAgain(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	s.StartWorker(fast)
	tid, key := s.Tenant()
	id := s.Send(key, "", sms("once"))
	s.WaitAllFinal(30 * time.Second)

	// Redeliver the same intent, as Kafka may after a rebalance, several times.
	env := queue.Envelope{MessageID: id, TenantID: tid, Channel: message.SMS, Attempt: 1, EnqueuedAt: time.Now()}
	for range 5 {
		if err := s.Producer.Publish(context.Background(), env); err != nil {
			t.Fatal(err)
		}
	}
	// A marker published after the duplicates is processed after them (same tenant, same
	// partition): once it is sent, the duplicates have been seen.
	marker := s.Send(key, "", sms("marker"))
	s.WaitAllFinal(30 * time.Second)
	if s.Recorder.Count(marker) != 1 {
		t.Fatal("marker not delivered")
	}
	if n := s.Recorder.Count(id); n != 1 {
		t.Fatalf("redelivered intent reached the provider %d times", n)
	}
	if m := getMessage(t, s, tid, id); len(m.Events) != 3 {
		t.Fatalf("redelivery added events: %+v", m.Events)
	}
}

func TestTenantsInOnePartitionAreProcessedConcurrently(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{Partitions: 1, SandboxLatencyMS: 50})
	cfg := fast
	cfg.InFlight, cfg.PerConfigInFlight = 8, 8 // one provider (the sandbox): no bulkhead below in-flight
	for range 4 {
		_, key := s.Tenant()
		for range 10 {
			s.Send(key, "", sms("x"))
		}
	}
	// The worker starts once every intent waits on the topic: sent one by one beside a running
	// worker, they can arrive slower than a 50 ms send on a loaded machine, and then nothing
	// overlaps whatever the worker allows.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		lag, err := queue.GroupLag(context.Background(), s.Brokers, s.GroupID(), queue.TopicSend)
		if err == nil && lag == 40 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("40 intents not on %s within 30 s (lag %d, err %v)", queue.TopicSend, lag, err)
		}
	}
	s.StartWorker(cfg)
	s.WaitAllFinal(60 * time.Second)
	if m := s.Recorder.MaxInFlight(); m < 2 || m > cfg.InFlight {
		t.Fatalf("max concurrent sends %d: want concurrency above 1 and bounded by in-flight %d", m, cfg.InFlight)
	}
}

// committedTotal sums the group's committed offsets of comms.send over partitions (which all
// start at offset 0, so the sum counts the intents committed); -1 (nothing committed) counts 0.
func committedTotal(t *testing.T, s *stacktest.Stack, partitions ...int) int64 {
	t.Helper()
	offs, err := queue.Committed(context.Background(), s.Brokers, s.GroupID(), queue.TopicSend, partitions...)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, off := range offs {
		sum += max(off, 0)
	}
	return sum
}

func TestOffsetsAreNeverCommittedPastAnUnfinishedMessage(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{Partitions: 1})
	release := s.Recorder.Hold("+14155550999")
	w := s.StartWorker(fast)
	tid, key := s.Tenant()
	held := s.Send(key, "", message.Request{Channel: message.SMS, To: "+14155550999", Text: "slow"})
	// Publishing runs in concurrent background batches, so the held intent is only known to be at
	// offset 0 once it reaches the provider before anything else is sent.
	for deadline := time.Now().Add(30 * time.Second); s.Recorder.Count(held) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("held message never reached the provider")
		}
		time.Sleep(10 * time.Millisecond)
	}
	var later []string
	for range 20 {
		later = append(later, s.Send(key, "", sms("fast")))
	}
	deadline := time.Now().Add(30 * time.Second)
	for s.Recorder.Count(later[len(later)-1]) == 0 || getMessage(t, s, tid, later[len(later)-1]).Status != message.Sent {
		if time.Now().After(deadline) {
			t.Fatal("later messages not sent")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Later messages are done, the first is not: several commit intervals must not move the
	// committed offset past it (offset 0, so nothing may be committed at all).
	time.Sleep(10 * fast.CommitInterval)
	if off := committedTotal(t, s, 0); off > 0 {
		t.Fatalf("committed offset %d while offset 0 is unfinished", off)
	}
	release()
	s.WaitAllFinal(30 * time.Second)
	if err := w.Stop(); err != nil {
		t.Fatal(err)
	}
	if off := committedTotal(t, s, 0); off != 21 {
		t.Fatalf("after everything finished the committed offset is %d, want 21", off)
	}
	if getMessage(t, s, tid, held).Status != message.Sent {
		t.Fatal("held message not sent")
	}
}

func TestGracefulShutdownFinishesInFlightWork(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{Partitions: 2, SandboxLatencyMS: 300})
	cfg := fast
	cfg.CommitInterval = time.Hour // only the shutdown's own commit can commit these offsets
	w := s.StartWorker(cfg)
	_, key := s.Tenant()
	for range 30 {
		s.Send(key, "", sms("x"))
	}
	deadline := time.Now().Add(30 * time.Second)
	for s.Recorder.Total() < 30 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d sends started", s.Recorder.Total())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := w.Stop(); err != nil { // all 30 are mid-send now
		t.Fatal(err)
	}
	counts, err := s.CountByStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if counts[message.Sent] != 30 {
		t.Fatalf("after a graceful stop: %v, want all 30 sent", counts)
	}
	// The offsets of all 30 were committed before the worker left.
	if n := committedTotal(t, s, 0, 1); n != 30 {
		t.Fatalf("offsets committed for %d intents, want 30", n)
	}
}

func TestAcceptedIsDeliveredEvenWhenProduceFails(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{
		Publisher: stacktest.FailingPublisher{},
		Sweeper:   sweeper.Config{Interval: 50 * time.Millisecond, Grace: 100 * time.Millisecond},
	})
	s.StartWorker(fast)
	_, key := s.Tenant()
	var ids []string
	for range 10 {
		ids = append(ids, s.Send(key, "", sms("x"))) // 202 although the broker "is down"
	}
	counts := s.WaitAllFinal(30 * time.Second)
	if counts[message.Sent] != 10 {
		t.Fatalf("statuses %v, want 10 sent", counts)
	}
	for _, id := range ids {
		if s.Recorder.Count(id) != 1 {
			t.Fatalf("%s reached the provider %d times", id, s.Recorder.Count(id))
		}
	}
}

func TestUndecodableIntentGoesToDeadLetterTopic(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{Partitions: 1})
	s.StartWorker(fast)
	raw := queue.NewProducer(s.Brokers, queue.TopicSend)
	defer raw.Close()
	if err := raw.PublishRaw(context.Background(), queue.Message{Key: []byte("ten_x"), Value: []byte("{not json")}); err != nil {
		t.Fatal(err)
	}
	r := queue.NewPartitionReader(s.Brokers, queue.TopicDLQ, 0)
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var dead queue.Message
	for {
		m, err := r.Fetch(ctx)
		if err != nil {
			t.Fatalf("nothing on the DLQ: %v", err)
		}
		if string(m.Value) == "{not json" {
			dead = m
			break
		}
	}
	var errHeader string
	for _, h := range dead.Headers {
		if h.Key == "error" {
			errHeader = string(h.Value)
		}
	}
	if errHeader == "" {
		t.Fatalf("dead letter lacks its error: %+v", dead.Headers)
	}
}

// An intent that vanishes after its message was marked published (dropped by a bug, deleted from
// the topic) does not strand the message: the sweeper publishes it again once it has been due for
// LostAfter with no intent published since, and it is sent once.
func TestLostIntentIsPublishedAgainBySweeper(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{
		Publisher: stacktest.DroppingPublisher{},
		Sweeper:   sweeper.Config{Interval: 50 * time.Millisecond, LostAfter: time.Second},
	})
	s.StartWorker(fast)
	_, key := s.Tenant()
	var ids []string
	for range 5 {
		ids = append(ids, s.Send(key, "", sms("lost")))
	}
	counts := s.WaitAllFinal(30 * time.Second)
	if counts[message.Sent] != 5 {
		t.Fatalf("statuses %v, want 5 sent", counts)
	}
	for _, id := range ids {
		if s.Recorder.Count(id) != 1 {
			t.Fatalf("%s reached the provider %d times", id, s.Recorder.Count(id))
		}
	}
}

// A retry's intent that arrives before the retry is due (a provider's recovery released it early,
// or the hosts' clocks disagree) is deferred to the retry's time, not dropped: it may be the only
// intent the message has. No sweeper runs, so nothing else would rescue it.
func TestEarlyRetryIntentIsDeferredNotDropped(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{Publisher: stacktest.DroppingPublisher{}})
	s.StartWorker(fast)
	tenantID, key := s.Tenant()
	id := s.Send(key, "", sms("early"))
	ctx := context.Background()
	ref := store.Ref{TenantID: tenantID, ID: id}
	c, err := s.Store.ClaimMessages(ctx, []store.Ref{ref}, time.Minute)
	if err != nil || len(c) != 1 {
		t.Fatalf("claim: %v %v", c, err)
	}
	due := time.Now().Add(3 * time.Second)
	if _, err := s.Store.FinishAttempts(ctx, func(tx *store.OutcomeTx) error {
		tx.Record(store.Outcome{Ref: ref, Attempt: 1, Status: message.Queued, ProviderType: "sandbox", ErrorCode: "provider_unavailable", NextAttemptAt: due})
		tx.Emit(ref, "retrying")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// The retry's intent, made due now, as Release did to a retry that had once been parked.
	if err := s.Producer.Publish(ctx, queue.Envelope{MessageID: id, TenantID: tenantID, Channel: message.SMS,
		Attempt: 2, Parks: 1, EnqueuedAt: time.Now(), NotBefore: time.Now()}); err != nil {
		t.Fatal(err)
	}
	// Through the 5 s retry tier, whose consumers join one by one on a loaded machine.
	counts := s.WaitAllFinal(60 * time.Second)
	if counts[message.Sent] != 1 {
		t.Fatalf("statuses %v, want the message sent", counts)
	}
	m := getMessage(t, s, tenantID, id)
	if m.SentAt.Before(due.Add(-time.Second)) {
		t.Fatalf("sent at %s, before its retry was due at %s", m.SentAt, due)
	}
}
