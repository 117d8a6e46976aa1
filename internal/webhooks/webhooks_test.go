package webhooks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/dispatch/worker"
	"github.com/logicspike/comms/internal/queue"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/internal/webhooks"
	"github.com/logicspike/comms/pkg/event"
	"github.com/logicspike/comms/pkg/message"
)

// receiver is a tenant's endpoint: it verifies each delivery with the Standard Webhooks
// reference library (not with our signer), checks the body is the event the headers name, and
// counts what it got by webhook-id.
type receiver struct {
	*httptest.Server
	t      testing.TB
	status atomic.Int32 // the answer; 200 unless set
	hang   chan struct{}

	mu       sync.Mutex
	verifier []*standardwebhooks.Webhook // every one must accept each delivery
	got      map[string]int              // webhook-id → deliveries
	types    map[string]string           // webhook-id → event type
	bad      []string
}

func newReceiver(t testing.TB) *receiver {
	r := &receiver{t: t, got: map[string]int{}, types: map[string]string{}}
	r.status.Store(200)
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

// trust makes the receiver verify with secret (in addition to those trusted before).
func (r *receiver) trust(secret string) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		r.t.Fatal(err)
	}
	r.mu.Lock()
	r.verifier = append(r.verifier, wh)
	r.mu.Unlock()
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	if r.hang != nil {
		select {
		case <-r.hang:
		case <-req.Context().Done():
		}
		return
	}
	body, _ := io.ReadAll(req.Body)
	var ev event.Event
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range r.verifier {
		if err := v.Verify(body, req.Header); err != nil {
			r.bad = append(r.bad, "signature: "+err.Error())
		}
	}
	id := req.Header.Get("webhook-id")
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID != id || req.Header.Get("Content-Type") != "application/json" {
		r.bad = append(r.bad, fmt.Sprintf("body %q does not match webhook-id %q", body, id))
	}
	r.got[id]++
	r.types[id] = ev.Type
	w.WriteHeader(int(r.status.Load()))
	_, _ = w.Write([]byte(`{"thanks":true}`))
}

func (r *receiver) snapshot() (got map[string]int, types map[string]string, bad []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	got, types = map[string]int{}, map[string]string{}
	for k, v := range r.got {
		got[k] = v
	}
	for k, v := range r.types {
		types[k] = v
	}
	return got, types, append([]string(nil), r.bad...)
}

func (r *receiver) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// waitFor polls cond every 10 ms for up to 30 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// createEndpoint adds an endpoint through the API and returns it with its secret.
func createEndpoint(t testing.TB, s *stacktest.Stack, key string, in webhooks.Input) api.WebhookEndpointWithSecret {
	t.Helper()
	var out api.WebhookEndpointWithSecret
	if resp := s.Do("POST", "/v1/webhook-endpoints", key, in, nil, &out); resp.StatusCode != 201 {
		t.Fatalf("create endpoint: %d", resp.StatusCode)
	}
	return out
}

// publishedEvents is every event the tenant's messages produced so far, by id → type.
func publishedEvents(t testing.TB, s *stacktest.Stack, tenant string) map[string]string {
	t.Helper()
	rows, err := s.Pool.Query(context.Background(), `SELECT id, status, source FROM communication.message_events WHERE tenant_id = $1`, tenant)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id int64
		var status, source string
		if err := rows.Scan(&id, &status, &source); err != nil {
			t.Fatal(err)
		}
		if typ, ok := event.MessageType(status, source); ok {
			out[event.ID(id)] = typ
		}
	}
	return out
}

// fakeClock is the Deliverer's clock in tests of the schedule.
type fakeClock struct{ now atomic.Pointer[time.Time] }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.set(time.Now())
	return c
}
func (c *fakeClock) Now() time.Time          { return *c.now.Load() }
func (c *fakeClock) set(t time.Time)         { c.now.Store(&t) }
func (c *fakeClock) advance(d time.Duration) { c.set(c.Now().Add(d)) }

func deliveries(t testing.TB, s *stacktest.Stack, key, endpointID, query string) []api.WebhookDelivery {
	t.Helper()
	var page struct {
		Data []api.WebhookDelivery `json:"data"`
	}
	if resp := s.Do("GET", "/v1/webhook-endpoints/"+endpointID+"/deliveries"+query, key, nil, nil, &page); resp.StatusCode != 200 {
		t.Fatalf("list deliveries: %d", resp.StatusCode)
	}
	return page.Data
}

func sms(i int) message.Request {
	return message.Request{Channel: message.SMS, To: fmt.Sprintf("+1415555%04d", i), Text: "hello"}
}

