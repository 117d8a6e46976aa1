package worker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/testing/fakeprovider"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/internal/webhooks"
	"github.com/logicspike/comms/pkg/event"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
	"github.com/logicspike/comms/pkg/webpush"
)

// webPushConfig creates a Web Push config for the tenant of key, with keys comms makes, Save &
// Test sending to a subscription of the push service; it returns the config.
func webPushConfig(t *testing.T, s *stacktest.Stack, key string, push *fakeprovider.WebPush) api.Provider {
	t.Helper()
	test := push.Subscribe("")
	var cfg api.Provider
	if resp := s.Do("POST", "/v1/providers", key, map[string]any{"type": "webpush", "name": "browsers", "channel": "push",
		"credentials": map[string]any{"subject": "mailto:ops@acme.example"}, "test_subscription": test}, nil, &cfg); resp.StatusCode != 201 {
		t.Fatalf("create the Web Push config: %d", resp.StatusCode)
	}
	got := push.Payloads(test.Endpoint)
	if len(cfg.VAPIDPublicKey) != 87 || cfg.Test == nil || len(got) != 1 || got[0].Title != "comms test" ||
		push.Received()[0].Extra["VAPID-Key"] != cfg.VAPIDPublicKey {
		t.Fatalf("Save & Test: key %q, test %+v, the subscription received %+v", cfg.VAPIDPublicKey, cfg.Test, got)
	}
	return cfg
}

