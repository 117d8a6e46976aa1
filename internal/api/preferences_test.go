package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/dispatch/worker"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/internal/webhooks"
	"github.com/logicspike/comms/pkg/event"
	"github.com/logicspike/comms/pkg/message"
)

// A tenant declares its categories; bad ones are named and change nothing; the built-in names
// and a key twice are refused.
func TestCategories(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	_, key := s.Tenant()
	_, other := s.Tenant()
	var c api.Category
	mustDo(t, s, 201, "POST", "/v1/categories", key, map[string]any{"key": "newsletter", "name": "Newsletter", "description": "Monthly news",
		"kind": "marketing", "default": "out"}, &c)
	if c.Key != "newsletter" || c.Kind != message.Marketing || c.Default != "out" || c.Required {
		t.Fatalf("created: %+v", c)
	}
	mustDo(t, s, 201, "POST", "/v1/categories", key, map[string]any{"key": "security", "name": "Security alerts", "default": "in", "required": true}, &c)
	if c.Kind != message.Transactional || !c.Required {
		t.Fatalf("created with the default kind: %+v", c)
	}
	for _, tc := range []struct {
		body   map[string]any
		status int
		field  string
	}{
		{map[string]any{"key": "Bad Key", "name": "x", "default": "in"}, 422, "key"},
		{map[string]any{"key": "marketing", "name": "x", "default": "in"}, 422, "key"},
		{map[string]any{"key": "alerts", "name": "x", "default": "out", "required": true}, 422, "default"},
		{map[string]any{"key": "alerts", "name": "x", "default": "maybe"}, 422, "default"},
		{map[string]any{"key": "alerts", "default": "in"}, 422, "name"},
		{map[string]any{"key": "alerts", "name": "x", "default": "in", "kind": "promo"}, 422, "kind"},
		{map[string]any{"key": "newsletter", "name": "again", "default": "in"}, 409, "key"},
	} {
		if f := problemFields(t, s, tc.status, "POST", "/v1/categories", key, tc.body); f[tc.field] == "" {
			t.Errorf("%v: %v, want %d naming %s", tc.body, f, tc.status, tc.field)
		}
	}
	mustDo(t, s, 200, "PATCH", "/v1/categories/newsletter", key, map[string]any{"name": "News", "default": "in"}, &c)
	if c.Name != "News" || c.Default != "in" || c.Kind != message.Marketing {
		t.Fatalf("patched: %+v", c)
	}
	if f := problemFields(t, s, 422, "PATCH", "/v1/categories/security", key, map[string]any{"default": "out"}); f["default"] == "" {
		t.Fatalf("a required category made default out: %v", f)
	}
	var page struct{ Data []api.Category }
	mustDo(t, s, 200, "GET", "/v1/categories", key, nil, &page)
	if len(page.Data) != 2 || page.Data[0].Key != "newsletter" || page.Data[1].Key != "security" {
		t.Fatalf("list: %+v", page.Data)
	}
	mustDo(t, s, 404, "GET", "/v1/categories/newsletter", other, nil, nil)
	mustDo(t, s, 200, "GET", "/v1/categories/security", key, nil, &c)
	if c.Name != "Security alerts" {
		t.Fatalf("get: %+v", c)
	}
	mustDo(t, s, 204, "DELETE", "/v1/categories/newsletter", key, nil, nil)
	mustDo(t, s, 404, "GET", "/v1/categories/newsletter", key, nil, nil)
}