// Every event of a tenant's messages reaches each of its endpoints that subscribed to its type,
// signed as Standard Webhooks specifies, with the event as the body and its id as webhook-id;
// nothing reaches another tenant's endpoint.
func TestEveryEventReachesTheEndpointsThatWantIt(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{SandboxLatencyMS: 2})
	s.StartWorker(worker.Config{})
	s.StartDeliverer(webhooks.Config{})
	tenant, key := s.Tenant()
	_, otherKey := s.Tenant()

	all, sent, other := newReceiver(t), newReceiver(t), newReceiver(t)
	all.trust(createEndpoint(t, s, key, webhooks.Input{URL: all.URL + "/all", Description: "everything"}).Secret)
	sent.trust(createEndpoint(t, s, key, webhooks.Input{URL: sent.URL, EventTypes: []string{event.Sent}}).Secret)
	other.trust(createEndpoint(t, s, otherKey, webhooks.Input{URL: other.URL}).Secret)

	const n = 50
	for i := range n {
		s.Send(key, "", sms(i))
	}
	s.WaitAllFinal(30 * time.Second)
	want := publishedEvents(t, s, tenant)
	waitFor(t, "every event at the catch-all endpoint", func() bool { return all.distinct() >= len(want) })
	waitFor(t, "every sent event", func() bool { return sent.distinct() >= n })

	got, types, bad := all.snapshot()
	if len(bad) > 0 {
		t.Fatalf("%d bad deliveries, first: %s", len(bad), bad[0])
	}
	for id, typ := range want {
		if got[id] == 0 || types[id] != typ {
			t.Errorf("event %s (%s): delivered %d times as %q", id, typ, got[id], types[id])
		}
	}
	if len(got) != len(want) {
		t.Errorf("catch-all endpoint got %d distinct events, the tenant's messages made %d", len(got), len(want))
	}
	_, types, bad = sent.snapshot()
	for id, typ := range types {
		if typ != event.Sent {
			t.Errorf("endpoint subscribed to %s got %s (%s)", event.Sent, typ, id)
		}
	}
	if len(bad) > 0 || len(types) != n {
		t.Errorf("sent-only endpoint: %d events, %d bad", len(types), len(bad))
	}
	if other.distinct() != 0 {
		t.Errorf("another tenant's endpoint got %d of this tenant's events", other.distinct())
	}
}

// A failing endpoint is retried on the schedule (at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
// 10 h), never before an attempt is due, and the delivery is failed after the eighth; every
// attempt is in the delivery log with the endpoint's answer.
func TestRetriesFollowTheScheduleThenFail(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{SandboxLatencyMS: 1})
	clock := newFakeClock()
	s.StartWorker(worker.Config{})
	s.StartDeliverer(webhooks.Config{Now: clock.Now})
	_, key := s.Tenant()
	rcv := newReceiver(t)
	rcv.status.Store(503)
	ep := createEndpoint(t, s, key, webhooks.Input{URL: rcv.URL, EventTypes: []string{event.Accepted}})
	rcv.trust(ep.Secret)
	s.Send(key, "", sms(1))

	attempts := func() int {
		got, _, _ := rcv.snapshot()
		n := 0
		for _, c := range got {
			n += c
		}
		return n
	}
	waitFor(t, "the first attempt", func() bool { return attempts() == 1 })
	for i := 1; i < len(webhooks.Schedule); i++ {
		waitFor(t, "the attempt to be recorded", func() bool {
			d := deliveries(t, s, key, ep.ID, "")
			return len(d) == 1 && d[0].Attempts == i && d[0].NextAttemptAt != nil
		})
		clock.advance(webhooks.Schedule[i] - time.Second)
		time.Sleep(100 * time.Millisecond) // five retry-loop turns: none may attempt early
		if got := attempts(); got != i {
			t.Fatalf("attempt %d made %v early", got, time.Second)
		}
		clock.advance(time.Second)
		waitFor(t, fmt.Sprintf("attempt %d", i+1), func() bool { return attempts() == i+1 })
	}
	waitFor(t, "the delivery to fail", func() bool {
		d := deliveries(t, s, key, ep.ID, "?status=failed")
		return len(d) == 1
	})
	d := deliveries(t, s, key, ep.ID, "")[0]
	if d.Attempts != len(webhooks.Schedule) || len(d.AttemptLog) != len(webhooks.Schedule) || d.NextAttemptAt != nil {
		t.Fatalf("failed delivery: %d attempts, %d logged, next %v", d.Attempts, len(d.AttemptLog), d.NextAttemptAt)
	}
	for _, a := range d.AttemptLog {
		if a.StatusCode != 503 || a.Response != `{"thanks":true}` {
			t.Fatalf("attempt logged as %+v", a)
		}
	}
	clock.advance(24 * time.Hour)
	time.Sleep(100 * time.Millisecond)
	if got := attempts(); got != len(webhooks.Schedule) {
		t.Fatalf("%d attempts after the delivery failed", got)
	}
	if _, _, bad := rcv.snapshot(); len(bad) > 0 {
		t.Fatal(bad[0])
	}
}

