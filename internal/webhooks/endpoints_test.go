package webhooks_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/dispatch/worker"
	"github.com/logicspike/comms/internal/platform/netguard"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/internal/webhooks"
	"github.com/logicspike/comms/pkg/event"
	"github.com/logicspike/comms/pkg/message"
)

// After a rotation both secrets sign each delivery for 24 hours (receivers verifying with
// either accept it); after that only the new one does.
func TestRotatedSecretSignsBesideTheOldOneFor24Hours(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{SandboxLatencyMS: 1})
	clock := newFakeClock()
	s.StartWorker(worker.Config{})
	d := s.StartDeliverer(webhooks.Config{Now: clock.Now})
	_, key := s.Tenant()
	oldOnly, newOnly := newReceiver(t), newReceiver(t)
	ep := createEndpoint(t, s, key, webhooks.Input{URL: oldOnly.URL, EventTypes: []string{event.Accepted}})
	var rotated api.WebhookEndpointWithSecret
	if resp := s.Do("POST", "/v1/webhook-endpoints/"+ep.ID+"/rotate-secret", key, nil, nil, &rotated); resp.StatusCode != 200 {
		t.Fatalf("rotate: %d", resp.StatusCode)
	}
	if rotated.Secret == ep.Secret || rotated.PreviousSecretExpiresAt == nil ||
		time.Until(*rotated.PreviousSecretExpiresAt) < 23*time.Hour {
		t.Fatalf("rotation answered %+v", rotated)
	}
	oldOnly.trust(ep.Secret)
	newOnly.trust(rotated.Secret)

	// Both receivers get the same deliveries: one endpoint each, at the same URL path.
	var e api.WebhookEndpoint
	s.Do("PATCH", "/v1/webhook-endpoints/"+ep.ID, key, api.WebhookEndpointPatch{URL: ptr(oldOnly.URL)}, nil, &e)
	s.Send(key, "", sms(1))
	waitFor(t, "a delivery signed with the old secret", func() bool { return oldOnly.distinct() == 1 })
	s.Do("PATCH", "/v1/webhook-endpoints/"+ep.ID, key, api.WebhookEndpointPatch{URL: ptr(newOnly.URL)}, nil, &e)
	s.Send(key, "", sms(2))
	waitFor(t, "a delivery signed with the new secret", func() bool { return newOnly.distinct() == 1 })
	for _, r := range []*receiver{oldOnly, newOnly} {
		if _, _, bad := r.snapshot(); len(bad) > 0 {
			t.Fatalf("within the overlap: %s", bad[0])
		}
	}

	// A day later the old secret no longer signs.
	clock.advance(webhooks.RotationOverlap + time.Second)
	d.Changed("")
	s.Do("PATCH", "/v1/webhook-endpoints/"+ep.ID, key, api.WebhookEndpointPatch{URL: ptr(oldOnly.URL)}, nil, &e)
	s.Send(key, "", sms(3))
	waitFor(t, "a delivery after the overlap", func() bool { return oldOnly.distinct() == 2 })
	if _, _, bad := oldOnly.snapshot(); len(bad) != 1 || !strings.Contains(bad[0], "signature") {
		t.Fatalf("after the overlap, a receiver with the old secret saw %q", bad)
	}
}

