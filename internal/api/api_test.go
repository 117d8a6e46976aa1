package api_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/intake"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/pkg/message"
)

func start(t *testing.T) *stacktest.Stack {
	t.Helper()
	t.Parallel()
	return stacktest.Start(t, stacktest.Options{})
}

func countMessages(t *testing.T, s *stacktest.Stack) int {
	t.Helper()
	var n int
	if err := s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM communication.message_logs`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCreateMessageRejectsBadInput(t *testing.T) {
	s := start(t)
	_, key := s.Tenant()
	long := strings.Repeat("x", message.MaxSMSTextLen+1)
	tests := []struct {
		name        string
		body        string
		contentType string
		status      int
		fields      []string // every field the problem must name
	}{
		{"not json", `hello`, "", 400, nil},
		{"json array", `[1]`, "", 400, nil},
		{"truncated", `{"channel":"sms"`, "", 400, nil},
		{"trailing data", `{"channel":"sms","to":"+14155550123","text":"x"} {}`, "", 400, nil},
		{"wrong content type", `{"channel":"sms","to":"+14155550123","text":"x"}`, "text/plain", 415, nil},
		{"unknown fields named together", `{"channel":"sms","to":"+14155550123","text":"x","bogus":1,"cc":"a"}`, "", 422, []string{"bogus", "cc"}},
		{"case-folded field", `{"channel":"sms","TO":"+14155550123","text":"x"}`, "", 422, []string{"TO"}},
		{"wrong type", `{"channel":"sms","to":14155550123,"text":"x"}`, "", 422, []string{"to"}},
		{"missing channel", `{"to":"+14155550123","text":"x"}`, "", 422, []string{"channel"}},
		{"bad channel", `{"channel":"fax","to":"+14155550123","text":"x"}`, "", 422, []string{"channel"}},
		{"sms not e164", `{"channel":"sms","to":"4155550123","text":"x"}`, "", 422, []string{"to"}},
		{"sms without body", `{"channel":"sms","to":"+14155550123"}`, "", 422, []string{"text"}},
		{"sms too long", `{"channel":"sms","to":"+14155550123","text":"` + long + `"}`, "", 422, []string{"text"}},
		{"sms with subject and html", `{"channel":"sms","to":"+14155550123","text":"x","subject":"s","html":"<b>"}`, "", 422, []string{"subject", "html"}},
		{"sms bad sender", `{"channel":"sms","to":"+14155550123","text":"x","from":"not a sender!"}`, "", 422, []string{"from"}},
		{"email bad address", `{"channel":"email","to":"not-an-address","subject":"s","text":"x"}`, "", 422, []string{"to"}},
		{"email no domain dot", `{"channel":"email","to":"a@localhost","subject":"s","text":"x"}`, "", 422, []string{"to"}},
		{"email header injection", `{"channel":"email","to":"a@example.com","subject":"hi\r\nBcc: x@evil.com","text":"x"}`, "", 422, []string{"subject"}},
		{"email missing subject and body", `{"channel":"email","to":"a@example.com"}`, "", 422, []string{"subject", "text"}},
		{"metadata not strings", `{"channel":"sms","to":"+14155550123","text":"x","metadata":{"a":1}}`, "", 422, []string{"metadata"}},
		{"NUL in text", `{"channel":"sms","to":"+14155550123","text":"a\u0000b"}`, "", 422, []string{"text"}},
		{"NUL in subject", `{"channel":"email","to":"a@example.com","subject":"\u0000","text":"x"}`, "", 422, []string{"subject"}},
		{"NUL in metadata value", `{"channel":"sms","to":"+14155550123","text":"x","metadata":{"k":"\u0000"}}`, "", 422, []string{"metadata.k"}},
		{"NUL in metadata key", `{"channel":"sms","to":"+14155550123","text":"x","metadata":{"a\u0000":"v"}}`, "", 422, []string{"metadata"}},
		{"invalid UTF-8", "{\"channel\":\"sms\",\"to\":\"+14155550123\",\"text\":\"\xff\"}", "", 422, []string{"text"}},
		{"unpaired surrogate", `{"channel":"sms","to":"+14155550123","text":"\ud800x"}`, "", 422, []string{"text"}},
		{"duplicate key", `{"channel":"sms","to":"+14155550123","to":"+14155550124","text":"x"}`, "", 400, []string{"to"}},
		{"duplicate escaped key", `{"channel":"sms","to":"+14155550123","t\u006f":"+14155550124","text":"x"}`, "", 400, []string{"to"}},
		{"duplicate metadata key", `{"channel":"sms","to":"+14155550123","text":"x","metadata":{"k":"1","k":"2"}}`, "", 400, []string{"metadata.k"}},
		{"too large", `{"channel":"email","to":"a@example.com","subject":"s","text":"` + strings.Repeat("x", message.MaxRequestBodySize) + `"}`, "", 413, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", s.URL+"/v1/messages", strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+key)
			ct := tc.contentType
			if ct == "" {
				ct = "application/json"
			}
			req.Header.Set("Content-Type", ct)
			resp, err := s.Client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var p api.Problem
			decodeBody(t, resp, &p)
			if resp.StatusCode != tc.status || p.Status != tc.status {
				t.Fatalf("status %d (problem %d), want %d: %+v", resp.StatusCode, p.Status, tc.status, p)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("content type %q", ct)
			}
			if p.Title == "" || p.Type == "" || p.Detail == "" {
				t.Fatalf("problem lacks title/type/detail: %+v", p)
			}
			named := map[string]bool{}
			for _, f := range p.Errors {
				named[f.Field] = true
			}
			for _, f := range tc.fields {
				if !named[f] {
					t.Fatalf("problem does not name %q: %+v", f, p.Errors)
				}
			}
		})
	}
	if n := countMessages(t, s); n != 0 {
		t.Fatalf("bad requests recorded %d messages", n)
	}
}

func TestAuthentication(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	tenantID, key := s.Tenant()
	otherTenant, _ := s.Tenant()
	_, service, _ := s.Store.CreateAPIKey(ctx, domain.KindService, "", "login service", nil)
	revoked, revokedKey, _ := s.Store.CreateAPIKey(ctx, domain.KindTenant, tenantID, "old", nil)
	if _, err := s.Store.RevokeAPIKey(ctx, tenantID, revoked.ID); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Minute)
	_, expiredKey, _ := s.Store.CreateAPIKey(ctx, domain.KindTenant, tenantID, "expired", &past)

	body := message.Request{Channel: message.SMS, To: "+14155550123", Text: "your code is 123456"}
	tests := []struct {
		name    string
		key     string
		headers map[string]string
		status  int
	}{
		{"no key", "", nil, 401},
		{"unknown key", "ck_tenant_nope", nil, 401},
		{"revoked key", revokedKey, nil, 401},
		{"expired key", expiredKey, nil, 401},
		{"admin key cannot send", s.AdminKey, nil, 403},
		{"tenant key for another tenant", key, map[string]string{"X-Tenant-Id": otherTenant}, 403},
		{"service key without tenant", service, nil, 400},
		{"service key for unknown tenant", service, map[string]string{"X-Tenant-Id": "ten_doesnotexist"}, 404},
		{"tenant key", key, nil, 202},
		{"service key for a tenant", service, map[string]string{"X-Tenant-Id": otherTenant}, 202},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := s.Do("POST", "/v1/messages", tc.key, body, tc.headers, nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}
	// The service key's message belongs to the tenant it named.
	var page struct{ Data []message.Message }
	s.Do("GET", "/v1/messages", service, nil, map[string]string{"X-Tenant-Id": otherTenant}, &page)
	if len(page.Data) != 1 || page.Data[0].TenantID != otherTenant {
		t.Fatalf("service send landed in %+v", page.Data)
	}
	if resp := s.Do("GET", "/admin/tenants", key, nil, nil, nil); resp.StatusCode != 403 {
		t.Fatalf("tenant key on admin endpoint: %d", resp.StatusCode)
	}
}

func TestRevokeThroughAdminTakesEffectAtOnce(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{AuthCacheTTL: time.Hour})
	tenantID, _ := s.Tenant()
	var created struct {
		APIKey api.APIKey `json:"api_key"`
		Secret string     `json:"secret"`
	}
	if resp := s.Do("POST", "/admin/api-keys", s.AdminKey, map[string]any{"kind": "tenant", "tenant_id": tenantID, "name": "n"}, nil, &created); resp.StatusCode != 201 {
		t.Fatalf("create key: %d", resp.StatusCode)
	}
	if resp := s.Do("GET", "/v1/messages", created.Secret, nil, nil, nil); resp.StatusCode != 200 {
		t.Fatalf("new key: %d", resp.StatusCode) // now cached for an hour
	}
	if resp := s.Do("DELETE", "/admin/api-keys/"+created.APIKey.ID, s.AdminKey, nil, nil, nil); resp.StatusCode != 200 {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	if resp := s.Do("GET", "/v1/messages", created.Secret, nil, nil, nil); resp.StatusCode != 401 {
		t.Fatalf("revoked key still accepted: %d", resp.StatusCode)
	}
}

func TestIdempotencyKey(t *testing.T) {
	s := start(t)
	_, keyA := s.Tenant()
	_, keyB := s.Tenant()
	body := message.Request{Channel: message.SMS, To: "+14155550123", Text: "code 1"}
	hdr := map[string]string{"Idempotency-Key": "otp-42"}

	var first, again, other intake.Accepted
	s.Do("POST", "/v1/messages", keyA, body, hdr, &first)
	resp := s.Do("POST", "/v1/messages", keyA, body, hdr, &again)
	if resp.StatusCode != 202 || again.ID != first.ID || resp.Header.Get("Idempotent-Replayed") != "true" || !again.CreatedAt.Equal(first.CreatedAt) {
		t.Fatalf("replay: %d %+v vs %+v", resp.StatusCode, again, first)
	}
	s.Do("POST", "/v1/messages", keyB, body, hdr, &other)
	if other.ID == "" || other.ID == first.ID {
		t.Fatalf("keys must be per tenant: %s vs %s", other.ID, first.ID)
	}
	var p api.Problem
	changed := body
	changed.Text = "code 2"
	if resp := s.Do("POST", "/v1/messages", keyA, changed, hdr, &p); resp.StatusCode != 422 || p.Errors[0].Field != "Idempotency-Key" {
		t.Fatalf("reuse with another body: %d %+v", resp.StatusCode, p)
	}
	if resp := s.Do("POST", "/v1/messages", keyA, body, map[string]string{"Idempotency-Key": strings.Repeat("k", 256)}, nil); resp.StatusCode != 400 {
		t.Fatalf("oversized key: %d", resp.StatusCode)
	}
	if n := countMessages(t, s); n != 2 {
		t.Fatalf("%d messages recorded, want 2", n)
	}
}

func TestConcurrentDuplicatesMakeOneMessage(t *testing.T) {
	s := start(t)
	_, key := s.Tenant()
	body := message.Request{Channel: message.Email, To: "ada@example.com", Subject: "Welcome", Text: "hi"}
	const n = 50
	got := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = s.Send(key, "welcome-ada", body)
		}()
	}
	wg.Wait()
	for _, id := range got {
		if id != got[0] {
			t.Fatalf("concurrent duplicates got different ids: %v", got)
		}
	}
	if c := countMessages(t, s); c != 1 {
		t.Fatalf("%d messages recorded for one key, want 1", c)
	}
}

func TestOtherTenantsMessageIsNotFound(t *testing.T) {
	s := start(t)
	_, keyA := s.Tenant()
	_, keyB := s.Tenant()
	id := s.Send(keyA, "", message.Request{Channel: message.SMS, To: "+14155550123", Text: "x"})
	var m message.Message
	if resp := s.Do("GET", "/v1/messages/"+id, keyA, nil, nil, &m); resp.StatusCode != 200 || m.ID != id || len(m.Events) == 0 {
		t.Fatalf("owner: %d %+v", resp.StatusCode, m)
	}
	for _, path := range []string{"/v1/messages/" + id, "/v1/messages/msg_doesnotexist", "/v1/messages/garbage"} {
		if resp := s.Do("GET", path, keyB, nil, nil, nil); resp.StatusCode != 404 {
			t.Fatalf("%s for another tenant: %d, want 404", path, resp.StatusCode)
		}
	}
	var page struct{ Data []message.Message }
	s.Do("GET", "/v1/messages", keyB, nil, nil, &page)
	if len(page.Data) != 0 {
		t.Fatalf("tenant B lists A's messages: %+v", page.Data)
	}
}

func TestListMessagesQuery(t *testing.T) {
	s := start(t)
	_, key := s.Tenant()
	before := time.Now().Add(-time.Second)
	for i := 0; i < 5; i++ {
		s.Send(key, "", message.Request{Channel: message.SMS, To: "+14155550123", Text: "x"})
		s.Send(key, "", message.Request{Channel: message.Email, To: "ada@example.com", Subject: "s", Text: "x"})
	}
	var seen int
	cursor := ""
	for {
		var page struct {
			Data       []message.Message `json:"data"`
			NextCursor string            `json:"next_cursor"`
		}
		q := "/v1/messages?channel=email&status=queued&limit=2&to=ada@example.com&created_after=" + before.UTC().Format(time.RFC3339Nano)
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		if resp := s.Do("GET", q, key, nil, nil, &page); resp.StatusCode != 200 {
			t.Fatalf("list: %d", resp.StatusCode)
		}
		for _, m := range page.Data {
			if m.Channel != message.Email {
				t.Fatalf("filter leaked %+v", m)
			}
		}
		seen += len(page.Data)
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if seen != 5 {
		t.Fatalf("paged through %d email messages, want 5", seen)
	}
	var p api.Problem
	if resp := s.Do("GET", "/v1/messages?limit=0&status=lost&colour=red", key, nil, nil, &p); resp.StatusCode != 400 || len(p.Errors) != 3 {
		t.Fatalf("bad query: %d %+v", resp.StatusCode, p)
	}
}

func decodeBody(t *testing.T, resp *http.Response, out any) {
	t.Helper()
	defer resp.Body.Close()
	if err := jsonDecode(resp, out); err != nil {
		t.Fatalf("decode: %v", err)
	}
}

func TestDatabaseDownIsServiceUnavailableAndAcceptsNothing(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{AuthCacheTTL: time.Hour})
	_, key := s.Tenant()
	body := message.Request{Channel: message.SMS, To: "+14155550123", Text: "x"}
	s.Send(key, "", body) // the key is now cached: the failure below is the insert's
	s.Pool.Close()
	var p api.Problem
	resp := s.Do("POST", "/v1/messages", key, body, map[string]string{"Idempotency-Key": "retry-me"}, &p)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || p.Status != 503 {
		t.Fatalf("database down: %d Retry-After=%q %+v", resp.StatusCode, resp.Header.Get("Retry-After"), p)
	}
}