// An endpoint that fails every attempt for five days is disabled with a visible reason and gets
// nothing more; a success within the window ends the streak; enabling it again clears both.
func TestAnEndpointFailingForFiveDaysIsDisabled(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{SandboxLatencyMS: 1})
	clock := newFakeClock()
	s.StartWorker(worker.Config{})
	s.StartDeliverer(webhooks.Config{Now: clock.Now})
	_, key := s.Tenant()
	rcv := newReceiver(t)
	rcv.status.Store(500)
	ep := createEndpoint(t, s, key, webhooks.Input{URL: rcv.URL, EventTypes: []string{event.Accepted}})
	watcher := newReceiver(t) // the tenant's other endpoint, told when the first is disabled
	watcher.trust(createEndpoint(t, s, key, webhooks.Input{URL: watcher.URL, EventTypes: []string{event.EndpointDisabled}}).Secret)
	get := func() api.WebhookEndpoint {
		var e api.WebhookEndpoint
		s.Do("GET", "/v1/webhook-endpoints/"+ep.ID, key, nil, nil, &e)
		return e
	}
	send := func(i int) {
		before := rcv.distinct()
		s.Send(key, "", sms(i))
		waitFor(t, "a delivery", func() bool { return rcv.distinct() > before })
	}

	send(1)
	waitFor(t, "the failure streak to start", func() bool { return get().FailingSince != nil })
	// Four days of failures, then one success: the streak ends.
	clock.advance(4 * 24 * time.Hour)
	send(2)
	rcv.status.Store(200)
	clock.advance(time.Hour)
	send(3)
	waitFor(t, "the streak to end", func() bool { return get().FailingSince == nil })

	// Failing again: five days on, the endpoint is disabled.
	rcv.status.Store(500)
	send(4)
	clock.advance(3 * 24 * time.Hour)
	send(5)
	if e := get(); !e.Enabled {
		t.Fatalf("disabled after 3 days of failures: %s", e.DisabledReason)
	}
	clock.advance(2*24*time.Hour + time.Second)
	s.Send(key, "", sms(6)) // this attempt, or a retry of an earlier delivery, is the one five days in
	waitFor(t, "the endpoint to be disabled", func() bool { return !get().Enabled })
	if e := get(); e.DisabledReason == "" {
		t.Fatal("disabled without a reason")
	}
	waitFor(t, "the endpoint-disabled event", func() bool { return watcher.distinct() == 1 })
	if _, types, bad := watcher.snapshot(); len(bad) > 0 || len(types) != 1 {
		t.Fatalf("the other endpoint got %v %v", types, bad)
	}
	before := rcv.distinct()
	s.Send(key, "", sms(7))
	time.Sleep(300 * time.Millisecond)
	if rcv.distinct() != before {
		t.Fatal("a disabled endpoint got a delivery")
	}

	var e api.WebhookEndpoint
	s.Do("PATCH", "/v1/webhook-endpoints/"+ep.ID, key, api.WebhookEndpointPatch{Enabled: ptr(true)}, nil, &e)
	if !e.Enabled || e.DisabledReason != "" || e.FailingSince != nil {
		t.Fatalf("re-enabled endpoint: %+v", e)
	}
}

func ptr[T any](v T) *T { return &v }

// An event is filed under its own time; one published over a week after it, or timed over an
// hour ahead of its publication, is filed under its publication's and flagged so, because the
// eraser looks for the others in their event's week alone (migrations/0044).
func TestADeliveryFiledAwayFromItsEventsTimeIsFlagged(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	s.StartDeliverer(webhooks.Config{})
	tenant, key := s.Tenant()
	rcv := newReceiver(t)
	rcv.trust(createEndpoint(t, s, key, webhooks.Input{URL: rcv.URL}).Secret)
	ctx := context.Background()
	if _, err := s.Store.CreatePartitions(ctx, time.Now().AddDate(0, 0, -9), time.Now().AddDate(0, 0, 1)); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	times := map[string]time.Time{"evt_ontime": now.Add(-30 * time.Second), "evt_weekold": now.AddDate(0, 0, -8), "evt_ahead": now.Add(2 * time.Hour)}
	var msgs []queue.Message
	for id, at := range times {
		b, _ := json.Marshal(event.Event{SpecVersion: "1.0", ID: id, Source: event.Source(tenant), Type: event.Accepted, Subject: "msg_x",
			Time: at, DataContentType: "application/json", Data: event.Data{TenantID: tenant, MessageID: "msg_x", Channel: "sms", Status: "queued"}})
		msgs = append(msgs, queue.Message{Key: []byte(tenant), Value: b})
	}
	prod := queue.NewProducer(s.Brokers, queue.TopicEvents)
	defer prod.Close()
	if err := prod.PublishRaw(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the three deliveries recorded", func() bool {
		var n int
		err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM communication.webhook_deliveries WHERE tenant_id = $1 AND status = 'succeeded'`, tenant).Scan(&n)
		return err == nil && n == len(times)
	})
	for id, at := range times {
		var filed time.Time
		var late string
		err := s.Pool.QueryRow(ctx, `SELECT created_at, coalesce(filed_late::text, 'null') FROM communication.webhook_deliveries WHERE tenant_id = $1 AND event_id = $2`,
			tenant, id).Scan(&filed, &late)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		onTime := id == "evt_ontime"
		if late != fmt.Sprint(!onTime) || filed.Equal(at) != onTime || filed.Sub(now).Abs() > time.Minute {
			t.Errorf("%s, timed %v: filed at %v, flagged late %v", id, at, filed, late)
		}
	}
}
