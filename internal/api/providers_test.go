package api_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/dispatch/worker"
	"github.com/logicspike/comms/internal/platform/netguard"
	"github.com/logicspike/comms/internal/testing/fakeprovider"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// syncBuffer is a log sink the whole stack writes to at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// recordingTransport keeps every response body the test client reads.
type recordingTransport struct {
	next   http.RoundTripper
	bodies syncBuffer
}

func (t *recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	_, _ = t.bodies.Write(append(raw, '\n'))
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	return resp, nil
}

func twilioInput(tw *fakeprovider.Twilio, name, token string) map[string]any {
	return map[string]any{
		"type": "twilio", "name": name, "channel": "sms",
		"credentials":    map[string]any{"account_sid": tw.AccountSID, "auth_token": token},
		"sender":         map[string]any{"from": "+14155550100"},
		"test_recipient": "+14155550199",
	}
}

// Journey C: a seller saves its own Twilio account (Save & Test), then its OTP goes out through
// that account, from its number. No credential appears in any log line or API response.
func TestSaveAndTestThenSendThroughTenantsTwilio(t *testing.T) {
	t.Parallel()
	tw := fakeprovider.NewTwilio()
	defer tw.Close()
	logs := &syncBuffer{}
	s := stacktest.Start(t, stacktest.Options{
		Env: provider.Env{TwilioBaseURL: tw.URL, PublicWebhookURL: "https://hooks.comms.example"},
		Log: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	rec := &recordingTransport{next: s.Client.Transport}
	s.Client.Transport = rec
	s.StartWorker(worker.Config{CommitInterval: 20 * time.Millisecond})
	tid, key := s.Tenant()

	// A wrong token first: 422 with Twilio's words, nothing stored.
	var prob api.Problem
	resp := s.Do("POST", "/v1/providers", key, twilioInput(tw, "my twilio", strings.Repeat("0", 32)), nil, &prob)
	if resp.StatusCode != 422 || prob.Code != "auth_failed" || !strings.Contains(prob.Detail, "Twilio: authentication failed (20003)") {
		t.Fatalf("bad token: %d %+v", resp.StatusCode, prob)
	}
	var list struct{ Data []api.Provider }
	s.Do("GET", "/v1/providers", key, nil, nil, &list)
	if len(list.Data) != 0 || len(tw.Received()) != 0 {
		t.Fatalf("a failed test stored %d configs / sent %d", len(list.Data), len(tw.Received()))
	}

	var created api.Provider
	resp = s.Do("POST", "/v1/providers", key, twilioInput(tw, "my twilio", tw.AuthToken), nil, &created)
	if resp.StatusCode != 201 || created.Test == nil || created.Mask != "AC01…cdef" || created.System {
		t.Fatalf("create: %d %+v", resp.StatusCode, created)
	}
	got := tw.Received()
	if len(got) != 1 || got[0].To != "+14155550199" || got[0].From != "+14155550100" || got[0].ProviderMessageID != created.Test.ProviderMessageID {
		t.Fatalf("test send: %+v", got)
	}

	id := s.Send(key, "", message.Request{Channel: message.SMS, To: "+14155550123", Text: "Your code is 424242"})
	s.WaitAllFinal(30 * time.Second)
	var m message.Message
	s.Do("GET", "/v1/messages/"+id, key, nil, nil, &m)
	got = tw.Received()
	if m.Status != message.Sent || m.ProviderType != "twilio" || m.ProviderConfigID != created.ID || len(got) != 2 {
		t.Fatalf("message %+v; fake received %d", m, len(got))
	}
	last := got[1]
	if last.From != "+14155550100" || last.Text != "Your code is 424242" || m.ProviderMessageID != last.ProviderMessageID ||
		last.Extra["StatusCallback"] != "https://hooks.comms.example/webhooks/twilio/"+created.ID || m.Cost != "-0.00790" || m.CostCurrency != "USD" {
		t.Fatalf("sent %+v as %+v", last, m)
	}

	var one api.Provider
	s.Do("GET", "/v1/providers/"+created.ID, key, nil, nil, &one)
	if one.ID != created.ID || one.Mask != created.Mask {
		t.Fatalf("get: %+v", one)
	}
	for where, text := range map[string]string{"logs": logs.String(), "API responses": rec.bodies.String()} {
		if !strings.Contains(text, created.ID) {
			t.Fatalf("%s were not captured", where) // the check below would pass vacuously
		}
		if strings.Contains(text, tw.AuthToken) || strings.Contains(text, tw.AccountSID) {
			t.Fatalf("a credential appears in the %s", where)
		}
	}
	_ = tid
}

func TestProviderValidationNamesEveryField(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	_, key := s.Tenant()
	for _, tc := range []struct {
		name   string
		body   any
		fields []string
	}{
		{"empty twilio", map[string]any{"type": "twilio", "channel": "sms"},
			[]string{"name", "test_recipient", "credentials.account_sid", "credentials.auth_token", "sender"}},
		{"unknown type", map[string]any{"type": "pigeon", "name": "p", "channel": "sms", "test_recipient": "+14155550100"}, []string{"type"}},
		{"wrong channel", map[string]any{"type": "ses", "name": "s", "channel": "sms", "test_recipient": "+14155550100",
			"credentials": map[string]any{"region": "us-east-1", "access_key_id": "AKIAABCDEFGHIJKLMNOP", "secret_access_key": strings.Repeat("s", 40)},
			"sender":      map[string]any{"from": "a@b.example"}}, []string{"channel"}},
		{"bad fields", map[string]any{"type": "smtp", "name": "s", "channel": "email", "test_recipient": "not-an-address", "priority": -1,
			"credentials": map[string]any{"host": "smtp.example.com", "port": 70000, "tls": "sometimes", "pasword": "x"},
			"sender":      map[string]any{"from": "nope"}},
			[]string{"test_recipient", "priority", "credentials.port", "credentials.tls", "credentials.pasword", "sender.from"}},
		{"webhook secret format", map[string]any{"type": "webhook", "name": "w", "channel": "sms", "test_recipient": "+14155550100",
			"credentials": map[string]any{"url": "ftp://x", "secret": "hunter2"}}, []string{"credentials.url", "credentials.secret"}},
		{"unknown top-level field", map[string]any{"type": "twilio", "name": "x", "channel": "sms", "test_recipient": "+14155550100", "token": "x"}, []string{"token"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var prob api.Problem
			resp := s.Do("POST", "/v1/providers", key, tc.body, nil, &prob)
			if resp.StatusCode != 422 || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("status %d", resp.StatusCode)
			}
			named := map[string]bool{}
			for _, f := range prob.Errors {
				named[f.Field] = true
			}
			for _, f := range tc.fields {
				if !named[f] {
					t.Errorf("field %s not named in %+v", f, prob.Errors)
				}
			}
		})
	}
	var list struct{ Data []api.Provider }
	s.Do("GET", "/v1/providers", key, nil, nil, &list)
	if len(list.Data) != 0 {
		t.Fatalf("invalid input stored %d configs", len(list.Data))
	}
}

func TestPatchRetestsOnlyWhenCredentialsChange(t *testing.T) {
	t.Parallel()
	tw := fakeprovider.NewTwilio()
	defer tw.Close()
	s := stacktest.Start(t, stacktest.Options{Env: provider.Env{TwilioBaseURL: tw.URL}})
	_, key := s.Tenant()
	var p api.Provider
	if resp := s.Do("POST", "/v1/providers", key, twilioInput(tw, "tw", tw.AuthToken), nil, &p); resp.StatusCode != 201 {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	sends := len(tw.Received())

	var patched api.Provider
	resp := s.Do("PATCH", "/v1/providers/"+p.ID, key, map[string]any{"priority": 5, "enabled": false, "name": "renamed"}, nil, &patched)
	if resp.StatusCode != 200 || patched.Priority != 5 || patched.Enabled || patched.Name != "renamed" || patched.Test != nil || len(tw.Received()) != sends {
		t.Fatalf("plain patch: %d %+v, sends %d→%d", resp.StatusCode, patched, sends, len(tw.Received()))
	}

	// New credentials without a test recipient: refused. With bad ones: refused, old kept.
	var prob api.Problem
	badCreds := map[string]any{"account_sid": tw.AccountSID, "auth_token": strings.Repeat("1", 32)}
	if resp := s.Do("PATCH", "/v1/providers/"+p.ID, key, map[string]any{"credentials": badCreds}, nil, &prob); resp.StatusCode != 422 || prob.Errors[0].Field != "test_recipient" {
		t.Fatalf("patch without test_recipient: %d %+v", resp.StatusCode, prob)
	}
	resp = s.Do("PATCH", "/v1/providers/"+p.ID, key, map[string]any{"credentials": badCreds, "test_recipient": "+14155550199"}, nil, &prob)
	if resp.StatusCode != 422 || prob.Code != "auth_failed" {
		t.Fatalf("bad creds patch: %d %+v", resp.StatusCode, prob)
	}
	var after api.Provider
	s.Do("GET", "/v1/providers/"+p.ID, key, nil, nil, &after)
	if !after.UpdatedAt.Equal(patched.UpdatedAt) {
		t.Fatal("a failed re-test changed the config")
	}
	resp = s.Do("PATCH", "/v1/providers/"+p.ID, key, map[string]any{"sender": map[string]any{"from": "+14155550111"}, "test_recipient": "+14155550199"}, nil, &patched)
	if resp.StatusCode != 200 || patched.Test == nil || !strings.Contains(string(patched.Sender), "+14155550111") {
		t.Fatalf("sender patch: %d %+v", resp.StatusCode, patched)
	}
	if r := tw.Received(); r[len(r)-1].From != "+14155550111" {
		t.Fatal("re-test did not use the new sender")
	}
	if resp := s.Do("PATCH", "/v1/providers/"+p.ID, key, map[string]any{"type": "ses"}, nil, &prob); resp.StatusCode != 422 {
		t.Fatalf("type change: %d", resp.StatusCode)
	}
	// Test endpoint, then delete.
	var res struct {
		ProviderMessageID string `json:"provider_message_id"`
	}
	if resp := s.Do("POST", "/v1/providers/"+p.ID+"/test", key, map[string]any{"test_recipient": "+14155550198"}, nil, &res); resp.StatusCode != 200 || res.ProviderMessageID == "" {
		t.Fatalf("test: %d", resp.StatusCode)
	}
	if resp := s.Do("DELETE", "/v1/providers/"+p.ID, key, nil, nil, nil); resp.StatusCode != 204 {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if resp := s.Do("GET", "/v1/providers/"+p.ID, key, nil, nil, nil); resp.StatusCode != 404 {
		t.Fatalf("get after delete: %d", resp.StatusCode)
	}
}

func TestProvidersAreTenantScoped(t *testing.T) {
	t.Parallel()
	tw := fakeprovider.NewTwilio()
	defer tw.Close()
	s := stacktest.Start(t, stacktest.Options{Env: provider.Env{TwilioBaseURL: tw.URL}})
	_, keyA := s.Tenant()
	_, keyB := s.Tenant()
	var p api.Provider
	s.Do("POST", "/v1/providers", keyA, twilioInput(tw, "a", tw.AuthToken), nil, &p)
	for _, r := range []struct{ method, path string }{
		{"GET", "/v1/providers/" + p.ID}, {"PATCH", "/v1/providers/" + p.ID}, {"DELETE", "/v1/providers/" + p.ID},
		{"POST", "/v1/providers/" + p.ID + "/test"}, {"GET", "/admin/providers/" + p.ID},
	} {
		var body any
		if r.method == "PATCH" || r.method == "POST" {
			body = map[string]any{"test_recipient": "+14155550100"}
		}
		if r.method == "PATCH" {
			body = map[string]any{"priority": 1}
		}
		if resp := s.Do(r.method, r.path, keyB, body, nil, nil); resp.StatusCode != 404 && resp.StatusCode != 403 {
			t.Errorf("%s %s with another tenant's key: %d", r.method, r.path, resp.StatusCode)
		}
	}
	var list struct{ Data []api.Provider }
	s.Do("GET", "/v1/providers", keyB, nil, nil, &list)
	if len(list.Data) != 0 {
		t.Fatal("tenant B sees A's config")
	}
	// System defaults are the admin's: a tenant key may not create one.
	if resp := s.Do("POST", "/admin/providers", keyA, twilioInput(tw, "sys", tw.AuthToken), nil, nil); resp.StatusCode != 403 {
		t.Fatalf("tenant creating a system default: %d", resp.StatusCode)
	}
	var sys api.Provider
	if resp := s.Do("POST", "/admin/providers", s.AdminKey, twilioInput(tw, "platform twilio", tw.AuthToken), nil, &sys); resp.StatusCode != 201 || !sys.System {
		t.Fatalf("admin creating a system default: %d %+v", resp.StatusCode, sys)
	}
}

// A webhook URL that resolves to a private address is refused when the test send connects,
// even though it passed validation: the guard sits in the dialer.
func TestWebhookToPrivateAddressIsRefused(t *testing.T) {
	t.Parallel()
	wh := fakeprovider.NewWebhook()
	defer wh.Close()
	s := stacktest.Start(t, stacktest.Options{Env: provider.Env{Dial: netguard.DialFunc(time.Second, false)}})
	_, key := s.Tenant()
	var prob api.Problem
	resp := s.Do("POST", "/v1/providers", key, map[string]any{
		"type": "webhook", "name": "hook", "channel": "sms", "test_recipient": "+14155550100",
		"credentials": map[string]any{"url": strings.Replace(wh.URL, "127.0.0.1", "localhost", 1), "secret": wh.Secret},
	}, nil, &prob)
	if resp.StatusCode != 422 || !strings.Contains(prob.Detail, "refusing to connect") || len(wh.Received()) != 0 {
		t.Fatalf("private webhook: %d %+v", resp.StatusCode, prob)
	}
	_ = context.Background
}
