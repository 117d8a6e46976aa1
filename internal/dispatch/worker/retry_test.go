package worker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/dispatch/worker"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/queue"
	"github.com/logicspike/comms/internal/testing/fakeprovider"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// quick retries for tests: 50 ms, then ×3 with jitter.
var retrying = worker.Config{CommitInterval: 20 * time.Millisecond, RetryInitial: 50 * time.Millisecond, RetryMax: 500 * time.Millisecond,
	BreakerThreshold: 3, BreakerCooldown: time.Hour}

func eventStatuses(m message.Message) []string {
	var out []string
	for _, e := range m.Events {
		out = append(out, string(e.Status))
	}
	return out
}

// ownOnly is a tenant whose messages never fall back to the system default, so a failing
// provider of its own is retried rather than failed over.
func ownOnly(t *testing.T, s *stacktest.Stack) (tenantID, key string) {
	t.Helper()
	ctx := context.Background()
	tn, err := s.Store.CreateTenant(ctx, domain.NewTenant{Name: "own only", AllowSystemFallback: false})
	if err != nil {
		t.Fatal(err)
	}
	_, key, err = s.Store.CreateAPIKey(ctx, domain.KindTenant, tn.ID, "k", nil)
	if err != nil {
		t.Fatal(err)
	}
	return tn.ID, key
}

func twilioStack(t *testing.T) (*stacktest.Stack, *fakeprovider.Twilio) {
	tw := fakeprovider.NewTwilio()
	t.Cleanup(tw.Close)
	return stacktest.Start(t, stacktest.Options{Env: provider.Env{TwilioBaseURL: tw.URL}}), tw
}

// A transient failure waits on a retry tier (not blocking its partition) and succeeds later;
// every attempt is an event with its error.
func TestTransientFailureIsRetriedUntilItSucceeds(t *testing.T) {
	t.Parallel()
	s, tw := twilioStack(t)
	s.StartWorker(retrying)
	tid, key := ownOnly(t, s)
	addTwilio(t, s, key, tw, "tw", "+14155550001", 1)
	tw.FailTimes("+14155550777", provider.ProviderUnavailable, 2)

	flaky := s.Send(key, "", message.Request{Channel: message.SMS, To: "+14155550777", Text: "flaky"})
	fine := s.Send(key, "", sms("fine"))
	s.WaitAllFinal(30 * time.Second)

	m := getMessage(t, s, tid, flaky)
	want := "queued sending retrying sending retrying sending sent"
	if m.Status != message.Sent || m.Attempts != 3 || strings.Join(eventStatuses(m), " ") != want {
		t.Fatalf("status %s after %d attempts, events %v; want %s", m.Status, m.Attempts, eventStatuses(m), want)
	}
	for _, e := range m.Events {
		if e.Status == "retrying" && (e.ErrorCode != "provider_unavailable" || !strings.Contains(e.Reason, "Twilio")) {
			t.Fatalf("retry event without its error: %+v", e)
		}
	}
	if getMessage(t, s, tid, fine).Status != message.Sent {
		t.Fatal("the healthy message was held up")
	}
}