// A push message goes to each device of its recipient profile once, encrypted so that only that
// browser opens it (the fake decrypts it with the subscriber's own key, as a browser does) and
// signed with the config's VAPID key. A device its push service no longer knows is removed from
// the profile and announced as comms.device.removed. A device that fails transiently is tried
// again on the message's retry while those that got it are not; a device of a platform the tenant
// has no config for is recorded as failed.
func TestAPushGoesToEachDeviceOnce(t *testing.T) {
	t.Parallel()
	push := fakeprovider.NewWebPush()
	t.Cleanup(push.Close)
	s := stacktest.Start(t, stacktest.Options{})
	s.StartWorker(retrying)
	s.StartDeliverer(webhooks.Config{})
	tid, key := ownOnly(t, s)
	removed := s.EventSink(key, event.DeviceRemoved)
	cfg := webPushConfig(t, s, key, push)

	if resp := s.Do("PUT", "/v1/recipients/u_1", key, map[string]any{}, nil, nil); resp.StatusCode != 201 {
		t.Fatalf("profile: %d", resp.StatusCode)
	}
	laptop, phone := push.Subscribe(cfg.VAPIDPublicKey), push.Subscribe(cfg.VAPIDPublicKey)
	devices := map[string]string{} // endpoint → device id
	for _, sub := range []fakeprovider.Subscription{laptop, phone} {
		var d api.Device
		if resp := s.Do("POST", "/v1/recipients/u_1/devices", key, map[string]any{"platform": "webpush", "subscription": sub}, nil, &d); resp.StatusCode != 201 {
			t.Fatalf("register: %d", resp.StatusCode)
		}
		devices[sub.Endpoint] = d.ID
	}
	var android api.Device
	s.Do("POST", "/v1/recipients/u_1/devices", key, map[string]any{"platform": "fcm", "token": "no-fcm-config"}, nil, &android)

	content := map[string]any{"title": "Order shipped", "body": "It arrives Tuesday.", "data": map[string]string{"order": "42"},
		"collapse_key": "order-42", "ttl_seconds": 3600, "priority": "high"}
	var acc struct {
		ID string `json:"id"`
	}
	if resp := s.Do("POST", "/v1/messages", key, map[string]any{"channel": "push", "recipient": "u_1", "push": content}, nil, &acc); resp.StatusCode != 202 {
		t.Fatalf("send: %d", resp.StatusCode)
	}
	s.WaitAllFinal(30 * time.Second)
	m := getMessage(t, s, tid, acc.ID)
	if m.Status != message.Sent || m.Push == nil || m.Push.Title != "Order shipped" || m.Push.Data["order"] != "42" || m.ProviderConfigID != cfg.ID {
		t.Fatalf("message: %s via %s, %+v", m.Status, m.ProviderConfigID, m.Push)
	}
	for _, sub := range []fakeprovider.Subscription{laptop, phone} {
		got := push.Payloads(sub.Endpoint)
		if len(got) != 1 || got[0].ID != acc.ID || got[0].Title != "Order shipped" || got[0].Body != "It arrives Tuesday." ||
			got[0].Data["order"] != "42" || got[0].Tag != "order-42" {
			t.Fatalf("%s received %+v", sub.Endpoint, got)
		}
	}
	for _, r := range push.Received()[1:] {
		if r.Extra["TTL"] != "3600" || r.Extra["Urgency"] != "high" || r.Extra["Topic"] != "order-42" {
			t.Fatalf("push service headers: %v", r.Extra)
		}
	}
	var shown message.Message
	if resp := s.Do("GET", "/v1/messages/"+acc.ID, key, nil, nil, &shown); resp.StatusCode != 200 || len(shown.Deliveries) != 3 || shown.Push == nil {
		t.Fatalf("GET the message: %d, %d deliveries, %+v", resp.StatusCode, len(shown.Deliveries), shown.Push)
	}
	statuses := map[string]int{}
	for _, d := range shown.Deliveries {
		statuses[d.Status]++
		if d.Status == "failed" && (d.Error == nil || d.Error.Code != string(provider.NoProvider)) {
			t.Fatalf("the failed delivery shows %+v", d)
		}
	}
	if statuses["sent"] != 2 || statuses["failed"] != 1 {
		t.Fatalf("deliveries shown: %v", statuses)
	}
	byDevice := deliveries(t, s, tid, acc.ID)
	if len(byDevice) != 3 || byDevice[devices[laptop.Endpoint]].Status != domain.DeliverySent ||
		byDevice[android.ID].Status != domain.DeliveryFailed || byDevice[android.ID].ErrorCode != string(provider.NoProvider) {
		t.Fatalf("deliveries: %+v", byDevice)
	}

	// The phone's browser unsubscribed; the laptop's push service fails once; a tablet joins and
	// gets the message on the first attempt, and not again on the retry.
	tablet := push.Subscribe(cfg.VAPIDPublicKey)
	if resp := s.Do("POST", "/v1/recipients/u_1/devices", key, map[string]any{"platform": "webpush", "subscription": tablet}, nil, nil); resp.StatusCode != 201 {
		t.Fatalf("register the tablet: %d", resp.StatusCode)
	}
	push.Unsubscribe(phone.Endpoint)
	push.FailTimes(laptop.Endpoint, provider.ProviderUnavailable, 1)
	second := s.Send(key, "", message.Request{Channel: message.Push, Recipient: "u_1", Push: &message.PushContent{Body: "second"}})
	s.WaitAllFinal(30 * time.Second)
	if m := getMessage(t, s, tid, second); m.Status != message.Sent || m.Attempts != 2 {
		t.Fatalf("second message: %s after %d attempts, want sent on its retry", m.Status, m.Attempts)
	}
	byDevice = deliveries(t, s, tid, second)
	if d := byDevice[devices[phone.Endpoint]]; d.Status != domain.DeliveryRemoved || d.Attempt != 1 {
		t.Fatalf("the unsubscribed phone's delivery: %+v", d)
	}
	if d := byDevice[devices[laptop.Endpoint]]; d.Status != domain.DeliverySent || d.Attempt != 2 {
		t.Fatalf("the laptop's delivery: %+v", d)
	}
	if n := len(push.Payloads(laptop.Endpoint)); n != 2 {
		t.Fatalf("the laptop received %d notifications, want 2 (one per message)", n)
	}
	if got := push.Payloads(tablet.Endpoint); len(got) != 1 || got[0].ID != second {
		t.Fatalf("the tablet received %+v, want the second message once", got)
	}
	var list struct {
		Data []api.Device `json:"data"`
	}
	s.Do("GET", "/v1/recipients/u_1/devices", key, nil, nil, &list)
	for _, d := range list.Data {
		if d.ID == devices[phone.Endpoint] {
			t.Fatal("the unsubscribed device is still on the profile")
		}
	}
	ev := s.WaitEvents(removed, 1, 10*time.Second)
	if d := ev[0].Data; ev[0].Subject != devices[phone.Endpoint] || d.RecipientID != "u_1" || d.Device == nil || d.Device.ID != ev[0].Subject ||
		d.Device.Platform != "webpush" || d.Device.MessageID != second || d.Device.Provider.ConfigID != cfg.ID || d.Error == nil {
		t.Fatalf("comms.device.removed: %s %+v %+v", ev[0].Subject, d, d.Device)
	}

	// A profile without devices: the message fails, naming why.
	s.Do("PUT", "/v1/recipients/u_2", key, map[string]any{}, nil, nil)
	none := s.Send(key, "", message.Request{Channel: message.Push, Recipient: "u_2", Push: &message.PushContent{Title: "x"}})
	s.WaitAllFinal(30 * time.Second)
	if m := getMessage(t, s, tid, none); m.Status != message.Failed || m.Error == nil || m.Error.Code != string(provider.InvalidRecipient) {
		t.Fatalf("a profile without devices: %s %+v", m.Status, m.Error)
	}
}

