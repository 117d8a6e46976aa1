package worker_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/platform/metrics"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
	"github.com/logicspike/comms/pkg/provider/webhook"
)

// hangingEndpoint answers Save & Test, then holds every real send until released (or for hold,
// when that is set), counting how many it holds at once and how often it saw each message.
type hangingEndpoint struct {
	*httptest.Server
	release  chan struct{}
	hold     time.Duration
	mu       sync.Mutex
	now, max int
	seen     map[string]int
}

func newHangingEndpoint() *hangingEndpoint { return newSlowEndpoint(0) }

// newSlowEndpoint answers every send after hold (0: when released).
func newSlowEndpoint(hold time.Duration) *hangingEndpoint {
	h := &hangingEndpoint{release: make(chan struct{}), hold: hold, seen: map[string]int{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p webhook.Payload
		_ = json.Unmarshal(body, &p)
		if !p.Data.Test {
			h.mu.Lock()
			h.now++
			h.max = max(h.max, h.now)
			h.seen[p.Data.ID]++
			h.mu.Unlock()
			var held <-chan time.Time
			if h.hold > 0 {
				held = time.After(h.hold)
			}
			select {
			case <-h.release:
			case <-held:
			case <-r.Context().Done():
			}
			h.mu.Lock()
			h.now--
			h.mu.Unlock()
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	return h
}

// Tenant B's provider hangs on every send while B keeps sending; tenant A, on another provider in
// the same worker and the same partition, is not held up: B's sends take at most the bulkhead's
// share of the worker's in-flight slots.
func TestHangingProviderCannotTakeEveryInFlightSlot(t *testing.T) {
	t.Parallel()
	hang := newHangingEndpoint()
	defer hang.Close()
	defer close(hang.release)
	s := stacktest.Start(t, stacktest.Options{Partitions: 1})
	cfg := retrying
	cfg.InFlight, cfg.PerConfigInFlight, cfg.AttemptTimeout = 8, 4, 20*time.Second
	cfg.RetryInitial = time.Second
	s.StartWorker(cfg)

	_, keyB := ownOnly(t, s)
	addWebhook(t, s, keyB, hang.URL)
	tidA, keyA := s.Tenant() // A uses the system default (the sandbox)
	for range 30 {
		s.Send(keyB, "", sms("b"))
	}
	time.Sleep(200 * time.Millisecond) // B's sends are in and hanging
	var idsA []string
	for range 20 {
		idsA = append(idsA, s.Send(keyA, "", sms("a")))
	}
	deadline := time.Now().Add(15 * time.Second) // well inside B's 20 s hang
	for _, id := range idsA {
		for getMessage(t, s, tidA, id).Status != message.Sent {
			if time.Now().After(deadline) {
				t.Fatalf("tenant A's message %s is stuck behind tenant B's hanging provider", id)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	hang.mu.Lock()
	held := hang.max
	hang.mu.Unlock()
	if held > cfg.PerConfigInFlight {
		t.Fatalf("the hanging provider held %d sends at once; the bulkhead allows %d", held, cfg.PerConfigInFlight)
	}
}

// A tenant sending faster than its provider answers: the intents its bulkhead turns away are
// deferred in turns and come back as the provider frees up. Every one is sent, once, in one
// attempt (a deferral spends none, and one claimed just as the line filled up waits), and the
// provider never holds more than the bulkhead allows.
func TestBacklogBehindASlowProviderIsSentInTurns(t *testing.T) {
	t.Parallel()
	slow := newSlowEndpoint(100 * time.Millisecond)
	defer slow.Close()
	s := stacktest.Start(t, stacktest.Options{Partitions: 1})
	cfg := retrying
	// 100 ms a send, 2 at a time: a line of 2 at the provider's pace.
	cfg.InFlight, cfg.PerConfigInFlight, cfg.PerConfigLineWait = 8, 2, 100*time.Millisecond
	cfg.MaxParks = 1000 // every intent waits for its turn, however loaded the machine
	s.StartWorker(cfg)

	tid, key := ownOnly(t, s)
	addWebhook(t, s, key, slow.URL)
	var ids []string
	for range 2 { // the bulkhead learns the provider's pace
		ids = append(ids, s.Send(key, "", sms("first")))
	}
	for _, id := range ids {
		waitUntil(t, "the first two to be sent", func() bool { return getMessage(t, s, tid, id).Status == message.Sent })
	}
	// One batch, so the backlog arrives at once however slowly this machine takes requests.
	var backlog message.BatchRequest
	for range 30 {
		backlog.Messages = append(backlog.Messages, message.BatchItem{Request: sms("backlog")})
	}
	var res struct {
		Items []struct{ ID string } `json:"items"`
	}
	if resp := s.Do("POST", "/v1/messages/batch", key, backlog, nil, &res); resp.StatusCode != 200 || len(res.Items) != 30 {
		t.Fatalf("backlog batch: %d, %d items", resp.StatusCode, len(res.Items))
	}
	for _, it := range res.Items {
		ids = append(ids, it.ID)
	}
	for _, id := range ids {
		waitUntil(t, "the backlog to be sent", func() bool { return getMessage(t, s, tid, id).Status == message.Sent })
		if m := getMessage(t, s, tid, id); m.Attempts != 1 {
			t.Fatalf("message %s took %d attempts; a deferral must spend none", id, m.Attempts)
		}
	}
	slow.mu.Lock()
	defer slow.mu.Unlock()
	for _, id := range ids {
		if n := slow.seen[id]; n != 1 {
			t.Fatalf("the provider saw message %s %d times", id, n)
		}
	}
	if slow.max > cfg.PerConfigInFlight {
		t.Fatalf("the provider held %d sends at once; the bulkhead allows %d", slow.max, cfg.PerConfigInFlight)
	}
	if parked := parkedFor(t, s, tid); parked == 0 {
		t.Fatal("no intent was deferred: 30 sends at once against 2 in flight and a line of 2 must defer some")
	}
}

// addWebhook gives the tenant of key an SMS webhook provider at url.
func addWebhook(t *testing.T, s *stacktest.Stack, key, url string) {
	t.Helper()
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("s", 32)))
	if resp := s.Do("POST", "/v1/providers", key, map[string]any{"type": "webhook", "name": "slow", "channel": "sms",
		"test_recipient": "+14155550199", "credentials": map[string]any{"url": url, "secret": secret}}, nil, nil); resp.StatusCode != 201 {
		t.Fatalf("webhook provider: %d", resp.StatusCode)
	}
}

// parkedFor reads comms_intents_parked_total for tenantID off the service's /metrics.
func parkedFor(t *testing.T, s *stacktest.Stack, tenantID string) float64 {
	t.Helper()
	return metric(t, s, `comms_intents_parked_total{tenant="`+tenantID+`"} `)
}

// metric reads the sample whose line starts with prefix off the process's /metrics (0 if none).
func metric(t *testing.T, _ *stacktest.Stack, prefix string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.Bytes()
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return n
		}
	}
	return 0
}

// While every route of a tenant refuses sends (its provider's breaker is open), its intents are
// parked: deferred to a retry tier without being claimed, so they cost no attempt, no events and
// no retry budget. When the breaker lets its probe through and the provider has recovered, they
// are sent, each in one attempt.
func TestOpenBreakerParksIntentsWithoutAttempts(t *testing.T) {
	t.Parallel()
	s, tw := twilioStack(t)
	cfg := retrying
	// Long enough that the checks below fall inside it on a loaded machine (500 ms, and once
	// 2 s, passed before a parked intent reached the worker when the whole suite ran at once).
	cfg.BreakerCooldown = 5 * time.Second
	s.StartWorker(cfg)
	tid, key := ownOnly(t, s)
	p := addTwilio(t, s, key, tw, "tw", "+14155550001", 1)
	tw.FailAll(provider.ProviderUnavailable)
	// Enough failures to open the breaker (threshold 3).
	for range 3 {
		s.Send(key, "", sms("opening"))
	}
	waitUntil(t, "the breaker to open", func() bool {
		return metric(t, s, `comms_breaker_state{provider_id="`+p.ID+`"} `) == 2
	})
	requestsWhenOpen := tw.Requests()
	var parked []string
	for range 10 {
		parked = append(parked, s.Send(key, "", sms("parked")))
	}
	time.Sleep(300 * time.Millisecond) // inside the cooldown: every one of them is parked
	for _, id := range parked {
		if m := getMessage(t, s, tid, id); m.Status != message.Queued || m.Attempts != 0 {
			t.Fatalf("message %s was attempted behind an open breaker: %s after %d attempts", id, m.Status, m.Attempts)
		}
	}
	if n := tw.Requests() - requestsWhenOpen; n > 1 {
		t.Fatalf("the open breaker let %d sends through; at most one probe", n)
	}
	tw.FailAll("")
	for _, id := range parked {
		waitUntil(t, "the parked messages to be sent", func() bool { return getMessage(t, s, tid, id).Status == message.Sent })
		if m := getMessage(t, s, tid, id); m.Attempts != 1 {
			t.Fatalf("parked message %s took %d attempts", id, m.Attempts)
		}
	}
}

// A breaker whose cooldown ends with no intent parked to carry its probe (none came during it, and
// those parked before wait ten minutes) asks the retriers for one: the provider is probed every
// cooldown all the same, and once it recovers every intent parked behind it is sent at once rather
// than when its park ends.
func TestAnOpenBreakerIsProbedWhenNoIntentComes(t *testing.T) {
	t.Parallel()
	s, tw := twilioStack(t)
	cfg := retrying
	cfg.BreakerCooldown, cfg.BreakerMaxCooldown = time.Second, time.Second
	cfg.ParkWait, cfg.ParkMaxWait = 10*time.Minute, 10*time.Minute
	cfg.RetryInitial, cfg.RetryMax = 10*time.Minute, 10*time.Minute
	s.StartWorker(cfg)
	tid, key := ownOnly(t, s)
	p := addTwilio(t, s, key, tw, "tw", "+14155550001", 1)
	tw.FailAll(provider.ProviderUnavailable)
	for range 3 {
		s.Send(key, "", sms("opening"))
	}
	waitUntil(t, "the breaker to open", func() bool {
		return metric(t, s, `comms_breaker_state{provider_id="`+p.ID+`"} `) == 2
	})
	requestsWhenOpen := tw.Requests()
	var parked []string
	for range 10 {
		parked = append(parked, s.Send(key, "", sms("parked")))
	}
	// The first probe is carried by the first intent parked; the second only by one the retrier
	// brings back.
	waitUntil(t, "a second probe", func() bool { return tw.Requests()-requestsWhenOpen >= 2 })
	tw.FailAll("")
	var waiting []string
	for _, id := range parked {
		if getMessage(t, s, tid, id).Attempts == 0 {
			waiting = append(waiting, id)
		}
	}
	if len(waiting) < len(parked)/2 {
		t.Fatalf("%d of %d parked messages were attempted during the outage: probes are to be one per cooldown", len(parked)-len(waiting), len(parked))
	}
	for _, id := range waiting {
		waitUntil(t, "the parked messages to be sent", func() bool { return getMessage(t, s, tid, id).Status == message.Sent })
	}
}

// waitUntil waits for cond, or fails after a minute: a liveness bound, not a speed assertion (a
// parked intent may wait out its park, up to 22 s here, on a machine the whole suite loads).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
