package worker_test

import (
	"testing"
	"time"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/testing/fakeprovider"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/pkg/message"
)

// A push template and an in_app template render like the others, by locale, with the recipient's
// profile: the subject is the title and the text the body, and the rest of the request's push or
// in_app content (data, collapse key, action URL) goes with them. The browser decrypts the
// rendered notification. A template's version refuses html, a send by a template refuses a title
// or body of its own, and each fault names its field.
func TestPushAndInAppTemplatesRender(t *testing.T) {
	t.Parallel()
	push := fakeprovider.NewWebPush()
	t.Cleanup(push.Close)
	s := stacktest.Start(t, stacktest.Options{})
	s.StartWorker(fast)
	tid, key := ownOnly(t, s)
	cfg := webPushConfig(t, s, key, push)
	if resp := s.Do("PUT", "/v1/recipients/u_1", key, map[string]any{"locale": "fr-CA", "data": map[string]any{"first_name": "Ada"}}, nil, nil); resp.StatusCode != 201 {
		t.Fatalf("profile: %d", resp.StatusCode)
	}
	browser := push.Subscribe(cfg.VAPIDPublicKey)
	if resp := s.Do("POST", "/v1/recipients/u_1/devices", key, map[string]any{"platform": "webpush", "subscription": browser}, nil, nil); resp.StatusCode != 201 {
		t.Fatalf("register: %d", resp.StatusCode)
	}
	variables := map[string]any{"type": "object", "required": []string{"order"}, "properties": map[string]any{"order": map[string]any{"type": "string"}}}
	for _, ch := range []string{"push", "in_app"} {
		if resp := s.Do("POST", "/v1/templates", key, map[string]any{"key": "shipped-" + ch, "name": "Shipped", "channel": ch, "variables": variables}, nil, nil); resp.StatusCode != 201 {
			t.Fatalf("create the %s template: %d", ch, resp.StatusCode)
		}
		for n, v := range []map[string]any{
			{"locale": "en", "subject": "Order {{order}} shipped", "text": "{{recipient.data.first_name}}, it arrives Tuesday."},
			{"locale": "fr", "subject": "Commande {{order}} expédiée", "text": "{{recipient.data.first_name}}, elle arrive mardi."},
		} {
			if resp := s.Do("POST", "/v1/templates/shipped-"+ch+"/versions", key, v, nil, nil); resp.StatusCode != 201 {
				t.Fatalf("%s version %s: %d", ch, v["locale"], resp.StatusCode)
			}
			if resp := s.Do("POST", "/v1/templates/shipped-"+ch+"/versions/"+[]string{"1", "2"}[n]+"/activate", key, nil, nil, nil); resp.StatusCode != 200 {
				t.Fatalf("activate: %d", resp.StatusCode)
			}
		}
		fields := problemFieldsOf(t, s, key, "POST", "/v1/templates/shipped-"+ch+"/versions", map[string]any{"subject": "x", "html": "<b>x</b>"})
		if fields["html"] == "" {
			t.Fatalf("an html part for a %s template: %v", ch, fields)
		}
	}

	var accepted struct{ ID string }
	if resp := s.Do("POST", "/v1/messages", key, map[string]any{"recipient": "u_1", "template": map[string]any{"key": "shipped-push", "data": map[string]any{"order": "A-42"}},
		"push": map[string]any{"data": map[string]string{"order": "A-42"}, "collapse_key": "order-A-42"}}, nil, &accepted); resp.StatusCode != 202 {
		t.Fatalf("send by the push template: %d", resp.StatusCode)
	}
	var inApp struct{ ID string }
	if resp := s.Do("POST", "/v1/messages", key, map[string]any{"recipient": "u_1", "template": map[string]any{"key": "shipped-in_app", "locale": "en", "data": map[string]any{"order": "A-42"}},
		"in_app": map[string]any{"action_url": "https://shop.example/orders/A-42"}}, nil, &inApp); resp.StatusCode != 202 {
		t.Fatalf("send by the in_app template: %d", resp.StatusCode)
	}
	s.WaitAllFinal(30 * time.Second)
	got := push.Payloads(browser.Endpoint)
	if len(got) != 1 || got[0].Title != "Commande A-42 expédiée" || got[0].Body != "Ada, elle arrive mardi." || got[0].Data["order"] != "A-42" || got[0].Tag != "order-A-42" {
		t.Fatalf("the browser decrypted %+v", got)
	}
	m := getMessage(t, s, tid, accepted.ID)
	if m.Status != message.Sent || m.Template == nil || m.Template.Locale != "fr" || m.Template.Version != 2 {
		t.Fatalf("the push message: %s, template %+v", m.Status, m.Template)
	}
	m = getMessage(t, s, tid, inApp.ID)
	if m.Status != message.Sent || m.InApp == nil || m.InApp.Title != "Order A-42 shipped" || m.InApp.Body != "Ada, it arrives Tuesday." ||
		m.InApp.ActionURL != "https://shop.example/orders/A-42" {
		t.Fatalf("the in_app message: %s %+v", m.Status, m.InApp)
	}

	// Each counts once in the usage by channel, whatever its devices: accepted and sent.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var usage usageAnswer
		if resp := s.Do("GET", "/v1/usage?group_by=channel", key, nil, nil, &usage); resp.StatusCode != 200 {
			t.Fatalf("usage: %d", resp.StatusCode)
		}
		byChannel := map[string]api.Counters{}
		for _, r := range usage.Rows {
			byChannel[r.Channel] = r.Counters
		}
		if p, in := byChannel["push"], byChannel["in_app"]; p.Accepted == 1 && p.Sent == 1 && in.Accepted == 1 && in.Sent == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage by channel: %+v, want push and in_app accepted and sent once each", byChannel)
		}
	}

	for name, tc := range map[string]struct {
		body  map[string]any
		field string
	}{
		"a title of its own": {map[string]any{"recipient": "u_1", "template": map[string]any{"key": "shipped-push", "data": map[string]any{"order": "1"}},
			"push": map[string]any{"title": "mine"}}, "push.title"},
		"a body of its own": {map[string]any{"recipient": "u_1", "template": map[string]any{"key": "shipped-in_app", "data": map[string]any{"order": "1"}},
			"in_app": map[string]any{"body": "mine"}}, "in_app.body"},
		"another channel": {map[string]any{"channel": "sms", "to": "+14155550123", "template": map[string]any{"key": "shipped-push", "data": map[string]any{"order": "1"}}}, "channel"},
		"missing data":    {map[string]any{"recipient": "u_1", "template": map[string]any{"key": "shipped-push", "data": map[string]any{}}}, "template.data.order"},
	} {
		if fields := problemFieldsOf(t, s, key, "POST", "/v1/messages", tc.body); fields[tc.field] == "" {
			t.Errorf("%s: %v, want a fault on %s", name, fields, tc.field)
		}
	}
}

// problemFieldsOf sends a request that must be refused with 422 and returns its faults by field.
func problemFieldsOf(t *testing.T, s *stacktest.Stack, key, method, path string, body any) map[string]string {
	t.Helper()
	var prob api.Problem
	if resp := s.Do(method, path, key, body, nil, &prob); resp.StatusCode != 422 {
		t.Fatalf("%s %s: %d, want 422", method, path, resp.StatusCode)
	}
	out := map[string]string{}
	for _, f := range prob.Errors {
		out[f.Field] = f.Message
	}
	return out
}