func deliveries(t *testing.T, s *stacktest.Stack, tenantID, messageID string) map[string]domain.PushDelivery {
	t.Helper()
	list, err := s.Store.PushDeliveries(context.Background(), tenantID, messageID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]domain.PushDelivery{}
	for _, d := range list {
		out[d.DeviceID] = d
	}
	return out
}

// A Web Push config takes the tenant's own key pair, or comms makes one; a change of credentials
// that leaves the keys out keeps them, since every browser subscribed with the public key; a bad
// contact or key is named.
func TestAWebPushConfigKeepsItsKeys(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	_, key := s.Tenant()
	pub, priv, err := webpush.GenerateVAPID()
	if err != nil {
		t.Fatal(err)
	}
	var cfg api.Provider
	if resp := s.Do("POST", "/v1/providers", key, map[string]any{"type": "webpush", "name": "own keys", "channel": "push",
		"credentials": map[string]any{"subject": "https://acme.example/contact", "public_key": pub, "private_key": priv}}, nil, &cfg); resp.StatusCode != 201 ||
		cfg.VAPIDPublicKey != pub || cfg.Test == nil || cfg.Test.Note == "" || strings.Contains(cfg.Mask, priv[:8]) {
		t.Fatalf("create with own keys: %d %+v", resp.StatusCode, cfg)
	}
	var patched api.Provider
	if resp := s.Do("PATCH", "/v1/providers/"+cfg.ID, key, map[string]any{"credentials": map[string]any{"subject": "mailto:push@acme.example"}}, nil, &patched); resp.StatusCode != 200 ||
		patched.VAPIDPublicKey != pub {
		t.Fatalf("a new contact: %d, key %q, want %q kept", resp.StatusCode, patched.VAPIDPublicKey, pub)
	}
	for _, c := range []struct {
		creds map[string]any
		field string
	}{
		{map[string]any{"subject": "ops@acme.example"}, "credentials.subject"},
		{map[string]any{"subject": "mailto:ops@acme.example", "public_key": pub, "private_key": "short"}, "credentials.private_key"},
	} {
		var p api.Problem
		if resp := s.Do("POST", "/v1/providers", key, map[string]any{"type": "webpush", "name": "bad", "channel": "push", "credentials": c.creds}, nil, &p); resp.StatusCode != 422 ||
			len(p.Errors) != 1 || p.Errors[0].Field != c.field {
			t.Errorf("%v: %d %+v, want 422 naming %s", c.creds, resp.StatusCode, p.Errors, c.field)
		}
	}
}

