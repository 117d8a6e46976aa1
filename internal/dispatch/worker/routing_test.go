package worker_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/testing/fakeprovider"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

func addTwilio(t *testing.T, s *stacktest.Stack, key string, tw *fakeprovider.Twilio, name, from string, priority int) api.Provider {
	t.Helper()
	var p api.Provider
	resp := s.Do("POST", "/v1/providers", key, map[string]any{
		"type": "twilio", "name": name, "channel": "sms", "priority": priority, "test_recipient": "+14155550199",
		"credentials": map[string]any{"account_sid": tw.AccountSID, "auth_token": tw.AuthToken},
		"sender":      map[string]any{"from": from},
	}, nil, &p)
	if resp.StatusCode != 201 {
		t.Fatalf("create provider: %d", resp.StatusCode)
	}
	return p
}

func sentFrom(tw *fakeprovider.Twilio, text string) string {
	for _, r := range tw.Received() {
		if r.Text == text {
			return r.From
		}
	}
	return ""
}

// Routing: the tenant's own configs by priority, a change reaching the worker within the route
// cache's lifetime, then the system default when the tenant may fall back, else no_provider.
func TestRoutingPrefersTheTenantsConfigsByPriority(t *testing.T) {
	t.Parallel()
	tw := fakeprovider.NewTwilio()
	defer tw.Close()
	s := stacktest.Start(t, stacktest.Options{Env: provider.Env{TwilioBaseURL: tw.URL}})
	s.StartWorker(fast)
	tid, key := s.Tenant()
	first := addTwilio(t, s, key, tw, "primary", "+14155550001", 1)
	addTwilio(t, s, key, tw, "secondary", "+14155550002", 2)

	id := s.Send(key, "", sms("one"))
	s.WaitAllFinal(30 * time.Second)
	if m := getMessage(t, s, tid, id); m.ProviderConfigID != first.ID || sentFrom(tw, "one") != "+14155550001" {
		t.Fatalf("sent through %s from %s, want the priority-1 config", m.ProviderConfigID, sentFrom(tw, "one"))
	}

	// Disable the primary: within the route cache's lifetime (1s in tests) messages move on.
	if resp := s.Do("PATCH", "/v1/providers/"+first.ID, key, map[string]any{"enabled": false}, nil, nil); resp.StatusCode != 200 {
		t.Fatalf("disable: %d", resp.StatusCode)
	}
	if !eventuallySentFrom(s, key, tw, "+14155550002", 10*time.Second) {
		t.Fatal("the disabled config kept sending")
	}
}