// Intake refuses a send to someone out of its category on its channel (by their own choice,
// under their profile or their address, or by the category's default), per item in a batch,
// except for a required category; a choice left out goes back to the default; a category the
// tenant has not declared is refused.
func TestPreferencesDecideWhatIsSent(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	_, key := s.Tenant()
	for _, c := range []map[string]any{
		{"key": "newsletter", "name": "Newsletter", "kind": "marketing", "default": "out"},
		{"key": "invites", "name": "Invites", "default": "in"},
		{"key": "security", "name": "Security alerts", "default": "in", "required": true},
	} {
		mustDo(t, s, 201, "POST", "/v1/categories", key, c, &api.Category{})
	}
	mustDo(t, s, 201, "PUT", "/v1/recipients/u_1", key, map[string]any{"email": "ada@example.com", "phone": "+14155550123"}, &api.Recipient{})
	send := func(req message.Request) (int, string) {
		t.Helper()
		var p struct {
			Type   string
			Errors []message.FieldError
		}
		resp := s.Do("POST", "/v1/messages", key, req, nil, &p)
		if len(p.Errors) > 0 {
			return resp.StatusCode, p.Type + " " + p.Errors[0].Field
		}
		return resp.StatusCode, p.Type
	}
	const optedOut = "https://github.com/logicspike/comms/blob/main/docs/errors.md#recipient-opted-out category"
	email := func(cat, to, recipient string) message.Request {
		return message.Request{Channel: message.Email, To: to, Recipient: recipient, Subject: "s", Text: "t", Category: message.Category(cat)}
	}
	sms := func(cat, recipient string) message.Request {
		return message.Request{Channel: message.SMS, Recipient: recipient, Text: "t", Category: message.Category(cat)}
	}
	expect := func(what string, req message.Request, status int, problem string) {
		t.Helper()
		if got, typ := send(req); got != status || typ != problem {
			t.Errorf("%s: %d %q, want %d %q", what, got, typ, status, problem)
		}
	}
	expect("a default-out category to someone who chose nothing", email("newsletter", "bob@example.com", ""), 422, optedOut)
	// a template in a category: its sends are in it
	if f := problemFields(t, s, 422, "POST", "/v1/templates", key, map[string]any{"key": "digest", "name": "Digest", "channel": "email", "category": "promos"}); f["category"] == "" {
		t.Fatalf("a template in an undeclared category: %v", f)
	}
	mustDo(t, s, 201, "POST", "/v1/templates", key, map[string]any{"key": "digest", "name": "Digest", "channel": "email", "category": "newsletter"}, &api.Template{})
	mustDo(t, s, 201, "POST", "/v1/templates/digest/versions", key, map[string]any{"subject": "News", "text": "All the news"}, &api.TemplateVersion{})
	mustDo(t, s, 200, "POST", "/v1/templates/digest/versions/1/activate", key, nil, &api.TemplateVersion{})
	expect("a template send in a default-out category", message.Request{To: "bob@example.com", Template: &message.TemplateRef{Key: "digest"}}, 422, optedOut)
	expect("a default-in category", email("invites", "bob@example.com", ""), 202, "")
	expect("an undeclared category", email("promos", "bob@example.com", ""), 422, "https://github.com/logicspike/comms/blob/main/docs/errors.md#validation category")

	var prefs api.Preferences
	mustDo(t, s, 200, "PUT", "/v1/recipients/u_1/preferences", key, map[string]any{"categories": map[string]any{"newsletter": map[string]any{"email": true}}}, &prefs)
	if !prefs.Categories["newsletter"][message.Email] || prefs.Categories["newsletter"][message.SMS] || !prefs.Categories["invites"][message.SMS] ||
		!prefs.Categories["security"][message.Email] || len(prefs.Chosen) != 1 {
		t.Fatalf("preferences after PUT: %+v", prefs)
	}
	prefs = api.Preferences{}
	mustDo(t, s, 200, "GET", "/v1/recipients/u_1/preferences", key, nil, &prefs)
	if !prefs.Categories["newsletter"][message.Email] || !prefs.Chosen["newsletter"][message.Email] || len(prefs.Chosen) != 1 {
		t.Fatalf("preferences read back: %+v", prefs)
	}
	expect("opted in by profile, email", email("newsletter", "", "u_1"), 202, "")
	expect("opted in on email only", sms("newsletter", "u_1"), 422, optedOut)

	addr := "/v1/preferences?address=" + url.QueryEscape("Ada@Example.com")
	prefs = api.Preferences{}
	mustDo(t, s, 200, "PUT", addr, key, map[string]any{"categories": map[string]any{"invites": map[string]any{"email": false}}}, &prefs)
	if prefs.Categories["invites"][message.Email] || len(prefs.Categories["invites"]) != 1 {
		t.Fatalf("address preferences: %+v", prefs)
	}
	expect("out by address, sent by profile", email("invites", "", "u_1"), 422, optedOut)
	expect("out by address, sent to the address", email("invites", "ada@example.com", ""), 422, optedOut)
	expect("a required category to someone out of everything", email("security", "ada@example.com", ""), 202, "")
	if f := problemFields(t, s, 422, "PUT", addr, key, map[string]any{"categories": map[string]any{"security": map[string]any{"email": false},
		"invites": map[string]any{"sms": false}, "nope": map[string]any{"email": true}}}); len(f) != 3 ||
		f["categories.security.email"] == "" || f["categories.invites.sms"] == "" || f["categories.nope"] == "" {
		t.Fatalf("bad preferences: %v", f)
	}
	expect("after a refused PUT nothing changed", email("invites", "ada@example.com", ""), 422, optedOut)

	res := sendBatch(t, s, key, "", message.BatchRequest{Messages: []message.BatchItem{
		item(email("invites", "ada@example.com", "")), item(email("invites", "bob@example.com", "")), item(sms("security", "u_1")),
	}}, http.StatusOK)
	if res.Accepted != 2 || res.Items[0].Error == nil || res.Items[0].Error.Errors[0].Field != "messages[0].category" ||
		res.Items[0].Error.Type != "https://github.com/logicspike/comms/blob/main/docs/errors.md#recipient-opted-out" {
		t.Fatalf("batch: %+v", res)
	}

	// a choice left out goes back to the default (out, for the newsletter)
	mustDo(t, s, 200, "PUT", "/v1/recipients/u_1/preferences", key, map[string]any{"categories": map[string]any{}}, &prefs)
	expect("back to the default", email("newsletter", "", "u_1"), 422, optedOut)
	prefs = api.Preferences{}
	mustDo(t, s, 200, "GET", addr, key, nil, &prefs)
	if prefs.Chosen["invites"][message.Email] || len(prefs.Chosen) != 1 {
		t.Fatalf("the address's choices stay: %+v", prefs)
	}
	mustDo(t, s, 404, "GET", "/v1/recipients/u_9/preferences", key, nil, nil)
	if f := problemFields(t, s, 400, "GET", "/v1/preferences?address=nobody", key, nil); f["address"] == "" {
		t.Fatalf("a bad address: %v", f)
	}
	// deleting a category takes everyone's choices with it, and its messages are refused
	mustDo(t, s, 204, "DELETE", "/v1/categories/invites", key, nil, nil)
	expect("a deleted category", email("invites", "bob@example.com", ""), 422, "https://github.com/logicspike/comms/blob/main/docs/errors.md#validation category")
}