// A replay delivers the matching deliveries again with their original webhook-id, and asking
// for the same replay again queues nothing.
func TestReplayResendsWithTheOriginalIDsOnce(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{SandboxLatencyMS: 1})
	s.StartWorker(worker.Config{})
	s.StartDeliverer(webhooks.Config{})
	_, key := s.Tenant()
	rcv := newReceiver(t)
	ep := createEndpoint(t, s, key, webhooks.Input{URL: rcv.URL, EventTypes: []string{event.Accepted}})
	rcv.trust(ep.Secret)
	since := time.Now().Add(-time.Minute)
	const n = 20
	for i := range n {
		s.Send(key, "", sms(i))
	}
	waitFor(t, "every delivery", func() bool { return len(deliveries(t, s, key, ep.ID, "?status=succeeded")) == n })

	replay := func() webhooks.ReplayResult {
		var res webhooks.ReplayResult
		if resp := s.Do("POST", "/v1/webhook-endpoints/"+ep.ID+"/replay", key, api.WebhookReplay{Since: since, Status: "succeeded"}, nil, &res); resp.StatusCode != 200 {
			t.Fatalf("replay: %d", resp.StatusCode)
		}
		return res
	}
	if res := replay(); res.Queued != n || res.Repeated {
		t.Fatalf("first replay: %+v", res)
	}
	waitFor(t, "every delivery twice", func() bool {
		got, _, _ := rcv.snapshot()
		for _, c := range got {
			if c < 2 {
				return false
			}
		}
		return len(got) == n
	})
	if res := replay(); res.Queued != n || !res.Repeated {
		t.Fatalf("the same replay again: %+v", res)
	}
	time.Sleep(300 * time.Millisecond)
	got, _, bad := rcv.snapshot()
	for id, c := range got {
		if c != 2 {
			t.Errorf("%s delivered %d times", id, c)
		}
	}
	if len(bad) > 0 || len(got) != n {
		t.Fatalf("%d distinct ids, %d bad", len(got), len(bad))
	}
	waitFor(t, "every replayed delivery recorded", func() bool {
		ds := deliveries(t, s, key, ep.ID, "?status=succeeded")
		for _, d := range ds {
			if d.Attempts != 2 || len(d.AttemptLog) != 2 {
				return false
			}
		}
		return len(ds) == n
	})
}

// A Deliverer killed mid-run loses nothing: its successor delivers every event, and each
// (endpoint, event) has one delivery row whatever was delivered twice.
func TestAKilledDelivererLosesNothing(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{SandboxLatencyMS: 1})
	s.StartWorker(worker.Config{})
	d := s.StartDeliverer(webhooks.Config{})
	tenant, key := s.Tenant()
	rcv := newReceiver(t)
	rcv.trust(createEndpoint(t, s, key, webhooks.Input{URL: rcv.URL}).Secret)
	const n = 200
	for i := range n {
		s.Send(key, "", sms(i))
	}
	waitFor(t, "some deliveries", func() bool { return rcv.distinct() > n/2 })
	d.Kill()
	s.StartDeliverer(webhooks.Config{})
	s.WaitAllFinal(30 * time.Second)
	want := publishedEvents(t, s, tenant)
	waitFor(t, "every event", func() bool { return rcv.distinct() >= len(want) })
	got, _, bad := rcv.snapshot()
	for id := range want {
		if got[id] == 0 {
			t.Errorf("event %s never delivered", id)
		}
	}
	var rows, distinct int
	waitFor(t, "every delivery recorded", func() bool {
		if err := s.Pool.QueryRow(context.Background(), `SELECT count(*), count(DISTINCT event_id) FROM communication.webhook_deliveries
			WHERE tenant_id = $1 AND status = 'succeeded'`, tenant).Scan(&rows, &distinct); err != nil {
			t.Fatal(err)
		}
		return rows >= len(want)
	})
	if rows != len(want) || distinct != rows || len(bad) > 0 {
		t.Fatalf("%d delivery rows, %d distinct, %d events, %d bad", rows, distinct, len(want), len(bad))
	}
}