// eventuallySentFrom sends probe messages until one goes out from number, or within is over.
func eventuallySentFrom(s *stacktest.Stack, key string, tw *fakeprovider.Twilio, number string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for i := 0; time.Now().Before(deadline); i++ {
		text := "probe " + strconv.Itoa(i)
		s.Send(key, "", sms(text))
		s.WaitAllFinal(30 * time.Second)
		if sentFrom(tw, text) == number {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func TestRoutingFallsBackOnlyWhereAllowed(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	s.StartWorker(fast)
	ctx := context.Background()

	allowed, key := s.Tenant() // stacktest tenants may use the system default (the sandbox)
	id := s.Send(key, "", sms("via default"))

	strict, err := s.Store.CreateTenant(ctx, domain.NewTenant{Name: "strict", AllowSystemFallback: false})
	if err != nil {
		t.Fatal(err)
	}
	_, strictKey, err := s.Store.CreateAPIKey(ctx, domain.KindTenant, strict.ID, "k", nil)
	if err != nil {
		t.Fatal(err)
	}
	strictID := s.Send(strictKey, "", sms("nowhere to go"))
	s.WaitAllFinal(30 * time.Second)

	if m := getMessage(t, s, allowed, id); m.Status != message.Sent || m.ProviderType != "sandbox" {
		t.Fatalf("fallback tenant: %+v", m)
	}
	m := getMessage(t, s, strict.ID, strictID)
	if m.Status != message.Failed || m.Error == nil || m.Error.Code != string(provider.NoProvider) || !strings.Contains(m.Error.Message, "POST /v1/providers") {
		t.Fatalf("no-fallback tenant: %+v", m)
	}
	if s.Recorder.Count(strictID) != 0 {
		t.Fatal("the system default sent for a tenant that forbids it")
	}
}

// A ciphertext copied into another tenant's row does not open there: that config is skipped
// (and logged) while the tenant's messages fall back, and nothing is sent with the copied
// credentials.
func TestCopiedCiphertextDoesNotOpenForAnotherTenant(t *testing.T) {
	t.Parallel()
	tw := fakeprovider.NewTwilio()
	defer tw.Close()
	s := stacktest.Start(t, stacktest.Options{Env: provider.Env{TwilioBaseURL: tw.URL}})
	_, keyA := s.Tenant()
	tidB, keyB := s.Tenant()
	a := addTwilio(t, s, keyA, tw, "a's twilio", "+14155550001", 1)
	b := addTwilio(t, s, keyB, tw, "b's twilio", "+14155550002", 1)
	ctx := context.Background()
	if _, err := s.Pool.Exec(ctx, `UPDATE communication.provider_configs SET encrypted_config = (SELECT encrypted_config FROM communication.provider_configs WHERE id = $1) WHERE id = $2`, a.ID, b.ID); err != nil {
		t.Fatal(err)
	}
	stored, err := s.Store.GetProviderConfig(ctx, tidB, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Registry.Stored(stored); err == nil || !strings.Contains(err.Error(), "does not open") {
		t.Fatalf("copied ciphertext: %v", err)
	}
	s.StartWorker(fast)
	id := s.Send(keyB, "", sms("b's message"))
	s.WaitAllFinal(30 * time.Second)
	if m := getMessage(t, s, tidB, id); m.ProviderConfigID == b.ID || sentFrom(tw, "b's message") != "" {
		t.Fatalf("sent with copied credentials: %+v", m)
	}
}

// With a route cache that would hold for an hour, a disabled config stops sending at once: the
// API's change notice reaches the worker through Redis.
func TestConfigChangesReachWorkersAtOnce(t *testing.T) {
	t.Parallel()
	tw := fakeprovider.NewTwilio()
	defer tw.Close()
	s := stacktest.Start(t, stacktest.Options{Env: provider.Env{TwilioBaseURL: tw.URL}, RouteCacheTTL: time.Hour})
	s.StartWorker(fast)
	_, key := s.Tenant()
	first := addTwilio(t, s, key, tw, "primary", "+14155550001", 1)
	addTwilio(t, s, key, tw, "secondary", "+14155550002", 2)
	s.Send(key, "", sms("warm the cache"))
	s.WaitAllFinal(30 * time.Second)
	if sentFrom(tw, "warm the cache") != "+14155550001" {
		t.Fatal("primary not used")
	}
	if resp := s.Do("PATCH", "/v1/providers/"+first.ID, key, map[string]any{"enabled": false}, nil, nil); resp.StatusCode != 200 {
		t.Fatalf("disable: %d", resp.StatusCode)
	}
	// Pub/sub delivery is asynchronous: allow it a moment, far below the hour-long TTL.
	if !eventuallySentFrom(s, key, tw, "+14155550002", 10*time.Second) {
		t.Fatal("the disabled config kept sending: the change notice did not reach the worker")
	}
}

// The fallback policy per category: transactional messages may use the system default, marketing
// stays on the tenant's own accounts unless the tenant allows it; a tenant's own category routes
// as its kind.
func TestMarketingDoesNotLeaveTheTenantsAccountByDefault(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	s.StartWorker(fast)
	tid, key := s.Tenant() // no provider of its own; fallback allowed for transactional
	for kind, cat := range map[string]string{"marketing": "digest", "transactional": "receipts"} {
		if resp := s.Do("POST", "/v1/categories", key, map[string]any{"key": cat, "name": cat, "kind": kind, "default": "in"}, nil, nil); resp.StatusCode != 201 {
			t.Fatalf("category %s: %d", cat, resp.StatusCode)
		}
	}
	otp := s.Send(key, "", message.Request{Channel: message.SMS, To: "+14155550123", Text: "code 1"})
	promo := s.Send(key, "", message.Request{Channel: message.SMS, To: "+14155550123", Text: "sale!", Category: message.Marketing})
	digest := s.Send(key, "", message.Request{Channel: message.SMS, To: "+14155550123", Text: "this week", Category: "digest"})
	receipt := s.Send(key, "", message.Request{Channel: message.SMS, To: "+14155550123", Text: "paid", Category: "receipts"})
	s.WaitAllFinal(30 * time.Second)
	if m := getMessage(t, s, tid, otp); m.Status != message.Sent || m.Category != message.Transactional {
		t.Fatalf("otp: %+v", m)
	}
	if m := getMessage(t, s, tid, receipt); m.Status != message.Sent || m.Category != "receipts" {
		t.Fatalf("a transactional category of the tenant's: %+v", m)
	}
	m := getMessage(t, s, tid, promo)
	if m.Status != message.Failed || m.Error.Code != "no_provider" || !strings.Contains(m.Error.Message, "marketing") || s.Recorder.Count(promo) != 0 {
		t.Fatalf("marketing through the system default: %+v", m)
	}
	if m := getMessage(t, s, tid, digest); m.Status != message.Failed || m.Error.Code != "no_provider" || s.Recorder.Count(digest) != 0 {
		t.Fatalf("a marketing category of the tenant's through the system default: %+v", m)
	}
	if resp := s.Do("PATCH", "/admin/tenants/"+tid, s.AdminKey, map[string]any{"fallback_categories": []string{"transactional", "marketing"}}, nil, nil); resp.StatusCode != 200 {
		t.Fatalf("patch: %d", resp.StatusCode)
	}
	promo2 := s.Send(key, "", message.Request{Channel: message.SMS, To: "+14155550123", Text: "sale!", Category: message.Marketing})
	s.WaitAllFinal(30 * time.Second)
	if m := getMessage(t, s, tid, promo2); m.Status != message.Sent || m.ProviderType != "sandbox" {
		t.Fatalf("after allowing marketing: %+v", m)
	}
}