// A push message names a profile and carries its content in push; each fault is a 422 naming the
// field, alone and in a batch, and nothing is accepted.
func TestAPushMessageIsValidated(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	_, key := s.Tenant()
	s.Do("PUT", "/v1/recipients/u_1", key, map[string]any{}, nil, nil)
	push := func(c map[string]any) map[string]any {
		return map[string]any{"channel": "push", "recipient": "u_1", "push": c}
	}
	big := map[string]string{}
	for i := range 60 {
		big[strings.Repeat("k", i+1)] = "v"
	}
	for field, body := range map[string]map[string]any{
		"recipient":          {"channel": "push", "push": map[string]any{"title": "t"}},
		"to":                 {"channel": "push", "recipient": "u_1", "to": "x", "push": map[string]any{"title": "t"}},
		"push":               {"channel": "push", "recipient": "u_1"},
		"subject":            {"channel": "push", "recipient": "u_1", "subject": "s", "push": map[string]any{"title": "t"}},
		"push.title":         push(map[string]any{"title": strings.Repeat("x", 201)}),
		"push.body":          push(map[string]any{"body": strings.Repeat("x", 2001)}),
		"push.data":          push(map[string]any{"title": "t", "data": big}),
		"push.data.google.x": push(map[string]any{"title": "t", "data": map[string]string{"google.x": "1"}}),
		"push.image":         push(map[string]any{"title": "t", "image": "http://cdn.example/x.png"}),
		"push.badge":         push(map[string]any{"title": "t", "badge": -1}),
		"push.sound":         push(map[string]any{"title": "t", "sound": "../x"}),
		"push.collapse_key":  push(map[string]any{"title": "t", "collapse_key": strings.Repeat("c", 65)}),
		"push.ttl_seconds":   push(map[string]any{"title": "t", "ttl_seconds": 2419201}),
		"push.priority":      push(map[string]any{"title": "t", "priority": "urgent"}),
		"in_app":             {"channel": "push", "recipient": "u_1", "push": map[string]any{"title": "t"}, "in_app": map[string]any{"title": "t"}},
	} {
		var p api.Problem
		resp := s.Do("POST", "/v1/messages", key, body, nil, &p)
		if resp.StatusCode != 422 || len(p.Errors) == 0 || p.Errors[0].Field != field {
			t.Errorf("%s: %d %+v", field, resp.StatusCode, p.Errors)
		}
	}
	var b api.BatchResult
	if resp := s.Do("POST", "/v1/messages/batch", key, map[string]any{"messages": []map[string]any{
		push(map[string]any{"title": "ok"}), push(map[string]any{"title": "t", "data": map[string]string{"gcm.x": "1"}}),
	}}, nil, &b); resp.StatusCode != 200 || b.Accepted != 1 || b.Items[1].Error == nil || b.Items[1].Error.Errors[0].Field != "messages[1].push.data.gcm.x" {
		t.Fatalf("batch: %d %+v", resp.StatusCode, b)
	}
	if counts, _ := s.CountByStatus(context.Background()); counts[message.Queued]+counts[message.Sending]+counts[message.Failed] != 1 {
		t.Fatalf("messages recorded: %v, want the batch's one", counts)
	}
}