// A tenant cannot see, change, test, rotate, replay or delete another tenant's endpoint: 404.
func TestAnotherTenantsEndpointIsNotFound(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	owner, key := s.Tenant()
	_, other := s.Tenant()
	ep := createEndpoint(t, s, key, webhooks.Input{URL: "https://hooks.example.com/a"})
	base := "/v1/webhook-endpoints/" + ep.ID
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"GET", base, nil}, {"PATCH", base, api.WebhookEndpointPatch{Enabled: ptr(false)}}, {"DELETE", base, nil},
		{"POST", base + "/rotate-secret", nil}, {"POST", base + "/test", nil}, {"GET", base + "/deliveries", nil},
		{"POST", base + "/replay", api.WebhookReplay{Since: time.Now().Add(-time.Hour)}},
	} {
		if resp := s.Do(c.method, c.path, other, c.body, nil, nil); resp.StatusCode != 404 {
			t.Errorf("%s %s by another tenant: %d", c.method, c.path, resp.StatusCode)
		}
	}
	var list struct{ Data []api.WebhookEndpoint }
	s.Do("GET", "/v1/webhook-endpoints", other, nil, nil, &list)
	if len(list.Data) != 0 {
		t.Fatalf("another tenant lists %d endpoints", len(list.Data))
	}
	var e api.WebhookEndpoint
	if resp := s.Do("GET", base, key, nil, nil, &e); resp.StatusCode != 200 || !e.Enabled {
		t.Fatalf("after the attempts the owner sees %d %+v", resp.StatusCode, e)
	}

	// The owner's test send is signed with the endpoint's secret and joins its delivery log.
	rcv := newReceiver(t)
	rcv.trust(ep.Secret)
	s.Do("PATCH", base, key, api.WebhookEndpointPatch{URL: ptr(rcv.URL)}, nil, &e)
	var d api.WebhookDelivery
	if resp := s.Do("POST", base+"/test", key, nil, nil, &d); resp.StatusCode != 200 || d.Status != "succeeded" || d.EventType != event.Test {
		t.Fatalf("test send: %d %+v", resp.StatusCode, d)
	}
	if got, types, bad := rcv.snapshot(); len(bad) > 0 || got[d.EventID] != 1 || types[d.EventID] != event.Test {
		t.Fatalf("the receiver got %v %v %v", got, types, bad)
	}
	if ds := deliveries(t, s, key, ep.ID, ""); len(ds) != 1 || ds[0].EventID != d.EventID {
		t.Fatalf("delivery log after a test send: %+v", ds)
	}
	if resp := s.Do("DELETE", base, key, nil, nil, nil); resp.StatusCode != 204 {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if resp := s.Do("GET", base, key, nil, nil, nil); resp.StatusCode != 404 {
		t.Fatalf("after delete: %d", resp.StatusCode)
	}
	// Its delivery log goes with it, attempts included (they keep no foreign key: migrations/0040).
	var left int
	if err := s.Pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM communication.webhook_deliveries WHERE endpoint_id = $1)
		+ (SELECT count(*) FROM communication.webhook_attempts WHERE tenant_id = $2)`, ep.ID, owner).Scan(&left); err != nil || left != 0 {
		t.Fatalf("after delete, %d rows of its delivery log are left (%v)", left, err)
	}
}

// Bad input is refused naming the field, and creates nothing.
func TestBadEndpointInputIsRefusedByField(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	_, key := s.Tenant()
	for _, c := range []struct {
		in    webhooks.Input
		field string
	}{
		{webhooks.Input{}, "url"},
		{webhooks.Input{URL: "ftp://example.com"}, "url"},
		{webhooks.Input{URL: "https://example.com/" + strings.Repeat("a", 2000)}, "url"},
		{webhooks.Input{URL: "https://example.com", EventTypes: []string{"comms.message.exploded"}}, "event_types[0]"},
		{webhooks.Input{URL: "https://example.com", Description: strings.Repeat("d", 501)}, "description"},
	} {
		var p struct {
			Errors []message.FieldError `json:"errors"`
		}
		resp := s.Do("POST", "/v1/webhook-endpoints", key, c.in, nil, &p)
		if resp.StatusCode != 422 || len(p.Errors) != 1 || p.Errors[0].Field != c.field {
			t.Errorf("%+v: %d %+v", c.in, resp.StatusCode, p.Errors)
		}
	}
	var list struct{ Data []api.WebhookEndpoint }
	s.Do("GET", "/v1/webhook-endpoints", key, nil, nil, &list)
	if len(list.Data) != 0 {
		t.Fatalf("refused input created %d endpoints", len(list.Data))
	}

	ep := createEndpoint(t, s, key, webhooks.Input{URL: "https://hooks.example.com/a"})
	var p struct {
		Errors []message.FieldError `json:"errors"`
	}
	if resp := s.Do("GET", "/v1/webhook-endpoints/"+ep.ID+"/deliveries?limit=0&status=lost&colour=red", key, nil, nil, &p); resp.StatusCode != 400 || len(p.Errors) != 3 {
		t.Fatalf("a bad deliveries query: %d %+v", resp.StatusCode, p.Errors)
	}
	if resp := s.Do("POST", "/v1/webhook-endpoints/"+ep.ID+"/replay", key, map[string]any{"status": "lost"}, nil, &p); resp.StatusCode != 422 || len(p.Errors) != 2 {
		t.Fatalf("a replay without since and with a bad status: %d %+v", resp.StatusCode, p.Errors)
	}
}

// Without COMMS_ALLOW_PRIVATE_NETWORKS, URLs that reach the platform's own network are refused
// when saved; a name resolving to one (DNS rebinding) is refused when dialled; redirects are
// not followed.
func TestEndpointsCannotReachPrivateNetworks(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	tenant, _ := s.Tenant()
	guarded := webhooks.NewService(webhooks.ServiceConfig{Dial: netguard.DialFunc(time.Second, false)}, s.Store, s.Ring, s.Log)
	ctx := context.Background()
	for _, u := range []string{
		"http://hooks.example.com", "https://127.0.0.1/x", "https://[::1]/x", "https://169.254.169.254/latest/meta-data",
		"https://10.0.0.8/", "https://192.168.1.1/", "https://[fd00:ec2::254]/", "https://localhost:8443/", "https://user:pw@hooks.example.com/",
	} {
		_, err := guarded.Create(ctx, tenant, webhooks.Input{URL: u})
		var verr *message.ValidationError
		if !errors.As(err, &verr) || verr.Fields[0].Field != "url" {
			t.Errorf("%s: %v", u, err)
		}
	}

	// A hostname that resolves to loopback passes the save-time check and is refused at dial time.
	rcv := newReceiver(t)
	port := rcv.URL[strings.LastIndex(rcv.URL, ":")+1:]
	allowed, err := s.Webhooks.Create(ctx, tenant, webhooks.Input{URL: "http://localhost:" + port + "/"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := guarded.Test(ctx, tenant, allowed.ID)
	if err != nil || d.Status != "failed" || !strings.Contains(d.AttemptLog[0].Error, "refus") {
		t.Fatalf("test send to a name resolving to loopback: %v %+v", err, d)
	}
	if rcv.distinct() != 0 {
		t.Fatal("the guarded sender reached loopback")
	}

	// A redirect is reported, not followed.
	target := newReceiver(t)
	redirector := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
	defer redirector.Close()
	ep, err := s.Webhooks.Create(ctx, tenant, webhooks.Input{URL: redirector.URL})
	if err != nil {
		t.Fatal(err)
	}
	d, err = s.Webhooks.Test(ctx, tenant, ep.ID)
	if err != nil || d.Status != "failed" || d.AttemptLog[0].StatusCode != 307 || !strings.Contains(d.AttemptLog[0].Error, "redirect") {
		t.Fatalf("redirected test send: %v %+v", err, d)
	}
	if target.distinct() != 0 {
		t.Fatal("the redirect was followed")
	}
}

// A hanging endpoint of one tenant does not hold back another tenant's deliveries: every one of
// them arrives while the hanging endpoint still has requests open.
func TestAHangingEndpointDoesNotHoldBackOthers(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{SandboxLatencyMS: 1})
	s.StartWorker(worker.Config{})
	s.StartDeliverer(webhooks.Config{PerEndpoint: 4, Timeout: time.Minute})
	_, keyA := s.Tenant()
	_, keyB := s.Tenant()
	a, b := newReceiver(t), newReceiver(t)
	b.hang = make(chan struct{})
	defer close(b.hang)
	a.trust(createEndpoint(t, s, keyA, webhooks.Input{URL: a.URL, EventTypes: []string{event.Accepted}}).Secret)
	createEndpoint(t, s, keyB, webhooks.Input{URL: b.URL, EventTypes: []string{event.Accepted}})
	const n = 100
	for i := range n {
		s.Send(keyB, "", sms(i))
		s.Send(keyA, "", sms(i))
	}
	waitFor(t, "every delivery to A", func() bool { return a.distinct() == n })
	if _, _, bad := a.snapshot(); len(bad) > 0 {
		t.Fatal(bad[0])
	}
}