func TestPermanentFailureIsNotRetried(t *testing.T) {
	t.Parallel()
	s, tw := twilioStack(t)
	s.StartWorker(retrying)
	tid, key := ownOnly(t, s)
	addTwilio(t, s, key, tw, "tw", "+14155550001", 1)
	tw.FailFor("+14155550778", provider.InvalidRecipient)
	id := s.Send(key, "", message.Request{Channel: message.SMS, To: "+14155550778", Text: "x"})
	s.WaitAllFinal(30 * time.Second)
	m := getMessage(t, s, tid, id)
	if m.Status != message.Failed || m.Attempts != 1 || m.Error.Code != "invalid_recipient" || !strings.Contains(m.Error.Message, "21211") {
		t.Fatalf("%+v", m)
	}
	var n int
	_ = s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM communication.dead_letters WHERE message_id = $1`, id).Scan(&n)
	if n != 0 {
		t.Fatal("a permanent failure was dead-lettered")
	}
}

// With the tenant's budget spent, the message fails with its last error and is dead-lettered:
// indexed for replay, and copied to comms.send.dlq with why.
func TestExhaustedRetriesAreDeadLettered(t *testing.T) {
	t.Parallel()
	s, tw := twilioStack(t)
	s.StartWorker(retrying)
	tid, key := ownOnly(t, s)
	if _, err := s.Pool.Exec(context.Background(), `UPDATE communication.tenants SET max_attempts = 3 WHERE id = $1`, tid); err != nil {
		t.Fatal(err)
	}
	addTwilio(t, s, key, tw, "tw", "+14155550001", 1)
	tw.FailFor("+14155550779", provider.RateLimited)
	id := s.Send(key, "", message.Request{Channel: message.SMS, To: "+14155550779", Text: "x"})
	s.WaitAllFinal(30 * time.Second)
	m := getMessage(t, s, tid, id)
	if m.Status != message.Failed || m.Attempts != 3 || m.Error.Code != "rate_limited" || !strings.Contains(m.Error.Message, "gave up after 3 attempts") {
		t.Fatalf("%+v", m)
	}
	var code string
	var attempts int
	if err := s.Pool.QueryRow(context.Background(), `SELECT error_code, attempts FROM communication.dead_letters WHERE message_id = $1`, id).Scan(&code, &attempts); err != nil || code != "rate_limited" || attempts != 3 {
		t.Fatalf("dead letter: %q %d %v", code, attempts, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	letters := deadLetters(ctx, t, s.Brokers)
	for {
		var msg queue.Message
		select {
		case msg = <-letters:
		case <-ctx.Done():
			t.Fatalf("no dead letter on the topic: %v", ctx.Err())
		}
		env, _ := queue.Decode(msg.Value)
		if env.MessageID != id {
			continue
		}
		headers := map[string]string{}
		for _, h := range msg.Headers {
			headers[h.Key] = string(h.Value)
		}
		if headers["error_code"] != "rate_limited" || headers["attempts"] != "3" || headers["failed_at"] == "" {
			t.Fatalf("headers %v", headers)
		}
		return
	}
}

// deadLetters reads every partition of the DLQ at once, each from its first offset, until ctx
// ends. A reader is not opened and closed per try: closing one waits out its fetch on the broker.
func deadLetters(ctx context.Context, t *testing.T, brokers []string) <-chan queue.Message {
	out := make(chan queue.Message)
	for p := range 4 {
		r := queue.NewPartitionReader(brokers, queue.TopicDLQ, p)
		t.Cleanup(func() { _ = r.Close() })
		go func() {
			for {
				m, err := r.Fetch(ctx)
				if err != nil {
					return
				}
				select {
				case out <- m:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	return out
}

// The provider's Retry-After is a floor under the backoff.
func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	rs := fakeprovider.NewResend()
	defer rs.Close()
	s := stacktest.Start(t, stacktest.Options{Env: provider.Env{ResendBaseURL: rs.URL}})
	s.StartWorker(retrying)
	tid, key := ownOnly(t, s)
	var p api.Provider
	if resp := s.Do("POST", "/v1/providers", key, map[string]any{"type": "resend", "name": "rs", "channel": "email", "test_recipient": "me@acme.example",
		"credentials": map[string]any{"api_key": rs.APIKey}, "sender": map[string]any{"from": "a@acme.example"}}, nil, &p); resp.StatusCode != 201 {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	rs.FailTimes("slow@example.com", provider.RateLimited, 1) // answers 429 with Retry-After: 1
	id := s.Send(key, "", message.Request{Channel: message.Email, To: "slow@example.com", Subject: "s", Text: "t"})
	s.WaitAllFinal(30 * time.Second)
	m := getMessage(t, s, tid, id)
	var retried, resent time.Time
	for _, e := range m.Events {
		switch {
		case e.Status == "retrying":
			retried = e.OccurredAt
		case e.Status == "sending" && !retried.IsZero():
			resent = e.OccurredAt
		}
	}
	if m.Status != message.Sent || retried.IsZero() || resent.Sub(retried) < time.Second {
		t.Fatalf("status %s, retried at %v, next attempt at %v: want at least Retry-After (1s) between", m.Status, retried, resent)
	}
}

// An unavailable provider fails over to the tenant's next config within the same attempt; once
// its breaker opens the config is skipped, and GET /v1/providers shows it open.
func TestFailoverAndCircuitBreaker(t *testing.T) {
	t.Parallel()
	s, tw := twilioStack(t)
	wh := fakeprovider.NewWebhook()
	defer wh.Close()
	s.StartWorker(retrying) // breaker threshold 3
	tid, key := s.Tenant()
	primary := addTwilio(t, s, key, tw, "primary", "+14155550001", 1)
	if resp := s.Do("POST", "/v1/providers", key, map[string]any{"type": "webhook", "name": "backup", "channel": "sms", "priority": 2,
		"test_recipient": "+14155550199", "credentials": map[string]any{"url": wh.URL, "secret": wh.Secret}}, nil, nil); resp.StatusCode != 201 {
		t.Fatalf("backup: %d", resp.StatusCode)
	}
	tw.FailAll(provider.ProviderUnavailable)
	before := tw.Requests()
	for i := range 6 {
		id := s.Send(key, "", sms("otp"))
		s.WaitAllFinal(30 * time.Second)
		m := getMessage(t, s, tid, id)
		if m.Status != message.Sent || m.ProviderType != "webhook" || m.Attempts != 1 {
			t.Fatalf("message %d: %s via %s after %d attempts", i, m.Status, m.ProviderType, m.Attempts)
		}
	}
	if n := tw.Requests() - before; n != 3 {
		t.Fatalf("the failing provider got %d requests: want 3, then the open breaker skips it", n)
	}
	var got api.Provider
	s.Do("GET", "/v1/providers/"+primary.ID, key, nil, nil, &got)
	if got.Health != worker.BreakerOpen || !strings.Contains(got.HealthReason, "Twilio") {
		t.Fatalf("health %q (%s)", got.Health, got.HealthReason)
	}
}

// Refused credentials mark the config unhealthy where the tenant sees it, and later messages go
// elsewhere without knocking on that wall again. New credentials make it healthy.
func TestRefusedCredentialsMarkTheConfigUnhealthy(t *testing.T) {
	t.Parallel()
	s, tw := twilioStack(t)
	s.StartWorker(retrying)
	tid, key := s.Tenant() // may fall back to the sandbox system default
	p := addTwilio(t, s, key, tw, "tw", "+14155550001", 1)
	oldToken := tw.AuthToken
	tw.AuthToken = strings.Repeat("9", 32) // the tenant rotated its token at Twilio
	first := s.Send(key, "", sms("one"))
	s.WaitAllFinal(30 * time.Second)
	before := tw.Requests()
	second := s.Send(key, "", sms("two"))
	s.WaitAllFinal(30 * time.Second)
	var got api.Provider
	s.Do("GET", "/v1/providers/"+p.ID, key, nil, nil, &got)
	if got.Health != "auth_failed" || !strings.Contains(got.HealthReason, "update your credentials") {
		t.Fatalf("health %q %q", got.Health, got.HealthReason)
	}
	for _, id := range []string{first, second} {
		if m := getMessage(t, s, tid, id); m.Status != message.Sent || m.ProviderType != "sandbox" {
			t.Fatalf("%s: %s via %s", id, m.Status, m.ProviderType)
		}
	}
	if tw.Requests() != before {
		t.Fatal("the unhealthy config was tried again")
	}
	resp := s.Do("PATCH", "/v1/providers/"+p.ID, key, map[string]any{"test_recipient": "+14155550199",
		"credentials": map[string]any{"account_sid": tw.AccountSID, "auth_token": tw.AuthToken}}, nil, &got)
	if resp.StatusCode != 200 || got.Health != "healthy" {
		t.Fatalf("after new credentials: %d %q", resp.StatusCode, got.Health)
	}
	_ = oldToken
}

// An intent that arrives before its time (the sweeper re-published a waiting retry) goes back to
// its tier: it is not attempted early.
func TestEarlyIntentIsNotAttempted(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	s.StartWorker(retrying)
	tid, key := s.Tenant()
	id := s.Send(key, "", sms("later"))
	// Setup, not what is held: the first send waits for the new worker's group to form, which took
	// over a minute twice in the full parallel suite under the race detector.
	s.WaitAllFinal(90 * time.Second)
	// Put the message back to waiting for 2 s from now and publish an intent for it at once.
	due := time.Now().Add(2 * time.Second)
	if _, err := s.Pool.Exec(context.Background(), `UPDATE communication.message_logs SET status = 'queued', next_attempt_at = $2 WHERE id = $1`, id, due); err != nil {
		t.Fatal(err)
	}
	sentBefore := s.Recorder.Count(id)
	if err := s.Producer.Publish(context.Background(), queue.Envelope{MessageID: id, TenantID: tid, Channel: message.SMS, Attempt: 2, NotBefore: due}); err != nil {
		t.Fatal(err)
	}
	s.WaitAllFinal(30 * time.Second)
	m := getMessage(t, s, tid, id)
	last := m.Events[len(m.Events)-1]
	if m.Status != message.Sent || s.Recorder.Count(id) != sentBefore+1 || last.OccurredAt.Before(due.Add(-time.Second)) {
		t.Fatalf("sent at %v, due %v (count %d → %d)", last.OccurredAt, due, sentBefore, s.Recorder.Count(id))
	}
}

// A provider config's send cap holds across workers: two workers share the bucket in Redis.
func TestSendCapIsSharedAcrossWorkers(t *testing.T) {
	t.Parallel()
	s, tw := twilioStack(t)
	s.StartWorker(retrying)
	s.StartWorker(retrying)
	tid, key := ownOnly(t, s)
	p := addTwilio(t, s, key, tw, "capped", "+14155550001", 1)
	if resp := s.Do("PATCH", "/v1/providers/"+p.ID, key, map[string]any{"rate_limit_per_second": 5}, nil, nil); resp.StatusCode != 200 {
		t.Fatalf("set cap: %d", resp.StatusCode)
	}
	time.Sleep(100 * time.Millisecond) // let both workers' route caches drop the old config
	start := len(tw.Received())
	for range 20 {
		s.Send(key, "", sms("burst"))
	}
	s.WaitAllFinal(60 * time.Second)
	got := tw.Received()[start:]
	if len(got) != 20 {
		t.Fatalf("sent %d of 20", len(got))
	}
	// Bucket of 5, refilled at 5/s: no one-second window may hold more than 5 + 5.
	for i := range got {
		n := 0
		for j := i; j < len(got) && got[j].At.Sub(got[i].At) < time.Second; j++ {
			n++
		}
		if n > 10 {
			t.Fatalf("%d sends within one second under a cap of 5/s", n)
		}
	}
	_ = tid
}

// A retry put on its tier is marked published, so the sweeper does not publish it a second time,
// even when the worker stops right after deferring it: marks are batched, and a stopping worker
// flushes the ones it holds.
func TestWaitingRetryIsMarkedPublishedBeforeTheWorkerStops(t *testing.T) {
	t.Parallel()
	s, tw := twilioStack(t)
	// The retry waits a minute on its tier: nothing but the mark can touch its outbox row.
	w := s.StartWorker(worker.Config{CommitInterval: 20 * time.Millisecond, RetryInitial: time.Minute, RetryMax: 2 * time.Minute,
		BreakerThreshold: 3, BreakerCooldown: time.Hour})
	tid, key := ownOnly(t, s)
	addTwilio(t, s, key, tw, "tw", "+14155550001", 1)
	tw.FailTimes("+14155550780", provider.ProviderUnavailable, 1)
	id := s.Send(key, "", message.Request{Channel: message.SMS, To: "+14155550780", Text: "x"})

	// Setup, not what is held: the first attempt waits for the new worker's group to form, which
	// is slow in the full parallel suite under the race detector; a generous bound costs nothing.
	deadline := time.Now().Add(90 * time.Second)
	for !strings.Contains(strings.Join(eventStatuses(getMessage(t, s, tid, id)), " "), "retrying") {
		if time.Now().After(deadline) {
			t.Fatalf("no retry scheduled: events %v", eventStatuses(getMessage(t, s, tid, id)))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := w.Stop(); err != nil {
		t.Fatal(err)
	}

	var published bool
	if err := s.Pool.QueryRow(context.Background(),
		`SELECT published_at IS NOT NULL FROM communication.dispatch_queue WHERE message_id = $1`, id).Scan(&published); err != nil {
		t.Fatal(err)
	}
	if !published {
		t.Fatal("the waiting retry's outbox row is unpublished after the worker stopped: the sweeper would publish it again")
	}
}

// TestARecipientWhoRepliedStopIsSuppressedWhenTwilioRefusesTheSend: Twilio refuses a send to a
// recipient who replied STOP with 21610 at once, with no callback to follow; the recipient joins
// the tenant's suppression list all the same (docs/api.md), so the next send is refused at intake.
func TestARecipientWhoRepliedStopIsSuppressedWhenTwilioRefusesTheSend(t *testing.T) {
	t.Parallel()
	s, tw := twilioStack(t)
	s.StartWorker(fast)
	tid, key := ownOnly(t, s)
	addTwilio(t, s, key, tw, "tw", "+14155550001", 1)
	tw.Stop("+14155550401")
	id := s.Send(key, "", message.Request{Channel: message.SMS, To: "+14155550401", Text: "are you there?"})
	s.WaitAllFinal(30 * time.Second)
	if m := getMessage(t, s, tid, id); m.Status != message.Failed || m.Error == nil || m.Error.Code != "invalid_recipient" {
		t.Fatalf("the refused send: %s %+v", m.Status, m.Error)
	}
	var list struct {
		Data []api.Suppression `json:"data"`
	}
	s.Do("GET", "/v1/suppressions?channel=sms&recipient=%2B14155550401", key, nil, nil, &list)
	if len(list.Data) != 1 || list.Data[0].Reason != "complaint" || list.Data[0].MessageID != id || !strings.Contains(list.Data[0].Detail, "21610") {
		t.Fatalf("suppressions: %+v", list.Data)
	}
	resp := s.Do("POST", "/v1/messages", key, message.Request{Channel: message.SMS, To: "+14155550401", Text: "again"}, nil, nil)
	if resp.StatusCode != 422 {
		t.Fatalf("a send to the suppressed recipient: %d, want 422", resp.StatusCode)
	}
}