// An FCM config signs in with its service account (the fake verifies the JWT assertion's
// signature) once and reuses the access token; Save & Test without a device has FCM validate a
// notification it does not deliver. A push reaches the profile's FCM devices with its content
// mapped onto FCM's message, and a token FCM reports UNREGISTERED is removed.
func TestAPushReachesFCMDevices(t *testing.T) {
	t.Parallel()
	fc := fakeprovider.NewFCM()
	t.Cleanup(fc.Close)
	s := stacktest.Start(t, stacktest.Options{Env: provider.Env{FCMBaseURL: fc.URL, FCMTokenURL: fc.URL + "/token"}})
	s.StartWorker(retrying)
	tid, key := ownOnly(t, s)
	var cfg api.Provider
	if resp := s.Do("POST", "/v1/providers", key, map[string]any{"type": "fcm", "name": "android", "channel": "push",
		"credentials": map[string]any{"service_account": fc.ServiceAccount(nil)}}, nil, &cfg); resp.StatusCode != 201 ||
		cfg.Test == nil || !strings.Contains(cfg.Test.Note, "validated") || fc.Validated() != 1 || strings.Contains(cfg.Mask, "PRIVATE") {
		t.Fatalf("Save & Test: %d %+v, %d validated", resp.StatusCode, cfg.Test, fc.Validated())
	}
	var p api.Problem
	if resp := s.Do("POST", "/v1/providers", key, map[string]any{"type": "fcm", "name": "unknown key", "channel": "push",
		"credentials": map[string]any{"service_account": fc.ServiceAccount(fakeprovider.UnknownRSAKey())}}, nil, &p); resp.StatusCode != 422 ||
		p.Code != string(provider.AuthFailed) {
		t.Fatalf("a key Google does not know: %d %+v", resp.StatusCode, p)
	}
	s.Do("PUT", "/v1/recipients/u_1", key, map[string]any{}, nil, nil)
	ids := map[string]string{}
	for _, tok := range []string{"pixel-token", "old-token"} {
		var d api.Device
		s.Do("POST", "/v1/recipients/u_1/devices", key, map[string]any{"platform": "fcm", "token": tok}, nil, &d)
		ids[tok] = d.ID
	}
	fc.FailFor("old-token", provider.InvalidRecipient) // FCM answers UNREGISTERED
	tokensBefore := fc.TokenRequests()
	first := s.Send(key, "", message.Request{Channel: message.Push, Recipient: "u_1", Push: &message.PushContent{Title: "Order shipped",
		Body: "It arrives Tuesday.", Data: map[string]string{"order": "42"}, Priority: "high", CollapseKey: "order-42"}})
	s.WaitAllFinal(30 * time.Second)
	second := s.Send(key, "", message.Request{Channel: message.Push, Recipient: "u_1", Push: &message.PushContent{Body: "again"}})
	s.WaitAllFinal(30 * time.Second)
	for _, id := range []string{first, second} {
		if m := getMessage(t, s, tid, id); m.Status != message.Sent || m.ProviderConfigID != cfg.ID || !strings.HasPrefix(m.ProviderMessageID, "projects/comms-test/messages/") {
			t.Fatalf("%s: %s via %s (%s)", id, m.Status, m.ProviderConfigID, m.ProviderMessageID)
		}
	}
	got := fc.Received()
	if len(got) != 2 || got[0].To != "pixel-token" || got[0].Subject != "Order shipped" ||
		!strings.Contains(got[0].Raw, `"data":{"order":"42"}`) || !strings.Contains(got[0].Raw, `"priority":"HIGH"`) ||
		!strings.Contains(got[0].Raw, `"collapse_key":"order-42"`) || !strings.Contains(got[0].Raw, `"apns-collapse-id":"order-42"`) {
		t.Fatalf("FCM received %+v", got)
	}
	if n := fc.TokenRequests() - tokensBefore; n != 1 { // the worker's adapter, for its three sends
		t.Fatalf("%d access tokens asked for: the token is not reused", n)
	}
	if d := deliveries(t, s, tid, first)[ids["old-token"]]; d.Status != domain.DeliveryRemoved || d.ErrorCode != string(provider.InvalidRecipient) {
		t.Fatalf("the UNREGISTERED token's delivery: %+v", d)
	}
	if _, ok := deliveries(t, s, tid, second)[ids["old-token"]]; ok {
		t.Fatal("a removed device was pushed to again")
	}
}