// Every change to a person's choices reaches the tenant as comms.preference.updated, naming the
// person (a profile by its id, an address only by its hash) with all their choices after; a PUT
// that changes nothing is no event.
func TestPreferenceChangesAreEvents(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	s.StartWorker(worker.Config{CommitInterval: 20 * time.Millisecond})
	s.StartDeliverer(webhooks.Config{})
	tid, key := s.Tenant()
	sink := s.EventSink(key, event.PreferenceUpdated)
	mustDo(t, s, 201, "POST", "/v1/categories", key, map[string]any{"key": "news", "name": "News", "default": "out"}, &api.Category{})
	mustDo(t, s, 201, "PUT", "/v1/recipients/u_1", key, map[string]any{"email": "ada@example.com"}, &api.Recipient{})
	body := map[string]any{"categories": map[string]any{"news": map[string]any{"email": true}}}
	mustDo(t, s, 200, "PUT", "/v1/recipients/u_1/preferences", key, body, &api.Preferences{})
	mustDo(t, s, 200, "PUT", "/v1/recipients/u_1/preferences", key, body, &api.Preferences{}) // the same: no change
	mustDo(t, s, 200, "PUT", "/v1/preferences?address=bob@example.com", key, map[string]any{"categories": map[string]any{"news": map[string]any{"email": true}}}, &api.Preferences{})
	got := s.WaitEvents(sink, 2, 20*time.Second)
	byProfile, byAddress := got[0], got[1]
	if strings.HasPrefix(byProfile.Subject, "address:") {
		byProfile, byAddress = byAddress, byProfile
	}
	if byProfile.Subject != "recipient:u_1" || byProfile.Data.RecipientID != "u_1" || !byProfile.Data.Preferences["news"]["email"] {
		t.Errorf("a profile's change: %+v", byProfile)
	}
	if byAddress.Data.RecipientHash == "" || byAddress.Data.Channel != "email" || byAddress.Data.RecipientID != "" ||
		byAddress.Subject != "address:"+byAddress.Data.RecipientHash || !byAddress.Data.Preferences["news"]["email"] {
		t.Errorf("an address's change: %+v", byAddress)
	}
	raw, _ := json.Marshal(got)
	if strings.Contains(string(raw), "bob@example.com") {
		t.Errorf("an event holds the address: %s", raw)
	}
	var n int
	if err := s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM communication.account_events
		WHERE type = 'comms.preference.updated' AND tenant_id = $1`, tid).Scan(&n); err != nil || n != 2 {
		t.Errorf("%d events recorded (%v), want 2: the repeated PUT changed nothing", n, err)
	}
}