// An APNs config signs its provider token with the team's .p8 key (the fake verifies it) and
// reuses it; Save & Test sends to the test device. A push reaches the profile's iPhones over
// HTTP/2 with its content mapped onto aps, and a token APNs reports Unregistered is removed.
func TestAPushReachesAPNsDevices(t *testing.T) {
	t.Parallel()
	ap := fakeprovider.NewAPNs()
	t.Cleanup(ap.Close)
	s := stacktest.Start(t, stacktest.Options{Env: provider.Env{APNsBaseURL: ap.URL, RootCAs: ap.RootCAs()}})
	s.StartWorker(retrying)
	tid, key := ownOnly(t, s)
	iphone, gone := strings.Repeat("ab", 32), strings.Repeat("cd", 32)
	var cfg api.Provider
	if resp := s.Do("POST", "/v1/providers", key, map[string]any{"type": "apns", "name": "ios", "channel": "push",
		"credentials": map[string]any{"key_id": ap.KeyID, "team_id": ap.TeamID, "private_key": ap.P8(nil)},
		"sender":      map[string]any{"topic": ap.Topic, "environment": "sandbox"}, "test_recipient": iphone}, nil, &cfg); resp.StatusCode != 201 ||
		cfg.Test == nil || cfg.Test.ProviderMessageID == "" || len(ap.Received()) != 1 {
		t.Fatalf("Save & Test: %d %+v", resp.StatusCode, cfg.Test)
	}
	s.Do("PUT", "/v1/recipients/u_1", key, map[string]any{}, nil, nil)
	ids := map[string]string{}
	for _, tok := range []string{iphone, gone} {
		var d api.Device
		s.Do("POST", "/v1/recipients/u_1/devices", key, map[string]any{"platform": "apns", "token": tok}, nil, &d)
		ids[tok] = d.ID
	}
	ap.FailFor(gone, provider.InvalidRecipient) // APNs answers 410 Unregistered
	badge, ttl := 3, 600
	id := s.Send(key, "", message.Request{Channel: message.Push, Recipient: "u_1", Push: &message.PushContent{Title: "Order shipped",
		Body: "It arrives Tuesday.", Data: map[string]string{"order": "42"}, Badge: &badge, Sound: "default", Priority: "high",
		CollapseKey: "order-42", TTLSeconds: &ttl}})
	s.WaitAllFinal(30 * time.Second)
	if m := getMessage(t, s, tid, id); m.Status != message.Sent || m.ProviderConfigID != cfg.ID || m.ProviderMessageID == "" {
		t.Fatalf("message: %s via %s (%s)", m.Status, m.ProviderConfigID, m.ProviderMessageID)
	}
	got := ap.Received()
	r := got[len(got)-1]
	if len(got) != 2 || r.To != iphone || r.Subject != "Order shipped" || r.Text != "It arrives Tuesday." ||
		!strings.Contains(r.Raw, `"order":"42"`) || !strings.Contains(r.Raw, `"badge":3`) || !strings.Contains(r.Raw, `"sound":"default"`) ||
		r.Extra["apns-priority"] != "10" || r.Extra["apns-collapse-id"] != "order-42" || r.Extra["apns-push-type"] != "alert" || r.Extra["apns-expiration"] == "" {
		t.Fatalf("APNs received %+v", got)
	}
	if n := ap.ProviderTokens(); n > 2 { // Save & Test's adapter and the worker's
		t.Fatalf("%d provider tokens used: a token is made per send", n)
	}
	if d := deliveries(t, s, tid, id)[ids[gone]]; d.Status != domain.DeliveryRemoved {
		t.Fatalf("the Unregistered token's delivery: %+v", d)
	}
}
